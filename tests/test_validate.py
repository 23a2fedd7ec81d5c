"""exitcheck validate: every planted problem found at the right place, nothing on clean rows."""

from __future__ import annotations

import json
from datetime import date

import pytest

import exitcheck
from builders import AS_OF, base_county, excel_row, header_row, make_id, member
from exitcheck.issues import CATALOGUE

HH, MB = "户表", "成员表"


def planted_county():
    county = base_county()
    m = county.members
    # members 0-2 belong to household 1, 3-5 to household 2, ...
    m[1]["证件号码"] = m[1]["证件号码"][:-1] + ("0" if m[1]["证件号码"][-1] != "0" else "1")  # id_checksum
    m[2]["证件号码"] = float(m[2]["证件号码"][:17] + "0")  # id_precision_lost (a number cell)
    m[4]["出生日期"] = "1999-01-01"  # id_birth_mismatch (hh2 spouse)
    m[5]["性别"] = "女"  # id_gender_mismatch (hh2 son)
    for key in ("证件号码", "性别", "出生日期"):  # duplicate_person: hh1's head again in hh3
        m[7][key] = m[0][key]
    county.members.append(member("513434009999", "孤儿", make_id(date(1980, 1, 1), 77, True), "户主", "男", "1980-01-01"))  # orphan
    county.members.append(member("0513434000006", "零", make_id(date(1981, 1, 1), 78, True), "之父", "男", "1981-01-01"))  # zeros lost
    m[9]["与户主关系"] = "之父"  # no_head for hh4 (its head is member 9)
    county.households[4]["家庭人口数"] = 5  # size_mismatch hh5
    county.households[5]["行政村"] = "不存在村"  # unknown_village hh6
    county.households[1]["住房编号"] = county.households[0]["住房编号"]  # shared_house hh1+hh2
    county.households[2]["安全饮水"] = ""  # missing_value hh3
    county.households[3]["认可度"] = "还行"  # bad_value hh4
    county.households.append(dict(county.households[2]))  # duplicate_household hh3 (two rows)
    lost = dict(county.households[0], 户编号=513434001001000007.0, 住房编号="F7")  # household_id_precision_lost
    county.households.append(lost)
    county.villages.append(dict(county.villages[1]))  # duplicate_village 马拖村 (identical rows)
    county.townships.append({**county.townships[0], "达标卫生院": "否"})  # duplicate_township 越城镇 (rows disagree)
    return county


def _key(issue):
    return (issue.code, issue.sheet, issue.row, issue.household_id)


def test_clean_county_has_no_issues(tmp_path):
    path = base_county().write(tmp_path / "clean.xlsx")
    assert exitcheck.validate(exitcheck.load([path]), AS_OF) == []


def test_every_planted_problem_is_found_where_it_is(tmp_path):
    path = planted_county().write(tmp_path / "planted.xlsx")
    issues = exitcheck.validate(exitcheck.load([path]), AS_OF)
    found = {_key(i) for i in issues}
    hid = [f"51343400{n:04d}" for n in range(1, 7)]
    expected = {
        ("id_checksum", MB, excel_row(MB, 1), hid[0]),
        ("id_precision_lost", MB, excel_row(MB, 2), hid[0]),
        ("id_birth_mismatch", MB, excel_row(MB, 4), hid[1]),
        ("id_gender_mismatch", MB, excel_row(MB, 5), hid[1]),
        ("duplicate_person", MB, excel_row(MB, 0), hid[0]),
        ("duplicate_person", MB, excel_row(MB, 7), hid[2]),
        ("orphan_member", MB, excel_row(MB, 18), "513434009999"),
        ("household_id_zeros_lost", MB, excel_row(MB, 19), hid[5]),  # filed under the household it matches
        ("no_head", HH, excel_row(HH, 3), hid[3]),
        ("size_mismatch", HH, excel_row(HH, 4), hid[4]),
        ("unknown_village", HH, excel_row(HH, 5), hid[5]),
        ("shared_house", HH, excel_row(HH, 0), hid[0]),
        ("shared_house", HH, excel_row(HH, 1), hid[1]),
        ("missing_value", HH, excel_row(HH, 2), hid[2]),
        ("missing_value", HH, excel_row(HH, 6), hid[2]),
        ("bad_value", HH, excel_row(HH, 3), hid[3]),
        ("duplicate_household", HH, excel_row(HH, 2), hid[2]),
        ("duplicate_household", HH, excel_row(HH, 6), hid[2]),
        ("household_id_precision_lost", HH, excel_row(HH, 7), None),
        ("duplicate_village", "村表", excel_row("村表", 1), None),
        ("duplicate_village", "村表", excel_row("村表", 3), None),
        ("duplicate_township", "乡镇表", excel_row("乡镇表", 0), None),
        ("duplicate_township", "乡镇表", excel_row("乡镇表", 2), None),
    }
    assert found == expected
    # missing_column refuses the sheet; the cross-county duplicate needs several counties (test_dask)
    assert set(CATALOGUE) - {i.code for i in issues} == {"missing_column", "duplicate_household_across_counties", "duplicate_person_across_counties"}


