"""The command line's own words follow the language: --help and typer's usage errors are Chinese
by default (a clerk meets them first) and English with --lang en."""

from __future__ import annotations

import re

import pytest

#: Each command, with a phrase of its Chinese help and one of its English help.
COMMANDS = [
    ((), "按退出标准核查本县的登记表", "register audit. Check county registers"),
    (("validate",), "列出每一个数据问题", "list every data issue"),
    (("explain",), "它的含义和改法", "what it means and how to fix it"),
    (("columns",), "被读成哪个字段", "how each header of each sheet was understood"),
    (("sample",), "虚构的样例县登记表", "Write a realistic sample county register"),
    (("audit",), "写出问题清单", "write the gap lists"),
    (("bands",), "按收入分档列出低收入户", "List low-income households by income band"),
    (("deliveries",), "列出投递记录", "List the delivery ledger"),
    (("init",), "建一个可直接使用的工作区", "Create a ready workspace"),
    (("run",), "每晚的任务", "The nightly job"),
    (("history",), "历次运行", "The runs so far"),
    (("diff",), "两次运行之间新增", "Findings new, resolved, still open"),
    (("rules",), "列出、解释和检查规则集", "List, explain and check rule sets"),
    (("rules", "list"), "列出规则集中的规则", "List the rules of a rule set"),
    (("rules", "explain"), "解释一条规则", "Explain a rule"),
    (("rules", "check"), "检查规则集文件", "Check a rule-set file"),
]
NAMES = [" ".join(command) or "exitcheck" for command, _, _ in COMMANDS]


@pytest.mark.parametrize(("command", "zh", "en"), COMMANDS, ids=NAMES)
def test_help_is_chinese_by_default_and_english_with_lang_en(run_cli, command, zh, en):
    chinese = run_cli(*command, "--help")
    assert chinese.returncode == 0, chinese.stderr
    assert zh in chinese.stdout and en not in chinese.stdout, chinese.stdout
    assert "用法: " in chinese.stdout and "选项:" in chinese.stdout and "显示本帮助并退出" in chinese.stdout, chinese.stdout
    assert "Usage:" not in chinese.stdout and "Show this message and exit." not in chinese.stdout, chinese.stdout
    assert "提示信息、表头和工作簿的语言" in chinese.stdout and "Print nothing but errors" not in chinese.stdout, chinese.stdout
    english = run_cli(*command, "--help", "--lang", "en")
    assert english.returncode == 0, english.stderr
    assert en in english.stdout and zh not in english.stdout, english.stdout
    assert "Usage: " in english.stdout and "Options:" in english.stdout and "Show this message and exit." in english.stdout, english.stdout
    assert_marks_in_the_language(chinese.stdout, english.stdout)


#: What click and typer write in help besides the commands' own texts, with Chinese nowhere in it.
ENGLISH_MARKS = re.compile(r"\[default: |\[required\]|\[OPTIONS\]|COMMAND \[ARGS\]|<(?:str|path|int|int range|list\[\w+\])>"
                           r"|--[\w-]+ (?:TEXT|PATH|INTEGER|FLOAT)\b")


def assert_marks_in_the_language(chinese: str, english: str) -> None:
    """Defaults, required arguments, the kinds of value and the usage line's words follow the
    language; typer's escaped brackets (\\[required] on typer 0.15) never show."""
    assert not ENGLISH_MARKS.findall(chinese), ENGLISH_MARKS.findall(chinese)
    assert "\\[" not in chinese and "\\[" not in english and "<list[" not in english, english


def test_defaults_and_required_marks_are_chinese(run_cli):
    chinese = run_cli("audit", "--help").stdout
    assert "[默认: out]" in chinese and "[必填]" in chinese and "--rules <路径>" in chinese or "--rules 路径" in chinese, chinese
    english = run_cli("audit", "--help", "--lang", "en").stdout
    assert "[default: out]" in english and "[required]" in english, english


def test_lang_equals_en_and_lang_before_the_command(run_cli):
    assert "write the gap lists" in run_cli("audit", "--lang=en", "--help").stdout
    # --lang before the command is the command's language too
    said = run_cli("--lang", "en", "explain", "no_such_code")
    assert said.returncode == 2 and "no such issue code" in said.stderr, said.stderr


#: A mistyped command line, what the clerk is told in Chinese, the same line asking for English,
#: and what that is told.
USAGE_ERRORS = [
    (("audit", "--outt", "x.xlsx"), ["没有这个选项: --outt", "是否指 --out?", "用 exitcheck audit --help 查看用法"],
     ("audit", "--outt", "x.xlsx", "--lang", "en"), ["no such option: --outt", "did you mean '--out'?", "see exitcheck audit --help"]),
    (("audit",), ["缺少参数 PATHS", "exitcheck audit --help"],
     ("audit", "--lang", "en"), ["missing argument PATHS", "see exitcheck audit --help"]),
    (("explain", "id_checksum", "b"), ["多余的参数: b", "exitcheck explain --help"],
     ("explain", "id_checksum", "b", "--lang=en"), ["unexpected extra argument(s): b", "see exitcheck explain --help"]),
    (("audti", "x.xlsx"), ["没有这个命令: audti", "是否指 audit?", "用 exitcheck --help 查看用法"],
     ("--lang", "en", "audti", "x.xlsx"), ["no such command: audti", "did you mean 'audit'?", "see exitcheck --help"]),
    (("rules", "lst"), ["没有这个命令: lst", "是否指 list?", "exitcheck rules --help"],
     ("rules", "lst", "--lang", "en"), ["no such command: lst", "see exitcheck rules --help"]),
    (("sample", "s.xlsx", "--households", "many"), ["--households 的值不对: 须为不小于 1 的整数", "exitcheck sample --help"],
     ("sample", "s.xlsx", "--households", "many", "--lang", "en"), ["invalid value for --households: must be a whole number, at least 1"]),
    (("audit", "x.xlsx", "--lang", "cn"), ["--lang 的值不对: 只能是 zh 或 en", "exitcheck audit --help"],
     ("audit", "x.xlsx", "--format", "pdf", "--lang", "en"), ["--format: unknown pdf (xlsx, json, csv)"]),
    (("audit", "x.xlsx", "--out"), ["选项 --out 后面须写一个值", "exitcheck audit --help"],
     ("audit", "--lang", "en", "x.xlsx", "--out"), ["option --out needs a value", "see exitcheck audit --help"]),
    (("audit", "x.xlsx", "--quiet=yes"), ["选项 --quiet 是开关, 不带值"],
     ("audit", "x.xlsx", "--quiet=yes", "--lang", "en"), ["option --quiet is a switch and takes no value"]),
    (("audit", "x.xlsx", "--format", "pdf"), ["--format: 没有这种格式: pdf"],
     ("audit", "x.xlsx", "--split-by", "village", "--lang", "en"), ["--split-by takes only 'township'"]),
]


@pytest.mark.parametrize(("zh_args", "zh_words", "en_args", "en_words"), USAGE_ERRORS,
                         ids=[" ".join(case[0]) for case in USAGE_ERRORS])
def test_usage_errors_follow_the_language_and_exit_2(tmp_path, run_cli, zh_args, zh_words, en_args, en_words):
    for args, words, foreign in ((zh_args, zh_words, "Error:"), (en_args, en_words, "错")):
        result = run_cli(*args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("exitcheck: ") and foreign not in result.stderr, result.stderr
        assert "Usage:" not in result.stderr and "Try '" not in result.stderr, result.stderr
        for word in words:
            assert word in result.stderr, result.stderr
