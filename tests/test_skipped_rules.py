"""Rules not evaluated: an optional register absent altogether (村表, 乡镇表) is named as such,
never its columns one by one, nor a computed figure (贫困发生率) as if it were a missing column."""

from __future__ import annotations

import json

import exitcheck
from builders import AS_OF, base_county


def _audit(tmp_path, run_cli, county, *extra: str):
    path = county.write(tmp_path / "registers.xlsx")
    out = tmp_path / f"out{len(extra)}"
    done = run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat(), *extra)
    assert done.returncode in (0, 1), done.stderr
    reasons = {item["rule"]: item["reason"] for item in json.loads((out / "gaps.json").read_text(encoding="utf-8"))["summary"]["skipped_rules"]}
    return done, reasons


def test_no_village_register_says_the_village_register_is_absent(tmp_path, run_cli):
    county = base_county()
    county.villages = []
    done, reasons = _audit(tmp_path, run_cli, county)
    assert reasons["village_incidence"] == "没有村表, 村级规则 village_incidence(贫困发生率)未评估"
    assert reasons["village_collective_income"].startswith("没有村表, 村级规则 village_collective_income")
    assert reasons["county_incidence"].startswith("没有村表, 无法计算贫困发生率(要用各村的户籍人口), 规则 county_incidence")
    assert all(rule.startswith("village_") or rule == "county_incidence" for rule in reasons)
    assert "登记表中没有" not in done.stderr and "是否贫困村" not in done.stderr and "人均集体经济收入" not in done.stderr
    assert "没有村表, 10 条规则未评估: 贫困发生率、村集体经济、通硬化路、" in done.stderr  # the console says it too, once
    english, reasons_en = _audit(tmp_path, run_cli, county, "--lang", "en")
    assert reasons_en["village_incidence"].startswith("there is no village register (村表), so the village rule village_incidence")
    assert reasons_en["county_incidence"].startswith("there is no village register (村表) to compute the poverty incidence from")
    assert "the registers have no" not in english.stderr


def test_without_a_village_register_the_county_counts_the_villages_its_households_name(tmp_path, run_cli):
    """The summary said 0 villages while each township's book counted the villages its
    households name (as the townships are counted without a 乡镇表)."""
    county = base_county()
    county.villages = []
    path = county.write(tmp_path / "registers.xlsx")
    done = run_cli("audit", str(path), "--out", str(tmp_path / "out"), "--as-of", AS_OF.isoformat(), "--split-by", "township")
    assert done.returncode in (0, 1), done.stderr
    summary = json.loads((tmp_path / "out" / "gaps.json").read_text(encoding="utf-8"))["summary"]
    named = {(row["乡镇"], row["行政村"]) for row in county.households}
    assert summary["villages"] == len(named) > 0


def test_no_township_register_says_so_for_the_township_rules(tmp_path, run_cli):
    county = base_county()
    county.townships = []
    _done, reasons = _audit(tmp_path, run_cli, county)
    township_rules = [rule for rule in reasons if rule.startswith("township_")]
    assert township_rules and all(reasons[rule].startswith(f"没有乡镇表, 乡镇级规则 {rule}") for rule in township_rules)
    assert not any(rule.startswith("village_") for rule in reasons)


def test_a_column_absent_from_a_register_that_is_there_is_still_named(tmp_path, run_cli):
    county = base_county()
    for row in county.villages:
        del row["通硬化路"]
    _done, reasons = _audit(tmp_path, run_cli, county)
    assert reasons == {"village_paved_road": "登记表中没有「通硬化路」, 规则 village_paved_road(通硬化路)未评估"}


def test_a_figure_whose_column_is_absent_is_skipped_naming_the_column(tmp_path, run_cli):
    """村集体经济收入 absent from the 村表: the collective income per person is not blank for every
    village (待核实 "为空" three times), the rule is skipped naming the column; a national
    export without 认可度 skips the county satisfaction as it does the household one."""
    county = base_county()
    for row in county.villages:
        del row["村集体经济收入"]
    for row in county.households:
        del row["认可度"]
    path = county.write(tmp_path / "registers.xlsx")
    out = tmp_path / "out"
    done = run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat())
    assert done.returncode in (0, 1), done.stderr
    gaps = json.loads((out / "gaps.json").read_text(encoding="utf-8"))
    reasons = {item["rule"]: item["reason"] for item in gaps["summary"]["skipped_rules"]}
    assert reasons["village_collective_income"] == (
        "登记表中没有「村集体经济收入」, 无法计算人均集体经济收入, 规则 village_collective_income(村集体经济)未评估")
    assert reasons["county_satisfaction"] == "登记表中没有「认可度」, 规则 county_satisfaction(综合认可度)未评估"
    assert not [gap for gap in gaps["gaps"] if gap["rule"] in ("village_collective_income", "county_satisfaction")]
    _english, reasons_en = _audit(tmp_path, run_cli, county, "--lang", "en")
    assert reasons_en["village_collective_income"].startswith(
        "the registers have no Collective income to compute the collective income per person from; rule")