def test_issue_positions_and_values(tmp_path):
    path = planted_county().write(tmp_path / "planted.xlsx")
    issues = exitcheck.validate(exitcheck.load([str(path)]), AS_OF)
    lost = next(i for i in issues if i.code == "id_precision_lost")
    assert lost.file == str(path)
    assert lost.column == "C" and lost.header == "证件号码" and lost.field == "id_number"
    assert lost.value == "5.13434E+17"  # as Excel shows the number cell, not Python's 5.1343420000501e+17
    assert lost.message("zh") == "身份证号被存为数字(5.13434E+17), 后几位已丢失"
    bad = next(i for i in issues if i.code == "bad_value")
    assert bad.value == "还行" and bad.header == "认可度"
    assert "还行" in bad.message("zh") and "not valid" in bad.message("en")
    size = next(i for i in issues if i.code == "size_mismatch")
    assert size.header == "家庭人口数" and size.value == "5"
    village = next(i for i in issues if i.code == "unknown_village")
    assert village.header == "行政村"
    assert all(i.severity == ("warning" if i.code == "shared_house" else "error") for i in issues)


def test_a_duplicate_names_the_other_households_that_share_it(tmp_path):
    county = planted_county()
    m = county.members
    for key in ("证件号码", "性别", "出生日期"):  # household 1's head also in household 4, and twice in 3
        m[10][key] = m[0][key]
    county.members.append(dict(m[7]))
    path = county.write(tmp_path / "planted.xlsx")
    issues = exitcheck.validate(exitcheck.load([path]), AS_OF)
    hid = [f"51343400{n:04d}" for n in range(1, 7)]
    others = sorted((i.household_id, i.params["others"]["zh"]) for i in issues if i.code == "duplicate_person")
    assert others == [
        (hid[0], f"{hid[2]}、{hid[3]}"),
        (hid[2], f"{hid[0]}、{hid[3]}"),
        (hid[2], f"{hid[0]}、{hid[3]}"),
        (hid[3], f"{hid[0]}、{hid[2]}"),
    ]
    assert {i.params["others"]["en"] for i in issues if i.household_id == hid[0] and i.code == "duplicate_person"} == {f"{hid[2]}, {hid[3]}"}
    houses = sorted((i.household_id, i.params["others"]["zh"]) for i in issues if i.code == "shared_house")
    assert houses == [(hid[0], hid[1]), (hid[1], hid[0])]


def test_header_row_found_under_titles_and_group_row(tmp_path):
    path = base_county().write(tmp_path / "c.xlsx")
    registers = exitcheck.load([path])
    rows = {s.sheet: s.header_row for s in registers.sources}
    assert rows == {HH: header_row(HH), MB: header_row(MB), "村表": header_row("村表"), "乡镇表": header_row("乡镇表")}
    # the totals row (合计) is not a household
    assert len(registers.raw["households"]) == 6


def test_totals_rows_labelled_with_a_colon_or_a_unit_are_skipped(tmp_path):
    """合计：, 总计(人), 小计（户） and 合 计 label a totals row as 合计 does; a village or a
    name that only starts with the word (合计村) is data."""
    county = base_county()
    members = len(county.members)
    for label in ("合计：", "总计(人)", "小计（户）", "合 计:"):
        county.members.append({"户编号": label, "姓名": str(members)})
    county.households.append({**county.households[0], "户编号": "", "乡镇": "合计村"})
    registers = exitcheck.load([county.write(tmp_path / "c.xlsx")])
    assert len(registers.raw["members"]) == members
    assert len(registers.raw["households"]) == 7  # 合计村 is not a label: the row is data
    issues = exitcheck.validate(registers, AS_OF)
    assert not [i for i in issues if i.sheet == MB and i.row and i.row > excel_row(MB, members - 1)]


def test_subtotal_rows_labelled_after_their_place_are_skipped(tmp_path):
    """越城镇小计 in 乡镇, 瓦曲村合计： in 行政村, 越城镇 合计 in 村表 and 中所镇小计 typed into the
    户编号 column are subtotals under their place, with figures beside them: not a household,
    not a village, no issue, and the county's incidence stays known. A name that only holds the
    word (小计坝村, a member named 张小计) and a row with a household id stay data."""
    from exitcheck.auditing import audit

    county = base_county()
    for row in county.households[3:]:
        row["脱贫状态"] = "未脱贫"  # 9 poor people in 1200, 1600 with 小计坝村
    sizes = {"家庭人口数": 9, "人均纯收入": 24000}  # a subtotal's figures
    county.households.append({"户编号": "", "乡镇": "越城镇小计", **sizes})
    county.households.append({"户编号": "", "乡镇": "越城镇", "行政村": "瓦曲村合计：", **sizes})
    county.households.append({"户编号": "中所镇小计", **sizes})
    county.villages.append({"乡镇": "越城镇 合计", "户籍人口": 700})
    county.villages.append({**county.villages[0], "行政村": "小计坝村"})  # a village: data
    members = len(county.members)
    county.members.append({"户编号": "越城镇小计", "姓名": "6"})
    county.members.append({**county.members[0], "户编号": "", "姓名": "张小计"})  # a person: data
    county.households.append({**county.households[0], "户编号": "513434009998", "乡镇": "越城镇小计"})  # a record: data
    registers = exitcheck.load([county.write(tmp_path / "c.xlsx")])
    assert len(registers.raw["households"]) == 7
    assert len(registers.raw["villages"]) == 4
    assert len(registers.raw["members"]) == members + 1
    issues = exitcheck.validate(registers, AS_OF)
    assert {(i.code, i.sheet, i.row) for i in issues if i.code in ("missing_value", "unknown_village")} == {
        ("missing_value", MB, excel_row(MB, members + 1)),  # 张小计's blank 户编号
        ("unknown_village", HH, excel_row(HH, 9)),  # the household in 越城镇小计
    }
    summary = audit(registers, as_of=AS_OF).summary()
    assert summary["incidence"]["county"] == pytest.approx(9 / 1600)


