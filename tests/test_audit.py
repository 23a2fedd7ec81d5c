"""exitcheck audit: the gaps agree exactly with the default rule set's meaning."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date

import pytest

import exitcheck
from builders import AS_OF, base_county, excel_row, make_id, member
from exitcheck.auditing import audit
from exitcheck.rules.model import load_ruleset

H = [f"51343400{n:04d}" for n in range(1, 7)]


def planted_gaps():
    county = base_county()
    hh, m = county.households, county.members
    hh[0]["人均纯收入"] = 4199.99  # income fail -> wrong-exit risk
    m.append(member(H[0], "故人", make_id(date(1940, 1, 1), 90, True), "之父", "男", "1940-01-01",
                    人员状态="死亡", 城乡居民基本医疗保险="否"))  # dead: ignored by every indicator
    m.append(member(H[1], "辍学儿", make_id(date(2010, 7, 1), 91, True), "之子", "男", "2010-07-01",
                    在校生状况="失学辍学"))  # aged 9 on the reference date: education fail
    hh[1]["家庭人口数"] = 4
    m[6]["城乡居民基本医疗保险"] = "否"  # hh3 head: medical fail
    m[7]["城乡居民基本医疗保险"] = ""  # hh3 spouse blank: unknown, but the fail wins
    hh[3]["住房安全等级"] = "C"  # housing fail
    hh[3]["安全饮水"] = ""  # water unknown, and a missing_value -> info_accuracy fail
    hh[4]["认可度"] = "不满意"
    hh[4]["脱贫状态"] = "未脱贫"  # 3 poor people in 新民村
    hh[5].update({"农户类别": "边缘易致贫户", "贫困户属性": "", "脱贫状态": "", "人均纯收入": 3000, "住房安全等级": "D"})
    county.villages[2].update({"户籍人口": 100, "村集体经济收入": 250})  # incidence 3% and 2.5 yuan per person
    county.villages[0]["卫生室"] = ""  # poor village: clinic unknown
    county.villages[1].update({"通硬化路": "否", "卫生室": "否"})  # not a poor village: no finding
    county.townships[1]["达标卫生院"] = "否"
    return county


@pytest.fixture
def result(tmp_path):
    return audit(exitcheck.load([planted_gaps().write(tmp_path / "g.xlsx")]), as_of=AS_OF)


def _gaps(result):
    return {(g.rule, g.status, g.household_id or g.village or g.township or "county") for g in result.gaps}


def test_gaps_match_the_meaning_of_every_rule(result):
    assert _gaps(result) == {
        ("income", "fail", H[0]),
        ("education", "fail", H[1]),
        ("medical", "fail", H[2]),
        ("housing", "fail", H[3]),
        ("water", "unknown", H[3]),
        ("info_accuracy", "fail", H[2]),  # the blank medical insurance is a missing_value
        ("info_accuracy", "fail", H[3]),
        ("satisfaction", "fail", H[4]),
        ("risk_wrong_exit", "fail", H[0]),
        ("risk_wrong_exit", "fail", H[1]),
        ("risk_wrong_exit", "fail", H[2]),
        ("risk_wrong_exit", "fail", H[3]),
        ("risk_missed", "fail", H[5]),
        ("village_incidence", "fail", "新民村"),
        ("village_collective_income", "fail", "新民村"),
        ("village_clinic", "unknown", "瓦曲村"),
        ("township_health_center", "fail", "中所镇"),
        ("county_satisfaction", "fail", "county"),
    }


def test_summary_figures(result):
    summary = result.summary()
    assert summary["households"] == 6
    assert summary["registered_households"] == 5
    assert summary["households_with_gaps"] == 5  # hh1..hh5 each fail one of the 12 indicators
    assert summary["by_rule"]["water"] == {"fail": 0, "unknown": 1}
    assert summary["incidence"]["villages"]["中所镇/新民村"] == pytest.approx(0.03)
    assert summary["incidence"]["county"] == pytest.approx(3 / 800)
    assert summary["satisfaction_rate"] == pytest.approx(0.8)
    assert summary["skipped_rules"] == []


def test_risk_missed_is_high_for_a_grade_d_house(result):
    gap = next(g for g in result.gaps if g.rule == "risk_missed")
    assert gap.priority == "high"
    assert gap.department == "civil-affairs"


def test_member_gap_values_name_the_members_with_ids_masked(result):
    gap = next(g for g in result.gaps if g.rule == "education")
    (child,) = gap.values["members"]
    assert child["name"] == "辍学儿" and child["age"] == 9
    assert child["id_number"].count("*") == 8


def test_messages_say_why(result):
    income = next(g for g in result.gaps if g.rule == "income")
    assert "4199.99" in income.message and "4200" in income.message
    water = next(g for g in result.gaps if g.rule == "water")
    assert "安全饮水" in water.message and "待核实" in water.message


def test_village_rules_skipped_without_village_sheet(tmp_path):
    county = planted_gaps()
    county.villages = []
    res = audit(exitcheck.load([county.write(tmp_path / "nv.xlsx")]), as_of=AS_OF)
    skipped = {s.rule for s in res.skipped}
    assert {"village_incidence", "village_clinic", "county_incidence"} <= skipped
    assert not [g for g in res.gaps if g.level == "village" or g.rule == "county_incidence"]


def test_household_without_living_member_is_unknown_for_member_rules(tmp_path):
    county = base_county()
    for row in county.members[:3]:
        row["人员状态"] = "迁出"
    res = audit(exitcheck.load([county.write(tmp_path / "e.xlsx")]), as_of=AS_OF)
    statuses = {(g.rule, g.status) for g in res.gaps if g.household_id == H[0]}
    assert ("education", "unknown") in statuses and ("medical", "unknown") in statuses


def test_age_boundaries_6_and_15_inclusive(tmp_path):
    county = base_county()
    # turns 6 on the reference date; turns 16 on the reference date (so no longer 6-15)
    county.members.append(member(H[0], "六岁", make_id(date(2014, 6, 30), 92, True), "之子", "男", "2014-06-30", 在校生状况="失学辍学"))
    county.members.append(member(H[1], "十六", make_id(date(2004, 6, 30), 93, False), "之女", "女", "2004-06-30", 在校生状况="失学辍学"))
    county.households[0]["家庭人口数"] = 4
    county.households[1]["家庭人口数"] = 4
    res = audit(exitcheck.load([county.write(tmp_path / "a.xlsx")]), as_of=AS_OF)
    education = {g.household_id for g in res.gaps if g.rule == "education"}
    assert education == {H[0]}


def test_a_value_just_short_of_a_threshold_is_never_shown_as_the_threshold(tmp_path):
    """5099 yuan over 1700 people is 2.9994 per person: it fails, and the message read "村集体经济
    人均 3.00 元, 不足 3 元"; an income of 4199.9999 read "人均纯收入4200.0元". Shown values are
    cut, not rounded, when rounding would land on a round figure."""
    county = base_county()
    county.villages[2].update({"户籍人口": 1700, "村集体经济收入": 5099})
    county.households[0]["人均纯收入"] = 4199.9999
    result = audit(exitcheck.load([county.write(tmp_path / "r.xlsx")]), as_of=AS_OF)
    messages = {gap.rule: gap.message for gap in result.gaps if gap.status == "fail"}
    assert messages["village_collective_income"] == "村集体经济人均 2.99 元, 不足 3 元"
    assert "4199.99" in messages["income"] and "4200.0" not in messages["income"], messages["income"]
    from exitcheck.rules.model import render_template

    # whole figures shown (".0f") round as Python does; a figure above a round one is shown as it
    assert render_template("{v:.0f} 超过 3", {"v": 3.7}) == "4 超过 3"
    assert render_template("{v:.2f}", {"v": 3.0004}) == "3.00"


def test_cli_audit_writes_json_xlsx_csv(tmp_path, run_cli):
    path = planted_gaps().write(tmp_path / "g.xlsx")
    out = tmp_path / "out"
    run = run_cli("audit", str(path), "--out", str(out), "--format", "xlsx,json,csv", "--as-of", AS_OF.isoformat(), "--split-by", "township")
    assert run.returncode == 1, run.stderr
    document = json.loads((out / "gaps.json").read_text(encoding="utf-8"))
    assert document["schema"] == "exitcheck/gaps@1"
    assert document["as_of"] == "2020-06-30"
    assert document["ruleset"]["name"] == "sichuan-2020" and len(document["ruleset"]["sha256"]) == 64
    assert document["inputs"][0]["path"] == str(path)
    keys = {"level", "rule", "status", "household_id", "township", "village", "message", "department", "values"}
    assert all(keys <= set(gap) for gap in document["gaps"])
    assert document["data_issues"] and document["data_issues"][0]["code"] == "missing_value"
    assert (out / "gaps_households.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert sorted(p.name for p in (out / "townships").iterdir()) == ["中所镇.xlsx", "越城镇.xlsx"]
    for produced in out.rglob("*"):
        if produced.is_file():
            assert produced.stat().st_mode & 0o077 == 0, produced


def test_cli_audit_exit_0_on_a_clean_county(tmp_path, run_cli):
    path = base_county().write(tmp_path / "c.xlsx")
    run = run_cli("audit", str(path), "--out", str(tmp_path / "o"), "--as-of", AS_OF.isoformat())
    assert run.returncode == 0, run.stdout + run.stderr


def test_gap_workbook_sheets_and_print_setup(tmp_path, run_cli):
    import openpyxl

    path = planted_gaps().write(tmp_path / "g.xlsx")
    out = tmp_path / "out"
    run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat())
    book = openpyxl.load_workbook(out / "gaps.xlsx")
    assert book.sheetnames[:6] == ["汇总", "户清单", "村清单", "乡镇清单", "县", "风险清单"]
    households = book["户清单"]
    assert households.freeze_panes == "A2"
    assert households.auto_filter.ref
    assert households.page_setup.orientation == "landscape"
    id_column = [c.value for c in households[1]].index("户编号") + 1
    ids = [households.cell(row=r, column=id_column).value for r in range(2, households.max_row + 1)]
    assert ids == sorted(ids, key=lambda h: (H.index(h) // 3, h)) or set(ids) == set(H[:5])
    assert book["汇总"]._charts, "the summary sheet has a native bar chart"


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_gap_workbook_renders_in_libreoffice(tmp_path, run_cli):
    path = planted_gaps().write(tmp_path / "g.xlsx")
    out = tmp_path / "out"
    run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat())
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(out / "gaps.xlsx")],
                   check=True, capture_output=True, timeout=180, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    pdf = (tmp_path / "gaps.pdf").read_bytes()
    pages = re.findall(rb"/Type\s*/Page[^s]", pdf)
    assert pdf.startswith(b"%PDF") and len(pages) >= 6  # one page at least per sheet


def test_default_ruleset_has_the_issue_rule_ids():
    ids = {rule.id for rule in load_ruleset().rules}
    assert ids == {
        "income", "education", "medical", "housing", "water", "electricity", "broadcast_tv",
        "policy_awareness", "info_accuracy", "living_environment", "gratitude_bag", "satisfaction",
        "village_incidence", "village_collective_income", "village_paved_road", "village_clinic",
        "village_culture_room", "village_telecom", "village_safe_water", "village_electricity",
        "village_broadcast_tv", "township_central_school", "township_health_center",
        "township_service_center", "county_incidence", "county_satisfaction", "risk_wrong_exit", "risk_missed",
    }


def test_english_workbook_and_messages(tmp_path, run_cli):
    import openpyxl

    path = planted_gaps().write(tmp_path / "g.xlsx")
    out = tmp_path / "out"
    run = run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat(), "--lang", "en")
    assert run.returncode == 1
    assert "County poverty incidence" in run.stdout
    book = openpyxl.load_workbook(out / "gaps.xlsx")
    assert book.sheetnames[:6] == ["Summary", "Households", "Villages", "Townships", "County", "Risks"]
    headers = [c.value for c in book["Households"][1]]
    assert headers[:4] == ["Township", "Village", "Group", "Household ID"] and "Income above the line" in headers
    document = json.loads((out / "gaps.json").read_text(encoding="utf-8"))
    income = next(g for g in document["gaps"] if g["rule"] == "income")
    assert income["message"].startswith("per-capita income 4199.99 yuan")


def test_township_books_hold_only_their_township(tmp_path, run_cli):
    import openpyxl

    path = planted_gaps().write(tmp_path / "g.xlsx")
    out = tmp_path / "out"
    run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat(), "--split-by", "township")
    book = openpyxl.load_workbook(out / "townships" / "中所镇.xlsx")
    towns = {row[0].value for row in book["户清单"].iter_rows(min_row=2)}
    assert towns == {"中所镇"}
    issue_households = {row[10].value for row in book["数据问题"].iter_rows(min_row=2)}
    assert issue_households <= {H[3], H[4], H[5], None}



def _summary(book, sheet_name):
    """The 汇总 sheet read back: the facts (label -> value), the rule rows and the township rows."""
    rows = [[cell for cell in row] for row in book[sheet_name].iter_rows(values_only=True)]
    blank = [i for i, row in enumerate(rows) if not any(v is not None for v in row[:7])]
    facts = {row[0]: row[1] for row in rows[2:blank[1]]}
    rule_top = blank[1] + 1
    rule_end = next(i for i in blank if i > rule_top)
    rules = {row[0]: row[3:5] for row in rows[rule_top + 1:rule_end]}
    towns = [row[:7] for row in rows[rule_end + 2:] if row[0] is not None]
    return rows[0][0], facts, rules, towns


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_township_book_summarises_its_own_township(tmp_path, run_cli, lang):
    import openpyxl

    path = planted_gaps().write(tmp_path / "g.xlsx")
    out = tmp_path / "out"
    run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat(), "--split-by", "township", "--lang", lang)
    result = audit(exitcheck.load([path]), as_of=AS_OF)
    en = lang == "en"
    for township in ("中所镇", "越城镇"):
        book = openpyxl.load_workbook(out / "townships" / f"{township}.xlsx")
        title, facts, rules, towns = _summary(book, "Summary" if en else "汇总")
        assert title.startswith(f"{township}: exit indicator audit" if en else f"{township} 脱贫退出核查汇总")
        own = [g for g in result.gaps if g.township == township]
        failing = {g.household_id for g in own if g.kind == "indicator" and g.level in ("household", "member") and g.status == "fail"}
        assert facts["Households" if en else "户数"] == 3  # the county has 6
        assert facts["Households with a failing indicator" if en else "有未达标指标的户"] == len(failing)
        assert ("Townships" if en else "乡镇") not in facts and ("County poverty incidence" if en else "全县贫困发生率") not in facts
        for rule, (fail, unknown) in rules.items():
            assert [fail, unknown] == [sum(g.rule == rule and g.status == s for g in own) for s in ("fail", "unknown")], (township, rule)
        assert "income" in rules and "county_incidence" not in rules  # the county's own rules are not a township's
        assert [row[0] for row in towns] == [township]  # no other township's row, right or wrong
        assert ("County" if en else "县") not in book.sheetnames
    book = openpyxl.load_workbook(out / "townships" / "中所镇.xlsx")
    _, facts, rules, _ = _summary(book, "Summary" if en else "汇总")
    assert rules["income"] == [0, 0]  # the county's one income fail is in 越城镇
    assert facts["Living members" if en else "在世成员"] == 9
    incidence = "Township poverty incidence (its villages' poor people / population)" if en else "乡镇贫困发生率(各村贫困人口之和/户籍人口之和)"
    assert facts[incidence] == pytest.approx(3 / 100)  # 新民村's 3 poor people of 100; the county's is 3 / 800
    assert facts["Satisfaction" if en else "认可度"] == pytest.approx(1 / 2)  # H[4] 不满意; H[5] is not registered
    county = openpyxl.load_workbook(out / "gaps.xlsx")
    _, facts, rules, towns = _summary(county, "Summary" if en else "汇总")
    assert facts["Households" if en else "户数"] == 6 and rules["income"] == [1, 0]
    assert [row[0] for row in towns] == ["中所镇", "越城镇"]



def _issue_rows(sheet):
    return [(row[0], row[3], row[4], row[5]) for row in sheet.iter_rows(min_row=2, values_only=True)]  # code, file, sheet, row


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_data_issue_reaches_a_township_book_or_the_county_sheet_of_issues_of_no_township(tmp_path, run_cli, lang):
    import openpyxl

    county = planted_gaps()
    county.members.append(member("513434009999", "无户者", make_id(date(1980, 1, 1), 95, True), "户主", "男", "1980-01-01"))
    path = county.write(tmp_path / "g.xlsx")
    out = tmp_path / "out"
    run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat(), "--split-by", "township", "--lang", lang)
    en = lang == "en"
    issues_sheet, apart = ("Data issues", "Issues of no township") if en else ("数据问题", "不属任何乡镇的数据问题")
    books = {p.stem: openpyxl.load_workbook(p) for p in (out / "townships").iterdir()}
    delivered = [row for book in books.values() for row in _issue_rows(book[issues_sheet])]
    whole = openpyxl.load_workbook(out / "gaps.xlsx")
    unassigned = _issue_rows(whole[apart])
    assert [row[0] for row in unassigned] == ["orphan_member"]  # its household id names no household, so no township
    assert ("missing_value", str(path), "村表", 4) in _issue_rows(books["越城镇"][issues_sheet])  # 瓦曲村's blank clinic
    assert sorted(delivered + unassigned) == sorted(_issue_rows(whole[issues_sheet]))
    _, facts, _, _ = _summary(whole, "Summary" if en else "汇总")
    label = f"{apart} (see that sheet)" if en else f"{apart}(见同名工作表)"
    assert facts[label] == 1
    assert all(apart not in book.sheetnames for book in books.values())



@pytest.mark.parametrize("lang", ["zh", "en"])
def test_members_whose_household_id_lost_its_zeros_are_on_that_households_township_book(tmp_path, run_cli, lang):
    """The member sheet's 户编号 stored as numbers: 1 for 越城镇's household 000001. The members'
    household_id_zeros_lost issues sat on the county's sheet of issues of no township, while the
    household's no_head and size_mismatch went to 越城镇: they are now beside them, the 户编号
    as typed still their value."""
    import openpyxl

    county = base_county()
    county.households[0]["户编号"] = "000001"
    for row in county.members[:3]:
        row["户编号"] = 1
    path = county.write(tmp_path / "g.xlsx")
    out = tmp_path / "out"
    run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat(), "--split-by", "township", "--lang", lang)
    en = lang == "en"
    issues_sheet, apart = ("Data issues", "Issues of no township") if en else ("数据问题", "不属任何乡镇的数据问题")
    sheet = openpyxl.load_workbook(out / "townships" / "越城镇.xlsx")[issues_sheet]
    columns = [c.value for c in sheet[1]]
    value, household = columns.index("Value" if en else "原值"), columns.index("Household" if en else "户编号")
    rows = [(row[0], row[4], row[5], row[value], row[household]) for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert sorted(rows) == sorted([
        *[("household_id_zeros_lost", "成员表", excel_row("成员表", n), "1", "000001") for n in range(3)],
        ("no_head", "户表", excel_row("户表", 0), "000001", "000001"),
        ("size_mismatch", "户表", excel_row("户表", 0), "3", "000001"),
    ])
    whole = openpyxl.load_workbook(out / "gaps.xlsx")
    assert apart not in whole.sheetnames  # nothing is left of no township
    other = openpyxl.load_workbook(out / "townships" / "中所镇.xlsx")[issues_sheet]
    assert not any(row[0] == "household_id_zeros_lost" for row in other.iter_rows(min_row=2, values_only=True))


def test_an_issues_identity_does_not_move_with_its_rows(tmp_path):
    """DataIssue.identity (what the nightly digest of a township's list hashes) leaves out the
    params that name rows: the rows of a household entered twice, the household row that a
    member's 户编号 matches but for zeros. Moving the rows leaves every identity as it was,
    though the messages change."""
    county = base_county()
    county.households[0]["户编号"] = "000001"
    for row in county.members[:3]:
        row["户编号"] = 1
    county.households.append(dict(county.households[3]))

    def issues(name: str) -> list:
        return audit(exitcheck.load([county.write(tmp_path / name)]), as_of=AS_OF).data_issues

    before = issues("before.xlsx")
    county.households.reverse()
    county.members.reverse()
    after = issues("after.xlsx")
    assert {"duplicate_household", "household_id_zeros_lost"} <= {issue.code for issue in before}
    assert sorted(i.message() for i in before) != sorted(i.message() for i in after)
    assert sorted(map(json.dumps, (i.identity() for i in before))) == sorted(map(json.dumps, (i.identity() for i in after)))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_households_of_a_blank_township_are_counted_in_a_row_of_their_own(tmp_path, run_cli, lang):
    import openpyxl

    from exitcheck.report.gaps_out import township_totals

    county = base_county()
    for index in (1, 4):  # one of each township, both below the income line
        county.households[index]["乡镇"] = ""
        county.households[index]["人均纯收入"] = 3000
    for household in county.households:  # a county gap too (satisfaction), which has no township either
        household["认可度"] = "不满意"
    path = county.write(tmp_path / "g.xlsx")
    out = tmp_path / "out"
    shown = run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat(), "--lang", lang).stdout
    result = audit(exitcheck.load([path]), as_of=AS_OF)
    theirs = [g for g in result.gaps if g.township is None and g.level != "county" and g.kind == "indicator"]
    assert any(g.level == "county" and g.status == "fail" for g in result.gaps)
    en = lang == "en"
    label = "Township blank" if en else "乡镇未填"
    _, _, _, towns = _summary(openpyxl.load_workbook(out / "gaps.xlsx"), "Summary" if en else "汇总")
    blank = [row for row in towns if row[0] == label]
    # households, registered, with gaps, fail (their own: income, info accuracy, satisfaction), unknown
    assert [list(row[1:6]) for row in blank] == [[2, 2, 2, len(theirs), 0]], blank
    assert len(theirs) == 6
    assert re.search(rf"{label}\s*│\s*2\s*│\s*6\s*│", shown), shown  # the console's table, not 0 or the county's too
    assert "<NA>" not in shown
    members = township_totals(result)["members"]
    assert members[members.index.isna()].tolist() == [sum(m["户编号"] in {county.households[i]["户编号"] for i in (1, 4)} for m in county.members)]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_empty_gap_list_says_there_is_none_and_filters_nothing(tmp_path, run_cli, lang):
    import openpyxl

    county = planted_gaps()
    county.households[4]["认可度"] = "满意"  # no county-level gap left: all satisfied, 3 poor people of 800
    path = county.write(tmp_path / "g.xlsx")
    out = tmp_path / "out"
    run_cli("audit", str(path), "--out", str(out), "--as-of", AS_OF.isoformat(), "--lang", lang)
    book = openpyxl.load_workbook(out / "gaps.xlsx")
    county = book["County" if lang == "en" else "县"]
    assert county["A2"].value == ("No county indicator fails or is unknown" if lang == "en" else "没有未达标或待核实的县级指标")
    assert county.max_row == 2 and not county.auto_filter.ref
    villages = book["Villages" if lang == "en" else "村清单"]  # a list with rows keeps its filter, over its rows only
    assert villages.auto_filter.ref == f"A1:{villages.cell(row=1, column=villages.max_column).column_letter}{villages.max_row}"


# Each yes/no indicator: '否' on one unit fails exactly that rule for that unit; '是' passes.
YES_NO_RULES = [
    ("water", "households", 0, "安全饮水", H[0]),
    ("electricity", "households", 1, "生活用电", H[1]),
    ("broadcast_tv", "households", 2, "广播电视", H[2]),
    ("policy_awareness", "households", 3, "政策知晓", H[3]),
    ("living_environment", "households", 4, "人居环境达标", H[4]),
    ("gratitude_bag", "households", 0, "感恩袋", H[0]),
    ("village_paved_road", "villages", 0, "通硬化路", "瓦曲村"),
    ("village_clinic", "villages", 2, "卫生室", "新民村"),
    ("village_culture_room", "villages", 0, "文化室", "瓦曲村"),
    ("village_telecom", "villages", 2, "通信网络", "新民村"),
    ("village_safe_water", "villages", 0, "安全饮水", "瓦曲村"),
    ("village_electricity", "villages", 2, "生活用电", "新民村"),
    ("village_broadcast_tv", "villages", 0, "广播电视", "瓦曲村"),
    ("township_central_school", "townships", 0, "标准中心校", "越城镇"),
    ("township_health_center", "townships", 1, "达标卫生院", "中所镇"),
    ("township_service_center", "townships", 0, "便民服务中心", "越城镇"),
]


@pytest.mark.parametrize(("rule", "sheet", "index", "header", "unit"), YES_NO_RULES, ids=[r[0] for r in YES_NO_RULES])
def test_each_yes_no_indicator_fails_on_no(tmp_path, rule, sheet, index, header, unit):
    county = base_county()
    getattr(county, sheet)[index][header] = "否"
    res = audit(exitcheck.load([county.write(tmp_path / "y.xlsx")]), as_of=AS_OF)
    assert _gaps(res) == {(rule, "fail", unit)} | ({("risk_wrong_exit", "fail", unit)} if rule == "water" else set())


def test_a_yes_no_indicator_of_a_non_poor_village_is_not_checked(tmp_path):
    county = base_county()
    county.villages[1]["通硬化路"] = "否"  # 马拖村 is not a poor village
    res = audit(exitcheck.load([county.write(tmp_path / "n.xlsx")]), as_of=AS_OF)
    assert _gaps(res) == set()


def test_county_incidence_fails_at_3_percent(tmp_path):
    county = base_county()
    for row in county.households:
        row["脱贫状态"] = "未脱贫"  # 18 poor people
    for row in county.villages:
        row["户籍人口"] = 200  # 600 in all: 3.0%, not below 3%
    res = audit(exitcheck.load([county.write(tmp_path / "c.xlsx")]), as_of=AS_OF)
    rules = {g.rule for g in res.gaps}
    assert "county_incidence" in rules
    assert res.summary()["incidence"]["county"] == pytest.approx(0.03)
    county.villages[0]["户籍人口"] = 201  # 18/601, just below 3%
    res = audit(exitcheck.load([county.write(tmp_path / "d.xlsx")]), as_of=AS_OF)
    assert "county_incidence" not in {g.rule for g in res.gaps}


def test_income_boundary_4200_passes(tmp_path):
    county = base_county()
    county.households[0]["人均纯收入"] = 4200
    county.households[1]["人均纯收入"] = "4,199.99元"
    res = audit(exitcheck.load([county.write(tmp_path / "i.xlsx")]), as_of=AS_OF)
    assert {g.household_id for g in res.gaps if g.rule == "income"} == {H[1]}


LIBRARY_USE = """
import sys
from datetime import date
import exitcheck
registers = exitcheck.load([sys.argv[1]])
as_of = date(2020, 6, 30)
{before}
for _ in range(2):  # the second call finds the same functions: no submodule import replaced them
    issues = exitcheck.validate(registers, as_of)
    result = exitcheck.audit(registers, as_of=as_of)
    banded = exitcheck.bands(result)
print(len(issues), len(result.gaps) > 0, len(banded.frame))
"""


@pytest.mark.parametrize("before", ["", "import exitcheck.auditing, exitcheck.income_bands, exitcheck.report.gaps_out"])
def test_the_library_api_mirrors_the_commands_in_a_fresh_interpreter(tmp_path, before):
    """exitcheck.audit and exitcheck.bands stay the functions however the program imported
    the package's modules (a submodule of the same name used to replace them)."""
    path = planted_gaps().write(tmp_path / "g.xlsx")
    done = subprocess.run([sys.executable, "-c", LIBRARY_USE.format(before=before), str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "True", "2"], done.stdout  # planted_gaps: 3 data issues, 2 households in a band



def test_a_gaps_english_only_values_are_those_its_own_message_names():
    """Which placeholders only the English message names depends on the gap: `message` when it
    fails, `high_message` when it is high priority; a name Chinese uses only in the other one
    is still English-only for this gap."""
    from exitcheck.auditing import _EnglishOnly
    from exitcheck.rules.model import Rule

    rule = Rule(id="r", level="household", name="r", check="x > 0", message="收入{x}", message_en="income {x} (house {house_id})",
                high_message="住房{house_id}为{grade}级", high_message_en="grade {grade} ({note})")
    english_only = _EnglishOnly(rule)
    assert english_only.of(failed=True, high=False) == {"house_id"}
    assert english_only.of(failed=False, high=True) == {"note"}
    assert english_only.of(failed=True, high=True) == {"note"}
    assert english_only.of(failed=False, high=False) == set()
    same = Rule(id="s", level="household", name="s", check="x > 0", message="收入{x}", message_en="income {x}")
    assert _EnglishOnly(same).candidates == []
