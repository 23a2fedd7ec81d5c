"""Reading ahead of the imports (registers/ahead.py) loads exactly what loading alone loads, and
stops when the command ends early."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import xlsxwriter

from builders import base_county
from exitcheck.errors import InputError
from exitcheck.registers.ahead import ReadAhead
from exitcheck.registers.limits import Limits
from exitcheck.registers.load import load
from exitcheck.registers.read import ReadingStopped


def reading_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("exitcheck-")]


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
        future = ahead._read
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
