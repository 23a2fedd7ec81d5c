"""A required column whose header was misspelt or blanked: `exitcheck columns` shows the mapping
(the case it exists for), and the missing-column message names the header, the cell and how to
fix it, in both languages."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl

from builders import AS_OF, base_county


def _with_header(tmp_path: Path, name: str, header: str | None) -> tuple[Path, str]:
    """The test county with 户表's header 户主姓名 replaced by `header` (None: blanked);
    returns the workbook and the cell that held it (e.g. E4)."""
    path = base_county().write(tmp_path / f"{name}.xlsx")
    book = openpyxl.load_workbook(path)
    (cell,) = [c for row in book["户表"].iter_rows(max_row=10) for c in row if c.value == "户主姓名"]
    cell.value = header
    book.save(path)
    return path, cell.coordinate


def test_columns_shows_the_mapping_when_a_required_header_is_misspelt(tmp_path, run_cli):
    path, cell = _with_header(tmp_path, "renamed", "户主名字")
    done = run_cli("columns", str(path))
    assert done.returncode == 3, done.stderr  # the README: a required column missing is exit 3
    assert "Traceback" not in done.stderr
    table = done.stdout
    letter = cell.rstrip("0123456789")
    assert "工作表「户表」" in table and "缺少必填列, 整张表未读取" in table
    (renamed,) = [line for line in table.splitlines() if "户主名字" in line]
    assert renamed.split()[0] == letter and "(未知列, 原样保留)" in renamed
    (missing,) = [line for line in table.splitlines() if "户主姓名" in line]
    assert "head_name: 缺少(必填列)" in missing
    assert "工作表「成员表」" in table and "id_number" in table  # the other sheets as ever
    assert "缺少必填列「户主姓名」(head_name)" in done.stderr and f"{cell}「户主名字」" in done.stderr
    english = run_cli("columns", str(path), "--lang", "en")
    assert english.returncode == 3 and "head_name: missing (required)" in english.stdout
    assert "(unknown, carried through)" in english.stdout


def test_columns_of_a_good_register_still_exits_0(tmp_path, run_cli):
    done = run_cli("columns", str(base_county().write(tmp_path / "c.xlsx")))
    assert done.returncode == 0 and done.stderr == "" and "缺少" not in done.stdout


def test_a_blanked_required_header_is_named_by_its_cell_with_the_fix(tmp_path, run_cli):
    path, cell = _with_header(tmp_path, "blank", None)
    audit = run_cli("audit", str(path), "--out", str(tmp_path / "out"), "--as-of", AS_OF.isoformat())
    assert audit.returncode == 3
    zh = audit.stderr
    assert "缺少必填列「户主姓名」(head_name)" in zh and f"表头为空的单元格: {cell}" in zh
    assert f"请在单元格 {cell} 写上列名「户主姓名」" in zh
    en = run_cli("audit", str(path), "--out", str(tmp_path / "out"), "--as-of", AS_OF.isoformat(), "--lang", "en").stderr
    assert "lacks the required column 户主姓名 (head_name)" in en and f"blank header cell: {cell}" in en
    assert f"type the header 户主姓名 into cell {cell}" in en
    columns = run_cli("columns", str(path))
    assert columns.returncode == 3 and "(表头为空, 原样保留)" in columns.stdout


def test_a_misspelt_required_header_says_how_to_map_it(tmp_path, run_cli):
    path, cell = _with_header(tmp_path, "renamed", "户主名字")
    zh = run_cli("validate", str(path)).stderr
    assert f"未识别的表头: {cell}「户主名字」" in zh
    assert "用 --headers 文件" in zh and "exitcheck.yaml 的 headers:" in zh and "{households: {户主名字: head_name}}" in zh
    en = run_cli("validate", str(path), "--lang", "en").stderr
    assert f"headers that match no field: {cell} '户主名字'" in en
    assert "--headers FILE" in en and "{households: {户主名字: head_name}}" in en
    # and the mapping the message gives does work
    (tmp_path / "headers.yaml").write_text("households: {户主名字: head_name}\n", encoding="utf-8")
    mapped = run_cli("validate", str(path), "--headers", str(tmp_path / "headers.yaml"), "--as-of", AS_OF.isoformat())
    assert mapped.returncode == 0, mapped.stderr


def test_validate_json_gives_the_missing_column_issue_its_field_and_cell(tmp_path, run_cli):
    path, cell = _with_header(tmp_path, "blank", None)
    done = run_cli("validate", str(path), "--json")
    assert done.returncode == 3
    (issue,) = json.loads(done.stdout)["data_issues"]
    assert issue["code"] == "missing_column" and issue["header"] == "户主姓名" and issue["field"] == "head_name"
    assert issue["message"].startswith("缺少必填列「户主姓名」(head_name)") and "()" not in issue["message"]
    assert cell in issue["message"]
    english = run_cli("validate", str(path), "--json", "--lang", "en")
    (issue,) = json.loads(english.stdout)["data_issues"]
    assert issue["message"].startswith("required column '户主姓名' (head_name) is missing")


def test_validate_out_writes_the_missing_column_issue(tmp_path, run_cli):
    """--out gets what --json prints, as on any other day: the refused sheet is a data issue."""
    path, _cell = _with_header(tmp_path, "blank", None)
    out = tmp_path / "out"
    done = run_cli("validate", str(path), "--json", "--out", str(out))
    assert done.returncode == 3
    written = json.loads((out / "issues.json").read_text(encoding="utf-8"))
    assert written["data_issues"] == json.loads(done.stdout)["data_issues"]
    sheet = openpyxl.load_workbook(out / "issues.xlsx").worksheets[0]
    assert any("户主姓名" in str(c.value) for row in sheet.iter_rows() for c in row if c.value)
    plain = run_cli("validate", str(path), "--out", str(tmp_path / "out2"))
    assert plain.returncode == 3 and (tmp_path / "out2" / "issues.xlsx").exists() and "问题清单已写入" in plain.stdout


def _with_sheet(tmp_path: Path, sheet: str, headers: list[str]) -> Path:
    """The test county with one more sheet holding `headers` and a row of figures."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = base_county().write(tmp_path / "county.xlsx")
    book = openpyxl.load_workbook(path)
    extra = book.create_sheet(sheet)
    extra.append(headers)
    extra.append(["越城镇", "古史村", *range(120, 120 + len(headers) - 2)])
    book.save(path)
    return path


