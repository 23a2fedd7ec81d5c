"""Formats and layouts: national-system exports (Sheet1, one register per file), .xls, CSV in
UTF-8 and GB18030, folders, and the bad files that must end with exit 3 and one line."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest

import exitcheck
from builders import AS_OF, base_county, make_id
from exitcheck.auditing import audit
from exitcheck.errors import InputError

EXPORT_HOUSEHOLDS = ["县(市、区、旗)", "乡(镇)", "行政村", "户编号", "户主姓名", "户主证件号码", "家庭人口数",
                     "贫困户属性", "脱贫标志", "脱贫年度", "人均纯收入", "是否危房户", "危房级别",
                     "是否解决安全饮用水", "是否通生活用电", "是否通广播电视"]
EXPORT_MEMBERS = ["户编号", "人编号", "姓名", "证件号码", "与户主关系", "民族", "文化程度", "在校生状况",
                  "健康状况", "劳动技能", "务工状况", "务工时间（月）", "是否参加城乡居民基本医疗保险", "是否参加大病保险"]


def export_rows():
    head1, wife1, son1 = (make_id(date(1970, 1, 1), 1, True), make_id(date(1972, 2, 2), 2, False), make_id(date(2006, 3, 3), 3, True))
    head2 = make_id(date(1960, 5, 5), 4, True)
    households = [
        ["越西县", "越城镇", "瓦曲村", "513434000101", "阿苏拉哈", head1, 3, "一般脱贫户", "已脱贫(享受政策)", 2018, 5200, "否", "", "是", "是", "是"],
        ["越西县", "越城镇", "瓦曲村", "513434000102", "吉克阿呷", head2, 1, "低保贫困户", "返贫", "", 3900, "是", "D级", "是", "是", "否"],
    ]
    members = [
        ["513434000101", "1", "阿苏拉哈", head1, "户主", "彝族", "小学", "非在校生", "健康", "普通劳动力", "县内务工", 6, "是", "是"],
        ["513434000101", "2", "吉克阿果", wife1, "配偶", "彝族", "文盲或半文盲", "非在校生", "残疾,长期慢性病", "丧失劳动力", "未务工", 0, "是", "是"],
        ["513434000101", "3", "阿苏木呷", son1, "儿子", "彝族", "初中", "八年级", "健康", "无劳动力", "未务工", 0, "是", "否"],
        ["513434000102", "1", "吉克阿呷", head2, "户主", "彝族", "小学", "非在校生", "患有大病", "弱劳动力或半劳动力", "未务工", 0, "否", "否"],
    ]
    return households, members


def write_export_xlsx(folder: Path) -> Path:
    import xlsxwriter

    folder.mkdir(parents=True, exist_ok=True)
    households, members = export_rows()
    for name, headers, rows in (("户信息.xlsx", EXPORT_HOUSEHOLDS, households), ("人员信息.xlsx", EXPORT_MEMBERS, members)):
        book = xlsxwriter.Workbook(str(folder / name), {"strings_to_numbers": False})
        sheet = book.add_worksheet("Sheet1")
        sheet.write(0, 0, "全国扶贫开发信息系统 导出数据")
        sheet.write(1, 0, "导出时间: 2020-06-30")
        sheet.write_row(2, 0, headers)
        for i, row in enumerate(rows, start=3):
            for j, value in enumerate(row):
                if value != "":
                    sheet.write(i, j, value)
        book.close()
    return folder


def test_national_export_sheets_recognised_by_headers(tmp_path):
    folder = write_export_xlsx(tmp_path / "export")
    registers = exitcheck.load([folder])
    assert {s.register for s in registers.sources} == {"households", "members"}
    assert all(s.header_row == 3 for s in registers.sources)
    result = audit(registers, as_of=AS_OF)
    households = result.frames["household"].set_index("household_id")
    # no 农户类别 column, but 贫困户属性/脱贫标志: every household is registered
    assert set(households["category"]) == {"建档立卡户"}
    assert households.loc["513434000101", "status"] == "已脱贫"
    assert households.loc["513434000102", "status"] == "未脱贫"  # 返贫 counts as not exited
    assert households.loc["513434000101", "housing_grade"] == "A"  # 是否危房户 否, no grade
    assert households.loc["513434000102", "housing_grade"] == "D"
    members = result.frames["member"]
    assert set(members.loc[members["name"] == "阿苏木呷", "school_status"]) == {"初中"}  # 八年级
    assert households.loc["513434000101", "disabled_members"] == 1  # "残疾,长期慢性病" means both
    gaps = {(g.rule, g.status, g.household_id) for g in result.gaps}
    assert ("income", "fail", "513434000102") in gaps
    assert ("housing", "fail", "513434000102") in gaps
    assert ("medical", "fail", "513434000102") in gaps
    assert ("broadcast_tv", "fail", "513434000102") in gaps
    assert not [g for g in result.gaps if g.household_id == "513434000101" and g.kind == "indicator" and g.status == "fail"]
    skipped = {s.rule for s in result.skipped}
    assert {"policy_awareness", "satisfaction", "village_incidence"} <= skipped
    assert not [i for i in result.data_issues if i.code != "missing_value"]


def test_xls_workbook(tmp_path):
    xlwt = pytest.importorskip("xlwt")
    households, members = export_rows()
    book = xlwt.Workbook(encoding="utf-8")
    for name, headers, rows in (("户表", EXPORT_HOUSEHOLDS, households), ("成员表", EXPORT_MEMBERS, members)):
        sheet = book.add_sheet(name)
        sheet.write(0, 0, "越西县2020年")
        for j, header in enumerate(headers):
            sheet.write(1, j, header)
        for i, row in enumerate(rows, start=2):
            for j, value in enumerate(row):
                sheet.write(i, j, value)
    path = tmp_path / "registers.xls"
    book.save(str(path))
    registers = exitcheck.load([path])
    assert registers.counts() == {"households": 2, "members": 4}
    assert exitcheck.validate(registers, AS_OF) == [] or all(i.code == "missing_value" for i in exitcheck.validate(registers, AS_OF))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_csv_files_in_utf8_and_gb18030(tmp_path, encoding):
    county = base_county()
    for name, rows in (("户表", county.households), ("成员表", county.members)):
        with (tmp_path / f"{name}.csv").open("w", encoding=encoding, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    registers = exitcheck.load([tmp_path / "户表.csv", tmp_path / "成员表.csv"])
    assert registers.counts() == {"households": 6, "members": 18}
    assert exitcheck.validate(registers, AS_OF) == []


def test_a_csv_date_of_five_digits_is_refused_with_the_serial_date_it_would_be(tmp_path):
    """A CSV saved from a column Excel showed as numbers holds 38655 for 2005-10-30: every CSV
    cell is text, and text is never read as a serial (2019 may be a year typed alone). The
    message says what the serial would mean and how to have it read as a date."""
    county = base_county()
    county.members[0]["出生日期"] = "25571"  # 1970-01-03 as an Excel serial
    county.members[1]["出生日期"] = "1970"
    for name, rows in (("户表", county.households), ("成员表", county.members)):
        with (tmp_path / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    issues = exitcheck.validate(exitcheck.load([tmp_path / "户表.csv", tmp_path / "成员表.csv"]), AS_OF)
    dates = {i.value: i for i in issues if i.field == "birth_date"}
    assert set(dates) == {"25571", "1970"} and {i.code for i in dates.values()} == {"bad_value"}
    assert dates["25571"].message() == ("「出生日期」的值「25571」无法识别(应为日期, 如 2019-10-01; 若它是 Excel 的日期序号, "
                                      "即 1970-01-03: 请在 Excel 中把该列设为日期格式后重新保存)")
    assert "1970-01-03: format the column as dates in Excel and save it again)" in dates["25571"].message("en")
    assert dates["1970"].message() == "「出生日期」的值「1970」无法识别(应为日期, 如 2019-10-01)"  # a year, not 1905-05-23


def test_several_workbooks_one_per_township(tmp_path):
    county = base_county()
    first, second = county.copy(), county.copy()
    first.households = [h for h in county.households if h["乡镇"] == "越城镇"]
    second.households = [h for h in county.households if h["乡镇"] == "中所镇"]
    ids1 = {h["户编号"] for h in first.households}
    first.members = [m for m in county.members if m["户编号"] in ids1]
    second.members = [m for m in county.members if m["户编号"] not in ids1]
    second.villages, second.townships = [], []
    paths = [first.write(tmp_path / "a.xlsx"), second.write(tmp_path / "b.xlsx")]
    registers = exitcheck.load(paths)
    assert registers.counts()["households"] == 6
    assert exitcheck.validate(registers, AS_OF) == []


BAD_FILES = {
    "empty.xlsx": b"",
    "truncated.xlsx": None,  # made from a real workbook below
    "random.xlsx": bytes(range(256)) * 40,
    "csv-named.xlsx": "户编号,乡镇\n1,越城镇\n".encode(),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_exit_3_with_one_line(tmp_path, run_cli, name):
    path = tmp_path / name
    data = BAD_FILES[name]
    if data is None:
        full = base_county().write(tmp_path / "full.xlsx").read_bytes()
        data = full[: len(full) // 2]
    path.write_bytes(data)
    result = run_cli("validate", str(path))
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]
    assert "Traceback" not in result.stderr


def test_sheet_with_no_known_header_exits_3(tmp_path, run_cli):
    import xlsxwriter

    path = tmp_path / "unknown.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Sheet1")
    sheet.write_row(0, 0, ["名称", "数量", "备注"])
    sheet.write_row(1, 0, ["甲", 1, "乙"])
    book.close()
    result = run_cli("validate", str(path))
    assert result.returncode == 3
    assert "没有可识别" in result.stderr


def test_required_column_missing_exits_3_and_is_a_missing_column_issue(tmp_path, run_cli):
    county = base_county()
    for row in county.households:
        del row["人均纯收入"]
    path = county.write(tmp_path / "m.xlsx")
    result = run_cli("validate", str(path), "--json")
    assert result.returncode == 3
    document = json.loads(result.stdout)
    (issue,) = document["data_issues"]
    assert issue["code"] == "missing_column" and issue["field"] == "income_per_capita" and issue["sheet"] == "户表"
    assert "人均纯收入" in result.stderr


def test_missing_file_exits_3(run_cli, tmp_path):
    result = run_cli("validate", str(tmp_path / "nope.xlsx"))
    assert result.returncode == 3 and "nope.xlsx" in result.stderr


def test_one_unreadable_file_does_not_stop_the_others(tmp_path, run_cli):
    good = base_county().write(tmp_path / "good.xlsx")
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"\x00garbage")
    result = run_cli("audit", str(good), str(bad), "--out", str(tmp_path / "out"), "--as-of", AS_OF.isoformat())
    assert result.returncode == 3
    assert (tmp_path / "out" / "gaps.json").exists()
    strict = run_cli("audit", str(good), str(bad), "--strict", "--out", str(tmp_path / "out2"))
    assert strict.returncode == 3 and not (tmp_path / "out2").exists()
    with pytest.raises(InputError):
        exitcheck.load([good, bad], strict=True)


def test_columns_command_shows_how_headers_were_read(tmp_path, run_cli):
    county = base_county()
    for row in county.households:
        row["自定义列"] = "x"
    result = run_cli("columns", str(county.write(tmp_path / "c.xlsx")))
    assert result.returncode == 0
    assert "income_per_capita" in result.stdout and "自定义列" in result.stdout


def test_workspace_headers_and_limits_reach_validate(tmp_path, run_cli):
    county = base_county()
    for row in county.households:
        row["户主名字"] = row.pop("户主姓名")
    path = county.write(tmp_path / "m.xlsx")
    without = run_cli("validate", str(path), cwd=tmp_path)
    assert without.returncode == 3  # 户主姓名 is required and 户主名字 means nothing by itself
    (tmp_path / "exitcheck.yaml").write_text("headers:\n  households: {户主名字: head_name}\n", encoding="utf-8")
    mapped = run_cli("validate", str(path), "--as-of", AS_OF.isoformat(), cwd=tmp_path)
    assert mapped.returncode == 0, mapped.stderr
    (tmp_path / "exitcheck.yaml").write_text(
        "headers:\n  households: {户主名字: head_name}\nlimits: {max_rows: 3}\n", encoding="utf-8")
    limited = run_cli("validate", str(path), cwd=tmp_path)
    assert limited.returncode == 3 and "max_rows" in limited.stderr


def test_a_register_missing_because_its_file_is_unreadable_says_which_file_and_why(tmp_path, run_cli):
    """Households and members kept in two workbooks, the members' one truncated: 'no members
    register' alone would send the clerk looking for a sheet, not for a damaged file."""
    from builders import County

    county = base_county()
    folder = tmp_path / "split"
    folder.mkdir()
    County(households=county.households, villages=county.villages, townships=county.townships).write(folder / "户表.xlsx")
    whole = County(members=county.members).write(folder / "members.tmp").read_bytes()
    (folder / "members.tmp").unlink()
    (folder / "成员表.xlsx").write_bytes(whole[: len(whole) // 2])
    done = run_cli("validate", str(folder), "--lang", "en")
    assert done.returncode == 3
    assert "no members register" in done.stderr
    assert "unreadable: " in done.stderr and "成员表.xlsx: file is corrupt or truncated" in done.stderr
    assert "无法读取" in run_cli("validate", str(folder)).stderr


def test_two_refused_sheets_of_a_file_each_name_their_own_missing_columns(tmp_path):
    """Two household-like lists in one workbook, each lacking other columns: each sheet's message
    lists its own missing columns, once each (they were all given to the first sheet)."""
    import xlsxwriter

    good = base_county().write(tmp_path / "registers.xlsx")
    lists = tmp_path / "低收入户名单.xlsx"
    book = xlsxwriter.Workbook(str(lists))
    for name, headers in (("低收入户", ["乡镇", "行政村", "户主姓名", "人均纯收入", "家庭人口数"]),
                          ("边缘户", ["乡镇", "行政村", "户主姓名", "人均纯收入"])):
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, headers)
        sheet.write_row(1, 0, ["越城镇", "瓦曲村", "户主1", 3000, 3][: len(headers)])
    book.close()
    (failure,) = exitcheck.load([good, lists]).failures
    english = failure.message("en")
    first, second = english.split("; sheet ")
    assert "'低收入户'" in first and "household_size" not in first and first.count("household_id") == 1
    assert second.startswith("'边缘户'") and "household_size" in second
    assert "工作表「低收入户」" in failure.message("zh") and "工作表「边缘户」" in failure.message("zh")


def test_excels_unicode_text_says_how_to_save_it(tmp_path, run_cli):
    """Excel's 'Unicode Text' (UTF-16, tabs) is a text file no reader here takes: the message
    says what to save it as, not only what it is not."""
    path = tmp_path / "registers.txt"
    path.write_text("户编号\t乡镇\r\n513434000001\t越城镇\r\n", encoding="utf-16")
    done = run_cli("validate", str(path), "--lang", "en")
    assert done.returncode == 3
    assert "save it as .xlsx or CSV UTF-8" in done.stderr
    assert "另存为 .xlsx" in run_cli("validate", str(path)).stderr


def test_a_folder_whose_workbook_is_in_a_subfolder_names_the_subfolder(tmp_path, run_cli):
    """Folders are read without their subfolders: a register unzipped into a folder of its own
    gave only 'no spreadsheet files found'."""
    nested = tmp_path / "county" / "2020年6月"
    nested.mkdir(parents=True)
    base_county().write(nested / "registers.xlsx")
    done = run_cli("validate", str(tmp_path / "county"), "--lang", "en")
    assert done.returncode == 3
    assert "subfolders are not read" in done.stderr and str(nested) in done.stderr
    assert "子文件夹" in run_cli("validate", str(tmp_path / "county")).stderr


def test_a_csv_quote_never_closed_is_named_not_swallowing_the_rest(tmp_path, run_cli):
    """A stray quote at the start of a cell made the reader take every later line as that one
    cell: 1 member row of 18 was read, and nothing said why. A quoted cell spanning lines that
    does close is still read."""
    county = base_county()
    path = tmp_path / "households.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(county.households[0]))
        writer.writeheader()
        writer.writerows(county.households)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace("户主2", '"户主2', 1)
    broken = tmp_path / "broken.csv"
    broken.write_text("".join(lines), encoding="utf-8")
    done = run_cli("validate", str(broken), "--lang", "en")
    assert done.returncode == 3
    assert "line 3 opens a quote" in done.stderr and "4 lines after it" in done.stderr
    closed = tmp_path / "closed.csv"
    closed.write_text("".join(lines).rstrip("\n") + '"\n', encoding="utf-8")
    assert "opens a quote" not in run_cli("validate", str(closed)).stderr


def test_a_hidden_copy_of_a_register_is_left_out_and_a_hidden_only_register_read(tmp_path, run_cli):
    """An old copy of the households kept in a hidden sheet made every household a duplicate,
    and nothing said the sheet was hidden. It is left out, saying so; a register found only in
    a hidden sheet is read, saying so."""
    import xlsxwriter

    from builders import write_sheet

    county = base_county()
    path = tmp_path / "hidden.xlsx"
    book = xlsxwriter.Workbook(str(path))
    write_sheet(book, "户表", county.households)
    write_sheet(book, "成员表", county.members)
    write_sheet(book, "户表(旧)", county.households)
    book.worksheets()[-1].hide()
    write_sheet(book, "村表", county.villages)
    book.worksheets()[-1].hide()
    book.close()
    registers = exitcheck.load([path])
    assert [s.sheet for s in registers.sources] == ["户表", "成员表", "村表"]
    assert exitcheck.validate(registers, AS_OF) == []
    done = run_cli("validate", str(path), "--lang", "en")
    assert done.returncode == 0, done.stderr
    assert "the hidden sheet '户表(旧)' looks like a households register too and was not read" in done.stderr + done.stdout
    assert "the sheet '村表' is hidden; it was read as the villages register" in done.stderr + done.stdout
