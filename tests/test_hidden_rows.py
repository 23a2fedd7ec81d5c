"""Rows hidden by hand or by a filter (筛选) are read and audited like the others, and the clerk
is told so: one who filtered the 户表 to a township, or hid households meant to be left out,
sees fewer rows on the screen than the audit counts."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

import exitcheck
from builders import AS_OF, base_county, excel_row

HH, MB = "户表", "成员表"
HIDDEN = "被隐藏(筛选或隐藏行), 已照常读取和核查"


def hidden_xlsx(tmp_path: Path, rows: dict[str, list[int]], *, name: str = "county.xlsx", filtered: bool = False) -> Path:
    """The test county with the Excel rows `rows` (sheet -> row numbers) hidden, as Excel
    saves them (<row r=".." hidden="1">); with `filtered`, under an AutoFilter as well."""
    path = base_county().write(tmp_path / name)
    book = openpyxl.load_workbook(path)
    for sheet, numbers in rows.items():
        for number in numbers:
            book[sheet].row_dimensions[number].hidden = True
        if filtered:
            book[sheet].auto_filter.ref = book[sheet].dimensions
    book.save(path)
    return path


def hidden_notes(registers) -> list[tuple[str, str]]:
    return [note for note in registers.notes if HIDDEN in note[0]]


def test_hidden_household_rows_are_read_and_named(tmp_path: Path) -> None:
    rows = [excel_row(HH, 1), excel_row(HH, 2), excel_row(HH, 4), excel_row(HH, 5)]
    path = hidden_xlsx(tmp_path, {HH: rows}, filtered=True)
    registers = exitcheck.load([path])
    assert len(registers.raw["households"]) == len(base_county().households)  # every row read
    assert exitcheck.validate(registers, AS_OF) == []
    first = "、".join(str(r) for r in rows[:3])
    assert hidden_notes(registers) == [(
        f"{path} 工作表「户表」: 第 {first} 行等 4 行{HIDDEN}; 不该核查的行请从表中删除",
        f"{path} sheet '户表': rows {', '.join(str(r) for r in rows[:3])} and 1 more are hidden (a filter or hidden rows) "
        f"and were read and audited like the others; delete the rows that must not be audited",
    )]


def test_the_note_is_on_the_terminal_for_each_sheet_with_hidden_records(tmp_path: Path, run_cli) -> None:
    path = hidden_xlsx(tmp_path, {HH: [excel_row(HH, 0)], MB: [excel_row(MB, 2), excel_row(MB, 3)]})
    done = run_cli("validate", str(path), "--as-of", AS_OF.isoformat())
    assert done.returncode == 0, done.stderr
    text, hidden = "".join(done.stderr.split()), "".join(HIDDEN.split())  # the terminal wraps long lines
    assert f"工作表「户表」:第{excel_row(HH, 0)}行{hidden}" in text, done.stderr
    assert f"工作表「成员表」:第{excel_row(MB, 2)}、{excel_row(MB, 3)}行{hidden}" in text, done.stderr


def test_rows_hidden_above_the_header_are_no_records_and_say_nothing(tmp_path: Path) -> None:
    path = hidden_xlsx(tmp_path, {HH: [1, 2]})  # the title rows above the header
    registers = exitcheck.load([path])
    assert hidden_notes(registers) == []


def test_a_workbook_with_no_hidden_rows_says_nothing(tmp_path: Path) -> None:
    assert hidden_notes(exitcheck.load([base_county().write(tmp_path / "county.xlsx")])) == []


def sheets_rewritten(source: Path, path: Path, old: bytes, new: bytes) -> Path:
    """`source` with `old` replaced by `new` in its worksheets' XML, as another writer saves it."""
    with zipfile.ZipFile(source) as before, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as after:
        for info in before.infolist():
            data = before.read(info)
            after.writestr(info, data.replace(old, new) if info.filename.startswith("xl/worksheets/") else data)
    assert new in zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    return path


def test_hidden_true_as_other_writers_write_it(tmp_path: Path) -> None:
    """hidden="true" is the same attribute in XML's other spelling of a boolean."""
    source = hidden_xlsx(tmp_path, {HH: [excel_row(HH, 3)]}, name="source.xlsx")
    path = sheets_rewritten(source, tmp_path / "county.xlsx", b'hidden="1"', b'hidden="true"')
    registers = exitcheck.load([path])
    assert [zh.split(": ")[1] for zh, _ in hidden_notes(registers)] == [f"第 {excel_row(HH, 3)} 行{HIDDEN}; 不该核查的行请从表中删除"]


def test_hidden_false_on_every_row_as_libreoffice_writes_it_hides_nothing(tmp_path: Path) -> None:
    source = base_county().write(tmp_path / "source.xlsx")
    path = sheets_rewritten(source, tmp_path / "county.xlsx", b"<row ", b'<row hidden="false" ')
    assert hidden_notes(exitcheck.load([path])) == []


def test_one_hidden_row_is_said_in_the_singular(tmp_path: Path) -> None:
    path = hidden_xlsx(tmp_path, {HH: [excel_row(HH, 2)]})
    (_zh, en), = hidden_notes(exitcheck.load([path]))
    assert f"row {excel_row(HH, 2)} is hidden (a filter or hidden rows) and was read and audited like the others" in en


@pytest.mark.timeout(60)
def test_unclosed_row_tags_after_a_hidden_mark_do_not_stall_the_scan() -> None:
    """A crafted part: hidden="1" and then a 4 MiB stretch of '<row ' with no '>'. A pattern
    that let a tag run over '<' tried every '<row' to the stretch's end: hours of the scan,
    which holds the GIL before calamine may start, from a part that compresses to a few KB."""
    from exitcheck.registers.limits import CHUNK, PartScan, _note_hidden_rows

    data = b'<row r="1" hidden="1"/>' + b"<row " * (CHUNK // 5)
    part = PartScan("xl/worksheets/sheet1.xml")
    _note_hidden_rows(part, data, len(data))
    assert part.hidden_rows == {1}


def test_repeated_and_impossible_hidden_rows_are_kept_once_and_not_at_all() -> None:
    from exitcheck.registers.limits import PartScan, _note_hidden_rows

    data = b'<row r="7" hidden="1"/>' * 1000 + b'<row r="9999999" hidden="1"/>'
    part = PartScan("xl/worksheets/sheet1.xml")
    _note_hidden_rows(part, data, len(data))
    assert part.hidden_rows == {7}  # past Excel's 1,048,576 rows: no row of a workbook