SUMMARY = ["乡镇", "行政村", "户数", "人口数", "人均纯收入", "住房安全等级"]


def test_a_table_of_figures_beside_the_registers_is_left_out_and_said_so(tmp_path, run_cli):
    """A 统计 sheet with register-like headers and no 户编号 holds no household records: it
    stopped the audit and every delivery (exit 3, 'its households not counted') though 户表 was
    read whole. It is left out with a note; the audit reads every household."""
    path = _with_sheet(tmp_path, "统计", SUMMARY)
    done = run_cli("audit", str(path), "--out", "o", "--as-of", AS_OF.isoformat())
    assert done.returncode == 0, done.stdout + done.stderr  # the test county has no gaps
    assert "户 6(建档立卡 6)" in done.stdout
    assert "工作表「统计」: 有几列像户表的表头, 但没有「户编号」列, 不是户表的记录, 未读取; 户表取自工作表「户表」" in done.stderr
    assert "无法读取" not in done.stdout + done.stderr
    english = run_cli("validate", str(path), "--lang", "en", "--as-of", AS_OF.isoformat())
    assert english.returncode == 0 and "sheet '统计': some headers look like the households register's" in english.stderr


def test_a_sheet_named_as_a_register_or_with_its_key_column_is_still_refused(tmp_path, run_cli):
    """Meant to hold households (its name says so), or holding household IDs: a missing column
    there would lose households, so the sheet is refused as before (exit 3)."""
    for sheet, headers in (("户表2", SUMMARY), ("Sheet2", ["户编号", *SUMMARY])):
        done = run_cli("validate", str(_with_sheet(tmp_path / sheet, sheet, headers)), "--as-of", AS_OF.isoformat())
        assert done.returncode == 3 and f"工作表「{sheet}」" in done.stderr and "未读取" not in done.stderr, done.stderr


