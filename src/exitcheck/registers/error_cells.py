"""Cells holding an Excel error value (#N/A, #DIV/0!, #REF!, #VALUE!, #NAME?, LibreOffice's Err:502).

python-calamine gives such a cell as '', the same as an empty cell, in every format: a VLOOKUP
that found nothing became a blank income ("人均纯收入为空"), and a birth date of #NAME? no issue
at all. Each format is first tested cheaply for error cells, and only a workbook (or sheet) that
may hold one pays for reading the values back, so that the parsers see "#N/A" and report it as
a value that cannot be read, with the value shown:

- .xlsx/.xlsm: the package scan notes the sheet parts that hold one (`PartScan.error_cells`: a
  search for '#' a stretch, and for t="e" only where one is found); for those parts the values
  are read back from the sheet XML.
- .ods: the package scan notes whether content.xml holds `value-type="error"` (LibreOffice's
  calcext attribute; the text is in the cell's <text:p>); only then is content.xml parsed, once
  for all its sheets (`ods_error_values`).
- .xls: the Workbook stream is searched for the two BIFF records that can hold an error (a
  BOOLERR or a FORMULA whose saved result is an error); only then does xlrd read the sheets in
  whose part of the stream one was found (`xls_error_values`). A compound document that xlrd's
  reader refuses (calamine's is laxer) is searched as olefile reads it (`_may_hold_error_anywhere`).

Every position is 0-based from A1, as calamine lays a sheet out (`to_python(skip_empty_area=
False)`), whichever cell the data starts at. A workbook whose error values cannot be read back
(a part another reader refuses, though calamine read it) keeps calamine's blanks, never a wrong
value, and the reading says so in a note (`WorkbookErrors.unread`).
"""

from __future__ import annotations

import bisect
import functools
import io
import re
import threading
import xml.parsers.expat
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exitcheck.registers.limits import PackageScan, cells_matching, parse_ref


@dataclass(frozen=True)
class ErrorCells:
    """One error value, over `height` rows and `width` columns from (row, column) (an .ods
    cell can be repeated across both)."""

    row: int
    column: int
    text: str
    height: int = 1
    width: int = 1


def put_error_values(rows: list[list[object]], errors: Iterable[ErrorCells]) -> None:
    """Write each error text into the cells calamine left empty (rows are laid out from A1).
    Only cells inside the grid are visited, whatever a repeat claims."""
    for block in errors:
        for row in rows[block.row : block.row + block.height]:
            for column in range(block.column, min(block.column + block.width, len(row))):
                if row[column] == "":
                    row[column] = block.text


# ---- xlsx ------------------------------------------------------------------------------------

# A cell with its reference first (every writer puts it there), t="e" among its attributes, and
# its value after an optional formula.
_ERROR_CELL = re.compile(
    rb"<c r=\"([A-Z]{1,3}[0-9]+)\"[^>]*?\st=[\"']e[\"'][^>]*>(?:<f\b[^>]*/>|<f\b[^>]*>[^<]*</f>)?<v>([^<]*)</v>"
)


def error_values(path: Path, part: str) -> list[ErrorCells]:
    """The error cells of an xlsx sheet part that passed the scan."""
    found: dict[tuple[int, int], str] = {}
    with zipfile.ZipFile(path) as archive:
        for stretch in cells_matching(archive, part, _ERROR_CELL):
            for reference, value in stretch:
                row, column = parse_ref(reference.decode(), 0, 0)
                found[(row - 1, column - 1)] = value.decode("utf-8", "replace")
    return [ErrorCells(row, column, text) for (row, column), text in found.items()]


# ---- ods -------------------------------------------------------------------------------------

#: The part calamine reads an .ods's sheets from.
ODS_CONTENT = "content.xml"
_ODS_CELLS = frozenset({"table:table-cell", "table:covered-table-cell"})
_ODS_PIECE = 1 << 16


class _Refused(Exception):
    """content.xml declares a DTD or an entity: its error values are not read."""


class _Done(Exception):
    """The cell holding the last error mark the scan found has been read: nothing is left."""