def test_aliases_fullwidth_headers_and_unknown_columns(tmp_path):
    county = base_county()
    for row in county.households:
        row["人均纯收入（元）"] = row.pop("人均纯收入")
        row["家庭 人口数"] = row.pop("家庭人口数")
        row["自定义列"] = "保留"
    for row in county.members:
        row["身份证号"] = row.pop("证件号码")
    registers = exitcheck.load([county.write(tmp_path / "a.xlsx")])
    assert {"income_per_capita", "household_size"} <= registers.present_fields("households")
    assert "id_number" in registers.present_fields("members")
    assert "自定义列" in registers.extra_columns("households")
    assert exitcheck.validate(registers, AS_OF) == []


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("4,350元", 4350.0), ("４２００", 4200.0), (" 5000 ", 5000.0), (4199.5, 4199.5)],
)
def test_numbers_typed_as_text(tmp_path, typed, expected):
    county = base_county()
    county.households[0]["人均纯收入"] = typed
    registers = exitcheck.load([county.write(tmp_path / "n.xlsx")])
    parsed = exitcheck.prepare(registers, AS_OF)
    assert parsed.tables["households"]["income_per_capita"].iloc[0] == expected
    assert parsed.issues == []


def test_yes_no_forms_and_blank_is_not_no(tmp_path):
    county = base_county()
    forms = ["有", "Y", "√", "1", "已", "是"]
    for row, form in zip(county.households, forms, strict=True):
        row["安全饮水"] = form
    county.households[5]["生活用电"] = "×"
    parsed = exitcheck.prepare(exitcheck.load([county.write(tmp_path / "y.xlsx")]), AS_OF)
    table = parsed.tables["households"]
    assert table["safe_water"].tolist() == [True] * 6
    assert table["electricity"].iloc[5] is False or bool(table["electricity"].iloc[5]) is False


def test_header_mapping_from_workspace(tmp_path):
    county = base_county()
    for row in county.households:
        row["户主名字"] = row.pop("户主姓名")
    path = county.write(tmp_path / "m.xlsx")
    with pytest.raises(exitcheck.errors.InputError if hasattr(exitcheck, "errors") else Exception):
        exitcheck.load([path], strict=True)
    registers = exitcheck.load([path], headers={"households": {"户主名字": "head_name"}})
    assert "head_name" in registers.present_fields("households")


def test_json_output_masks_ids(tmp_path, run_cli):
    path = planted_county().write(tmp_path / "planted.xlsx")
    result = run_cli("validate", str(path), "--json", "--as-of", AS_OF.isoformat())
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["schema"] == "exitcheck/issues@1"
    assert document["summary"]["by_code"]["duplicate_person"] == 2
    keys = {"code", "severity", "file", "sheet", "row", "column", "header", "field", "value", "household_id", "message"}
    assert all(set(issue) == keys for issue in document["data_issues"])
    dup = [i for i in document["data_issues"] if i["code"] == "duplicate_person"]
    assert all("********" in i["value"] for i in dup)
    full_id = planted_county().members[0]["证件号码"]
    assert full_id not in result.stdout and full_id not in result.stderr


def test_issues_xlsx_shows_ids_whole(tmp_path, run_cli):
    import python_calamine

    path = planted_county().write(tmp_path / "planted.xlsx")
    out = tmp_path / "out"
    result = run_cli("validate", str(path), "--out", str(out), "--as-of", AS_OF.isoformat())
    assert result.returncode == 1
    rows = python_calamine.CalamineWorkbook.from_path(str(out / "issues.xlsx")).get_sheet_by_index(0).to_python()
    full_id = planted_county().members[0]["证件号码"]
    assert any(full_id in [str(c) for c in row] for row in rows)
    assert (out / "issues.xlsx").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("lang, sheet, fix_header", [("zh", "数据问题", "如何修改"), ("en", "Data issues", "How to fix")])
