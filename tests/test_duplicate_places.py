"""A village repeated in its township, or a township repeated, is a data issue on every row
involved, and the audit never picks one of the rows silently: what the rows disagree on is
待核实 (unknown), with a reason naming the rows; what they agree on is audited once."""

from __future__ import annotations

import pandas as pd
import pytest

import exitcheck
from builders import AS_OF, base_county, excel_row, village, write_sheet
from exitcheck.auditing import audit
from exitcheck.report.gaps_out import township_totals

VB, TB = "村表", "乡镇表"


def poor_county():
    """base_county with 新民村's households not exited (9 poor people) and a poor village 地日村
    in 越城镇 twice: the second row says 户籍人口 9999 and 卫生室 否."""
    county = base_county()
    for row in county.households[3:]:
        row["脱贫状态"] = "未脱贫"
    county.villages.insert(1, village("越城镇", "地日村", 350))
    county.villages.append(village("越城镇", "地日村", 9999, 卫生室="否"))
    return county


def _run(county, tmp_path, lang="zh"):
    registers = exitcheck.load([county.write(tmp_path / "c.xlsx")])
    return exitcheck.validate(registers, AS_OF), audit(registers, as_of=AS_OF, lang=lang)


def _gaps(result, unit):
    return {g.rule: (g.status, g.message) for g in result.gaps if unit in (g.village, g.township)}


def test_a_village_twice_is_an_error_on_both_rows_and_what_they_disagree_on_is_unknown(tmp_path):
    issues, result = _run(poor_county(), tmp_path)
    rows = (excel_row(VB, 1), excel_row(VB, 4))
    dup = [i for i in issues if i.code == "duplicate_village"]
    assert [(i.sheet, i.row, i.column, i.header, i.value) for i in dup] == [(VB, row, "B", "行政村", "越城镇/地日村") for row in rows]
    assert all(i.severity == "error" for i in dup)
    assert dup[0].message("zh") == (f"行政村「越城镇/地日村」出现在第 {rows[0]}、{rows[1]} 行, "
                                    "各行的户籍人口、卫生室不一致, 用到它们的指标待核实")
    assert dup[1].message("en") == (f"village '越城镇/地日村' appears on rows {rows[0]}, {rows[1]}; "
                                    "they differ in registered population, clinic, so the rules using them are unknown")
    why = f"(村表第 {rows[0]}、{rows[1]} 行重复登记, 不知以哪行为准)"
    assert _gaps(result, "地日村") == {
        "village_incidence": ("unknown", f"待核实: 户籍人口不一致{why}"),
        "village_collective_income": ("unknown", f"待核实: 户籍人口不一致{why}"),
        "village_clinic": ("unknown", f"待核实: 卫生室不一致{why}"),
    }  # its paved road, culture room, ...: the rows agree, and they pass
    county = [g for g in result.gaps if g.rule == "county_incidence"]
    assert [(g.status, g.message) for g in county] == [("unknown", f"待核实: 越城镇地日村户籍人口不一致{why}")]
    summary = result.summary()
    assert summary["villages"] == 4  # 地日村 once
    assert summary["incidence"]["villages"]["越城镇/地日村"] is None
    assert summary["incidence"]["villages"]["中所镇/新民村"] == pytest.approx(9 / 500)
    totals = township_totals(result)
    assert pd.isna(totals.loc["越城镇", "incidence"])  # it sums 地日村's population
    assert totals.loc["中所镇", "incidence"] == pytest.approx(9 / 500)


def test_the_unknown_rules_say_why_in_english(tmp_path):
    _, result = _run(poor_county(), tmp_path, lang="en")
    rows = f"村表 rows {excel_row(VB, 1)}, {excel_row(VB, 4)}"
    assert _gaps(result, "地日村")["village_clinic"] == (
        "unknown", f"unknown: Clinic differs between the repeated rows ({rows}): which is right is not known")


