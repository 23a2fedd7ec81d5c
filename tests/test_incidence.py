"""Poverty incidence is never computed from part of its data: a village population that cannot
be read, or a household row that may hold poor people but is counted in no village, makes the
incidence of every unit it would count in 待核实 (unknown), with a reason that names it."""

from __future__ import annotations

import json

import pytest

import exitcheck
from builders import AS_OF, base_county, excel_row
from exitcheck.auditing import audit
from exitcheck.report.gaps_out import township_totals
from exitcheck.rules.model import default_rules_path, load_ruleset


def poor_county():
    """base_county with 新民村's three households not exited: 9 poor people of 500 (1.8%);
    the county 9 of 1200 (0.75%), 中所镇 9 of 500."""
    county = base_county()
    for row in county.households[3:]:
        row["脱贫状态"] = "未脱贫"
    return county


def _run(county, tmp_path, name="c.xlsx"):
    return audit(exitcheck.load([county.write(tmp_path / name)]), as_of=AS_OF)


def _incidence_gaps(result):
    return {(g.rule, g.status, g.village or g.township or "county"): g.message
            for g in result.gaps if "incidence" in g.rule}


def test_all_known_incidence_is_computed(tmp_path):
    res = _run(poor_county(), tmp_path)
    assert _incidence_gaps(res) == {}
    assert res.summary()["incidence"]["county"] == pytest.approx(9 / 1200)
    assert res.summary()["incidence"]["villages"]["中所镇/新民村"] == pytest.approx(9 / 500)
    assert township_totals(res).loc["中所镇", "incidence"] == pytest.approx(9 / 500)


@pytest.mark.parametrize(("population", "why"), [("", "户籍人口为空"), ("约两千", "户籍人口「约两千」无法识别"),
                                                  (0, "户籍人口「0」不符合要求")],  # read, not valid: not 「0.0」无法识别
                         ids=["blank", "not-a-number", "zero"])
def test_a_village_population_that_cannot_be_read_makes_the_incidences_that_sum_it_unknown(tmp_path, population, why):
    county = poor_county()
    county.villages[0]["户籍人口"] = population  # 越城镇/瓦曲村, no poor people of its own
    res = _run(county, tmp_path)
    gaps = _incidence_gaps(res)
    # before: 9 / 800 for the county (瓦曲村's 400 left out of the denominator, its poor kept)
    assert res.summary()["incidence"]["county"] is None
    assert gaps[("county_incidence", "unknown", "county")] == f"待核实: 越城镇瓦曲村{why}"
    assert gaps[("village_incidence", "unknown", "瓦曲村")] == f"待核实: {why}"
    totals = township_totals(res)
    assert pd_na(totals.loc["越城镇", "incidence"])  # its population is not known
    assert totals.loc["中所镇", "incidence"] == pytest.approx(9 / 500)  # 中所镇 does not sum 瓦曲村
    assert res.summary()["incidence"]["villages"]["中所镇/新民村"] == pytest.approx(9 / 500)


@pytest.mark.parametrize(("cell", "typed", "zh", "en"), [
    ("户籍人口", "", "户籍人口为空", "Registered population blank"),
    ("户籍人口", "约两千", "户籍人口「约两千」无法识别", 'Registered population "约两千" not recognised'),
    ("村集体经济收入", "五千", "村集体经济收入「五千」无法识别", 'Collective income "五千" not recognised'),
], ids=["population-blank", "population-not-a-number", "income-not-a-number"])
def test_the_collective_income_per_person_names_the_value_it_lacks(tmp_path, cell, typed, zh, en):
    """Collective income is checked per person (income / 户籍人口): a population that cannot be
    read leaves it unknown, and the reason says so, not that the income is blank."""
    county = base_county()
    county.villages[0][cell] = typed  # 越城镇/瓦曲村, a poor village
    path = county.write(tmp_path / "c.xlsx")
    for lang, why in (("zh", zh), ("en", en)):
        res = audit(exitcheck.load([path]), as_of=AS_OF, lang=lang)
        gap = next(g for g in res.gaps if g.rule == "village_collective_income")
        assert (gap.status, gap.village) == ("unknown", "瓦曲村")
        assert gap.message == ("待核实: " if lang == "zh" else "unknown: ") + why


def pd_na(value) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or value != value or pd.isna(value)


