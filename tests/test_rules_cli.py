"""exitcheck rules list / explain / check, and rule-set errors with positions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from builders import base_county
from exitcheck.rules.model import default_rules_path


def test_rules_list_and_explain(run_cli):
    listed = run_cli("rules", "list")
    assert listed.returncode == 0
    assert "risk_wrong_exit" in listed.stdout and "收入达标" in listed.stdout
    explained = run_cli("rules", "explain", "income")
    assert explained.returncode == 0
    assert "income_per_capita >= income_line" in explained.stdout and "退出实施方案" in explained.stdout
    english = run_cli("rules", "explain", "income", "--lang", "en")
    assert "Income above the line" in english.stdout
    unknown = run_cli("rules", "explain", "incom")
    assert unknown.returncode == 2 and "income" in unknown.stderr
    # nothing close: where to find them all, rather than nothing
    far = run_cli("rules", "explain", "foo")
    assert far.returncode == 2 and "exitcheck rules list" in far.stderr, far.stderr
    code = run_cli("explain", "nope", "--lang", "en")
    assert code.returncode == 2 and "the codes are: " in code.stderr and "id_checksum" in code.stderr, code.stderr


def _row(listing: str, rule_id: str) -> list[str]:
    line = next(line for line in listing.splitlines() if line.startswith(rule_id + " "))
    return [cell.strip() for cell in line.split("│")]


def test_rules_list_and_explain_name_level_kind_and_department_in_the_users_words(run_cli):
    """The words of the gap workbook (户, 风险, 民政局), not the codes of the rule file; the id
    stays, since it is what a user types."""
    listed = run_cli("rules", "list")
    assert listed.returncode == 0, listed.stderr
    assert _row(listed.stdout, "risk_missed") == ["risk_missed", "户", "漏评风险", "风险", "民政局"]
    assert _row(listed.stdout, "education") == ["education", "成员", "教育保障", "指标", "教育局"]
    assert _row(listed.stdout, "village_collective_income")[1::2] == ["村", "指标"]
    for code in ("household", "indicator", "civil-affairs", "agriculture-rural"):
        assert code not in listed.stdout
    english = run_cli("rules", "list", "--lang", "en", env={"COLUMNS": "300"})
    assert _row(english.stdout, "risk_missed") == ["risk_missed", "household", "Missed-assessment risk", "risk", "Civil affairs"]
    explained = run_cli("rules", "explain", "risk_missed")
    assert "层级: 户   类别: 风险   责任部门: 民政局" in explained.stdout, explained.stdout
    explained_en = run_cli("rules", "explain", "village_collective_income", "--lang", "en")
    assert "level: village   kind: indicator   department: Agriculture and rural affairs" in explained_en.stdout, explained_en.stdout


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = default_rules_path().read_text(encoding="utf-8").replace(old, new, 1)
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rules_check_misspelt_field_did_you_mean(tmp_path, run_cli):
    path = _broken(tmp_path, "check: income_per_capita >= income_line", "check: income_per_capta >= income_line")
    result = run_cli("rules", "check", str(path))
    assert result.returncode == 4
    assert "income_per_capita" in result.stderr and "Traceback" not in result.stderr


def test_rules_check_reports_the_line_of_a_schema_error(tmp_path, run_cli):
    path = _broken(tmp_path, "level: household", "level: hamlet")
    result = run_cli("rules", "check", str(path))
    assert result.returncode == 4
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "hamlet" in text)
    assert f"rules.yaml:{line}" in result.stderr


def test_rules_check_refuses_an_escape_attempt(tmp_path, run_cli):
    path = _broken(tmp_path, "check: safe_water", "check: __import__('os').system('touch pwned')")
    result = run_cli("rules", "check", str(path))
    assert result.returncode == 4
    assert not (tmp_path / "pwned").exists()


def test_message_templates_allow_plain_names_only(tmp_path, run_cli):
    path = _broken(tmp_path, "message: 未解决安全饮水", "message: '{safe_water.__class__}'")
    result = run_cli("rules", "check", str(path))
    assert result.returncode == 4


def test_audit_with_invalid_rules_exits_4(tmp_path, run_cli):
    from builders import base_county

    registers = base_county().write(tmp_path / "c.xlsx")
    path = _broken(tmp_path, "check: safe_water", "check: safe_watr")
    result = run_cli("audit", str(registers), "--rules", str(path), "--out", str(tmp_path / "o"))
    assert result.returncode == 4 and "safe_water" in result.stderr


def test_bad_option_values_are_usage_errors(tmp_path, run_cli):
    from builders import base_county

    path = base_county().write(tmp_path / "c.xlsx")
    assert run_cli("audit", str(path), "--split-by", "village").returncode == 2
    assert run_cli("audit", str(path), "--as-of", "2020-13-45").returncode == 2
    assert run_cli("audit", str(path), "--format", "pdf").returncode == 2


SPY_ON_READING = """
import sys
from exitcheck.registers import ahead
started = ahead.ReadAhead.__init__
def spy(self, *args, **kwargs):
    print("reading started", flush=True)
    started(self, *args, **kwargs)
