"""Cells merged down a column over several records (a 乡镇 merged over its block of households)
are read as the value they show on every row they cover, with one note a sheet; other merges in
the records are left as they are."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

import exitcheck
from builders import AS_OF, base_county, excel_row, lay_out
from exitcheck.auditing import audit
from exitcheck.report.gaps_out import township_totals

HH, MB = "户表", "成员表"
READ_AS_SHOWN = "已按显示的值逐行读取"


def merged_xlsx(tmp_path: Path, ranges: dict[str, list[str]], county=None) -> Path:
    """The county as an .xlsx whose `ranges` (sheet -> ["B5:B7", ...]) are merged in Excel's
    way (openpyxl): the top-left cell keeps its value, the cells it covers are emptied."""
    import openpyxl

    path = (county or base_county()).write(tmp_path / "county.xlsx")
    book = openpyxl.load_workbook(path)
    for sheet, spans in ranges.items():
        for span in spans:
            book[sheet].merge_cells(span)
    book.save(path)
    return path


def merged_xls(tmp_path: Path, ranges: dict[str, list[tuple[int, int, int, int]]]) -> Path:
    """The county as an .xls (xlwt) with `ranges` (sheet -> [(first row, last row, first column,
    last column)], 0-based) merged, the covered cells left empty, as Excel saves them."""
    xlwt = pytest.importorskip("xlwt")
    county = base_county()
    book = xlwt.Workbook(encoding="utf-8")
    for name, rows in county.sheets().items():
        layout = lay_out(name, rows, totals=name == HH)
        sheet = book.add_sheet(name)
        for row, first, last, text in layout.merges:
            sheet.write_merge(row, row, first, last, text)
        spans = ranges.get(name, [])
        covered = {(r, c) for r1, r2, c1, c2 in spans for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)}
        for r1, r2, c1, c2 in spans:
            sheet.write_merge(r1, r2, c1, c2, layout.cells.get((r1, c1)))
        for (row, col), value in layout.cells.items():
            if (row, col) not in covered:
                sheet.write(row, col, datetime(value.year, value.month, value.day) if isinstance(value, date) else value)
    path = tmp_path / "county.xls"
    book.save(str(path))
    return path


def merged_notes(registers) -> list[tuple[str, str]]:
    return [note for note in registers.notes if READ_AS_SHOWN in note[0]]


def row(sheet: str, index: int) -> int:
    return excel_row(sheet, index)


def blank(cells) -> list[bool]:
    """Which raw cells are empty (calamine gives '' for an empty cell)."""
    return [cell is None or cell == "" for cell in cells]


# base_county's households: 越城镇 (瓦曲村, 瓦曲村, 马拖村), then 中所镇 (新民村 three times);
# 乡镇 is column B, 行政村 C, 村民小组 D and 备注 X of the 户表; its records start on row 5.
TOWNS = [f"B{row(HH, 0)}:B{row(HH, 2)}", f"B{row(HH, 3)}:B{row(HH, 5)}"]
VILLAGES = [f"C{row(HH, 0)}:C{row(HH, 1)}", f"C{row(HH, 3)}:C{row(HH, 5)}"]


def test_a_township_merged_down_over_its_households_is_read_on_every_row(tmp_path: Path) -> None:
    assert row(HH, 0) == 5
    path = merged_xlsx(tmp_path, {HH: TOWNS + VILLAGES})
    registers = exitcheck.load([path])
    households = registers.raw["households"]
    assert households["township"].tolist() == ["越城镇"] * 3 + ["中所镇"] * 3
    assert households["village"].tolist() == ["瓦曲村", "瓦曲村", "马拖村", "新民村", "新民村", "新民村"]
    assert households["township"].dtype == object  # the cells as read, like every other column
    assert exitcheck.validate(registers, AS_OF) == []  # no 「乡镇」为空, no unknown_village
    assert merged_notes(registers) == [(
        f"{path} 工作表「户表」: B5:B7 等 4 处合并单元格{READ_AS_SHOWN}",
        f"{path} sheet '户表': merged cells B5:B7 and 3 more were read as the value they show on each row",
    )]
    totals = township_totals(audit(registers, as_of=AS_OF))
    assert totals["households"].to_dict() == {"中所镇": 3, "越城镇": 3}  # no 乡镇未填 row
    assert totals["incidence"].notna().all()  # not 待核实


def test_the_note_is_shown_once_a_sheet(tmp_path: Path, run_cli) -> None:
    county = base_county()
    path = merged_xlsx(tmp_path, {HH: TOWNS, MB: [f"A{row(MB, 3 * h)}:A{row(MB, 3 * h + 2)}" for h in range(6)]}, county)
    registers = exitcheck.load([path])
    assert registers.raw["members"]["household_id"].tolist() == [m["户编号"] for m in county.members]
    assert exitcheck.validate(registers, AS_OF) == []  # no orphan_member, no no_head
    assert [zh.split(": ")[0] for zh, _ in merged_notes(registers)] == [f"{path} 工作表「户表」", f"{path} 工作表「成员表」"]
    shown = run_cli("validate", str(path), "--as-of", AS_OF.isoformat())
    assert shown.returncode == 0, shown.stderr
    assert "".join(shown.stderr.split()).count(READ_AS_SHOWN) == 2, shown.stderr


def test_an_xls_is_read_the_same(tmp_path: Path) -> None:
    top = row(HH, 0) - 1  # 0-based
    path = merged_xls(tmp_path, {HH: [(top, top + 2, 1, 1), (top + 3, top + 5, 1, 1)]})
    registers = exitcheck.load([path])
    assert registers.raw["households"]["township"].tolist() == ["越城镇"] * 3 + ["中所镇"] * 3
    assert exitcheck.validate(registers, AS_OF) == []
    assert len(merged_notes(registers)) == 1


def test_merges_across_columns_in_the_records_are_left_as_they_are(tmp_path: Path) -> None:
    """A merge across several columns is no one column's value: 行政村 and 村民小组 merged on
    one row keep the village in its own column, and a block merged over 乡镇 and 行政村 is not
    spread over the rows it covers."""
    across = f"C{row(HH, 0)}:D{row(HH, 0)}"
    block = f"B{row(HH, 3)}:C{row(HH, 5)}"
    registers = exitcheck.load([merged_xlsx(tmp_path, {HH: [across, block]})])
    households = registers.raw["households"]
    assert households["village"][0] == "瓦曲村" and blank(households["group"])[:2] == [True, False]
    assert households["township"][3] == "中所镇" and blank(households["township"])[3:] == [False, True, True]
    assert blank(households["village"])[3:] == [True, True, True]  # C8 is covered by the block
    assert merged_notes(registers) == []
    missing = {(i.field, i.row) for i in exitcheck.validate(registers, AS_OF) if i.code == "missing_value"}
    assert {("township", row(HH, 4)), ("township", row(HH, 5))} <= missing


def test_a_merge_from_the_header_or_over_the_totals_row_or_an_unread_column(tmp_path: Path) -> None:
    """A header merged down into the records shows the header, not a value: its records stay
    blank. A merge that runs over the 合计 row does not make it a household. A merge in a column
    read as no field (备注) is not filled, and said nothing of."""
    county = base_county()
    county.households[0]["备注"] = "2019年危房改造"
    notes_column = "X"
    assert list(county.households[0]).index("备注") == 23
    header = row(HH, 0) - 1
    path = merged_xlsx(tmp_path, {HH: [
        f"D{header}:D{row(HH, 5)}",  # 村民小组 header merged down over every record
        f"B{row(HH, 3)}:B{row(HH, 6)}",  # 中所镇 merged over its households and the 合计 row below them
        f"{notes_column}{row(HH, 0)}:{notes_column}{row(HH, 2)}",
    ]}, county)
    registers = exitcheck.load([path])
    households = registers.raw["households"]
    assert len(households) == 6
    assert all(blank(households["group"]))  # not 村民小组, the header it shows
    assert households["township"].tolist() == ["越城镇"] * 3 + ["中所镇"] * 3
    assert households["备注"][0] == "2019年危房改造" and blank(households["备注"])[:3] == [False, True, True]
    assert merged_notes(registers) == [(
        f"{path} 工作表「户表」: 合并单元格 B{row(HH, 3)}:B{row(HH, 6)} {READ_AS_SHOWN}",
        f"{path} sheet '户表': the merged cells B{row(HH, 3)}:B{row(HH, 6)} were read as the value they show on each row",
    )]
    assert [i for i in exitcheck.validate(registers, AS_OF) if i.field == "township"] == []