class _OdsTables:
    """expat handlers that follow content.xml's tables as calamine's ods reader does.

    calamine matches names with their prefixes as written ("table:table-row"), not by namespace,
    and so does this (expat without namespace processing). A named table is a sheet; every row
    in it (inside header-rows and row groups too) counts number-rows-repeated times; every cell
    in a row, covered (under a merge) or not, counts number-columns-repeated times; what a cell
    holds (its text, a sub-table) is skipped. A cell whose value-type is "error" is recorded
    with the text of its paragraphs.
    """

    def __init__(self, parser: Any, last_mark: int | None) -> None:
        self.parser = parser
        self.last_mark = last_mark  # where the last error mark stands in the part, if known
        self.found: dict[str, list[ErrorCells]] = {}
        self.depth = 0
        self.table: list[ErrorCells] | None = None  # the errors of the sheet being read
        self.row = 0
        self.height = 1  # number-rows-repeated of the row being read
        self.column = 0
        self.cell_depth = 0  # depth of the cell being read; inside it, only its text matters
        self.error: tuple[int, int] | None = None  # (column, width) of an error cell being read
        self.paragraphs: list[list[str]] = []

    # The two handlers run for each of the millions of elements of a county's content.xml:
    # the most frequent (a cell's paragraph) is dealt with first, with the fewest tests.
    def start(self, name: str, attributes: dict[str, str]) -> None:
        depth = self.depth = self.depth + 1
        if self.cell_depth:
            if self.error is not None and depth == self.cell_depth + 1 and name == "text:p":
                self.paragraphs.append([])
                self.parser.CharacterDataHandler = self.paragraphs[-1].append
        elif self.table is None:
            if name == "table:table" and "table:name" in attributes:
                # a second table of the same name replaces the first, as in calamine's map
                self.table = self.found[attributes["table:name"]] = []
                self.row = 0
        elif name in _ODS_CELLS:
            self.cell_depth = depth
            width = _repeat(attributes.get("table:number-columns-repeated"))
            if "error" in attributes.values() and _is_error(attributes):
                self.error = (self.column, width)
                self.paragraphs = []
            self.column += width
        elif name == "table:table-row":
            self.height = _repeat(attributes.get("table:number-rows-repeated"))
            self.column = 0

    def end(self, name: str) -> None:
        depth = self.depth
        self.depth = depth - 1
        if self.cell_depth:
            if depth == self.cell_depth:
                self.cell_depth = 0
                if self.error is not None and self.table is not None:
                    self._record(self.error, self.table)
            elif self.error is not None and depth == self.cell_depth + 1 and name == "text:p":
                self.parser.CharacterDataHandler = None
        elif self.table is not None:
            if name == "table:table-row":
                self.row += self.height
            elif name == "table:table":
                self.table = None

    def _record(self, error: tuple[int, int], table: list[ErrorCells]) -> None:
        """The error cell just read, and the end of the parsing after the last one."""
        text = "\n".join("".join(paragraph) for paragraph in self.paragraphs).strip()
        if text:
            column, width = error
            table.append(ErrorCells(self.row, column, text, self.height, width))
        self.error = None
        if self.last_mark is not None and self.parser.CurrentByteIndex > self.last_mark:
            raise _Done


def _repeat(value: str | None) -> int:
    return int(value) if value and value.isascii() and value.isdigit() else 1


def _is_error(attributes: dict[str, str]) -> bool:
    return any(value == "error" and key.endswith("value-type") for key, value in attributes.items())


def _refuse(*_args: object) -> None:
    raise _Refused


def ods_error_values(path: Path, last_mark: int | None = None, cancel: threading.Event | None = None) -> dict[str, list[ErrorCells]] | None:
    """Sheet name -> its error cells, from the content.xml of an .ods that passed the scan,
    which found the last error mark at `last_mark` (then no cell after it is read).

    Parsed as a stream with expat (the parser ElementTree uses), only the table structure
    followed and nothing kept but the error cells; a DTD or entity declaration is refused, as
    defusedxml does (the scan has already refused one). None when the part cannot be parsed;
    nothing when `cancel` is set (the reading is being stopped: a large part takes seconds).
    The parsing stops after the cell holding the last mark: it costs about twice calamine's
    read of the sheets up to there (7 to 10 s for a sheet of 65,536 rows by 20 columns, whose
    content.xml is 211 MB), and an error in the household sheet saves the member sheet after it.
    """
    parser = xml.parsers.expat.ParserCreate()
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    tables = _OdsTables(parser, last_mark)
    parser.StartElementHandler = tables.start
    parser.EndElementHandler = tables.end
    parser.buffer_text = True
    try:
        with zipfile.ZipFile(path) as archive, archive.open(ODS_CONTENT) as stream:
            while piece := stream.read(_ODS_PIECE):
                if cancel is not None and cancel.is_set():
                    return {}
                parser.Parse(piece, False)
            parser.Parse(b"", True)
    except _Done:
        pass
    except (_Refused, xml.parsers.expat.ExpatError, zipfile.BadZipFile, KeyError, OSError, ValueError):
        return None
    return {name: cells for name, cells in tables.found.items() if cells}


