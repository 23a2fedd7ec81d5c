"""Issue 7: broken and hostile inputs end fast, in bounded memory, with a message and an exit code.

Every file of tests/corpus_build.py goes through the real CLI (`exitcheck validate FILE`) in its
own process, whose wall time and peak RSS are measured alone (wait4). Exit 3 means "this input
cannot be read"; 0 or 1 means the file was read and any findings are data-level. Each case
says which, and why.
"""

from __future__ import annotations

import functools
import json
import warnings
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import exitcheck
from builders import base_county
from corpus_build import (
    CASES,
    build_all,
    cfb,
    county_parts,
    exitcheck_command,
    run_bounded,
    zip_parts,
)
from exitcheck.errors import InputError
from exitcheck.registers.compound import stream_names as ole_stream_names
from exitcheck.registers.limits import Limits, refs_extent, zip_entry_count
from exitcheck.registers.load import find_header, load
from exitcheck.registers.read import SheetRead, read_sheets
from exitcheck.rules.expr import ExpressionError
from exitcheck.workspace import WorkspaceConfig

SECONDS = 20.0
PEAK_BYTES = int(1.5 * 1024**3)


@dataclass(frozen=True)
class Expect:
    code: int
    cause: tuple[str, ...]  # words the message must hold (English, lower case)
    why: str


EXPECTED: dict[str, Expect] = {
    "control": Expect(0, (), "a clean register: nothing to report"),
    "empty": Expect(3, ("empty", "0 bytes"), "nothing to read"),
    "truncated": Expect(3, ("corrupt or truncated",), "the zip's central directory is gone"),
    "random_bytes": Expect(3, ("not a spreadsheet",), "no format recognised from the bytes"),
    "csv_named_xlsx": Expect(3, ("csv", "excel name"), "the content is CSV whatever the name; the user renames it"),
    "html_named_xlsx": Expect(3, ("html",), "a web page is not a workbook; Excel or WPS can convert it"),
    "encrypted": Expect(3, ("password",), "without the password nothing can be read"),
    "word_named_xls": Expect(3, ("word document",), "an OLE file, but no workbook stream in it"),
    "xlsx_named_xls": Expect(0, (), "the content decides the reader: a renamed xlsx is read, with a note"),
    "zip_bomb": Expect(3, ("zip bomb", "max_part_bytes"), "3 GiB declared in the central directory: refused before inflating"),
    "zip_bomb_lying": Expect(3, ("declared size or checksum",), "inflating stops at the declared size and the CRC fails"),
    "many_entries": Expect(3, ("50013 members", "max_zip_entries"), "refused from the zip's end record"),
    "xml_bomb_shared_strings": Expect(3, ("dtd", "entity bomb"), "no xlsx part has a DTD"),
    "xml_bomb_sheet": Expect(3, ("dtd", "entity bomb"), "no xlsx part has a DTD"),
    "wide_16384": Expect(3, ("16384 columns", "max_columns"), "over the column limit, measured from the cell references"),
    "sparse_far_cell": Expect(3, ("60000 rows", "max_cells"), "a 60-million-cell grid under a lying <dimension>"),
    "far_cell_in_a_second_reference": Expect(3, ("corrupt",), "a cell with two r attributes is not XML; the scan sees the second"),
    "cells_after_the_word_sheetData": Expect(3, ("60000 rows", "max_cells"), "cells are counted wherever they stand"),
    "two_sheets_one_name": Expect(3, ("60000 rows", "max_cells"), "each sheet waits for every part's scan when names repeat"),
    "styled_to_xfd": Expect(0, (), "cells that only carry a style are not counted: the exact pass finds 24 columns"),
    "wide_without_refs": Expect(3, ("20000 columns", "max_columns"), "cells without references, measured by parsing"),
    "million_formatted_rows": Expect(0, (), "rows that carry only a style are not data: the register reads as the control"),
    "long_cell": Expect(3, ("1048576 characters", "max_cell_chars"), "Excel cannot hold such a cell; refused before parsing"),
    "merged_header": Expect(0, (), "a two-level header with merged cells is read as its clerk sees it"),
    "merged_header_row": Expect(3, ("no households register",), "the header row merged into one cell has no headers left"),
    "formulas_no_values": Expect(3, ("formula", "without their values", "open and save"), "no value to read until Excel has calculated"),
    "duplicated_headers": Expect(0, (), "the first column is read, the second kept; the clean data has no finding"),
    "headers_only": Expect(3, ("header but no data rows",), "an audit of nothing would pass everything"),
    "shift_jis_csv": Expect(3, ("no recognisable register", "gb18030", "utf-8"), "decodes as GB18030 gibberish: no header found, the encoding is named"),
    "latin1_csv": Expect(3, ("neither utf-8 nor gb18030",), "bytes no Chinese encoding accepts"),
    "huge_number_as_duration": Expect(3, ("cell ", "too large for its date or duration format", "general or text"),
                                      "the cell is named and its format is what to change, not the file"),
}

