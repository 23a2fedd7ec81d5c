"""Pydantic's complaint about a setting file, in the project's words.

exitcheck.yaml and rule-set files are validated with pydantic, whose messages are English and
speak of its own types ("Input should be a valid integer, unable to parse string as an
integer"). `setting_error` turns the first complaint into a ConfigError (exit 4) a clerk can
act on, in Chinese and English: the file and line, the key, the value written there (unless it
may be a secret) and what is expected instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from exitcheck.errors import ConfigError
from exitcheck.i18n import did_you_mean

Location = tuple[Any, ...]
#: A value longer than this is cut in a message: the line number finds the rest.
SHOWN_CHARACTERS = 60


class Mistake(ValueError):
    """A validator's complaint in both languages: pydantic keeps the exception in the error's
    context, where `describe` finds the Chinese text."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh


#: What a value of each kind pydantic checks should be, in Chinese and English; {name} is
#: filled from the error's context (a bound, the choices).
EXPECTED: dict[str, tuple[str, str]] = {
    "int_parsing": ("整数", "a whole number"),
    "int_type": ("整数", "a whole number"),
    "int_from_float": ("整数", "a whole number"),
    "float_parsing": ("数字", "a number"),
    "float_type": ("数字", "a number"),
    "finite_number": ("有限的数字", "a finite number"),
    "bool_parsing": ("true 或 false", "true or false"),
    "bool_type": ("true 或 false", "true or false"),
    "string_type": ("文本", "text"),
    "list_type": ("列表, 如 [甲, 乙]", "a list, such as [a, b]"),
    "dict_type": ("键值映射(键: 值)", "a mapping (key: value)"),
    "model_type": ("键值映射(键: 值)", "a mapping (key: value)"),
    "model_attributes_type": ("键值映射(键: 值)", "a mapping (key: value)"),
    "greater_than": ("大于 {gt} 的数", "a number greater than {gt}"),
    "greater_than_equal": ("不小于 {ge} 的数", "a number of at least {ge}"),
    "less_than": ("小于 {lt} 的数", "a number less than {lt}"),
    "less_than_equal": ("不大于 {le} 的数", "a number of at most {le}"),
    "literal_error": ("{expected} 之一", "{expected}"),
    "too_short": ("至少 {min_length} 项", "at least {min_length} item(s)"),
    "string_too_short": ("至少 {min_length} 个字符", "at least {min_length} characters"),
    "string_too_long": ("至多 {max_length} 个字符", "at most {max_length} characters"),
    "string_pattern_mismatch": ("符合格式 {pattern} 的文本", "text matching {pattern}"),
    "union_tag_invalid": ("{expected_tags} 之一", "one of {expected_tags}"),
    "date_type": ("日期", "a date"),
    "path_type": ("路径", "a path"),
}


def setting_error(
    path: Path | str,
    text: str,
    data: object,
    exc: ValidationError,
    *,
    known_keys: Callable[[Location], Iterable[str]],
    private: Callable[[Location], bool] = lambda location: False,
    patterns: Mapping[str, tuple[str, str]] | None = None,
    about: Callable[[Location], tuple[str, str]] | None = None,
) -> ConfigError:
    """The first of `exc`'s complaints about `data` (read from `text`, the file at `path`) as
    'FILE:LINE: key: what is wrong' in both languages. A misspelt key is also a missing one: the
    spelling is reported, with the key meant (`known_keys` of its parent). `private` locations
    never have their value repeated (a secret typed where a variable's name belongs);
    `patterns` words a regular expression the way a clerk says it; `about` adds who the key
    belongs to (' (rule income)')."""
    errors = exc.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    location = located(data, first)
    where = position(path, text, location)
    whose_zh, whose_en = about(location) if about else ("", "")
    # The key, unless the complaint is about the whole file (a list where a mapping belongs).
    key_zh, key_en = (f"{dotted(location)}{whose_zh}: ", f"{dotted(location)}{whose_en}: ") if location else ("", "")
    if first["type"] == "extra_forbidden":
        hint_zh, hint_en = did_you_mean(str(location[-1]), list(known_keys(location[:-1])))
        return ConfigError(f"{where}: {key_zh}未知的设置项{hint_zh}", f"{where}: {key_en}unknown setting{hint_en}")
    together = [e for e in errors if e["type"] != "extra_forbidden" and located(data, e) == location]
    zh, en = describe(together, show_value=not private(location), patterns=patterns or {})
    return ConfigError(f"{where}: {key_zh}{zh}", f"{where}: {key_en}{en}")


