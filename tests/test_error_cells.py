"""Excel error values (#N/A, #DIV/0!, LibreOffice's Err:502) in .xlsx, .xls and .ods: calamine
gives each as '', and the reader puts the text back where calamine left the blank."""

from __future__ import annotations

from pathlib import Path

import pytest

from builders import County, write_ods_tables
from exitcheck.registers import error_cells
from exitcheck.registers.limits import Limits, check_zip, scan_package
from exitcheck.registers.read import read_sheets

DATA = Path(__file__).parent / "data"  # made by tests/data/make_error_cells.py


def error_texts(path: Path) -> dict[str, dict[tuple[int, int], str]]:
    """Sheet name -> {(row, column) 0-based: text} of the cells read as an error value."""
    return {
        sheet.name: {(r, c): value for r, row in enumerate(sheet.rows) for c, value in enumerate(row)
                     if isinstance(value, str) and value.startswith(("#", "Err:"))}
        for sheet in read_sheets(path, path.name, Limits())
    }


def first_sheet(sqrt_of_minus_4: str) -> dict[tuple[int, int], str]:
    texts = ["#N/A", "#DIV/0!", "#VALUE!", "#NAME?", "#N/A", sqrt_of_minus_4, "#REF!"]
    labels = ["#N/A", "#DIV/0!", "#VALUE!", "#NAME?", "#N/A", "#NUM!", "#REF!"]  # column A: text cells
    return {**{(row, 0): label for row, label in enumerate(labels, start=2)},
            **{(row, 1): text for row, text in enumerate(texts, start=2)}}


#: The sheet whose data starts at C5: an error after a merge's covered cells, three in a row,
#: one in each of three like rows, and one as the sheet's last cell.
OFFSET_SHEET = {(4, 6): "#N/A", (5, 3): "#DIV/0!", (7, 2): "#N/A", (7, 3): "#N/A", (7, 4): "#N/A",
                (9, 3): "#N/A", (10, 3): "#N/A", (11, 3): "#N/A", (14, 9): "#DIV/0!"}


@pytest.mark.parametrize(("suffix", "sqrt_of_minus_4"), [("xlsx", "#NUM!"), ("xls", "#VALUE!"), ("ods", "Err:502")])
def test_error_values_are_read_back_where_the_writer_put_them_in_every_format(suffix: str, sqrt_of_minus_4: str) -> None:
    """The same workbook as Excel's xlsx and as LibreOffice saved it as .xls (FORMULA records
    with a saved error) and .ods: each error where it stands, the other cells as they were."""
    path = DATA / f"error-cells.{suffix}"
    assert error_texts(path) == {"户表": first_sheet(sqrt_of_minus_4), "offset": OFFSET_SHEET, "clean": {}}
    offset = next(sheet for sheet in read_sheets(path, path.name, Limits()) if sheet.name == "offset")
    assert offset.rows[4][2:4] == ["head", "merged"] and offset.rows[9][2] == "same"


def ods_cell(text: str, repeated: int = 1) -> str:
    repeat = f' table:number-columns-repeated="{repeated}"' if repeated > 1 else ""
    return (f'<table:table-cell table:formula="of:=NA()" office:value-type="string" office:string-value=""{repeat}'
            f' calcext:value-type="error"><text:p>{text}</text:p></table:table-cell>')


def ods_text(text: str) -> str:
    return f'<table:table-cell office:value-type="string"><text:p>{text}</text:p></table:table-cell>'


def test_an_ods_error_cell_is_placed_as_calamine_places_the_cells_around_it(tmp_path: Path) -> None:
    """Repeated rows and columns, covered cells, header rows and row groups, a note on the cell
    and a table inside a cell: each error is put where calamine put the text cell after it.
    (calamine skips what a number cell holds; in a text cell it would read the inner table's
    text and lose the rest of the sheet.)"""
    subtable = ('<table:table-cell office:value-type="float" office:value="5"><table:table table:name="inner"><table:table-row>'
                f'{ods_cell("#REF!")}</table:table-row></table:table></table:table-cell>')
    note = ('<table:table-cell table:formula="of:=NA()" office:value-type="string" office:string-value="" calcext:value-type="error">'
            '<office:annotation><text:p>a note</text:p></office:annotation><text:p>#N/A</text:p></table:table-cell>')
    rows = [
        '<table:table-row table:number-rows-repeated="3"><table:table-cell table:number-columns-repeated="4"/></table:table-row>',
        f'<table:table-header-rows><table:table-row><table:table-cell table:number-columns-repeated="2"/>{ods_cell("#DIV/0!")}{ods_text("a")}</table:table-row></table:table-header-rows>',
        f'<table:table-row table:number-rows-repeated="2">{ods_text("b")}{ods_cell("Err:502", 3)}{ods_text("c")}</table:table-row>',
        ('<table:table-row-group><table:table-row><table:table-cell office:value-type="string" table:number-columns-spanned="3">'
         f'<text:p>merged</text:p></table:table-cell><table:covered-table-cell table:number-columns-repeated="2"/>{note}{ods_text("d")}</table:table-row></table:table-row-group>'),
        f'<table:table-row>{subtable}{ods_cell("#NAME?")}{ods_text("e")}</table:table-row>',
    ]
    path = tmp_path / "structure.ods"
    write_ods_tables(path, f'<table:table table:name="sheet">{"".join(rows)}</table:table>')
    (sheet,) = read_sheets(path, path.name, Limits())
    assert sheet.rows[3][2:4] == ["#DIV/0!", "a"]
    assert sheet.rows[4][:5] == sheet.rows[5][:5] == ["b", "Err:502", "Err:502", "Err:502", "c"]
    assert sheet.rows[6][3:5] == ["#N/A", "d"]
    assert sheet.rows[7][0:3] == [5.0, "#NAME?", "e"]
    assert error_texts(path) == {"sheet": {(3, 2): "#DIV/0!", **{(row, col): "Err:502" for row in (4, 5) for col in (1, 2, 3)},
                                           (6, 3): "#N/A", (7, 1): "#NAME?"}}