def _skipped_notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "未评估" in line or "not evaluated" in line]


def test_the_terminal_says_once_per_absent_register_which_rules_it_skipped(tmp_path, run_cli):
    """Without 村表 and 乡镇表: a line for each, naming its rules, not a line per rule; gaps.json
    keeps a reason per rule. A rule skipped for a column of its own keeps its own line."""
    county = base_county()
    county.villages, county.townships = [], []
    for row in county.households:
        del row["感恩袋"]
    done, reasons = _audit(tmp_path, run_cli, county)
    assert _skipped_notes(done.stderr) == [
        "登记表中没有「感恩袋」, 规则 gratitude_bag(感恩袋)未评估",
        "没有村表, 10 条规则未评估: 贫困发生率、村集体经济、通硬化路、卫生室、文化室、通信网络、村安全饮水、村通电、村广播电视、县贫困发生率",
        "没有乡镇表, 3 条规则未评估: 标准中心校、达标卫生院、便民服务中心",
    ], done.stderr
    assert len(reasons) == 14 and reasons["village_clinic"] == "没有村表, 村级规则 village_clinic(卫生室)未评估"
    english, _ = _audit(tmp_path, run_cli, county, "--lang", "en")
    assert _skipped_notes(english.stderr)[2] == (
        "there is no township register (乡镇表), so 3 rules were not evaluated: "
        "Standard central school, Qualified health centre, Service centre"), english.stderr


def test_a_rule_that_needs_a_skipped_rule_names_that_rule_not_its_ok_column(tmp_path, run_cli):
    """Without 在校生状况, education is skipped, and so is risk_wrong_exit, whose check reads
    ok_education: the reason named "ok_education" as a column the registers lack, which no
    clerk can find or add."""
    county = base_county()
    for row in county.members:
        del row["在校生状况"]
    done, reasons = _audit(tmp_path, run_cli, county)
    assert reasons["education"] == "登记表中没有「在校生状况」, 规则 education(教育保障)未评估"
    # risk_wrong_exit is evaluated on its other indicators (the test below), and says so by name
    assert "risk_wrong_exit" not in reasons
    assert "它依据的education(教育保障)未评估" in "".join(done.stderr.split())
    assert "ok_education" not in done.stderr
    english, _reasons_en = _audit(tmp_path, run_cli, county, "--lang", "en")
    assert "without education (Education assured)" in " ".join(english.stderr.split())
    assert "ok_education" not in english.stderr and "school_status" not in english.stderr


def test_a_risk_rule_with_an_indicator_skipped_is_evaluated_on_the_others(tmp_path, run_cli):
    """No 安全饮水 column in the 户表: the water indicator is skipped, and 错退风险 (income and
    education and medical and housing and water) was skipped with it, so the poverty office got
    no wrong-exit list even for an exited household far below the income line. It is now
    evaluated on the indicators that were told: a household failing one is listed; one failing
    none is not listed (whether its water is safe is not known); one whose income is blank stays
    待核实; the summary says what was left out."""
    import openpyxl

    county = base_county()
    for row in county.households:
        del row["安全饮水"]
    county.households[0]["人均纯收入"] = 3000  # exited, below 4,200
    county.households[1]["人均纯收入"] = None  # exited, income not known
    path = county.write(tmp_path / "registers.xlsx")
    out = tmp_path / "out"
    done = run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat())
    assert done.returncode == 1, done.stderr
    document = json.loads((out / "gaps.json").read_text(encoding="utf-8"))
    risks = {(g["household_id"], g["status"]) for g in document["gaps"] if g["rule"] == "risk_wrong_exit"}
    first, second = county.households[0]["户编号"], county.households[1]["户编号"]
    assert risks == {(first, "fail"), (second, "unknown")}
    summary = document["summary"]
    assert [item["rule"] for item in summary["skipped_rules"]] == ["water"]
    reason = ("规则 risk_wrong_exit(错退风险)只按其余指标评估: 它依据的 water(安全饮水) 未评估; 列出的是其余指标不达标或待核实的户, "
              "其余指标都达标的户未列出(缺的那项是否达标不知道)")
    assert summary["partly_evaluated_rules"] == [{"rule": "risk_wrong_exit", "reason": reason}]
    assert "".join(reason.split()) in "".join(done.stderr.split())  # on the terminal too (it wraps long lines)
    book = openpyxl.load_workbook(out / "gaps.xlsx", read_only=True)
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for cell in row if cell]
    assert "部分评估的规则" in cells and reason in cells
    # and on the risk list itself, which is printed and handed out without the summary
    assert next(book["风险清单"].iter_rows(values_only=True))[0] == f"注: {reason}"
    english = run_cli("audit", str(path), "--out", str(tmp_path / "en"), "--as-of", AS_OF.isoformat(), "--lang", "en")
    partly = json.loads((tmp_path / "en" / "gaps.json").read_text(encoding="utf-8"))["summary"]["partly_evaluated_rules"]
    assert partly[0]["reason"] == ("rule risk_wrong_exit (Wrong-exit risk) was evaluated without water (Safe drinking water), "
                                   "which was not evaluated: the households listed fail or are unknown on its other indicators; "
                                   "those meeting all of them are not listed (whether they meet the one left out is not known)"), partly
    assert english.returncode == 1