ahead.ReadAhead.__init__ = spy
from exitcheck.cli import main
sys.argv = ["exitcheck", *sys.argv[1:]]
main()
"""


def _line_holding(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


@pytest.mark.parametrize(("old", "new", "words"), [
    ("check: income_per_capita >= income_line", "check: income_per_capita >=>= income_line", "syntax error"),
    ("check: safe_water", "check: safe_watr", "unknown name 'safe_watr'"),
])
def test_an_expression_error_names_its_line_rule_and_part(tmp_path, run_cli, old, new, words):
    path = _broken(tmp_path, old, new)
    line = _line_holding(path, new)
    rule = "income" if "income" in old else "water"
    for command in (("rules", "check", str(path)), ("audit", str(base_county().write(tmp_path / "c.xlsx")), "--rules", str(path))):
        result = run_cli(*command, "--lang", "en")
        assert result.returncode == 4, result.stderr
        assert f"rules.yaml:{line}: rule {rule}, check: {words}" in result.stderr, result.stderr


@pytest.mark.parametrize(("old", "new"), [("level: household", "level: hamlet"),
                                          ("check: income_per_capita >= income_line", "check: income_per_capita >=>= income_line")])
@pytest.mark.parametrize("command", ["audit", "bands"])
def test_a_broken_rule_set_is_refused_before_the_registers_are_read(tmp_path, command, old, new):
    rules = _broken(tmp_path, old, new)
    county = base_county().write(tmp_path / "county.xlsx")
    result = subprocess.run([sys.executable, "-c", SPY_ON_READING, command, str(county), "--rules", str(rules), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert result.returncode == 4 and "rules.yaml" in result.stderr
    assert "reading started" not in result.stdout


def test_a_param_written_as_text_is_reported_at_its_own_line(tmp_path, run_cli):
    """It was reported at line 32, where the income rule uses it, in English only."""
    path = _broken(tmp_path, "  income_line: 4200", '  income_line: "四千二"')
    param, used = _line_holding(path, "四千二"), _line_holding(path, "check: income_per_capita >= income_line")
    for lang, words in (("zh", f"params.income_line: 应为数字, 现为「四千二」: 规则 income 的 check(第 {used} 行)把它当数字用"),
                        ("en", f"params.income_line: expected a number, found '四千二': rule income, check (line {used}) uses it as one")):
        result = run_cli("rules", "check", str(path), "--lang", lang)
        assert result.returncode == 4, result.stderr
        assert f"rules.yaml:{param}: {words}" in result.stderr, result.stderr


@pytest.mark.parametrize(("old", "new", "zh", "en"), [
    ("    check: income_per_capita >= income_line", "    chek: income_per_capita >= income_line",
     "rules.0.chek(规则 income): 未知的设置项; 是否指 check?", "rules.0.chek (rule income): unknown setting; did you mean 'check'?"),
    ("level: household", "level: househld",
     "rules.0.level(规则 income): 应为 member、household、village、township、county 之一, 现为「househld」",
     "rules.0.level (rule income): expected 'member', 'household', 'village', 'township' or 'county', found 'househld'"),
    ("check: safe_water", "check: safe_watr",
     "规则 water 的 check: 未知的名称 safe_watr(既不是字段也不是参数)(第 1 个字符处); 是否指 safe_water?",
     "rule water, check: unknown name 'safe_watr' at column 1; did you mean 'safe_water'?"),
    ("check: income_per_capita >= income_line", "check: income_per_capita >=>= income_line",
     "规则 income 的 check: 语法错误", "rule income, check: syntax error"),
    ("check: safe_water", "check: safe_water > 1",
     "规则 water 的 check: 不能用 > 比较是/否和数字(第 1 个字符处)",
     "rule water, check: cannot compare a true/false value with a number ('>') at column 1"),
    ("check: electricity", "check: electricity | broadcast_tv",
     "规则 electricity 的 check: 不能使用运算符 |(请改用 or)(第 1 个字符处)",
     "rule electricity, check: the operator '|' (use 'or') is not allowed at column 1"),
], ids=["unknown-key", "bad-choice", "unknown-name", "syntax", "kind-mismatch", "not-allowed"])
def test_rules_check_speaks_the_clerks_language(tmp_path, run_cli, old, new, zh, en):
    """Its errors were pydantic's or the expression compiler's English, also in Chinese mode."""
    path = _broken(tmp_path, old, new)
    line = _line_holding(path, new.strip())
    for lang, words in (("zh", zh), ("en", en)):
        result = run_cli("rules", "check", str(path), "--lang", lang)
        assert result.returncode == 4, result.stderr
        assert f"rules.yaml:{line}: {words}" in result.stderr, result.stderr


def test_explain_takes_the_names_a_clerk_sees(run_cli):
    """A clerk's test: `explain 必填项为空` (the 问题 column of issues.xlsx), `explain MISSING_VALUE`
    and `explain risk_wrong_exit` (a rule id from the audit's table) all said only that there
    is no such code. The title and any letter case are taken; a rule id points to rules explain."""
    for asked in ("必填项为空", "MISSING_VALUE", "required value blank", " missing_value "):
        done = run_cli("explain", asked)
        assert done.returncode == 0 and done.stdout.startswith("missing_value — 必填项为空"), (asked, done.stderr)
    rule = run_cli("explain", "risk_wrong_exit")
    assert rule.returncode == 2
    assert "「risk_wrong_exit」是规则代码, 请用 exitcheck rules explain risk_wrong_exit" in "".join(rule.stderr.splitlines())
    english = run_cli("explain", "RISK_WRONG_EXIT", "--lang", "en")
    assert "is a rule id: use exitcheck rules explain risk_wrong_exit" in " ".join(english.stderr.split())
