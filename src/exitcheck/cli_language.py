"""The command line's own words in the clerk's language: --help, and the usage errors typer finds.

typer prints --help, and refuses a mistyped option, while it parses the command line: before any
command has its --lang. So the language of these is read from the command line itself (`--lang en`
or `--lang=en`; Chinese otherwise), once when this module is imported, and every help text is
chosen then with `bilingual`. Only typer and the standard library are imported: --help stays instant.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from exitcheck.i18n import did_you_mean, pick


def asked_language(args: Sequence[str]) -> str:
    """'en' when the last --lang of `args` says en, else 'zh' (the default, also for a bad value,
    which typer then refuses in Chinese)."""
    lang = "zh"
    for index, arg in enumerate(args):
        if arg == "--":  # what follows are paths, even one named --lang
            break
        if arg == "--lang" and index + 1 < len(args):
            lang = args[index + 1]
        elif arg.startswith("--lang="):
            lang = arg.partition("=")[2]
    return "en" if lang == "en" else "zh"


#: The language of this process's command line, for its help.
LANG = asked_language(sys.argv[1:])
#: The base class of typer's errors: click's ClickException, which typer 0.2x vendors under a
#: private module and older typers (pyproject allows 0.15.4) take from click itself.
CLICK_ERROR: type[Exception] = next(kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "ClickException")


def one_of_languages(value: str) -> str:
    """--lang's check. Not a choice type: typer before 0.2x takes no Literal, and after it no
    click type; typer refuses the value as a usage error, said in the command line's language."""
    if value not in ("zh", "en"):
        raise typer.BadParameter(pick(LANG, "只能是 zh 或 en", "must be zh or en"))
    return value


def bilingual(zh: str, en: str) -> str:
    """`zh` or `en`, in the language the command line asks for."""
    return pick(LANG, zh, en)


#: The section headings typer writes in help (the English it passes to gettext), in Chinese.
HEADINGS_ZH = {"Arguments": "参数", "Options": "选项", "Commands": "命令"}


#: What click and typer write in a usage line and beside an option's help (no hook of theirs
#: takes them), in Chinese.
USAGE_WORDS_ZH = {"[OPTIONS]": "[选项]", "COMMAND [ARGS]...": "命令 [参数]..."}
EXTRA_WORDS_ZH = {"default: ": "默认: ", "required": "必填"}
#: The kind of value an option takes, as typer names it, in the clerk's words: typer 0.2x writes
#: <str>, <path>, <list[Path]>; older ones TEXT, PATH, INTEGER RANGE.
VALUE_KINDS = {
    "zh": {"str": "文本", "path": "路径", "list[Path]": "路径", "list[str]": "文本", "int": "整数", "int range": "整数",
           "float": "数", "TEXT": "文本", "PATH": "路径", "INTEGER RANGE": "整数", "INTEGER": "整数", "FLOAT": "数"},
    "en": {"list[Path]": "path", "list[str]": "str"},
}
_VALUE_KIND = re.compile(r"<([^<>]+)>|\b(INTEGER RANGE|INTEGER|TEXT|PATH|FLOAT)\b")
#: The bracket after an option's help; typer before 0.2x escapes it for rich, and then prints it plain.
_HELP_EXTRA = re.compile(r"\\?\[([^\[\]]*)\]$")


def _replaced(text: str, words: dict[str, str]) -> str:
    for word, said in words.items():
        text = text.replace(word, said)
    return text