def test_every_issue_row_says_how_to_fix_it(tmp_path, lang, sheet, fix_header):
    import openpyxl

    from exitcheck.auditing import audit
    from exitcheck.report.gaps_out import write_outputs
    from exitcheck.report.issues_out import write_issues_xlsx

    registers = exitcheck.load([planted_county().write(tmp_path / "planted.xlsx")])
    result = audit(registers, as_of=AS_OF, lang=lang)
    write_outputs(tmp_path / "gaps", result, ["xlsx"])
    write_issues_xlsx(tmp_path / "issues.xlsx", result.data_issues, lang)
    key = "en" if lang == "en" else "zh"
    for book in (openpyxl.load_workbook(tmp_path / "gaps" / "gaps.xlsx"), openpyxl.load_workbook(tmp_path / "issues.xlsx")):
        rows = [[c.value for c in row] for row in book[sheet].iter_rows()]
        fix = rows[0].index(fix_header)
        assert len(rows) == len(result.data_issues) + 1
        assert all(row[fix] == CATALOGUE[row[0]].fix[key] for row in rows[1:])
        (lost,) = [row for row in rows if row[0] == "id_precision_lost"]
        assert "5.13434E+17" in lost and lost[fix] == CATALOGUE["id_precision_lost"].fix[key]


def test_out_writes_issues_json_as_json_prints_it(tmp_path, run_cli):
    path = planted_county().write(tmp_path / "planted.xlsx")
    out = tmp_path / "out"
    run_cli("validate", str(path), "--out", str(out), "--as-of", AS_OF.isoformat())
    printed = run_cli("validate", str(path), "--json", "--as-of", AS_OF.isoformat())
    assert json.loads((out / "issues.json").read_text(encoding="utf-8")) == json.loads(printed.stdout)
    assert (out / "issues.json").stat().st_mode & 0o077 == 0


def test_english_messages(tmp_path, run_cli):
    path = planted_county().write(tmp_path / "planted.xlsx")
    result = run_cli("validate", str(path), "--json", "--lang", "en", "--as-of", AS_OF.isoformat())
    document = json.loads(result.stdout)
    bad = next(i for i in document["data_issues"] if i["code"] == "bad_value")
    assert bad["message"].startswith("'认可度' value '还行' is not valid")


def test_explain_prints_the_catalogue_entry(run_cli):
    result = run_cli("explain", "id_precision_lost")
    assert result.returncode == 0
    assert "文本" in result.stdout
    english = run_cli("explain", "id_precision_lost", "--lang", "en")
    assert "Text" in english.stdout
    wrong = run_cli("explain", "id_checksun")
    assert wrong.returncode == 2 and "id_checksum" in wrong.stderr


def test_a_long_household_id_stored_as_a_number_is_named_not_merged(tmp_path, run_cli):
    """Excel rounds 513434001001000001 and ...002 to one number: two households would become
    one, and every member an orphan of an unnamed cause. Each such cell is named instead, the
    rows are merged with nothing, and bands says they are in no band."""
    county = base_county()
    for number, row in enumerate(county.households[:2], start=1):
        row["户编号"] = float(f"51343400100100000{number}")
        row["人均纯收入"] = 3000
    path = county.write(tmp_path / "numbers.xlsx")
    issues = exitcheck.validate(exitcheck.load([path]), AS_OF)
    lost = [i for i in issues if i.code == "household_id_precision_lost"]
    assert [(i.sheet, i.row, i.column) for i in lost] == [(HH, excel_row(HH, 0), "A"), (HH, excel_row(HH, 1), "A")]
    assert "户编号被存为数字" in lost[0].message("zh") and "last digits are lost" in lost[0].message("en")
    assert lost[0].value == "5.13434E+17"  # as Excel shows it, the form the clerk searches for
    assert not [i for i in issues if i.code in ("duplicate_household", "missing_value")]
    done = run_cli("bands", str(path), "--out", "out", "--lang", "en")
    assert done.returncode == 0, done.stderr
    assert "2 rows of the households sheet have a blank household ID or one that lost its digits" in done.stderr + done.stdout
    explained = run_cli("explain", "household_id_precision_lost")
    assert explained.returncode == 0 and "文本" in explained.stdout


def test_an_id_number_as_excel_shows_it_is_precision_lost_not_a_duplicate(tmp_path):
    """'5.13434E+17' in a text cell (a CSV saved from Excel) has lost its digits like a number
    cell: three different people with it are not one person three times."""
    county = base_county()
    for row in county.members[:3]:
        row["证件号码"] = "5.13434E+17"
    county.members[3]["证件号码"] = "5.13434e17"
    path = county.write(tmp_path / "shown.xlsx")
    issues = exitcheck.validate(exitcheck.load([path]), AS_OF)
    assert sorted(i.row for i in issues if i.code == "id_precision_lost") == [excel_row(MB, n) for n in range(4)]
    assert not [i for i in issues if i.code in ("duplicate_person", "id_checksum")]