def test_a_township_rule_on_incidence_is_unknown_with_the_village_named(tmp_path):
    county = poor_county()
    county.villages[0]["户籍人口"] = "约两千"
    path = county.write(tmp_path / "c.xlsx")
    text = default_rules_path().read_text(encoding="utf-8")  # the rule set has no township incidence rule: add one
    text += """
  - id: township_incidence
    level: township
    name: 乡镇贫困发生率
    name_en: Township incidence
    check: incidence < incidence_max
    department: poverty-office
    message: 乡镇贫困发生率 {incidence:.2%}
    message_en: township incidence {incidence:.2%}
"""
    ruleset_file = tmp_path / "rules.yaml"
    ruleset_file.write_text(text, encoding="utf-8")
    res = audit(exitcheck.load([path]), load_ruleset(ruleset_file), as_of=AS_OF)
    gaps = _incidence_gaps(res)
    assert gaps[("township_incidence", "unknown", "越城镇")] == "待核实: 瓦曲村户籍人口「约两千」无法识别"
    assert ("township_incidence", "unknown", "中所镇") not in gaps


def test_a_poor_household_whose_id_is_stored_as_a_number_makes_its_village_unknown(tmp_path):
    county = poor_county()
    county.households[4]["户编号"] = 513434000000000005  # 18 digits as a number: the row leaves the audit
    res = _run(county, tmp_path)
    row = excel_row("户表", 4)
    gaps = _incidence_gaps(res)
    # before: 新民村 6 / 500 = 1.2%, its 3 people silently left out
    assert res.summary()["incidence"]["villages"]["中所镇/新民村"] is None
    why = f"户表第{row}行的户未计入贫困人口(户编号被存为数字「5.13434E+17」, 该户未纳入审核)"
    assert gaps[("village_incidence", "unknown", "新民村")] == f"待核实: {why}"
    assert gaps[("county_incidence", "unknown", "county")] == f"待核实: {why}"
    assert pd_na(township_totals(res).loc["中所镇", "incidence"])
    assert township_totals(res).loc["越城镇", "incidence"] == pytest.approx(0)
    assert res.summary()["incidence"]["villages"]["越城镇/瓦曲村"] == pytest.approx(0)


def test_an_exited_household_that_leaves_the_audit_changes_no_incidence(tmp_path):
    county = poor_county()
    county.households[0]["户编号"] = 513434000000000001  # 瓦曲村, 已脱贫: never among the poor
    res = _run(county, tmp_path)
    assert _incidence_gaps(res) == {}
    assert res.summary()["incidence"]["villages"]["越城镇/瓦曲村"] == pytest.approx(0)


def test_a_poor_household_with_a_blank_township_makes_the_villages_of_its_name_unknown(tmp_path):
    county = poor_county()
    county.households[4]["乡镇"] = ""
    res = _run(county, tmp_path)
    gaps = _incidence_gaps(res)
    why = f"户表第{excel_row('户表', 4)}行的户未计入贫困人口(乡镇为空)"
    assert gaps[("village_incidence", "unknown", "新民村")] == f"待核实: {why}"
    assert gaps[("county_incidence", "unknown", "county")] == f"待核实: {why}"
    assert pd_na(township_totals(res).loc["中所镇", "incidence"])
    assert set(gaps) == {("village_incidence", "unknown", "新民村"), ("county_incidence", "unknown", "county")}


def test_a_poor_household_with_a_blank_village_makes_its_township_and_county_unknown(tmp_path):
    county = poor_county()
    county.households[4]["行政村"] = ""
    res = _run(county, tmp_path)
    gaps = _incidence_gaps(res)
    assert set(gaps) == {("county_incidence", "unknown", "county")}  # which village cannot be told
    assert gaps[("county_incidence", "unknown", "county")] == f"待核实: 户表第{excel_row('户表', 4)}行的户未计入贫困人口(行政村为空)"
    assert pd_na(township_totals(res).loc["中所镇", "incidence"])
    assert township_totals(res).loc["越城镇", "incidence"] == pytest.approx(0)


@pytest.mark.parametrize(("column", "value", "why", "code"), [
    ("脱贫状态", "", "脱贫状态为空", "missing_value"),
    ("脱贫状态", "脱贫了", "脱贫状态「脱贫了」无法识别", "bad_value"),
    ("农户类别", "", "农户类别为空", "missing_value"),
], ids=["status-blank", "status-unreadable", "category-blank"])
def test_a_poor_household_whose_status_or_category_cannot_be_read_makes_its_village_unknown(tmp_path, column, value, why, code):
    """A registered household whose 脱贫状态 is blank counted no poor people, without a word:
    its village's incidence fell (on the sample, 古史村 3.72 % → 2.73 %, a pass)."""
    county = poor_county()
    county.households[4][column] = value
    res = _run(county, tmp_path)
    row = excel_row("户表", 4)
    gaps = _incidence_gaps(res)
    reason = f"待核实: 户表第{row}行的户未计入贫困人口({why})"
    assert gaps == {("village_incidence", "unknown", "新民村"): reason, ("county_incidence", "unknown", "county"): reason}
    assert pd_na(township_totals(res).loc["中所镇", "incidence"])
    assert township_totals(res).loc["越城镇", "incidence"] == pytest.approx(0)
    field = {"脱贫状态": "status", "农户类别": "category"}[column]
    assert [(i.code, i.row) for i in res.data_issues if i.field == field] == [(code, row)]