NOTES = {
    "xlsx_named_xls": "really .xlsx",
    "duplicated_headers": "column y '家庭人口数' repeats column j",
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("hostile"))


def test_every_generated_case_has_an_expectation() -> None:
    assert set(EXPECTED) == set(CASES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_input(corpus: dict[str, Path], name: str) -> None:
    expect = EXPECTED[name]
    path = corpus[name]
    out = run_bounded(exitcheck_command("validate", str(path), "--lang", "en"), timeout=60, cwd=path.parent)
    assert not out.timed_out, f"{name}: still running after 60 s"
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == expect.code, f"{name} ({expect.why}): exit {out.returncode}\n{out.stderr}"
    # CPU time, not wall time: the bound is on exitcheck's work (no case may make it grind), and
    # a machine loaded by other work stretches wall time, not this.
    assert out.cpu_seconds < SECONDS, f"{name}: {out.cpu_seconds:.1f} s of CPU ({out.seconds:.1f} s wall)"
    assert out.peak_rss < PEAK_BYTES, f"{name}: peak RSS {out.peak_rss / 2**20:.0f} MiB"
    errors = [line for line in out.stderr.splitlines() if line.startswith("exitcheck:")]
    if expect.code == 3:
        assert len(errors) == 1, out.stderr
        message = errors[0]
        assert message.startswith(f"exitcheck: {path}: "), message  # names the file first
        for word in expect.cause:
            assert word in message.lower(), (word, message)
    else:
        assert not errors, out.stderr
    if name in NOTES:
        assert NOTES[name] in out.stderr.lower(), out.stderr


def test_a_number_too_large_for_its_date_or_duration_format_is_named_by_cell_or_row(corpus: dict[str, Path], tmp_path: Path) -> None:
    """python-calamine fails on such a number (an OverflowError for a duration, a Rust panic for
    a date far before any calendar): the cell is named, never "the file is corrupt"."""
    import openpyxl
    import xlsxwriter
    import xlwt

    from corpus_build import HUGE_NUMBER_CELL, huge_number_reference

    path = corpus["huge_number_as_duration"]
    with warnings.catch_warnings():  # openpyxl says the number is no date, which is the point
        warnings.simplefilter("ignore", UserWarning)
        reference = huge_number_reference(openpyxl.load_workbook(path))
    with pytest.raises(InputError) as raised:
        read_sheets(path, path.name, Limits())
    assert f"sheet '{HUGE_NUMBER_CELL[0]}' cell {reference} holds a number too large" in raised.value.en
    # a date: -1e15 days makes calamine panic; an ID typed as a number in the same row is not named
    book = xlsxwriter.Workbook(str(tmp_path / "dates.xlsx"))
    sheet = book.add_worksheet("户表")
    for row in range(5):
        sheet.write_string(row, 0, f"H{row}")
    sheet.write_number(2, 1, 4.301021990010113e17)
    sheet.write_number(2, 6, -1e15, book.add_format({"num_format": 'yyyy"年"m"月"d"日"'}))
    book.close()
    with pytest.raises(InputError) as raised:
        read_sheets(tmp_path / "dates.xlsx", "dates.xlsx", Limits())
    assert "sheet '户表' cell G3 holds a number too large for its date or duration format" in raised.value.en
    # an .xls has no XML to find the cell in: its row is named (the sheet starting at row 3)
    old_book = xlwt.Workbook()
    old = old_book.add_sheet("户表")
    old.write(2, 2, "户编号")
    old.write(6, 1, 4.301021990010113e17, xlwt.easyxf(num_format_str="[h]:mm:ss"))
    old_book.save(str(tmp_path / "old.xls"))
    with pytest.raises(InputError) as raised:
        read_sheets(tmp_path / "old.xls", "old.xls", Limits())
    assert "sheet '户表' row 7: a cell holds a number too large" in raised.value.en


def test_messages_are_chinese_by_default(corpus: dict[str, Path]) -> None:
    path = corpus["zip_bomb"]
    out = run_bounded(exitcheck_command("validate", str(path)), timeout=60)
    assert out.returncode == 3
    assert f"{path}: " in out.stderr and "压缩炸弹" in out.stderr
    assert "Traceback" not in out.stderr


def test_one_bad_file_does_not_take_the_run_down(corpus: dict[str, Path]) -> None:
    """Several inputs: the unreadable one is reported, the others still validated, exit 3."""
    good, bad = corpus["control"], corpus["random_bytes"]
    out = run_bounded(exitcheck_command("validate", str(good), str(bad), "--json", "--lang", "en"), timeout=60)
    assert out.returncode == 3, out.stderr
    assert json.loads(out.stdout)["summary"]["records"]["households"] == 6
    assert f"exitcheck: {bad}: not a spreadsheet" in out.stderr
    strict = run_bounded(exitcheck_command("validate", str(good), str(bad), "--json", "--strict", "--lang", "en"), timeout=60)
    assert strict.returncode == 3
    assert strict.stdout.strip() == ""
    assert "Traceback" not in strict.stderr


# ---- the loader, directly -----------------------------------------------------------------


def test_merged_two_level_header_reads_like_the_control(corpus: dict[str, Path]) -> None:
    merged = load([corpus["merged_header"]]).raw["households"]
    control = load([corpus["control"]]).raw["households"]
    fields = ["household_id", "township", "village", "head_name", "household_size"]
    assert merged[fields].astype(str).values.tolist() == control[fields].astype(str).values.tolist()


def test_only_header_cells_merged_a_few_rows_move_the_header() -> None:
    header = ["户编号", "乡镇", "行政村", "户主姓名", "备注"]
    rows: list[list[object]] = [["标题", "", "", "", ""], header, ["", "", "", "", ""]] + [["1", "a", "b", "c", ""]] * 20
    two_level = SheetRead("户表", rows, 1, ((1, 0, 2, 0),))  # 户编号 merged over two header rows
    assert find_header(two_level, {}) == ("households", 2)
    notes = SheetRead("户表", rows, 1, ((1, 4, 22, 4),))  # a notes column merged down the data
    assert find_header(notes, {}) == ("households", 1)


def test_formatted_rows_are_not_records(corpus: dict[str, Path]) -> None:
    assert len(load([corpus["million_formatted_rows"]]).raw["households"]) == 6


def test_a_workspace_can_raise_the_limits(corpus: dict[str, Path]) -> None:
    """`limits:` in exitcheck.yaml is validated into Limits: unknown keys are refused, and a
    raised limit lets the file through."""
    with pytest.raises(InputError, match="max_columns"):
        load([corpus["wide_16384"]])
    raised = WorkspaceConfig.model_validate({"limits": {"max_columns": 16384, "max_cells": 1_000_000}}).limits
    assert len(load([corpus["wide_16384"]], limits=raised).raw["households"]) == 7
    for wrong in ({"max_colums": 5}, {"max_rows": 0}, {"max_inflate_ratio": 1}, {"max_rows": "many"}):
        with pytest.raises(ValidationError):
            WorkspaceConfig.model_validate({"limits": wrong})
    with pytest.raises(ValidationError):  # the key is limits, and nothing else
        WorkspaceConfig.model_validate({"limits_settings": {"max_rows": 5}})
    assert isinstance(WorkspaceConfig.model_validate({}).limits, Limits)
    with pytest.raises(ValueError, match="max_rows must be greater than 0"):
        Limits(max_rows=0)


def test_workspace_limits_reach_the_loader(tmp_path: Path, corpus: dict[str, Path]) -> None:
    """`limits:` in exitcheck.yaml, through a command that reads the workspace (`bands`): here
    lowered, so that the control register is refused with the workspace and read without."""
    workspace = tmp_path / "exitcheck.yaml"
    workspace.write_text("limits:\n  max_columns: 10\n", encoding="utf-8")
    args = ("bands", str(corpus["control"]), "--out", str(tmp_path / "out"), "--as-of", "2020-06-30", "--lang", "en")
    plain = run_bounded(exitcheck_command(*args), timeout=60, cwd=tmp_path.parent)
    assert plain.returncode == 0, plain.stderr
    limited = run_bounded(exitcheck_command(*args, "--config", str(workspace)), timeout=60)
    assert limited.returncode == 3, limited.stderr
    assert "max_columns" in limited.stderr and "Traceback" not in limited.stderr


def test_lowered_limits_apply_to_every_format(tmp_path: Path, corpus: dict[str, Path]) -> None:
    small = Limits(max_rows=5)
    with pytest.raises(InputError, match="max_rows"):
        read_sheets(corpus["control"], "control.xlsx", small)
    many = tmp_path / "many.csv"
    many.write_text("户编号,乡镇,行政村\n" + "1,a,b\n" * 10, encoding="utf-8")
    with pytest.raises(InputError, match="max_rows"):
        read_sheets(many, "many.csv", small)
    long = tmp_path / "long.csv"
    long.write_text("户编号,备注\n1," + "x" * 50 + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="over the limit of 10 characters"):
        read_sheets(long, "long.csv", Limits(max_cell_chars=10))


def test_excel_unicode_text_export_is_read(tmp_path: Path, corpus: dict[str, Path]) -> None:
    """Excel's "Unicode text" is UTF-16 with a BOM and tabs: a CSV in all but name."""
    rows = load([corpus["control"]]).raw["villages"]
    text = "乡镇\t行政村\t是否贫困村\t户籍人口\n" + "".join(
        f"{r.township}\t{r.village}\t是\t{r.population}\n" for r in rows.itertuples()
    )
    path = tmp_path / "villages.csv"
    path.write_bytes(text.encode("utf-16"))
    sheet = read_sheets(path, "villages.csv", Limits())[0]
    assert sheet.rows[0][:2] == ["乡镇", "行政村"]
    assert len(sheet.rows) == 4


def test_ole_directory_names(tmp_path: Path) -> None:
    path = tmp_path / "x.xls"
    path.write_bytes(cfb({"Workbook": b"\x09\x08" + b"\0" * 5000, "EncryptionInfo": b"\4\0\4\0" + b"\0" * 100}))
    assert {"Workbook", "EncryptionInfo"} <= ole_stream_names(path)
    broken = tmp_path / "cut.xls"
    broken.write_bytes(path.read_bytes()[:700])
    assert isinstance(ole_stream_names(broken), set)  # never raises on a truncated directory


def test_an_xls_cut_short_is_refused_in_our_words_not_in_a_rust_panic(tmp_path: Path, run_cli, capfd) -> None:
    """An .xls copied or downloaded only in part. Cut at some places (sector boundaries, and
    inside the last sector), calamine 0.37 panics on a sector that is not wholly in the file,
    and Rust prints the panic (with RUST_BACKTRACE, its stack too) on the terminal before the
    error reaches exitcheck. The FAT and the directory say which sectors calamine will read: a
    file missing any of them is refused first, wherever it was cut."""
    whole = base_county().write(tmp_path / "county.xls").read_bytes()
    cut = tmp_path / "cut.xls"
    for end in sorted(set(range(512, len(whole), 512)) | set(range(len(whole) - 1, 0, -97))):
        cut.write_bytes(whole[:end])
        with pytest.raises(InputError):
            read_sheets(cut, cut.name, Limits())
        assert "panicked" not in capfd.readouterr().err, f"cut at {end} of {len(whole)} bytes"
    cut.write_bytes(whole[: len(whole) - 1024])
    for lang, words in (("zh", "文件不完整(在拷贝或下载时被截断)"), ("en", "the file is cut short")):
        result = run_cli("validate", str(cut), "--lang", lang, env={"RUST_BACKTRACE": "1"})
        assert result.returncode == 3 and words in result.stderr, result.stdout + result.stderr
        assert "panicked" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert read_sheets(tmp_path / "county.xls", "county.xls", Limits())  # the whole file is read


def test_an_xls_whose_layout_bends_the_rules_but_is_whole_is_read(tmp_path: Path) -> None:
    """Not refused as cut short: header slots past the FAT's count holding 0 instead of
    FREESECT (writers do; calamine and olefile read such files), and a FAT entry in use past
    the end of the file that no stream calamine reads uses."""
    path = base_county().write(tmp_path / "county.xls")
    whole = path.read_bytes()
    expected = [(sheet.name, sheet.rows) for sheet in read_sheets(path, path.name, Limits())]
    n_fat = int.from_bytes(whole[44:48], "little")
    zeros = bytearray(whole)
    zeros[76 + 4 * n_fat : 512] = bytes(4 * (109 - n_fat))
    stray = bytearray(whole)
    fat = (int.from_bytes(whole[76:80], "little") + 1) * 512
    sectors_in_file = len(whole) // 512 - 1
    entry = slice(fat + 4 * (sectors_in_file + 10), fat + 4 * (sectors_in_file + 11))
    assert sectors_in_file + 10 < 128 and stray[entry] == b"\xff" * 4  # free, in the FAT's first sector
    stray[entry] = (0xFFFFFFFE).to_bytes(4, "little")  # a chain of one sector, past the end
    for name, data in (("zeros.xls", zeros), ("stray.xls", stray)):
        variant = tmp_path / name
        variant.write_bytes(bytes(data))
        assert [(sheet.name, sheet.rows) for sheet in read_sheets(variant, name, Limits())] == expected


def test_zip_entry_count_reads_the_end_record(corpus: dict[str, Path]) -> None:
    with zipfile.ZipFile(corpus["control"]) as archive:
        assert zip_entry_count(corpus["control"]) == len(archive.infolist())
    assert zip_entry_count(corpus["many_entries"]) == 50_013
    assert zip_entry_count(corpus["random_bytes"]) is None


def _letters(column: int) -> str:
    out = ""
    while column:
        column, rem = divmod(column - 1, 26)
        out = chr(65 + rem) + out
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 1_048_576), st.integers(1, 16_384)), min_size=1, max_size=60))
def test_refs_extent_matches_arithmetic(cells: list[tuple[int, int]]) -> None:
    refs = [f"{_letters(column)}{row}".encode() for row, column in cells]
    assert refs_extent(refs) == (max(r for r, _ in cells), max(c for _, c in cells))