def _value_kinds(term: str) -> str:
    kinds = VALUE_KINDS[LANG]

    def said(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return f"<{kinds.get(match.group(1), match.group(1))}>"
        return kinds.get(match.group(2), match.group(2))
    return _VALUE_KIND.sub(said, term)


def _extra(text: str) -> str:
    words = EXTRA_WORDS_ZH if LANG == "zh" else {}
    return _HELP_EXTRA.sub(lambda match: f"[{_replaced(match.group(1), words)}]", text)


class _Formatter(typer.Context.formatter_class):  # type: ignore[name-defined,misc]
    """Help in the command line's language: headings, usage line, the kinds of value and the
    default and required marks."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        if LANG == "zh":
            args = _replaced(args, USAGE_WORDS_ZH)
        super().write_usage(prog, args, prefix or bilingual("用法: ", "Usage: "))

    def write_dl(self, rows: Sequence[tuple[str, str]], *args: Any, **settings: Any) -> None:
        super().write_dl([(_value_kinds(term), _extra(text)) for term, text in rows], *args, **settings)

    def section(self, name: str) -> Any:
        return super().section(bilingual(HEADINGS_ZH.get(name, name), name))


class _Context(typer.Context):
    formatter_class = _Formatter


class _Bilingual:
    """What a command and a group share: the headings above, and --help's own help."""

    context_class = _Context

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except CLICK_ERROR as error:
            # typer's parser says "--out needs a value" without the command it belongs to; the
            # message names that command's --help, so it is told here.
            if getattr(error, "ctx", False) is None:
                error.ctx = ctx  # type: ignore[attr-defined]
            raise

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = bilingual("显示本帮助并退出。", "Show this message and exit.")
        return option


class Command(_Bilingual, TyperCommand):
    pass


class Group(_Bilingual, TyperGroup):
    pass


class App(typer.Typer):
    """A typer app whose commands and groups write their help in the command line's language."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(cls=Group, **settings)

    def command(self, name: str | None = None, **settings: Any) -> Callable[[Any], Any]:  # type: ignore[override]
        return super().command(name, cls=Command, **settings)


def usage_message(error: Exception, lang: str) -> str | None:
    """What typer's usage error `error` means, in `lang`, with the command whose --help tells
    more; None for an error that is not a usage error (typer shows those itself)."""
    kinds = [kind.__name__ for kind in type(error).__mro__]
    if "UsageError" not in kinds or "NoArgsIsHelpError" in kinds:
        return None
    # typer vendors click under a private module: the class names are the stable part.
    say = next(_SAYINGS[kind] for kind in kinds if kind in _SAYINGS)
    zh, en = say(error)
    return pick(lang, zh, en) + _help_hint(getattr(error, "ctx", None), pick(lang, zh, en), lang)


def _no_such_option(error: Any) -> tuple[str, str]:
    zh_near, en_near = did_you_mean(error.option_name, error.possibilities or ())
    return f"没有这个选项: {error.option_name}{zh_near}", f"no such option: {error.option_name}{en_near}"


def _missing(error: Any) -> tuple[str, str]:
    name, what = _param_name(error.param, error.param_hint)
    detail = f": {error.param.help.rstrip('。.')}" if error.param is not None and error.param.help else ""
    kind_zh, kind_en = what
    return f"缺少{kind_zh} {name}{detail}", f"missing {kind_en} {name}{detail}"


def _bad_value(error: Any) -> tuple[str, str]:
    name, _ = _param_name(error.param, error.param_hint)
    zh, en = _value_rule(error.param) or (error.message, error.message)
    return f"{name} 的值不对: {zh}", f"invalid value for {name}: {en}"


def _option_use(error: Any) -> tuple[str, str]:
    """An option without its value (--out at the end), or a switch given one (--quiet=1)."""
    params = error.ctx.command.params if error.ctx else []
    if any(error.option_name in param.opts and getattr(param, "is_flag", False) for param in params):
        return f"选项 {error.option_name} 是开关, 不带值", f"option {error.option_name} is a switch and takes no value"
    return f"选项 {error.option_name} 后面须写一个值", f"option {error.option_name} needs a value after it"


#: typer's plain UsageError carries only its English message; these are its fixed forms.
_NO_COMMAND = re.compile(r"No such command '(?P<name>.*)'\.")
_EXTRA = re.compile(r"Got unexpected extra argument(?:s|\(s\))? \((?P<args>.*)\)")  # older click: argument/arguments


def _plain(error: Any) -> tuple[str, str]:
    if found := _NO_COMMAND.match(error.message):
        commands = getattr(error.ctx.command, "commands", {}) if error.ctx else {}
        zh_near, en_near = did_you_mean(found["name"], commands)
        return f"没有这个命令: {found['name']}{zh_near}", f"no such command: {found['name']}{en_near}"
    if found := _EXTRA.match(error.message):
        return f"多余的参数: {found['args']}", f"unexpected extra argument(s): {found['args']}"
    if error.message == "Missing command.":
        return "缺少命令", "missing command"
    return f"命令行有误: {error.message}", f"usage error: {error.message}"


#: Each kind of typer's usage errors, by class name (the most specific first in the MRO).
_SAYINGS: dict[str, Callable[[Any], tuple[str, str]]] = {
    "NoSuchOption": _no_such_option,
    "MissingParameter": _missing,
    "BadParameter": _bad_value,
    "BadOptionUsage": _option_use,
    "UsageError": _plain,
}


def _param_name(param: Any, hint: Any) -> tuple[str, tuple[str, str]]:
    """How a message names the parameter (--out, PATHS), and whether it is an option or an argument."""
    if param is None:
        return str(hint or ""), ("参数", "argument")
    if param.param_type_name == "option":
        return param.opts[0], ("选项", "option")
    return param.name.upper(), ("参数", "argument")


def _value_rule(param: Any) -> tuple[str, str] | None:
    """What a value of `param` must be, when its type says so: one of its choices, a whole
    number (at least its minimum). None for the rest: typer's own words are kept."""
    if param is None:
        return None
    # typer 0.2x describes a parameter's type itself; older typers leave it to click's type
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        choices, whole, low = descriptor.choices if descriptor.is_choice else None, descriptor.annotation is int, getattr(param, "min", None)
    else:
        choices, whole, low = getattr(param.type, "choices", None), param.type.name in ("integer", "integer range"), getattr(param.type, "min", None)
    if choices:
        choices = [str(getattr(choice, "value", choice)) for choice in choices]
        return f"只能是 {' 或 '.join(choices)}", f"must be {' or '.join(choices)}"
    if whole:
        if low is not None:
            return f"须为不小于 {low} 的整数", f"must be a whole number, at least {low}"
        return "须为整数", "must be a whole number"
    return None


def _help_hint(ctx: Any, said: str, lang: str) -> str:
    """'; 用 exitcheck audit --help 查看用法' after `said`: the command as the clerk types it,
    whatever the program was started as (python -m exitcheck names itself so)."""
    if ctx is None:
        return ""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    command = " ".join(["exitcheck", *reversed(names), "--help"])
    joint = " " if said.endswith("?") else "; "  # after "是否指 --out?" a new sentence
    return joint + pick(lang, f"用 {command} 查看用法", f"see {command}")
