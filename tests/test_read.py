"""Reading a workbook's sheets in two lanes (two calamine handles, two threads) gives exactly
what reading them one after another gives, errors included."""

from __future__ import annotations

import threading
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

    if read._cores() < 2:
        pytest.skip("one core: one lane")
    path = xlsx(tmp_path / "book.xlsx", SHEETS)
    scan = scan_package(path, path.name, check_zip(path, path.name, Limits()), Limits())
    try:
        reader = read._SheetReader(path.name, Limits(), scan, lengths_checked=True, two_lanes=True)
        assert reader._lanes(list(SHEETS)) == [["large"], ["medium", "small", "tiny"]]
    finally:
        scan.close()


def threads_reading(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Sheet name -> the thread that read it, filled in as sheets are read."""
    seen: dict[str, str] = {}
    real = read._SheetReader._read_sheet

    def recording(self: read._SheetReader, workbook: object, name: str) -> read.SheetRead:
        seen[name] = threading.current_thread().name
        return real(self, workbook, name)

    monkeypatch.setattr(read._SheetReader, "_read_sheet", recording)
    return seen


def test_an_xlsx_is_read_in_two_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if read._cores() < 2:
        pytest.skip("one core: one lane")
    seen = threads_reading(monkeypatch)
    path = xlsx(tmp_path / "book.xlsx", SHEETS)
    read.read_sheets(path, path.name, Limits())
    assert seen["large"] == threading.main_thread().name
    assert {seen[name] for name in ("small", "medium", "tiny")} == {seen["small"]} != {seen["large"]}


def corpus_ods() -> Path:
    path = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "calamine" / "any_sheets.ods"
    if not path.exists():
        pytest.skip("the corpus (../shared/corpus) is not beside this checkout")
    return path


@pytest.mark.parametrize("kind", ["xls", "ods"])
def test_xls_and_ods_are_read_in_one_lane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    # calamine parses every sheet of these when it opens them: a second handle parses twice
    seen = threads_reading(monkeypatch)
    path = xls(tmp_path / "book.xls", SHEETS) if kind == "xls" else corpus_ods()
    sheets = read.read_sheets(path, path.name, Limits())
    assert len(sheets) >= 2
    assert set(seen.values()) == {threading.main_thread().name}


def test_of_two_sheets_over_a_limit_the_first_in_the_workbook_is_named(tmp_path: Path) -> None:
    # The larger second sheet is scanned and read first, in its own lane; the message must
    # still name the sheet a clerk meets first, as reading one sheet after another would.
    path = xlsx(tmp_path / "book.xlsx", {"first": 20, "second": 400, "third": 2})
    with pytest.raises(InputError) as raised:
        read.read_sheets(path, path.name, Limits(max_rows=10))
    message = raised.value.message("en")
    assert "'first'" in message and "'second'" not in message and "max_rows" in message


def test_a_failing_sheet_in_the_large_lane_is_named(tmp_path: Path) -> None:
    path = xlsx(tmp_path / "book.xlsx", {"first": 2, "second": 400, "third": 2})
    with pytest.raises(InputError) as raised:
        read.read_sheets(path, path.name, Limits(max_rows=100))
    assert "'second'" in raised.value.message("en")


def open_real(path: Path):
    import python_calamine

    return lambda: python_calamine.CalamineWorkbook.from_path(str(path))


def two_lane_reader(path: Path) -> read._SheetReader:
    return read._SheetReader(path.name, Limits(), None, lengths_checked=False, two_lanes=True)


def test_the_second_handle_failing_to_open_is_an_input_error(tmp_path: Path) -> None:
    path = xlsx(tmp_path / "book.xlsx", SHEETS)
    (tmp_path / "gone.xlsx").write_bytes(b"PK\x03\x04 not a zip")
    first = open_real(path)()
    with pytest.raises(InputError) as raised:
        two_lane_reader(path).read_all(first, open_real(tmp_path / "gone.xlsx"), list(SHEETS))
    assert "corrupt" in raised.value.message("en")


class RustPanic(BaseException):
    """What pyo3 raises when Rust code panics: a BaseException, not an Exception."""


class PanickingBook:
    """A real workbook handle whose calamine panics while laying out one sheet."""

    def __init__(self, book: object, sheet: str) -> None:
        self.book, self.sheet = book, sheet

    def get_sheet_by_name(self, name: str) -> object:
        if name == self.sheet:
            raise RustPanic("called `Option::unwrap()` on a `None` value")
        return self.book.get_sheet_by_name(name)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.book.close()  # type: ignore[attr-defined]


def test_a_panic_in_a_sheet_is_that_sheets_input_error(tmp_path: Path) -> None:
    path = xlsx(tmp_path / "book.xlsx", SHEETS)
    with pytest.raises(InputError) as raised:
        two_lane_reader(path).read_all(PanickingBook(open_real(path)(), "medium"), open_real(path), list(SHEETS))
    assert "unwrap" in raised.value.message("en")


def test_an_error_of_exitchecks_own_is_not_called_a_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only what calamine raises is the file's fault: a bug of ours must reach the CLI as an
    # internal error (exit 70), not as "export the file again" (exit 3).
    path = xlsx(tmp_path / "book.xlsx", SHEETS)

    def buggy(*args: object) -> None:
        raise ZeroDivisionError("a bug of ours")

    monkeypatch.setattr(read, "check_shape", buggy)
    with pytest.raises(ZeroDivisionError):
        two_lane_reader(path).read_all(open_real(path)(), open_real(path), list(SHEETS))
    with pytest.raises(ZeroDivisionError):
        read.read_sheets(path, path.name, Limits())


class StoppedScan:
    """A package scan that was stopped (ReadControl.stop) while a sheet waited for it."""

    def __init__(self, reader: read._SheetReader) -> None:
        self.reader = reader
        self.cancel = threading.Event()

    def wait_sheet(self, name: str) -> None:
        from exitcheck.registers.limits import ScanCancelled

        self.reader.stop.set()  # what ReadControl.stop sets, with the scan's cancel
        raise ScanCancelled

    def sheet_bytes(self, name: str) -> int:
        return 1


def test_a_sheet_waiting_for_a_stopped_scan_ends_the_reading_as_stopped(tmp_path: Path) -> None:
    path = xlsx(tmp_path / "book.xlsx", SHEETS)
    reader = two_lane_reader(path)
    reader.scan = StoppedScan(reader)  # type: ignore[assignment]
    with pytest.raises(read.ReadingStopped):  # not "the file is corrupt", not a stray ScanCancelled
        reader.read_all(open_real(path)(), open_real(path), list(SHEETS))


def test_ctrl_c_in_one_lane_stops_the_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The large lane is interrupted while the other lane is inside its first sheet; that lane
    # must read no further sheet, and the interrupt must reach the caller.
    path = xlsx(tmp_path / "book.xlsx", {"large": 400, "a": 2, "b": 2, "c": 2})
    inside = threading.Event()
    read_names: list[str] = []
    real = read._SheetReader._read_sheet

    def sheet(self: read._SheetReader, workbook: object, name: str) -> read.SheetRead:
        read_names.append(name)
        if name == "large":
            assert inside.wait(10)
            raise KeyboardInterrupt
        inside.set()
        assert self.stop.wait(10)  # set as the interrupt passes through read_all
        return real(self, workbook, name)

    monkeypatch.setattr(read._SheetReader, "_read_sheet", sheet)
    reader = two_lane_reader(path)
    with pytest.raises(KeyboardInterrupt):
        reader.read_all(open_real(path)(), open_real(path), ["large", "a", "b", "c"])
    assert sorted(read_names) == ["a", "large"]