def test_a_number_below_its_minimum_says_the_minimum(tmp_path):
    """-100 is a number: 'expected a number' told the clerk nothing about what is wrong with it."""
    county = base_county()
    county.households[0]["人均纯收入"] = -100
    county.households[1]["家庭人口数"] = 0
    path = county.write(tmp_path / "low.xlsx")
    bad = {i.field: i for i in exitcheck.validate(exitcheck.load([path]), AS_OF) if i.code == "bad_value"}
    assert "expected a number of at least 0" in bad["income_per_capita"].message("en")
    assert "应为不小于 0 的数字" in bad["income_per_capita"].message("zh")
    assert "expected a whole number of at least 1" in bad["household_size"].message("en")


@pytest.mark.parametrize("suffix", [".xlsx", ".xls", ".ods"])
def test_an_excel_error_cell_is_a_value_that_cannot_be_read_not_a_blank(tmp_path, suffix):
    """calamine gives #N/A as '', in every format. A failed VLOOKUP in the income column was
    'blank', and a #NAME? birth date gave no issue at all: each is now bad_value showing the
    error, with the same message whether the register is an .xlsx, an .xls or an .ods."""
    from builders import FormulaError

    county = base_county()
    county.households[0]["人均纯收入"] = FormulaError("#N/A")
    county.households[1]["家庭人口数"] = FormulaError("#DIV/0!")
    county.members[4]["出生日期"] = FormulaError("#NAME?")
    path = county.write(tmp_path / f"errors{suffix}")
    issues = exitcheck.validate(exitcheck.load([path]), AS_OF)
    bad = {(i.sheet, i.row, i.value) for i in issues if i.code == "bad_value"}
    assert bad == {(HH, excel_row(HH, 0), "#N/A"), (HH, excel_row(HH, 1), "#DIV/0!"), (MB, excel_row(MB, 4), "#NAME?")}
    assert not [i for i in issues if i.code == "missing_value"]
    income = next(i for i in issues if i.value == "#N/A")
    assert income.message("zh") == "「人均纯收入」的值「#N/A」无法识别(应为不小于 0 的数字)"


@pytest.mark.parametrize("suffix", [".xlsx", ".xls", ".ods"])
def test_an_error_value_in_an_id_or_text_column_is_not_data(tmp_path, suffix):
    """A VLOOKUP that failed in 户编号, 证件号码 or 乡镇 read as the text "#N/A": two households
    of ID #N/A were one duplicated household, two members of ID #N/A one person in two
    households, and #N/A a township. Each is a value that cannot be read, as in a number column."""
    from builders import FormulaError

    county = base_county()
    for row in county.households[:2]:
        row["户编号"] = FormulaError("#N/A")
    county.households[2]["乡镇"] = FormulaError("#REF!")
    county.members[0]["证件号码"] = FormulaError("#N/A")
    county.members[3]["证件号码"] = FormulaError("#N/A")
    path = county.write(tmp_path / f"lookups{suffix}")
    issues = exitcheck.validate(exitcheck.load([path]), AS_OF)
    bad = sorted((i.sheet, i.row, i.field, i.value) for i in issues if i.code == "bad_value")
    assert bad == sorted([(HH, excel_row(HH, 0), "household_id", "#N/A"), (HH, excel_row(HH, 1), "household_id", "#N/A"),
                          (HH, excel_row(HH, 2), "township", "#REF!"),
                          (MB, excel_row(MB, 0), "id_number", "#N/A"), (MB, excel_row(MB, 3), "id_number", "#N/A")])
    assert not {i.code for i in issues} & {"duplicate_household", "duplicate_person", "id_checksum", "missing_value"}
    id_issue = next(i for i in issues if i.field == "id_number")
    assert id_issue.message("zh") == "「证件号码」的值「#N/A」无法识别(是电子表格的错误值: 公式没有算出结果)"
    assert not [i for i in issues if i.household_id == "#N/A"]


def test_a_household_id_in_two_workbooks_of_a_folder_names_each_rows_file_and_sheet(tmp_path):
    """A folder of township workbooks: 'appears on rows 5, 8' did not say that row 5 is in one
    file and row 8 in another, so the clerk could not find them."""
    county = base_county()
    towns = {"越城镇": county.copy(), "中所镇": county.copy()}
    for town, part in towns.items():
        part.households = [h for h in county.households if h["乡镇"] == town]
        ids = {h["户编号"] for h in part.households}
        part.members = [m for m in county.members if m["户编号"] in ids]
    towns["中所镇"].villages = towns["中所镇"].townships = []
    reused = towns["越城镇"].households[0]["户编号"]
    towns["中所镇"].households[1]["户编号"] = reused  # 中所镇 gave a household 越城镇's number
    folder = tmp_path / "registers"
    folder.mkdir()
    first, second = towns["越城镇"].write(folder / "a.xlsx"), towns["中所镇"].write(folder / "b.xlsx")
    issues = [i for i in exitcheck.validate(exitcheck.load([folder]), AS_OF) if i.code == "duplicate_household"]
    assert [(i.file, i.sheet, i.row, i.column) for i in issues] == [
        (str(first), HH, excel_row(HH, 0), "A"), (str(second), HH, excel_row(HH, 1), "A")]
    zh = f"户编号「{reused}」出现在{first} 工作表「户表」第 {excel_row(HH, 0)} 行、{second} 工作表「户表」第 {excel_row(HH, 1)} 行"
    en = f"household ID '{reused}' appears on {first} sheet '户表' row {excel_row(HH, 0)}, {second} sheet '户表' row {excel_row(HH, 1)}"
    # two households with one number: what they differ in, and which row is audited, by file too
    zh += f", 各行的乡镇、行政村、户主姓名、住房编号不一致, 按第一行({first} 工作表「户表」第 {excel_row(HH, 0)} 行)核查, 请核实哪行正确"
    en += (f"; they differ in township, village, head of household, house id, and the first row ({first} sheet '户表' "
           f"row {excel_row(HH, 0)}) is audited: check which is right")
    assert [i.message("zh") for i in issues] == [zh, zh]
    assert [i.message("en") for i in issues] == [en, en]