# ---- properties: nothing but the documented error types ------------------------------------
# The value parsers (test_normalise, test_idcard) and the expression language's parser
# (test_expr) have their own properties. Missing were: the loader fed damaged bytes, header
# rows of anything, and the shipped rule set's expressions evaluated over cells of anything.

ANY_CELL = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["", "是", "否", "合计", "户编号", "4,350元", "5.13434E+17", "=1+1", "2019年10月1日", "\u3000"]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    st.dates(),
    st.datetimes(),
)
HEADERS = ["户编号", "乡镇", "行政村", "户主姓名", "家庭人口数", "人均纯收入", "住房安全等级", "农户类别",
           "姓名", "证件号码", "与户主关系", "性别", "出生日期", "户籍人口", "合计", "", "户编号"]


@functools.lru_cache(maxsize=1)
def _control_parts() -> dict[str, bytes]:
    return county_parts()


def _load_or_refuse(path: Path) -> None:
    """`load` then `validate`: a file is read or refused with InputError, never anything else."""
    try:
        registers = load([path], strict=True)
    except InputError as error:
        assert str(path) in str(error)
        event("refused")
        return
    event("read and validated")
    exitcheck.validate(registers, date(2020, 6, 30))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=0, max_size=12), st.integers(0, 40)), min_size=1, max_size=6),
    part=st.sampled_from(["xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml", "xl/workbook.xml", "xl/styles.xml", "[Content_Types].xml"]),
)
def test_damaged_xml_parts_are_read_or_refused(tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[float, bytes, int]], part: str) -> None:
    """Bytes inserted into or cut out of a part's XML, then zipped properly: the damage reaches
    the XML parser, the header detection and the checks, not just the zip's CRC."""
    parts = dict(_control_parts())
    xml = bytearray(parts[part])
    for where, insert, cut in edits:
        at = int(where * len(xml))
        xml[at : at + cut] = insert
    parts[part] = bytes(xml)
    path = zip_parts(tmp_path_factory.mktemp("damaged") / "damaged.xlsx", parts)
    _load_or_refuse(path)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
       keep=st.floats(0.05, 1.0))