def describe(errors: Sequence[Any], *, show_value: bool = True,
             patterns: Mapping[str, tuple[str, str]] | None = None) -> tuple[str, str]:
    """(zh, en) of what is wrong with one value: a validator's own words, or what is expected
    there and the value written. Several errors are the members of a union (a rule set's
    params: a number, text or true/false), each one thing the value could have been."""
    first = errors[0]
    mistake = first.get("ctx", {}).get("error")
    if first["type"] == "value_error":
        en = first["msg"].removeprefix("Value error, ")
        return (mistake.zh if isinstance(mistake, Mistake) else en), en
    if first["type"] in ("missing", "union_tag_not_found"):
        return "缺少这一项(必填)", "missing (it is required)"
    if first["type"] not in EXPECTED:
        return first["msg"], first["msg"]
    expected = [_expected(e, patterns or {}) for e in errors if e["type"] in EXPECTED]
    zh = _after("应为", _either(dict.fromkeys(z for z, _ in expected), "、", "或"))
    en = "expected " + _either(dict.fromkeys(e for _, e in expected), ", ", " or ")
    value = _shown(first)
    if show_value and value is not None:
        zh, en = f"{zh}, 现为「{value}」", f"{en}, found {value!r}"
    return zh, en


def _after(word: str, text: str) -> str:
    """Chinese runs on, with a space before Latin letters or digits, as the other messages write."""
    return f"{word} {text}" if text[:1].isascii() else word + text


def located(data: object, error: Any) -> Location:
    """The error's location as keys of the file: pydantic's own steps (a union member's type,
    a discriminator's tag, '[key]' for a mapping's key) are left out, being no keys of `data`;
    a missing key keeps its name."""
    loc = tuple(error["loc"])
    out: list[Any] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if _holds(node, part):
            node = node[part]
        elif not (last and error["type"] == "missing"):
            continue
        out.append(part)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        out.append(str(error["ctx"]["discriminator"]).strip("'"))
    return tuple(out)


def _holds(node: object, part: object) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def position(path: Path | str, text: str, location: Location) -> str:
    """'FILE:LINE' of a key path, or the file alone when the line cannot be told."""
    from exitcheck.rules.model import _line_of

    line = _line_of(text, location)
    return f"{path}:{line}" if line else str(path)


def dotted(location: Location) -> str:
    return ".".join(str(part) for part in location)


def _expected(error: Any, patterns: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    ctx = {name: _plain(value) for name, value in error.get("ctx", {}).items()}
    if error["type"] == "string_pattern_mismatch" and ctx.get("pattern") in patterns:
        return patterns[ctx["pattern"]]
    zh, en = EXPECTED[error["type"]]
    chinese = {name: str(value).replace(" or ", "、").replace(", ", "、").replace("'", "") for name, value in ctx.items()}
    return zh.format(**chinese), en.format(**ctx)


def _plain(value: object) -> object:
    """A bound as written: 0 rather than pydantic's 0.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _either(choices: Iterable[str], comma: str, last: str) -> str:
    items = list(choices)
    return items[0] if len(items) == 1 else comma.join(items[:-1]) + last + items[-1]


def _shown(error: Any) -> str | int | float | None:
    """The value written, when it is one value (not a whole mapping or list); long text cut."""
    value = error.get("input")
    if error["type"] == "union_tag_invalid":
        value = error.get("ctx", {}).get("tag")
    if isinstance(value, str) and len(value) > SHOWN_CHARACTERS:
        return value[:SHOWN_CHARACTERS] + "…"
    return value if isinstance(value, str | int | float) else None