def test_the_ods_scan_notes_whether_content_xml_holds_an_error_mark_and_where_the_last_is(tmp_path: Path) -> None:
    clean, marked = tmp_path / "clean.ods", tmp_path / "marked.ods"
    write_ods_tables(clean, f'<table:table table:name="s"><table:table-row>{ods_text("#N/A as typed")}</table:table-row></table:table>')
    write_ods_tables(marked, f'<table:table table:name="s"><table:table-row>{ods_cell("#N/A")}{ods_cell("#REF!")}</table:table-row></table:table>')
    for path, holds in ((clean, False), (marked, True)):
        scan = scan_package(path, path.name, check_zip(path, path.name, Limits()), Limits())
        content = scan.parts[error_cells.ODS_CONTENT]
        assert content.error_cells is holds
    import zipfile

    with zipfile.ZipFile(marked) as archive:
        assert content.last_error_mark == archive.read("content.xml").rfind(b'value-type="error"')
    assert error_texts(clean) == {"s": {(0, 0): "#N/A as typed"}}  # a text that looks like one, as typed


def test_reading_an_ods_back_stops_after_the_cell_of_the_last_error_mark(tmp_path: Path) -> None:
    """Nothing after it is parsed: here what follows would not even parse."""
    path = tmp_path / "stops.ods"
    tables = f'<table:table table:name="s"><table:table-row>{ods_cell("#N/A")}</table:table-row></table:table><table:table table:name="t"><broken'
    write_ods_tables(path, tables)
    import zipfile

    with zipfile.ZipFile(path) as archive:
        mark = archive.read("content.xml").rfind(b'value-type="error"')
    assert error_cells.ods_error_values(path, mark) == {"s": [error_cells.ErrorCells(0, 0, "#N/A")]}
    assert error_cells.ods_error_values(path) is None  # read to the end, it is refused whole


def test_an_ods_content_xml_with_a_dtd_gives_no_error_value(tmp_path: Path) -> None:
    """The scan refuses such a part first; the reading refuses it too, as defusedxml would,
    and never expands an entity into a cell."""
    plain, declared = tmp_path / "plain.ods", tmp_path / "dtd.ods"
    write_ods_tables(plain, f'<table:table table:name="s"><table:table-row>{ods_cell("#N/A")}</table:table-row></table:table>')
    write_ods_tables(declared, f'<table:table table:name="s"><table:table-row>{ods_cell("&bomb;")}</table:table-row></table:table>',
                     prolog='<!DOCTYPE office:document-content [<!ENTITY bomb "#N/A">]>')
    assert error_cells.ods_error_values(plain) == {"s": [error_cells.ErrorCells(0, 0, "#N/A")]}
    assert error_cells.ods_error_values(declared) is None


def write_xls_errors(path: Path) -> Path:
    """An .xls with BOOLERR error cells (xlwt writes no saved formula result): a clean first
    sheet, and a second whose data starts at C4."""
    import xlwt

    from builders import XLS_ERROR_CODES

    book = xlwt.Workbook(encoding="utf-8")
    clean = book.add_sheet("干净")
    clean.write(0, 0, "名称")
    clean.write(1, 0, xlwt.Formula("1+1"))  # a formula whose saved result is not an error
    errors = book.add_sheet("户表")
    errors.write(3, 2, "户编号")
    errors.write(3, 3, "人均纯收入")
    errors.write(4, 2, "513434000001")
    errors.row(4).set_cell_error(3, XLS_ERROR_CODES["#N/A"])
    errors.write(5, 2, "513434000002")
    errors.row(5).set_cell_error(3, XLS_ERROR_CODES["#DIV/0!"])
    book.save(str(path))
    return path


