"""The reasons in the gap lists say why and who, as a township cadre needs them: checked in
gaps.json and in the written workbook, in Chinese and in English."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest

import exitcheck
from builders import AS_OF, base_county, household, make_id, member
from exitcheck.auditing import AuditResult, audit
from exitcheck.report.gaps_out import write_outputs

H = [f"51343400{n:04d}" for n in range(1, 7)]
MISSED_HIGH, MISSED = "513434000007", "513434000008"


def county_with_reasons() -> Any:
    county = base_county()
    hh, m = county.households, county.members
    hh[0]["认可度"] = "还行"  # present but not one of 满意/基本满意/不满意
    hh[1]["生活用电"] = ""  # really blank
    m[7]["城乡居民基本医疗保险"] = "否"  # 配偶3, 48 on the reference date
    for n in range(2):  # household 4: 户主4, 配偶4, 子4 and two grandsons, none insured
        m.append(member(H[3], f"孙{n}", make_id(date(2012 + n, 1, 1), 80 + n, True), "之孙子", "男", f"{2012 + n}-01-01"))
    hh[3]["家庭人口数"] = 5
    for row in [r for r in m if r["户编号"] == H[3]]:
        row["城乡居民基本医疗保险"] = "否"
    m[13]["性别"] = "男"  # 配偶5's ID number says female
    hh[5]["住房安全等级"] = "C"
    for hid, grade in ((MISSED_HIGH, "D"), (MISSED, "B")):
        hh.append(household(hid, "越城镇", "瓦曲村", f"非户{hid[-1]}", 1, 3000, 农户类别="一般农户", 贫困户属性="",
                            脱贫状态="", 脱贫年度="", 住房安全等级=grade, 帮扶责任人="朱春梅", 帮扶责任人电话="13900000001"))
        m.append(member(hid, f"非户{hid[-1]}", make_id(date(1960, 2, 2), int(hid[-1]), True), "户主", "男", "1960-02-02"))
    return county


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[AuditResult, dict[str, Any], Any]]:
    """Per language: the audit, its gaps.json and its gaps.xlsx, written by the real writers."""
    folder = tmp_path_factory.mktemp("reasons")
    registers = exitcheck.load([county_with_reasons().write(folder / "registers.xlsx")])
    out = {}
    for lang in ("zh", "en"):
        result = audit(registers, as_of=AS_OF, lang=lang)
        write_outputs(folder / lang, result, ["json", "xlsx"])
        document = json.loads((folder / lang / "gaps.json").read_text(encoding="utf-8"))
        out[lang] = (result, document, openpyxl.load_workbook(folder / lang / "gaps.xlsx"))
    return out


def message(document: dict[str, Any], rule: str, household: str) -> str:
    (found,) = [g["message"] for g in document["gaps"] if g["rule"] == rule and g["household_id"] == household]
    return found


def sheet_row(book: Any, sheet: str, household: str, rule_name: str | None = None) -> list[Any]:
    """The cells of the row of a household (and of a rule, on a list with a row per rule)."""
    rows = [[c.value for c in row] for row in book[sheet].iter_rows(min_row=2)]
    found = [row for row in rows if household in row and (rule_name is None or rule_name in row)]
    assert len(found) == 1, (sheet, household, found)
    return found[0]


def headers(book: Any, sheet: str) -> list[Any]:
    return [c.value for c in book[sheet][1]]


def cell(book: Any, sheet: str, household: str, header: str, rule_name: str | None = None) -> Any:
    return sheet_row(book, sheet, household, rule_name)[headers(book, sheet).index(header)]


def test_a_value_not_understood_is_quoted_not_called_blank(written):
    _, zh, zh_book = written["zh"]
    assert message(zh, "satisfaction", H[0]) == "待核实: 认可度「还行」无法识别"
    assert message(zh, "electricity", H[1]) == "待核实: 生活用电为空"
    assert "认可度: 待核实: 认可度「还行」无法识别" in cell(zh_book, "户清单", H[0], "原因(✗未达标 ?待核实)")
    _, en, en_book = written["en"]
    assert message(en, "satisfaction", H[0]) == 'unknown: Satisfaction "还行" not recognised'
    assert message(en, "electricity", H[1]) == "unknown: Electricity blank"
    assert 'Satisfaction "还行" not recognised' in cell(en_book, "Households", H[0], "Reasons (✗ fail, ? unknown)")


def test_member_gaps_name_the_members(written):
    _, zh, zh_book = written["zh"]
    assert message(zh, "medical", H[2]) == "配偶3(配偶, 48岁)未参加基本医疗保险"
    assert message(zh, "medical", H[3]) == "户主4(户主, 50岁)、配偶4(配偶, 48岁)、子4(之子, 20岁)等5人未参加基本医疗保险"
    assert "配偶3(配偶, 48岁)未参加基本医疗保险" in cell(zh_book, "户清单", H[2], "原因(✗未达标 ?待核实)")
    _, en, en_book = written["en"]
    assert message(en, "medical", H[2]) == "not enrolled in basic medical insurance: 配偶3 (spouse, 48)"
    assert message(en, "medical", H[3]).endswith("子4 (son, 20) and 2 more")
    assert "配偶3 (spouse, 48)" in cell(en_book, "Households", H[2], "Reasons (✗ fail, ? unknown)")


def test_register_accuracy_names_the_errors_and_the_real_sheet(written):
    _, zh, zh_book = written["zh"]
    assert message(zh, "info_accuracy", H[4]) == "登记信息有1处错误: 性别与身份证号不符, 见「数据问题」表"
    assert message(zh, "info_accuracy", H[0]) == "登记信息有1处错误: 取值无法识别(认可度), 见「数据问题」表"
    assert "数据问题" in zh_book.sheetnames
    assert "性别与身份证号不符" in cell(zh_book, "户清单", H[4], "原因(✗未达标 ?待核实)")
    _, en, en_book = written["en"]
    assert message(en, "info_accuracy", H[4]) == "1 register error(s): Gender disagrees with the ID; see the Data issues sheet"
    assert message(en, "info_accuracy", H[0]).startswith("1 register error(s): Value not recognised (Satisfaction)")
    assert "Data issues" in en_book.sheetnames


def test_wrong_exit_names_the_failing_indicators(written):
    _, zh, zh_book = written["zh"]
    assert message(zh, "risk_wrong_exit", H[5]) == "已脱贫但不达标: 住房保障: 住房为C级危房"
    assert message(zh, "risk_wrong_exit", H[2]) == "已脱贫但不达标: 医疗保障: 配偶3(配偶, 48岁)未参加基本医疗保险"
    assert cell(zh_book, "风险清单", H[5], "说明") == "已脱贫但不达标: 住房保障: 住房为C级危房"
    _, en, en_book = written["en"]
    assert message(en, "risk_wrong_exit", H[5]) == "marked as exited but not met: Safe housing: the house is grade C (dangerous)"
    assert cell(en_book, "Risks", H[5], "Reason") == message(en, "risk_wrong_exit", H[5])


def test_a_high_priority_risk_says_what_raised_it(written):
    _, zh, zh_book = written["zh"]
    assert message(zh, "risk_missed", MISSED_HIGH) == "非建档立卡户, 人均纯收入3000元, 低于4200元; 高优先级: 住房为D级危房"
    assert message(zh, "risk_missed", MISSED) == "非建档立卡户, 人均纯收入3000元, 低于4200元"
    assert cell(zh_book, "风险清单", MISSED_HIGH, "说明").endswith("高优先级: 住房为D级危房")
    _, en, en_book = written["en"]
    assert cell(en_book, "Risks", MISSED_HIGH, "Reason").endswith("; high priority: the house is grade D (dangerous)")


def test_an_unknown_risk_names_the_indicator_it_waits_for(tmp_path: Path):
    county = base_county()
    county.households[0]["安全饮水"] = ""  # exited: wrong-exit risk cannot be told
    result = audit(exitcheck.load([county.write(tmp_path / "r.xlsx")]), as_of=AS_OF)
    (risk,) = [g for g in result.gaps if g.rule == "risk_wrong_exit"]
    assert risk.status == "unknown" and risk.message == "待核实: 安全饮水(安全饮水为空)"
    county.households[0]["住房安全等级"] = ""  # another indicator, for another reason: named apart
    result = audit(exitcheck.load([county.write(tmp_path / "r.xlsx")]), as_of=AS_OF)
    (risk,) = [g for g in result.gaps if g.rule == "risk_wrong_exit"]
    assert risk.message == "待核实: 住房保障(住房安全等级为空)、安全饮水(安全饮水为空)"
    for row in county.members[:3]:  # and no living member: two indicators wait on that, together
        row["人员状态"] = "死亡"
    result = audit(exitcheck.load([county.write(tmp_path / "r.xlsx")]), as_of=AS_OF)
    (risk,) = [g for g in result.gaps if g.rule == "risk_wrong_exit"]
    assert risk.message == "待核实: 教育保障和医疗保障(该户没有在世成员)、住房保障(住房安全等级为空)、安全饮水(安全饮水为空)"
    en = audit(exitcheck.load([county.write(tmp_path / "r.xlsx")]), as_of=AS_OF, lang="en")
    (risk,) = [g for g in en.gaps if g.rule == "risk_wrong_exit"]
    assert risk.message.startswith("unknown: Education assured, Medical insurance (no living member); ")


def test_a_household_without_members_for_lost_zeros_says_so_in_its_reasons(tmp_path: Path):
    """Household 000001's members have 1 (the member sheet's 户编号 stored as numbers): the
    audit sees no living member, and its member rules said only 该户没有在世成员, sending the
    cadre after members who are on the sheet. They now point to them; its register errors
    count the members' issues, filed under it. A household really without a living member is
    told nothing more."""
    county = base_county()
    county.households[0]["户编号"] = "000001"
    for row in county.members[:3]:
        row["户编号"] = 1
    for row in county.members[9:12]:  # household 4 really has no living member
        row["人员状态"] = "死亡"
    registers = exitcheck.load([county.write(tmp_path / "r.xlsx")])
    zh = {g.rule: g.message for g in audit(registers, as_of=AS_OF).gaps if g.household_id == "000001"}
    pointer = "(工作表「成员表」中有 3 名成员的户编号为「1」, 疑为户编号的前导零丢失所致, 见 household_id_zeros_lost)"
    assert zh["medical"] == zh["education"] == "待核实: 该户没有在世成员" + pointer
    # The indicators waiting for the same reason are named together, before it once.
    assert zh["risk_wrong_exit"] == f"待核实: 教育保障和医疗保障(该户没有在世成员{pointer})"
    assert zh["info_accuracy"] == "登记信息有5处错误: 户编号的前导零丢失(3处)、无户主、家庭人口数与成员数不符, 见「数据问题」表"
    en = {g.rule: g.message for g in audit(registers, as_of=AS_OF, lang="en").gaps if g.household_id == "000001"}
    assert en["medical"] == ("unknown: no living member (3 members on sheet '成员表' with household ID '1': "
                             "most likely the household IDs lost their leading zeros; see household_id_zeros_lost)")
    assert en["risk_wrong_exit"] == f"unknown: Education assured, Medical insurance ({en['medical'].removeprefix('unknown: ')})"
    (other,) = [g.message for g in audit(registers, as_of=AS_OF).gaps if g.household_id == H[3] and g.rule == "medical"]
    assert other == "待核实: 该户没有在世成员"


def test_household_list_names_the_departments_and_the_group(written):
    _, _, zh_book = written["zh"]
    assert cell(zh_book, "户清单", H[2], "责任部门") == "卫健局"
    assert cell(zh_book, "户清单", H[0], "责任部门") == "扶贫开发局(信息精准)、乡镇人民政府(认可度)"
    assert cell(zh_book, "户清单", H[2], "村民小组") == "一组"
    assert headers(zh_book, "户清单").index("村民小组") == headers(zh_book, "户清单").index("行政村") + 1
    _, _, en_book = written["en"]
    assert cell(en_book, "Households", H[0], "Department") == "Poverty-alleviation office (Register accuracy); Township government (Satisfaction)"
    assert cell(en_book, "Households", H[2], "Group") == "一组"


def test_risk_list_names_the_helper_and_phone(written):
    _, _, zh_book = written["zh"]
    assert cell(zh_book, "风险清单", MISSED_HIGH, "帮扶责任人") == "朱春梅"
    assert cell(zh_book, "风险清单", MISSED_HIGH, "联系电话") == "13900000001"
    assert cell(zh_book, "风险清单", MISSED_HIGH, "村民小组") == "一组"
    _, _, en_book = written["en"]
    assert cell(en_book, "Risks", MISSED_HIGH, "Helper") == "朱春梅"
    assert cell(en_book, "Risks", MISSED_HIGH, "Helper's phone") == "13900000001"


def test_no_group_column_when_the_register_has_none(tmp_path: Path):
    county = county_with_reasons()
    for row in county.households:
        del row["村民小组"]
    result = audit(exitcheck.load([county.write(tmp_path / "r.xlsx")]), as_of=AS_OF)
    write_outputs(tmp_path / "out", result, ["xlsx"])
    book = openpyxl.load_workbook(tmp_path / "out" / "gaps.xlsx")
    assert "村民小组" not in headers(book, "户清单") and "村民小组" not in headers(book, "风险清单")
    assert cell(book, "风险清单", MISSED_HIGH, "帮扶责任人") == "朱春梅"