def test_a_header_below_the_rows_searched_is_named_with_the_fix(tmp_path, run_cli):
    """Eight lines of notes typed above 户表's header put it past the ten rows searched: the
    clerk was told only that there is no 户表, beside a sheet named 户表."""
    path = base_county().write(tmp_path / "county.xlsx")
    book = openpyxl.load_workbook(path)
    sheet = book["户表"]
    sheet.insert_rows(1, 8)
    for row in range(1, 9):
        sheet.cell(row, 1, f"填表说明第{row}条")
    book.save(path)
    done = run_cli("validate", str(path), "--as-of", AS_OF.isoformat())
    assert done.returncode == 3, done.stdout + done.stderr
    assert "工作表「户表」的前 10 行中没有可识别的表头: 表头须在前 10 行之内, 请删除表头上方多余的行" in done.stderr, done.stderr
    english = run_cli("validate", str(path), "--lang", "en", "--as-of", AS_OF.isoformat())
    assert "sheet '户表' has no recognisable header in its first 10 rows" in english.stderr, english.stderr
    # `exitcheck columns`, run to see why, said only that the sheet was skipped, and exit 0
    columns = run_cli("columns", str(path))
    assert columns.returncode == 3, columns.stdout + columns.stderr
    assert "找不到户表" in columns.stderr and "表头须在前 10 行之内, 请删除表头上方多余的行" in columns.stderr
    assert "工作表「成员表」" in columns.stdout  # the sheets it did understand, shown as ever


def test_a_refused_village_sheet_is_a_data_issue_and_named_where_its_rules_are_skipped(tmp_path, run_cli):
    """村表 refused for a missing 户籍人口: its missing_column issue was only on the terminal
    (not in --json, issues.xlsx or the gap workbook's 数据问题), and the gap workbook said
    'there is no 村表' beside one."""
    path = base_county().write(tmp_path / "county.xlsx")
    book = openpyxl.load_workbook(path)
    (cell,) = [c for row in book["村表"].iter_rows(max_row=10) for c in row if c.value == "户籍人口"]
    cell.value = "人口"
    book.save(path)
    listed = run_cli("validate", str(path), "--json", "--as-of", AS_OF.isoformat())
    assert listed.returncode == 3, listed.stderr
    missing = [i for i in json.loads(listed.stdout)["data_issues"] if i["code"] == "missing_column"]
    assert [(i["sheet"], i["field"]) for i in missing] == [("村表", "population")], missing
    done = run_cli("audit", str(path), "--out", "o", "--as-of", AS_OF.isoformat())
    assert done.returncode == 3, done.stderr
    book = openpyxl.load_workbook(tmp_path / "o" / "gaps.xlsx", read_only=True)
    issues = [row for row in book["数据问题"].iter_rows(values_only=True) if "missing_column" in row]
    assert len(issues) == 1 and "村表" in issues[0], issues
    summary = [str(c) for row in book["汇总"].iter_rows(values_only=True) for c in row if c]
    assert any("没有可读的村表(村表缺少必填列「户籍人口」, 未读取)" in c for c in summary), summary
    assert not any(c.startswith("没有村表") for c in summary), summary
    assert "没有可读的村表(村表缺少必填列「户籍人口」, 未读取)" in done.stdout + done.stderr


def test_columns_of_one_file_of_a_split_register_says_what_the_audit_would_lack(tmp_path, run_cli):
    """The members alone, as an office keeps them in a file of their own: columns shows their
    header and says, as validate does, that no household register was given (exit 3)."""
    book = openpyxl.load_workbook(base_county().write(tmp_path / "county.xlsx"))
    for name in ("户表", "村表", "乡镇表"):
        del book[name]
    book.save(tmp_path / "members.xlsx")
    columns = run_cli("columns", str(tmp_path / "members.xlsx"))
    validate = run_cli("validate", str(tmp_path / "members.xlsx"), "--as-of", AS_OF.isoformat())
    assert columns.returncode == validate.returncode == 3, columns.stderr
    assert "工作表「成员表」" in columns.stdout and "找不到户表" in columns.stderr and "找不到户表" in validate.stderr


def test_columns_names_an_unreadable_file_once(tmp_path, run_cli):
    """The file that could not be read is a failure of its own: the missing-register error
    after it does not say it again."""
    good = base_county().write(tmp_path / "county.xlsx")
    book = openpyxl.load_workbook(good)
    del book["户表"]
    book.save(good)
    broken = tmp_path / "户表.xlsx"
    broken.write_bytes(b"\x00\x01 not a spreadsheet \xff" * 64)
    done = run_cli("columns", str(good), str(broken))
    assert done.returncode == 3 and "找不到户表" in done.stderr
    assert "".join(done.stderr.split()).count("不是可识别的电子表格") == 1, done.stderr