def test_xls_boolerr_cells_are_read_back_on_a_sheet_that_does_not_start_at_a1(tmp_path: Path) -> None:
    path = write_xls_errors(tmp_path / "boolerr.xls")
    assert error_texts(path) == {"干净": {}, "户表": {(4, 3): "#N/A", (5, 3): "#DIV/0!"}}


def test_an_xls_without_error_records_is_not_read_by_xlrd(tmp_path: Path) -> None:
    """The search of the stream finds nothing in a workbook without an error value, formulas
    and all, and only the sheets that hold a candidate record are read."""
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("s")
    sheet.write(0, 0, xlwt.Formula("1+1"))
    sheet.write(0, 1, "#N/A")  # a text is not an error value
    path = tmp_path / "clean.xls"
    book.save(str(path))
    assert error_cells._error_record_offsets(path) == []
    assert error_texts(path) == {"s": {(0, 1): "#N/A"}}
    assert error_cells._error_record_offsets(write_xls_errors(tmp_path / "errors.xls")) != []


def test_the_sheets_read_by_xlrd_are_those_in_whose_part_of_the_stream_a_record_lies() -> None:
    # three sheets whose parts start at 100, 500 and 300 (the stream's order is not the book's)
    assert error_cells._sheets_holding([120, 320, 400], [100, 500, 300], 900) == {0, 2}
    assert error_cells._sheets_holding([600], [100, 500, 300], 900) == {1}
    assert error_cells._sheets_holding([50], [100, 500, 300], 900) == set()  # in the globals



def test_error_values_that_cannot_be_read_back_are_said_not_left_blank_in_silence(tmp_path: Path) -> None:
    """calamine reads a paragraph whose attribute is written twice; expat refuses the whole
    content.xml. The error cell stays blank, as calamine gives it, and the reading says so."""
    import zipfile

    import exitcheck
    from builders import FormulaError, base_county

    county = base_county()
    county.households[0]["人均纯收入"] = FormulaError("#N/A")
    written = county.write(tmp_path / "written.ods")
    path = tmp_path / "twice.ods"
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "content.xml":
                data = data.replace(b"<text:p>", b'<text:p text:id="a" text:id="b">', 1)
            target.writestr(item, data)
    assert error_cells.ods_error_values(path) is None
    registers = exitcheck.load([path])
    (zh, en), = [note for note in registers.notes if "#N/A" in note[0]]
    assert zh.startswith(f"{path}: 文件中可能有错误值单元格") and "checked as blanks" in en