def test_a_township_twice_with_different_health_centres_leaves_that_rule_unknown(tmp_path):
    county = base_county()
    county.townships.append({**county.townships[1], "达标卫生院": "否"})  # 中所镇 again
    issues, result = _run(county, tmp_path)
    rows = (excel_row(TB, 1), excel_row(TB, 2))
    dup = [(i.code, i.sheet, i.row, i.header, i.value) for i in issues]
    assert dup == [("duplicate_township", TB, row, "乡镇", "中所镇") for row in rows]
    assert _gaps(result, "中所镇") == {
        "township_health_center": ("unknown", f"待核实: 达标卫生院不一致(乡镇表第 {rows[0]}、{rows[1]} 行重复登记, 不知以哪行为准)"),
    }


def test_identical_rows_are_reported_and_audited_once(tmp_path):
    """Rows equal in every cell leave nothing in doubt: the error asks for the extra row to be
    deleted, and the village is audited once, on the values its rows agree on."""
    county = base_county()
    county.villages.append(dict(county.villages[2]))  # 中所镇/新民村 again
    county.townships.append(dict(county.townships[0]))  # 越城镇 again
    issues, result = _run(county, tmp_path)
    assert {(i.code, i.row) for i in issues} == {
        ("duplicate_village", excel_row(VB, 2)), ("duplicate_village", excel_row(VB, 3)),
        ("duplicate_township", excel_row(TB, 0)), ("duplicate_township", excel_row(TB, 2)),
    }
    assert all(i.message("zh").endswith("各行内容一致, 按一行核查") for i in issues)
    assert result.gaps == []
    assert result.summary()["incidence"]["county"] == 0


def test_a_summary_sheet_read_as_a_village_sheet_is_reported_not_joined(tmp_path):
    """A sheet of summary figures (乡镇, 行政村, 户数, 总人口) beside the 村表 is read as village
    rows: each of its villages is now a duplicate, named on both sheets. It has no facility
    columns, so it makes no facility rule unknown; a 总人口 that differs from the 户籍人口 makes
    the incidences unknown."""
    import xlsxwriter

    county = base_county()
    path = tmp_path / "c.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    for name, rows in county.sheets().items():
        write_sheet(workbook, name, rows, totals=name == "户表")
    write_sheet(workbook, "汇总", [{"乡镇": "越城镇", "行政村": "瓦曲村", "户数": 2, "总人口": 400},
                                   {"乡镇": "中所镇", "行政村": "新民村", "户数": 3, "总人口": 510}])
    workbook.close()
    registers = exitcheck.load([path])
    # its rows for a village the 村表 lacks are no duplicates: only this note shows them joined
    assert (f"{path}: 村表由 2 张工作表合起来读取: 「村表」、「汇总」; 如其中有不是村表的表(如统计表), 请把它删除",
            f"{path}: the villages register is read from 2 sheets together: '村表', '汇总'; if one of them is not a "
            f"villages register (a table of figures), delete it") in registers.notes
    issues = exitcheck.validate(registers, AS_OF)
    dup = {(i.sheet, i.row): i.message("zh") for i in issues if i.code == "duplicate_village"}
    assert set(dup) == {(VB, excel_row(VB, 0)), (VB, excel_row(VB, 2)), ("汇总", excel_row("汇总", 0)), ("汇总", excel_row("汇总", 1))}
    assert dup[("汇总", excel_row("汇总", 1))] == (
        f"行政村「中所镇/新民村」出现在工作表「村表」第 {excel_row(VB, 2)} 行、工作表「汇总」第 {excel_row('汇总', 1)} 行, "
        "各行的户籍人口不一致, 用到它们的指标待核实")
    assert dup[(VB, excel_row(VB, 0))].endswith("各行内容一致, 按一行核查")
    result = audit(registers, as_of=AS_OF)
    assert result.summary()["villages"] == 3
    assert {(g.rule, g.status, g.village) for g in result.gaps} == {
        ("village_incidence", "unknown", "新民村"), ("village_collective_income", "unknown", "新民村"),
        ("county_incidence", "unknown", None),
    }