def test_damaged_bytes_are_read_or_refused(tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[float, int]], keep: float) -> None:
    data = bytearray(zip_parts(tmp_path_factory.mktemp("bytes") / "c.xlsx", _control_parts()).read_bytes())
    for where, value in edits:
        data[int(where * len(data))] = value
    path = tmp_path_factory.mktemp("bytes") / "damaged.xlsx"
    path.write_bytes(bytes(data[: max(1, int(keep * len(data)))]))
    _load_or_refuse(path)


HOUSEHOLD_HEADERS = list(base_county().households[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    above=st.lists(st.lists(st.one_of(st.sampled_from(HEADERS), ANY_CELL), max_size=8), max_size=3),
    header=st.permutations(HOUSEHOLD_HEADERS).flatmap(lambda h: st.lists(st.sampled_from(HEADERS), max_size=3).map(lambda extra: h + extra)),
    body=st.lists(st.lists(ANY_CELL, min_size=0, max_size=30), max_size=12),
    sheet=st.sampled_from(["户表", "Sheet1"]),
)
def test_any_cells_under_any_header_are_read_or_refused(
    tmp_path_factory: pytest.TempPathFactory, above: list[list[object]], header: list[str], body: list[list[object]], sheet: str
) -> None:
    """Title rows of anything, a households header in any order (with strays and repeats),
    then cells of every type in every column, beside a valid members sheet: the loader and
    every check of `validate` take whatever comes."""
    import xlsxwriter

    path = tmp_path_factory.mktemp("cells") / "cells.xlsx"
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False, "nan_inf_to_errors": True})
    target = workbook.add_worksheet(sheet)
    for r, row in enumerate([*above, header, *body]):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
                value = float(value)  # what a spreadsheet can hold
            target.write(r, c, value)
    members = workbook.add_worksheet("成员表")
    county = base_county()
    for r, row in enumerate([list(county.members[0]), *(list(m.values()) for m in county.members)]):
        members.write_row(r, 0, row)
    workbook.close()
    _load_or_refuse(path)


@functools.lru_cache(maxsize=1)
def _rule_expressions() -> list[tuple[str, str, Any]]:
    from exitcheck.rules.engine import compile_rule
    from exitcheck.rules.model import load_ruleset

    ruleset = load_ruleset(None)
    return [(rule.id, part, expr) for rule in ruleset.rules for part, expr in compile_rule(rule, ruleset).items() if expr is not None]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=st.integers(1, 6))
def test_rule_set_expressions_take_any_cells(data: st.DataObject, size: int) -> None:
    """Every expression of the shipped rule set, evaluated over columns holding anything
    (text in number columns, huge integers, infinities, dates, booleans): a result for every
    row, or an ExpressionError; never another exception."""
    rule, part, expression = data.draw(st.sampled_from(_rule_expressions()))
    frame = pd.DataFrame({name: pd.Series(data.draw(st.lists(ANY_CELL, min_size=size, max_size=size)), dtype=object)
                          for name in sorted(expression.fields)})
    try:
        result = expression.evaluate(frame)
    except ExpressionError:
        return
    assert len(result) == size, (rule, part)