def test_several_households_whose_status_cannot_be_read_are_named_together(tmp_path):
    county = poor_county()
    county.households[3]["脱贫状态"] = ""
    county.households[4]["脱贫状态"] = "脱贫了"
    res = _run(county, tmp_path)
    rows = f"{excel_row('户表', 3)}、{excel_row('户表', 4)}"
    assert _incidence_gaps(res)[("village_incidence", "unknown", "新民村")] == f"待核实: 户表第{rows}行的户未计入贫困人口(脱贫状态为空或无法识别)"


def test_more_rows_than_are_shown_are_counted_in_words_a_clerk_reads(tmp_path):
    """Three rows named, then how many households in all: 第a、b、c行等4户, never 第a、b、c等4户行."""
    county = poor_county()
    for row in county.households[:4]:
        row["脱贫状态"] = ""
    res = _run(county, tmp_path)
    rows = "、".join(str(excel_row("户表", i)) for i in range(3))
    reason = _incidence_gaps(res)[("county_incidence", "unknown", "county")]
    assert f"户表第{rows}行等4户未计入贫困人口(脱贫状态为空)" in reason, reason
    english = audit(exitcheck.load([tmp_path / "c.xlsx"]), as_of=AS_OF, lang="en")
    assert f"rows {rows.replace('、', ', ')} and 1 more of 户表 not counted" in str(_incidence_gaps(english)), _incidence_gaps(english)


def test_a_household_that_is_not_registered_needs_no_status(tmp_path):
    county = poor_county()
    county.households[0].update({"农户类别": "一般农户", "脱贫状态": ""})  # 瓦曲村: an ordinary household
    res = _run(county, tmp_path)
    assert _incidence_gaps(res) == {}
    assert res.summary()["incidence"]["villages"]["越城镇/瓦曲村"] == pytest.approx(0)
    assert not [i for i in res.data_issues if i.field == "status"]


def test_a_poor_household_whose_members_lost_the_zeros_of_its_id_makes_its_village_unknown(tmp_path):
    """The member sheet's 户编号 stored as numbers: 1 for 新民村's poor household 0...04. Its
    members joined no household, and it counted no poor people: 新民村 6 / 500, a firm figure."""
    county = poor_county()
    county.households[3]["户编号"] = "000004"
    for row in county.members[9:12]:
        assert row["户编号"] == "513434000004"
        row["户编号"] = 4
    res = _run(county, tmp_path)
    assert {i.code for i in res.data_issues} >= {"household_id_zeros_lost"}
    why = f"待核实: 户表第{excel_row('户表', 3)}行的户未计入贫困人口(成员表中有成员的户编号丢失了前导零, 未计入该户, 见 household_id_zeros_lost)"
    gaps = _incidence_gaps(res)
    assert gaps == {("village_incidence", "unknown", "新民村"): why, ("county_incidence", "unknown", "county"): why}
    assert township_totals(res).loc["越城镇", "incidence"] == pytest.approx(0)


def test_the_cli_says_the_county_incidence_is_unknown_and_why_in_english(tmp_path, run_cli):
    county = poor_county()
    county.villages[0]["户籍人口"] = "约两千"
    path = county.write(tmp_path / "c.xlsx")
    run = run_cli("audit", str(path), "--as-of", AS_OF.isoformat(), "--out", str(tmp_path / "out"), "--lang", "en")
    assert run.returncode == 1, run.stderr
    gaps = json.loads((tmp_path / "out" / "gaps.json").read_text(encoding="utf-8"))
    county_gap = next(g for g in gaps["gaps"] if g["rule"] == "county_incidence")
    assert county_gap["status"] == "unknown"
    assert county_gap["message"] == 'unknown: registered population of 越城镇/瓦曲村 "约两千" not recognised'
    assert gaps["summary"]["incidence"]["county"] is None
    assert 'County poverty incidence unknown: registered population of 越城镇/瓦曲村 "约两千" not recognised' in run.stdout
    # the terminal said "see county_incidence", a rule id, and not why


def test_the_terminal_gives_the_first_reasons_for_an_unknown_county_incidence_and_counts_the_rest(tmp_path, run_cli):
    county = poor_county()
    county.villages[0]["户籍人口"] = ""
    county.villages[1]["户籍人口"] = ""
    county.households[4]["脱贫状态"] = ""
    path = county.write(tmp_path / "c.xlsx")
    run = run_cli("audit", str(path), "--as-of", AS_OF.isoformat(), "--out", str(tmp_path / "out"))
    line = next(text for text in run.stdout.splitlines() if text.startswith("全县贫困发生率"))
    assert line == "全县贫困发生率 待核实: 越城镇瓦曲村户籍人口为空、越城镇马拖村户籍人口为空 等 3 项"