def test_a_household_id_on_two_township_sheets_of_one_workbook_names_each_sheet(tmp_path):
    """One workbook, a household sheet per township: each row is named by its sheet; the file,
    the same for both, is the issue's own."""
    import xlsxwriter

    from builders import write_sheet

    county = base_county()
    county.households[3]["户编号"] = county.households[0]["户编号"]
    path = tmp_path / "county.xlsx"
    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    for town, sheet in (("越城镇", "越城镇户表"), ("中所镇", "中所镇户表")):
        write_sheet(book, sheet, [h for h in county.households if h["乡镇"] == town])
    write_sheet(book, MB, county.members)
    book.close()
    issues = [i for i in exitcheck.validate(exitcheck.load([path]), AS_OF) if i.code == "duplicate_household"]
    first, second = excel_row("越城镇户表", 0), excel_row("中所镇户表", 0)
    assert [(i.file, i.sheet, i.row) for i in issues] == [(str(path), "中所镇户表", second), (str(path), "越城镇户表", first)]
    assert {i.message("zh") for i in issues} == {f"户编号「513434000001」出现在工作表「越城镇户表」第 {first} 行、工作表「中所镇户表」第 {second} 行"
                                                 f", 各行的乡镇、行政村、户主姓名、住房编号不一致, 按第一行(工作表「越城镇户表」第 {first} 行)核查, 请核实哪行正确"}
    assert {i.message("en") for i in issues} == {f"household ID '513434000001' appears on sheet '越城镇户表' row {first}, sheet '中所镇户表' row {second}"
                                                 f"; they differ in township, village, head of household, house id, and the first row "
                                                 f"(sheet '越城镇户表' row {first}) is audited: check which is right"}


def test_a_repeated_household_whose_rows_differ_in_income_says_which_row_is_audited(tmp_path):
    """A household on two rows, the second with the updated income: the audit reads the first,
    and the message said only where the rows are (a clerk's test: 4100 audited, 4300 typed)."""
    county = base_county()
    county.households.append(dict(county.households[2], 人均纯收入=4300))
    county.households[2]["人均纯收入"] = 4100
    issues = [i for i in exitcheck.validate(exitcheck.load([county.write(tmp_path / "c.xlsx")]), AS_OF)
              if i.code == "duplicate_household"]
    first, last = excel_row(HH, 2), excel_row(HH, len(county.households) - 1)
    assert {i.message("zh") for i in issues} == {
        f"户编号「513434000003」出现在第 {first}、{last} 行, 各行的人均纯收入不一致, 按第一行(第 {first} 行)核查, 请核实哪行正确"}
    assert {i.message("en") for i in issues} == {
        f"household ID '513434000003' appears on rows {first}, {last}; they differ in per-capita net income, "
        f"and the first row (row {first}) is audited: check which is right"}


def test_a_household_id_repeated_on_one_sheet_keeps_the_short_message(tmp_path):
    path = planted_county().write(tmp_path / "planted.xlsx")
    issues = [i for i in exitcheck.validate(exitcheck.load([path]), AS_OF) if i.code == "duplicate_household"]
    rows = f"{excel_row(HH, 2)}、{excel_row(HH, 6)}"
    assert {i.message("zh") for i in issues} == {f"户编号「513434000003」出现在第 {rows} 行"}
    assert {i.message("en") for i in issues} == {f"household ID '513434000003' appears on rows {rows.replace('、', ', ')}"}


#: What a household id cell can be found to be (no_head and size_mismatch follow from them)
ID_CODES = {"orphan_member", "household_id_zeros_lost", "household_id_precision_lost"}


def zeros_county(household_cell, member_cell):
    """Household 1's id as the household sheet holds it and as its members' rows hold it."""
    county = base_county()
    county.households[0]["户编号"] = household_cell
    for row in county.members[:3]:
        row["户编号"] = member_cell
    return county