# ---- xls -------------------------------------------------------------------------------------

#: The BIFF5/8 records that can hold an error value, as they stand in the Workbook stream: a
#: BOOLERR (0x0205, 8 bytes: row, column, format, value, fError=1) and a FORMULA (0x0006: length,
#: row, column, format, then its saved result, 8 bytes, which is an error when its first byte is
#: 2 and its last two 0xFFFF). Each starts with a literal that the regex engine searches for at
#: C speed. A match may also be bytes inside another record; it only makes xlrd read the sheet.
_MAY_HOLD_ERROR = (
    re.compile(rb"\x05\x02\x08\x00.{7}\x01", re.DOTALL),
    re.compile(rb"\x06\x00.{8}\x02.{5}\xff\xff", re.DOTALL),
)


class _Discard:
    """xlrd's log (it writes warnings about odd files to stdout by default): thrown away."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def _workbook_stream(data: bytes) -> tuple[bytes, int, int] | None:
    """The Workbook stream as xlrd finds it: (bytes holding it, where it starts, its size). A
    stream laid out in one run (as writers do) is where it lies in the file's bytes, not a copy.
    None when xlrd's compound-document reader refuses the file or finds no such stream, though
    calamine's may read it (it takes a sector chain longer than its stream, for one)."""
    from xlrd import compdoc

    try:
        document = compdoc.CompDoc(data, logfile=_Discard())
        for name in ("Workbook", "Book"):
            stream, base, size = document.locate_named_stream(name)
            if stream:
                return stream, base, size
    except Exception:  # noqa: BLE001 - CompDocError, and asserts, struct and index errors too
        return None
    return None


def _error_record_offsets(path: Path) -> list[int] | None:
    """Offsets in the Workbook stream of the records that may hold an error value (none in a
    workbook without one). None when xlrd cannot find the stream and the file's bytes may hold
    such a record. (Read whole, not mapped: xlrd's compound-document reader takes 60 % longer
    over a map.)"""
    data = path.read_bytes()
    located = _workbook_stream(data)
    if located is None:
        return None if _may_hold_error_anywhere(data) else []
    stream, base, size = located
    return sorted(found.start() - base for pattern in _MAY_HOLD_ERROR for found in pattern.finditer(stream, base, base + size))


def _may_hold_error_anywhere(data: bytes) -> bool:
    """Whether a compound document that xlrd's reader refuses may hold an error record, which
    calamine would then give as a blank. olefile reads such a document as leniently as calamine
    (a sector chain longer than its stream, for one) and gives the stream whole, so a record
    split over sectors laid out apart is found as well. When olefile cannot read it either, the
    answer is yes: a needless note is better than a blank in silence."""
    import olefile

    try:
        # In a file object: olefile takes bytes shorter than 1,536 for a file name.
        with olefile.OleFileIO(io.BytesIO(data)) as document:
            name = next((name for name in ("Workbook", "Book") if document.exists(name)), None)
            if name is None:
                return True
            stream = document.openstream(name).read()
    except Exception:  # noqa: BLE001 - OSError for a damaged document, and whatever else olefile meets
        return True
    return any(pattern.search(stream) for pattern in _MAY_HOLD_ERROR)


def _sheets_holding(offsets: list[int], starts: list[int], end: int) -> set[int]:
    """Indices of the sheets in whose part of the stream (from its start to the next sheet's
    or the stream's end) one of the sorted `offsets` lies."""
    bounds = sorted({*starts, end})
    holding = set()
    for index, start in enumerate(starts):
        stop = min((bound for bound in bounds if bound > start), default=start)
        first = bisect.bisect_left(offsets, start)
        if first < len(offsets) and offsets[first] < stop:
            holding.add(index)
    return holding