def test_several_counties_sum_no_county_whose_incidence_is_unknown(tmp_path):
    """The province figures are sums of the counties' people and populations: a county whose
    poor household is counted in no village would give a part for the whole."""
    from builders import recode
    from exitcheck.province import county_audit, county_inputs, merge

    xide = recode(poor_county(), "513432", "喜德")
    yuexi = recode(poor_county(), "513434", "越西")
    yuexi.households[4]["户编号"] = 513434000000000005
    paths = [xide.write(tmp_path / "喜德县.xlsx"), yuexi.write(tmp_path / "越西县.xlsx")]
    inputs = county_inputs([[p] for p in paths])
    outcomes = {c.name: county_audit(c.name, audit(exitcheck.load([str(p)]), as_of=AS_OF)) for c, p in zip(inputs, paths, strict=True)}
    summary = merge(inputs, outcomes, load_ruleset(), AS_OF, "zh").summary()
    assert summary["incidence"]["counties"] == {"喜德县": pytest.approx(9 / 1200), "越西县": None}
    assert summary["incidence"]["all"] is None  # before: 15 / 2400, 越西's 3 people left out
    assert all(r["incidence"] is None for r in summary["rollups"])


def test_a_file_whose_household_sheet_is_refused_is_left_out_whole_and_the_county_incidence_waits(tmp_path, run_cli):
    """One workbook per township; one's 户表 lacks a required column. Its members are not read
    as orphans of households that are there, its villages not as villages with no poor people;
    the county's incidence, which would be without its households, is 待核实 naming it."""
    from builders import County

    county = poor_county()
    folder = tmp_path / "county"
    folder.mkdir()
    for town in ("越城镇", "中所镇"):
        ids = {h["户编号"] for h in county.households if h["乡镇"] == town}
        part = County(households=[dict(h) for h in county.households if h["乡镇"] == town],
                      members=[m for m in county.members if m["户编号"] in ids],
                      villages=[v for v in county.villages if v["乡镇"] == town],
                      townships=[t for t in county.townships if t["乡镇"] == town])
        if town == "中所镇":
            for row in part.households:
                del row["户主姓名"]
        part.write(folder / f"{town}.xlsx")
    result = run_cli("audit", str(folder), "--as-of", AS_OF.isoformat(), "--out", str(tmp_path / "out"), "-q")
    assert result.returncode == 3, result.stdout + result.stderr
    document = json.loads((tmp_path / "out" / "gaps.json").read_text(encoding="utf-8"))
    assert not [i for i in document["data_issues"] if i["code"] == "orphan_member"]
    assert {g["village"] for g in document["gaps"] if g["rule"] == "village_incidence"} <= {None}
    [county_gap] = [g for g in document["gaps"] if g["rule"] == "county_incidence"]
    assert county_gap["status"] == "unknown" and "中所镇.xlsx 无法读取, 其中的户未计入" in county_gap["message"], county_gap
    assert document["summary"]["households"] == 3  # 越城镇's


@pytest.mark.parametrize(("lang", "word", "sheet"), [("zh", "待核实", "汇总"), ("en", "unknown", "Summary")])
def test_the_summary_sheet_says_an_unknown_incidence_is_unknown_not_a_blank(tmp_path, run_cli, lang, word, sheet):
    """A blank cell reads as nothing to report; 待核实 says the figure waits on the data (the
    gap lists say why). A known one stays a percentage."""
    import openpyxl

    county = poor_county()
    county.villages[0]["户籍人口"] = ""  # 越城镇/瓦曲村: the county's and 越城镇's incidence unknown, 中所镇's known
    path = county.write(tmp_path / "c.xlsx")
    run = run_cli("audit", str(path), "--as-of", AS_OF.isoformat(), "--out", str(tmp_path / "out"), "--lang", lang, "-q")
    assert run.returncode == 1, run.stderr
    cells = [[c for c in row] for row in openpyxl.load_workbook(tmp_path / "out" / "gaps.xlsx")[sheet].iter_rows(values_only=True)]
    county_row = next(row for row in cells if row[0] in ("全县贫困发生率", "County poverty incidence"))
    assert county_row[1] == word
    towns = {row[0]: row for row in cells if row[0] in ("越城镇", "中所镇")}
    assert towns["越城镇"][-1] == word and towns["中所镇"][-1] == pytest.approx(9 / 500)