@pytest.mark.parametrize(("household_cell", "cause_zh", "cause_en"), [
    (1, "工作表「户表」的「户编号」列存为数字, Excel 去掉了前导零",
     "the '户编号' column on sheet '户表' was stored as numbers and Excel dropped the leading zeros"),
    ("01", "工作表「户表」的「户编号」少了前导零, 该列很可能曾存为数字, Excel 去掉了前导零",
     "the '户编号' column on sheet '户表' has fewer leading zeros: the column was most likely stored as numbers once, and Excel dropped them"),
], ids=["number cell", "text with fewer zeros"])
def test_members_of_a_household_whose_id_lost_its_leading_zeros_are_told_why(tmp_path, household_cell, cause_zh, cause_en):
    """000001 on the member sheet, 1 on the household sheet (Excel drops the zeros of a number
    cell): every member was an orphan of a household 'not in the households sheet', with no
    word of why. The cause and the household row are named; the members stay unjoined, their
    issues filed under the household they match (so under its township), the id as typed kept."""
    path = zeros_county(household_cell, "000001").write(tmp_path / "zeros.xlsx")
    parsed = exitcheck.prepare(exitcheck.load([path]), AS_OF)
    issues = [i for i in parsed.issues if i.code in ID_CODES]
    shown = str(household_cell)
    assert [(i.code, i.sheet, i.row, i.column, i.value, i.household_id) for i in issues] == [
        ("household_id_zeros_lost", MB, excel_row(MB, n), "A", "000001", shown) for n in range(3)]
    assert issues[0].message("zh") == (
        f"户编号「000001」不在户表中, 但忽略前导零后与工作表「户表」第 {excel_row(HH, 0)} 行的户编号「{shown}」相同(成员未归入该户): "
        f"{cause_zh}; 请把该列设置为文本格式, 按原件重新录入户编号(含前导零), 或重新导入该表")
    assert issues[0].message("en") == (
        f"household ID '000001' is not in the households sheet, but ignoring leading zeros it matches household ID '{shown}' "
        f"on sheet '户表' row {excel_row(HH, 0)} (the member is not joined to it): {cause_en}; format that column as Text "
        "and type the IDs again with their leading zeros, or import the sheet again")
    assert parsed.tables["households"]["living_members"].iloc[0] == 0  # never joined on a guess


def test_a_member_id_that_lost_its_zeros_names_the_member_sheet(tmp_path, run_cli):
    """The other way round: the member sheet's column was the one stored as numbers."""
    path = zeros_county("000001", 1).write(tmp_path / "zeros.xlsx")
    result = run_cli("validate", str(path), "--json", "--lang", "en", "--as-of", AS_OF.isoformat())
    issues = [i for i in json.loads(result.stdout)["data_issues"] if i["code"] in ID_CODES]
    assert [(i["code"], i["sheet"], i["row"], i["value"]) for i in issues] == [
        ("household_id_zeros_lost", MB, excel_row(MB, n), "1") for n in range(3)]
    assert issues[0]["message"].startswith(
        f"household ID '1' is not in the households sheet, but ignoring leading zeros it matches household ID '000001' "
        f"on sheet '户表' row {excel_row(HH, 0)} (the member is not joined to it): the '户编号' column on sheet '成员表' "
        "was stored as numbers and Excel dropped the leading zeros;")
    explained = run_cli("explain", "household_id_zeros_lost", "--lang", "en")
    assert explained.returncode == 0 and "leading zeros" in explained.stdout


#: What a household's own findings add when 3 of its members have 1 for 000001
POINTER_ZH = "(工作表「成员表」中有 3 名成员的户编号为「1」, 疑为户编号的前导零丢失所致, 见 household_id_zeros_lost)"
POINTER_EN = (" (3 members on sheet '成员表' with household ID '1': most likely the household IDs lost their leading zeros; "
              "see household_id_zeros_lost)")


def test_a_household_whose_members_lost_its_zeros_says_they_are_why(tmp_path):
    """The member sheet's 户编号 stored as numbers: household 000001 has, as far as the audit
    can tell, no head and no living member. Its no_head and size_mismatch said only that, and
    a cadre went looking for a head who is on the member sheet; they now point to the members
    and to household_id_zeros_lost. A household really without a head is told nothing more."""
    county = zeros_county("000001", 1)
    county.members[3]["与户主关系"] = "之父"  # household 2's head is not marked
    path = county.write(tmp_path / "zeros.xlsx")
    issues = exitcheck.validate(exitcheck.load([path]), AS_OF)
    mine = {i.code: i for i in issues if i.household_id == "000001" and i.code in ("no_head", "size_mismatch")}
    assert mine["no_head"].message("zh") == "该户没有在世的户主" + POINTER_ZH
    assert mine["no_head"].message("en") == "the household has no living head" + POINTER_EN
    assert mine["size_mismatch"].message("zh") == "家庭人口数为 3, 成员表在世成员 0 人" + POINTER_ZH
    assert mine["size_mismatch"].message("en") == "household size is 3 but the members sheet has 0 living members" + POINTER_EN
    (other,) = [i for i in issues if i.code == "no_head" and i.household_id != "000001"]
    assert (other.message("zh"), other.message("en")) == ("该户没有在世的户主", "the household has no living head")