def test_a_risk_rule_whose_condition_needs_a_skipped_indicator_is_still_skipped(tmp_path):
    """Only the check may do without a skipped indicator: a risk rule that applies only where
    that indicator holds cannot say where it applies, and stays skipped."""
    from exitcheck.auditing import audit
    from exitcheck.rules.model import default_rules_path, load_ruleset

    county = base_county()
    for row in county.households:
        del row["安全饮水"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(default_rules_path().read_text(encoding="utf-8") + """
  - id: risk_dry_and_poor
    level: household
    kind: risk
    name: 缺水且低收入
    applies_to: not ok_water
    check: ok_income
    department: poverty-office
    message: 缺水且收入不达标
""", encoding="utf-8")
    result = audit(exitcheck.load([county.write(tmp_path / "c.xlsx")]), load_ruleset(rules), as_of=AS_OF)
    summary = result.summary()
    assert "risk_dry_and_poor" in [item["rule"] for item in summary["skipped_rules"]]
    assert [item["rule"] for item in summary["partly_evaluated_rules"]] == ["risk_wrong_exit"]
    assert "risk_dry_and_poor" not in result.evaluation.outcomes


def test_a_sheet_without_a_column_other_sheets_have_makes_its_rows_unknown_not_blank(tmp_path, run_cli):
    """A 户表 kept a sheet a township, one of them without 安全饮水: its households' cells were
    taken for blank, so each was a missing_value error and failed 信息精准 (22 households more
    failing in a clerk's test), and the reason sent the clerk looking for empty cells. The
    water indicator is now unknown for them, saying the sheet has no such column, with one
    note; no missing_value, no 信息精准 failure."""
    import xlsxwriter

    from builders import write_sheet

    county = base_county()
    path = tmp_path / "c.xlsx"
    book = xlsxwriter.Workbook(str(path))
    first, second = county.households[:3], [dict(row) for row in county.households[3:]]
    for row in second:
        del row["安全饮水"]
    write_sheet(book, "户表-越城镇", first)
    write_sheet(book, "户表-中所镇", second)
    for name, rows in county.sheets().items():
        if name != "户表":
            write_sheet(book, name, rows)
    book.close()
    registers = exitcheck.load([path])
    assert any("工作表「户表-中所镇」没有「安全饮水」列(同一户表的其他工作表有)" in zh for zh, _ in registers.notes), registers.notes
    assert [i for i in exitcheck.validate(registers, AS_OF) if i.field == "safe_water"] == []
    from exitcheck.auditing import audit

    result = audit(registers, as_of=AS_OF)
    water = {(g.household_id, g.status, g.message) for g in result.gaps if g.rule == "water"}
    assert water == {(row["户编号"], "unknown", "待核实: 工作表「户表-中所镇」没有「安全饮水」列") for row in second}
    assert not [g for g in result.gaps if g.rule == "info_accuracy"]
    done = run_cli("audit", str(path), "--out", str(tmp_path / "out"), "--as-of", AS_OF.isoformat(), "--lang", "en")
    assert "sheet '户表-中所镇' has no column for Safe water" in " ".join(done.stderr.split()), done.stderr
