"""Reading a workbook's sheets in two lanes (two calamine handles, two threads) gives exactly
what reading them one after another gives, errors included."""

from __future__ import annotations

from pathlib import Path

import pytest
import xlsxwriter

from exitcheck.errors import InputError
from exitcheck.registers import read
from exitcheck.registers.limits import Limits

SHEETS = {"small": 3, "large": 400, "medium": 40, "tiny": 1}


def xlsx(path: Path, sizes: dict[str, int]) -> Path:
    book = xlsxwriter.Workbook(str(path))
    for name, rows in sizes.items():
        sheet = book.add_worksheet(name)
        for row in range(rows):
            sheet.write_row(row, 0, [f"{name}-{row}", row, row * 0.5, row % 2 == 0])
    book.close()
    return path


def xls(path: Path, sizes: dict[str, int]) -> Path:
    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook()
    for name, rows in sizes.items():
        sheet = book.add_sheet(name)
        for row in range(rows):
            for column, value in enumerate([f"{name}-{row}", row, row * 0.5]):
                sheet.write(row, column, value)
    book.save(str(path))
    return path


@pytest.mark.parametrize("make", [xlsx, xls], ids=["xlsx (scanned)", "xls"])
def test_two_lanes_read_what_one_lane_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make) -> None:
    path = make(tmp_path / f"book.{make.__name__}", SHEETS)
    both = read.read_sheets(path, path.name, Limits())
    assert [sheet.name for sheet in both] == list(SHEETS)  # workbook order, not reading order
    assert [len(sheet.rows) for sheet in both] == list(SHEETS.values())
    assert both[1].rows[399][0] == "large-399"
    monkeypatch.setattr(read, "_cores", lambda: 1)  # one lane: the sheets one after another
    assert read.read_sheets(path, path.name, Limits()) == both


def test_the_largest_sheet_gets_a_lane_of_its_own(tmp_path: Path) -> None:
    from exitcheck.registers.limits import check_zip, scan_package

    path = xlsx(tmp_path / "book.xlsx", SHEETS)
    scan = scan_package(path, path.name, check_zip(path, path.name, Limits()), Limits())
    reader = read._SheetReader(path.name, Limits(), scan, lengths_checked=True)
    if read._cores() < 2:
        pytest.skip("one core: one lane")
    assert reader._lanes(list(SHEETS)) == [["large"], ["medium", "small", "tiny"]]


def test_of_two_sheets_over_a_limit_the_first_in_the_workbook_is_named(tmp_path: Path) -> None:
    # The larger second sheet is scanned and read first, in its own lane; the message must
    # still name the sheet a clerk meets first, as reading one sheet after another would.
    path = xlsx(tmp_path / "book.xlsx", {"first": 20, "second": 400, "third": 2})
    with pytest.raises(InputError) as raised:
        read.read_sheets(path, path.name, Limits(max_rows=10))
    message = raised.value.message("en")
    assert "'first'" in message and "'second'" not in message and "max_rows" in message