def refused_by_xlrd(path: Path, order: list[int] | None = None) -> Path:
    """The .xls with one sector more in its Workbook stream's chain than the stream's size
    needs: calamine reads the stream up to its size, xlrd's compound-document reader refuses
    the file ("size exceeds expected"). With `order`, the stream's sectors are also laid out in
    the file in that order (xlwt writes them in one run)."""
    import io
    import struct

    from xlrd import compdoc

    data = path.read_bytes()
    document = compdoc.CompDoc(data, logfile=io.StringIO())
    workbook = next(entry for entry in document.dirlist if entry.name == "Workbook")
    chain = [workbook.first_SID]
    while document.SAT[chain[-1]] >= 0:
        chain.append(document.SAT[chain[-1]])
    places = [chain[index] for index in order or range(len(chain))] + [(len(data) - 512) // 512]
    assert max(places) < 128 and workbook.DID < 4  # all in the first sector of their table
    rechained = bytearray(data + bytes(512))
    for place, sector in zip(places[:-1], chain, strict=True):
        rechained[512 * (place + 1) : 512 * (place + 2)] = data[512 * (sector + 1) : 512 * (sector + 2)]
    table = 512 * (struct.unpack_from("<i", data, 76)[0] + 1)
    for place, following in zip(places, [*places[1:], compdoc.EOCSID], strict=True):
        struct.pack_into("<i", rechained, table + 4 * place, following)
    struct.pack_into("<i", rechained, 512 * (document.dir_first_sec_sid + 1) + 128 * workbook.DID + 116, places[0])
    path.write_bytes(rechained)
    return path


def refused_xls_notes(tmp_path: Path, county: County) -> list[tuple[str, str]]:
    """The error-value notes of reading the county as an .xls that calamine reads and xlrd
    refuses (`refused_by_xlrd`)."""
    import xlrd

    import exitcheck

    path = refused_by_xlrd(county.write(tmp_path / "refused.xls"))
    with pytest.raises(xlrd.compdoc.CompDocError):
        xlrd.open_workbook(str(path))
    registers = exitcheck.load([path])
    assert len(registers.raw["households"]) == len(county.households)  # calamine read it
    return [note for note in registers.notes if "#N/A" in note[0]]


def test_an_xls_that_xlrd_refuses_is_noted_when_it_holds_an_error_value(tmp_path: Path) -> None:
    """calamine reads the workbook and xlrd cannot, so the error value stays blank: said so."""
    from builders import FormulaError, base_county

    county = base_county()
    county.households[0]["人均纯收入"] = FormulaError("#N/A")
    (zh, en), = refused_xls_notes(tmp_path, county)
    assert "文件中可能有错误值单元格" in zh and "checked as blanks" in en


def test_an_xls_that_xlrd_refuses_gets_no_note_without_an_error_value(tmp_path: Path) -> None:
    """The note was given on every reading of such a file: the search had never run. The file's
    bytes are searched instead, and hold no error record."""
    from builders import base_county

    assert refused_xls_notes(tmp_path, base_county()) == []


def test_an_error_record_split_where_the_chain_jumps_to_a_sector_elsewhere_is_found(tmp_path: Path) -> None:
    """In an .xls that xlrd refuses, the BOOLERR's first bytes end one sector and the rest
    begin the next sector of the chain, which is laid out elsewhere in the file: the record is
    not in the file's bytes as it is, so the stream is searched as olefile puts it together."""
    import xlwt

    from builders import XLS_ERROR_CODES

    path = tmp_path / "split.xls"

    def write(padding: int) -> int:
        """Where the error record stands in the stream, after a text of `padding` characters."""
        book = xlwt.Workbook()
        sheet = book.add_sheet("s")
        sheet.write(0, 0, "x" * padding)  # in the string table, before the sheet
        sheet.row(1).set_cell_error(0, XLS_ERROR_CODES["#N/A"])
        book.save(str(path))
        (offset,) = error_cells._error_record_offsets(path)
        return offset

    padding = 1 + (506 - write(1)) % 512  # each character one byte more
    offset = write(padding)
    assert offset % 512 == 506  # six bytes in one sector, six in the next
    order = list(range(8))
    order[offset // 512 + 1], order[offset // 512 + 2] = order[offset // 512 + 2], order[offset // 512 + 1]
    refused_by_xlrd(path, order)
    assert not any(pattern.search(path.read_bytes()) for pattern in error_cells._MAY_HOLD_ERROR)
    assert [sheet.rows for sheet in read_sheets(path, path.name, Limits())] == [[["x" * padding], [""]]]  # by calamine
    assert error_cells.xls_error_values(path) is None  # may hold one, cannot be read back: the note


def test_an_xls_that_xlrd_refuses_and_whose_allocation_table_is_lost_may_hold_an_error_value(tmp_path: Path) -> None:
    """Without the allocation table the stream cannot be put together: a record may be missed,
    so the answer is the note, not a blank in silence."""
    from builders import base_county

    clean_path = refused_by_xlrd(base_county().write(tmp_path / "clean.xls"))
    clean = clean_path.read_bytes()
    assert not error_cells._may_hold_error_anywhere(clean)
    # A few bytes that happen to spell a path are not read as that file (olefile's way with
    # bytes shorter than 1,536).
    assert error_cells._may_hold_error_anywhere(str(clean_path).encode())
    lost = clean[:76] + (1 << 20).to_bytes(4, "little") + clean[80:]  # its first sector: beyond the file
    assert error_cells._may_hold_error_anywhere(lost)


def test_an_ods_with_two_tables_of_one_name_gets_no_error_value_from_the_table_calamine_drops(tmp_path: Path) -> None:
    """calamine lists both and reads the second for each. Reading back stopped after the first
    table's error cell, so the second table, which replaces it, was never seen: its blank cell
    took the first table's #N/A."""
    path = tmp_path / "twice.ods"
    write_ods_tables(path, f'<table:table table:name="s"><table:table-row><table:table-cell/>{ods_cell("#N/A")}</table:table-row></table:table>'
                           f'<table:table table:name="s"><table:table-row>{ods_text("a")}<table:table-cell/>{ods_text("c")}'
                           '</table:table-row></table:table>')
    assert [sheet.rows for sheet in read_sheets(path, path.name, Limits())] == [[["a", "", "c"]]] * 2


def test_reading_an_ods_back_ends_when_the_reading_is_stopped(tmp_path: Path) -> None:
    """A large content.xml takes seconds to read back; a reading stopped (Ctrl-C, or a read
    ahead that is no longer wanted) ends it at its next piece, with nothing put back."""
    import threading

    path = tmp_path / "stopped.ods"
    write_ods_tables(path, f'<table:table table:name="s"><table:table-row>{ods_cell("#N/A")}</table:table-row></table:table>')
    stop = threading.Event()
    assert error_cells.ods_error_values(path, cancel=stop) == {"s": [error_cells.ErrorCells(0, 0, "#N/A")]}
    stop.set()
    assert error_cells.ods_error_values(path, cancel=stop) == {}
