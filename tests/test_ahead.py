"""Reading ahead of the imports (registers/ahead.py) loads exactly what loading alone loads, and
stops when the command ends early."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xlsxwriter

from builders import base_county
from exitcheck.errors import InputError
from exitcheck.registers import read
from exitcheck.registers.ahead import ReadAhead
from exitcheck.registers.limits import Limits
from exitcheck.registers.load import load
from exitcheck.registers.model import Registers
from exitcheck.registers.parse import Parsed
from exitcheck.registers.read import ReadingStopped
from exitcheck.sample import write_sample
from exitcheck.validation import prepare
from threads import reading_threads


def test_a_read_ahead_loads_what_load_reads(tmp_path: Path) -> None:
    path = base_county().write(tmp_path / "county.xlsx")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    plain = load([tmp_path])
    with ReadAhead([tmp_path]) as ahead:
        ahead.wait_until_parsing()
        early = load([tmp_path], reader=ahead.read)
    assert [f.message("en") for f in early.failures] == [f.message("en") for f in plain.failures]
    assert len(early.failures) == 1 and "broken.xlsx" in early.failures[0].message("en")
    assert early.raw.keys() == plain.raw.keys()
    for register, frame in plain.raw.items():
        assert early.raw[register].equals(frame), register
    assert path.name in {Path(i).name for i in early.inputs}


def test_an_unreadable_file_raises_where_the_loader_asks(tmp_path: Path) -> None:
    missing = tmp_path / "missing.xlsx"
    with ReadAhead([missing]) as ahead:
        ahead.wait_until_parsing(timeout=10)  # returns: the read ended, with its error
        with pytest.raises(InputError, match="no such file"):
            ahead.read(missing, str(missing), Limits())


def test_other_limits_are_read_afresh(tmp_path: Path) -> None:
    path = base_county().write(tmp_path / "county.xlsx")
    with ReadAhead([path]) as ahead, pytest.raises(InputError, match="max_rows"):
        ahead.read(path, str(path), Limits(max_rows=5))


def test_leaving_the_block_stops_the_reading(tmp_path: Path) -> None:
    path = tmp_path / "many-sheets.xlsx"
    book = xlsxwriter.Workbook(str(path))
    for n in range(40):
        book.add_worksheet(f"s{n}").write_column(0, 0, list(range(3000)))
    book.close()
    with pytest.raises(KeyboardInterrupt), ReadAhead([path]) as ahead:
        ahead.wait_until_parsing()
        future = ahead._task.future
        raise KeyboardInterrupt  # Ctrl-C while the command imports
    assert not reading_threads()  # the reading threads have ended: nothing keeps the process up
    with pytest.raises(ReadingStopped):  # stopped between sheets, not read to the end
        future.result()


def test_only_the_first_file_is_read_ahead(tmp_path: Path) -> None:
    first, second = (base_county().write(tmp_path / f"county-{n}.xlsx") for n in (1, 2))
    with ReadAhead([tmp_path]) as ahead:
        assert ahead.first == (first, str(first))
        second.unlink()  # read when the loader asks for it, not before
        with pytest.raises(InputError, match="no such file"):
            ahead.read(second, str(second), Limits())
        assert ahead.read(first, str(first), Limits()).sheets


def test_a_stopped_reading_scans_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stop that comes while the parts before the sheets are scanned (a huge sharedStrings)
    # reaches that scan too, not only the sheets' scans after it.
    from exitcheck.registers import limits
    from exitcheck.registers.read import ReadControl, read_file

    path = base_county().write(tmp_path / "county.xlsx")
    scanned: list[str] = []
    real = limits._scan_part

    def spying(archive, info, *args, **kwargs):  # noqa: ANN001, ANN202
        scanned.append(info.filename)
        return real(archive, info, *args, **kwargs)

    monkeypatch.setattr(limits, "_scan_part", spying)
    control = ReadControl()
    control.stop()
    with pytest.raises(ReadingStopped):
        read_file(path, path.name, Limits(), control)
    assert len(scanned) <= 1  # the first part's scan sees the stop at its first chunk


AS_OF = date(2020, 6, 30)


def parsed_alike(first: Parsed, second: Parsed) -> None:
    assert first.issues == second.issues
    assert first.tables.keys() == second.tables.keys()
    for register, table in first.tables.items():
        pd.testing.assert_frame_equal(table, second.tables[register])
    assert first.blanks.keys() == second.blanks.keys()
    for key, blanks in first.blanks.items():
        assert np.array_equal(blanks, second.blanks[key]), key
    assert first.id_analyses.keys() == second.id_analyses.keys()
    for key, analysis in first.id_analyses.items():
        pd.testing.assert_frame_equal(analysis, second.id_analyses[key])


def load_ahead(paths: list[Path], parse_ahead: date) -> Registers:
    with ReadAhead(paths) as ahead:
        ahead.wait_until_parsing()
        return load(paths, reader=ahead.read, parse_ahead=parse_ahead)


def test_each_sheet_is_handed_over_as_soon_as_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The large sheet is read in one lane, the small ones in the other; the large one is held
    # until the last small one has been handed over (at most 10 s), so that handing over in
    # workbook order, which would wait for the large sheet, fails here instead of passing by luck.
    path = tmp_path / "book.xlsx"
    book = xlsxwriter.Workbook(str(path))
    for name, rows in (("small", 5), ("large", 2_000), ("tiny", 1)):
        book.add_worksheet(name).write_column(0, 0, list(range(rows)))
    book.close()
    monkeypatch.setattr(read, "_cores", lambda: 2)  # two lanes on any machine
    tiny_handed = threading.Event()
    read_sheet = read._SheetReader._read_sheet

    def large_waits(self: read._SheetReader, workbook: object, name: str) -> read.SheetRead:
        if name == "large":
            tiny_handed.wait(10)
        return read_sheet(self, workbook, name)

    monkeypatch.setattr(read._SheetReader, "_read_sheet", large_waits)
    handed: list[tuple[str, str]] = []

    def on_sheet(sheet: read.SheetRead) -> None:
        handed.append((sheet.name, threading.current_thread().name))
        if sheet.name == "tiny":
            tiny_handed.set()

    with ReadAhead([path]) as ahead:
        done = ahead.read(path, str(path), Limits(), on_sheet=on_sheet)
    assert [name for name, _ in handed] == ["small", "tiny", "large"]
    assert [sheet.name for sheet in done.sheets] == ["small", "large", "tiny"]  # the read keeps workbook order
    assert {thread for _, thread in handed} == {threading.main_thread().name}  # the loader's own thread


def test_columns_parsed_ahead_give_what_parsing_after_gives(tmp_path: Path) -> None:
    # the sample county plants every kind of bad cell: blanks, typos, IDs typed as numbers
    path = tmp_path / "county.xlsx"
    write_sample(path, households=400, seed=7)
    early = load_ahead([path], AS_OF)
    assert {key for key in early.parsed if key.startswith("columns-ahead:")} >= {"columns-ahead:households", "columns-ahead:members"}
    parsed_alike(prepare(load([path]), AS_OF), prepare(early, AS_OF))


def test_columns_parsed_for_another_day_are_not_used(tmp_path: Path) -> None:
    path = tmp_path / "county.xlsx"
    write_sample(path, households=200, seed=3)
    later = date(2031, 1, 1)  # ages and 'after the reference date' differ
    parsed_alike(prepare(load([path]), later), prepare(load_ahead([path], AS_OF), later))


def test_a_register_of_several_sheets_is_parsed_whole(tmp_path: Path) -> None:
    for n, seed in ((1, 5), (2, 6)):
        write_sample(tmp_path / f"county-{n}.xlsx", households=150, seed=seed)
    early = load_ahead([tmp_path], AS_OF)
    assert not any(key.startswith("columns-ahead:") for key in early.parsed)  # two sheets each
    parsed_alike(prepare(load([tmp_path]), AS_OF), prepare(early, AS_OF))


def test_the_readings_error_comes_before_a_sheets_own(tmp_path: Path) -> None:
    # A sheet loaded early may fail (a text over max_cell_chars in an .xls); the reading's own
    # error, for an earlier sheet or the file, is still the one raised, as without reading ahead.
    from exitcheck.registers.load import load_file
    from exitcheck.registers.read import SheetRead

    too_long = SheetRead("户表", [["户编号", "户主姓名", "家庭人口数"], ["1", "x" * 50, 3]], 1)

    def reader(path: Path, shown: str, limits: Limits, *, on_sheet=None):  # noqa: ANN001, ANN202
        on_sheet(too_long)
        raise InputError(shown, "读取失败", "the reading failed")

    with pytest.raises(InputError, match="the reading failed"):
        load_file(tmp_path / "x.xls", "x.xls", {}, Limits(max_cell_chars=10), reader)


def test_a_failure_of_exitcheck_on_a_sheet_loaded_early_waits_its_turn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # exitcheck failing on a sheet it loads early (a bug, exit 70) must not hide the reading's
    # own error (exit 3, which says what to fix); without one, the failure is raised as ever.
    from exitcheck.registers import load as loader
    from exitcheck.registers.read import FileRead, SheetRead

    households = SheetRead("户表", [["户编号", "户主姓名", "家庭人口数"], ["1", "甲", 3]], 1)

    def failing(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(loader, "_load_sheet", failing)

    def reader_failing(path: Path, shown: str, limits: Limits, *, on_sheet=None):  # noqa: ANN001, ANN202
        on_sheet(households)
        raise InputError(shown, "读取失败", "the reading failed")

    def reader(path: Path, shown: str, limits: Limits, *, on_sheet=None):  # noqa: ANN001, ANN202
        on_sheet(households)
        return FileRead([households], kind="xlsx")

    with pytest.raises(InputError, match="the reading failed"):
        loader.load_file(tmp_path / "x.xlsx", "x.xlsx", {}, Limits(), reader_failing, AS_OF)
    with pytest.raises(RuntimeError, match="a bug"):
        loader.load_file(tmp_path / "x.xlsx", "x.xlsx", {}, Limits(), reader, AS_OF)


def test_only_the_first_sheet_of_a_register_is_parsed_ahead(tmp_path: Path) -> None:
    # a workbook with a household sheet per township: parsing the second ahead would be
    # wasted (the register is both sheets) and done again after the reading
    from exitcheck.registers.load import load_file
    from exitcheck.registers.read import FileRead, SheetRead

    header = ["户编号", "乡镇", "行政村", "户主姓名", "农户类别", "家庭人口数", "人均纯收入", "住房安全等级"]
    sheets = [SheetRead(name, [header, [f"{n}01", town, "新民村", "甲", "建档立卡户", 3, 5000, "A"]], 1)
              for n, (name, town) in enumerate((("户表甲镇", "甲镇"), ("户表乙镇", "乙镇")), 1)]

    def reader(path: Path, shown: str, limits: Limits, *, on_sheet=None):  # noqa: ANN001, ANN202
        for sheet in sheets:
            on_sheet(sheet)
        return FileRead(sheets, kind="xlsx")

    loaded = load_file(tmp_path / "x.xlsx", "x.xlsx", {}, Limits(), reader, AS_OF)
    assert len(loaded.found) == 2
    assert [ahead.frame is loaded.found[0][1] for ahead in loaded.parsed_ahead] == [True]


def test_a_folder_of_files_is_not_parsed_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from exitcheck.registers import load as loader

    for n, seed in ((1, 5), (2, 6)):
        write_sample(tmp_path / f"county-{n}.xlsx", households=60, seed=seed)
    parsed: list[str] = []
    real = loader.parse_columns
    monkeypatch.setattr(loader, "parse_columns", lambda register, *rest: parsed.append(register) or real(register, *rest))
    load_ahead([tmp_path], AS_OF)
    assert parsed == []


def test_a_column_headed_like_a_bookkeeping_column_is_carried_as_unknown(tmp_path: Path) -> None:
    # a sheet's own '_src' or '_row' column must neither take the place of the loader's
    # bookkeeping (which file and row each record came from) nor be lost
    county = base_county()
    for n, row in enumerate(county.households):
        row["_src"] = f"note{n}"
    for row in county.members:
        row["_row"] = "x"
    path = county.write(tmp_path / "county.xlsx")
    plain = load([path])
    assert any(name.startswith("_src(") for name in plain.raw["households"].columns)
    assert any(name.startswith("_row(") for name in plain.raw["members"].columns)
    parsed_alike(prepare(plain, AS_OF), prepare(load_ahead([path], AS_OF), AS_OF))
    assert prepare(plain, AS_OF).tables["households"]["_src"].tolist() == [0] * len(county.households)