def test_members_matching_two_households_but_for_zeros_point_from_both_and_are_filed_under_neither(tmp_path):
    """1 is 01 and 001 but for zeros: both households point to the members, who may be either's;
    their issues keep the id as typed (which household, and so which township, is not guessed)."""
    county = zeros_county("01", 1)
    county.households[3]["户编号"] = "001"  # in another township, its own members now orphans
    path = county.write(tmp_path / "zeros.xlsx")
    issues = exitcheck.validate(exitcheck.load([path]), AS_OF)
    sizes = {i.household_id: i.message("zh") for i in issues if i.code == "size_mismatch"}
    assert sizes == {"01": "家庭人口数为 3, 成员表在世成员 0 人" + POINTER_ZH, "001": "家庭人口数为 3, 成员表在世成员 0 人" + POINTER_ZH}
    lost = [(i.row, i.value, i.household_id) for i in issues if i.code == "household_id_zeros_lost"]
    assert lost == [(excel_row(MB, n), "1", "1") for n in range(3)]


def test_the_household_row_in_another_workbook_is_named_with_its_file(tmp_path):
    """A folder: the household sheet in one workbook, the members in another."""
    county = zeros_county(1, "000001")
    households, members = county.copy(), county.copy()
    households.members, members.households = [], []
    folder = tmp_path / "registers"
    folder.mkdir()
    first = households.write(folder / "a-households.xlsx")
    members.write(folder / "b-members.xlsx")
    issues = [i for i in exitcheck.validate(exitcheck.load([folder]), AS_OF) if i.code == "household_id_zeros_lost"]
    assert len(issues) == 3
    assert f"与{first} 工作表「户表」第 {excel_row(HH, 0)} 行的户编号「1」相同" in issues[0].message("zh")
    assert f"): {first} 工作表「户表」的「户编号」列存为数字" in issues[0].message("zh")


@pytest.mark.parametrize(("household_cell", "member_cell", "expected"), [
    # 18 digits as a number: the digits are gone, so that cell is household_id_precision_lost
    # only, and its members are orphans of it: no match is guessed from a rounded number, even
    # one whose digits, read as a whole number, look like the text without its zero
    (51343400100100000.0, "051343400100100000",
     {(HH, 0): {"household_id_precision_lost"}, **{(MB, n): {"orphan_member"} for n in range(3)}}),
    ("051343400100100000", 51343400100100000.0,
     {(MB, n): {"household_id_precision_lost"} for n in range(3)}),
    # 15 digits as a number are exact: only the zeros are lost
    (513434001001001, "0513434001001001", {(MB, n): {"household_id_zeros_lost"} for n in range(3)}),
], ids=["household 18 digits", "members 18 digits", "15 digits"])
def test_a_household_id_cell_is_either_precision_lost_or_zeros_lost_never_both(tmp_path, household_cell, member_cell, expected):
    path = zeros_county(household_cell, member_cell).write(tmp_path / "ids.xlsx")
    issues = [i for i in exitcheck.validate(exitcheck.load([path]), AS_OF) if i.code in ID_CODES]
    found: dict[tuple[str, int], set[str]] = {}
    for issue in issues:
        found.setdefault((issue.sheet, issue.row), set()).add(issue.code)
    assert found == {(sheet, excel_row(sheet, n)): codes for (sheet, n), codes in expected.items()}


def test_an_id_number_cell_past_the_largest_float_is_precision_lost_not_a_crash(tmp_path):
    """xlsxwriter, like Excel, writes 1.7976931348623155e308 with 16 digits, 1.797693134862316E+308,
    which is past the largest float: calamine reads it back as infinity. That number cell has
    lost an ID's digits like any other, and its value is shown, not a traceback."""
    county = base_county()
    county.members[0]["证件号码"] = 1.7976931348623155e308
    path = county.write(tmp_path / "huge.xlsx")
    issues = exitcheck.validate(exitcheck.load([path]), AS_OF)
    (lost,) = [i for i in issues if i.code == "id_precision_lost"]
    assert lost.row == excel_row(MB, 0) and lost.value == "inf"


def test_more_issues_than_the_screen_shows_say_how_to_get_them_all(tmp_path, run_cli):
    """The screen shows the first 20 issues: a clerk with more is told how to get every one,
    unless --out is writing them already."""
    county = base_county()
    for row in county.households:
        row["人均纯收入"] = "不详"
    for row in county.members:
        row["证件号码"] = "123"
    path = county.write(tmp_path / "many.xlsx")
    hint = "全部问题及其位置: 加 --out 文件夹, 写出 issues.xlsx"
    shown = run_cli("validate", str(path), "--as-of", AS_OF.isoformat())
    assert shown.returncode == 1 and "前 20 条" in shown.stdout and hint in shown.stdout, shown.stdout
    written = run_cli("validate", str(path), "--as-of", AS_OF.isoformat(), "--out", "o")
    assert written.returncode == 1 and hint not in written.stdout and "问题清单已写入" in written.stdout, written.stdout
    english = run_cli("validate", str(path), "--as-of", AS_OF.isoformat(), "--lang", "en")
    assert "add --out FOLDER to write issues.xlsx" in english.stdout, english.stdout