def xls_error_values(path: Path) -> dict[str, list[ErrorCells]] | None:
    """Sheet name -> its error cells, for an .xls (BIFF5/8). Nothing is read by xlrd unless the
    stream holds a record that may carry an error, and then only the sheets that hold one.
    None when xlrd cannot read a workbook that may hold one."""
    try:
        offsets = _error_record_offsets(path)
        if offsets is None:
            return None
        if not offsets:
            return {}
        import xlrd

        book = xlrd.open_workbook(str(path), on_demand=True, ragged_rows=True, logfile=_Discard())
        try:
            # where each sheet starts in the stream: BOUNDSHEET's offsets, as xlrd keeps them
            starts = [position - book.base for position in getattr(book, "_sh_abs_posn", [])]
            names = book.sheet_names()
            wanted = _sheets_holding(offsets, starts, book.stream_len) if len(starts) == len(names) else set(range(len(names)))
            found = {}
            for index in sorted(wanted):
                cells = _xls_sheet_errors(book.sheet_by_index(index))
                book.unload_sheet(index)
                if cells:
                    found[names[index]] = cells
            return found
        finally:
            book.release_resources()
    except Exception:  # noqa: BLE001 - xlrd meets files calamine reads and it does not (asserts, struct errors)
        return None


def _xls_sheet_errors(sheet: Any) -> list[ErrorCells]:
    import xlrd

    error = xlrd.XL_CELL_ERROR
    texts: dict[int, str] = xlrd.error_text_from_code
    cells = []
    for row in range(sheet.nrows):
        types = sheet.row_types(row)
        if error in types:
            values = sheet.row_values(row)
            cells += [ErrorCells(row, column, texts.get(values[column], f"#ERR{values[column]}"))
                      for column, kind in enumerate(types) if kind == error]
    return cells


# ---- one workbook ----------------------------------------------------------------------------


@dataclass
class WorkbookErrors:
    """Puts the error values back into each sheet of one workbook as it is read.

    An .xls's or .ods's error cells are read for the whole workbook, once, when the first sheet
    asks (both are read in one lane, but a lock costs nothing); an xlsx's per sheet part."""

    kind: str  # xlsx, ods or xls (another kind has none read back)
    path: Path
    scan: PackageScan | None = None
    #: two sheets share a name: calamine reads the last table of that name for both, so an
    #: .ods is read back to its end, where that table replaces the first (no early stop)
    repeated_names: bool = False
    #: the workbook may hold error cells whose values could not be read back (left blank)
    unread: bool = field(default=False, init=False)
    _by_sheet: dict[str, list[ErrorCells]] | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def restore(self, sheet: str, rows: list[list[object]], stop: threading.Event | None = None) -> None:
        """Put back the error values of `sheet` into its rows; `stop` is set when the reading is
        stopped, which ends a long reading back too."""
        if self.kind in ("xlsx", "xlsm"):
            part = self.scan.sheets.get(sheet) if self.scan is not None else None
            scanned = self.scan.parts.get(part) if self.scan is not None and part else None
            if scanned is not None and scanned.error_cells:
                put_error_values(rows, error_values(self.path, part))
        elif self.kind == "ods":
            content = self.scan.parts.get(ODS_CONTENT) if self.scan is not None else None
            if content is not None and content.error_cells:
                last_mark = None if self.repeated_names else content.last_error_mark
                read = functools.partial(ods_error_values, last_mark=last_mark, cancel=stop)
                put_error_values(rows, self._workbook(read).get(sheet, ()))
        elif self.kind == "xls":
            put_error_values(rows, self._workbook(xls_error_values).get(sheet, ()))

    def _workbook(self, read: Callable[[Path], dict[str, list[ErrorCells]] | None]) -> dict[str, list[ErrorCells]]:
        with self._lock:
            if self._by_sheet is None:
                found = read(self.path)
                self.unread = found is None
                self._by_sheet = found or {}
            return self._by_sheet

    def note(self, shown: str) -> tuple[str, str] | None:
        """What the reading says when error values could not be read back: never a silent blank."""
        if not self.unread:
            return None
        return (f"{shown}: 文件中可能有错误值单元格(如 #N/A), 但无法读出其值, 这些单元格按空白核查; "
                f"请在 Excel 或 WPS 中打开, 改正出错的公式后另存为 .xlsx 再核查",
                f"{shown}: the file may hold error cells (such as #N/A) whose values could not be read back; they are "
                f"checked as blanks. Open it in Excel or WPS, correct the failing formulas, save it as .xlsx and check it again")
