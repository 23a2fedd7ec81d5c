"""Files to cells: what a file really is, the checks before parsing, and one read of each sheet.

Nothing here needs pandas. Reading goes through python-calamine: it reads .xlsx, .xlsm,
.xlsb, .xls and .ods in Rust and hands back each cell with its type (text, number, date),
which the checks need: an ID number typed into a number cell has lost digits, and the "value
as typed" of a number keeps its repr. fastexcel is faster still but turns every cell into
text, losing exactly that distinction.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from exitcheck.errors import InputError, UnrecognisedInput
from exitcheck.registers import compound
from exitcheck.registers.error_cells import WorkbookErrors
from exitcheck.registers.limits import (
    Limits,
    PackageScan,
    ScanCancelled,
    check_file_size,
    check_shape,
    check_zip,
    encrypted_workbook,
    not_a_workbook_zip,
    scan_package,
)
from exitcheck.registers.out_of_range import is_out_of_range, out_of_range_error

#: WPS 表格's own formats (工作簿 .et, 模板 .ett): many county offices work in WPS. They are read
#: as what their content is (xls, xlsx or other, whatever WPS put in), as any misnamed file; one
#: that cannot be read gets a hint to save it from WPS as .xlsx. No real .et was at hand here.
WPS_SUFFIXES = {".et", ".ett"}
#: What a folder's files are read from. Not a template (.ett, like Excel's .xltx): one left
#: beside the registers, with its example rows, would join them; named, it is read.
SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods", ".csv", ".et"}
HEADER_SEARCH_ROWS = 10


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


@dataclass
class SheetRead:
    """The cells of one sheet: rows as python-calamine gives them, and the first Excel row.

    `merged` holds the merged ranges (first row, first column, last row, last column; 0-based,
    as indices into `rows`) that span several rows and start among the header rows: a two-level
    header whose first columns are merged down over both levels has its headers in the upper
    row only. `merged_down` holds, in the same form, every range merged down one column over
    several rows, wherever it starts: a 乡镇 merged over a block of households shows its value on
    each of their rows, and the loader reads it there (load.py). Both are known only for the
    formats whose reader gives merged ranges: .xlsx, .xlsm and .xls, not .xlsb, .ods or .csv.
    """

    name: str
    rows: list[list[object]]
    first_row: int  # Excel row number of rows[0]
    merged: tuple[tuple[int, int, int, int], ...] = ()
    merged_down: tuple[tuple[int, int, int, int], ...] = ()
    lengths_checked: bool = False  # the package scan already refused any over-long text
    hidden: bool = False  # a hidden or very hidden sheet: often an old copy (load.py decides)
    hidden_rows: tuple[int, ...] = ()  # Excel row numbers hidden by hand or by a filter (.xlsx/.xlsm only)

    def header_cells(self, index: int) -> list[object]:
        """Row `index` with the cells hidden under a merge from above filled in, for header
        matching only: data rows are filled by the loader, from `merged_down` (load.py)."""
        row = list(self.rows[index])
        for top, left, bottom, _right in self.merged:
            if top < index <= bottom and left < len(row) and row[left] in ("", None):
                row[left] = self.rows[top][left] if left < len(self.rows[top]) else row[left]
        return row


@dataclass
class FileRead:
    """One file as read: its sheets, and what the reading has to say about it."""

    sheets: list[SheetRead]
    notes: list[tuple[str, str]] = field(default_factory=list)
    decoded_as: str | None = None  # CSV: the encoding the text was decoded with
    kind: str = ""  # what the content is: xlsx, xlsb, ods, xls or csv


#: The spreadsheets exitcheck writes into --out. A folder of registers that is also an audit's
#: --out holds them; read as registers they would be refused (户清单 looks like a 户表 that lacks
#: columns), so a folder's are left out. A file named on the command line is read as asked.
OUTPUT_NAMES = frozenset({"gaps.xlsx", "issues.xlsx", "bands.xlsx", "gaps.csv", "gaps_households.csv"})


def expand_paths(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Files to read, each with the path as the user gave it (folders give their spreadsheets,
    exitcheck's own outputs left out: see outputs_in_folders)."""
    out: list[tuple[Path, str]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            out.extend((child, str(child)) for child in _spreadsheets_in(path) if child.name.lower() not in OUTPUT_NAMES)
        else:
            out.append((path, str(given)))
    return out


def outputs_in_folders(paths: Iterable[str | Path]) -> list[Path]:
    """exitcheck's own outputs in the folders of `paths`, which expand_paths leaves out."""
    return [child for given in paths if Path(given).is_dir() for child in _spreadsheets_in(Path(given))
            if child.name.lower() in OUTPUT_NAMES]


def _spreadsheets_in(folder: Path) -> list[Path]:
    """The spreadsheets of a folder, in name order; not Office's lock files (~$) nor hidden ones."""
    return [child for child in sorted(folder.iterdir())
            if child.is_file() and child.suffix.lower() in SPREADSHEET_SUFFIXES and not child.name.startswith(("~$", "."))]


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _sniff(path: Path, shown: str) -> str:
    """What the file really is, from its first bytes, whatever its name says: zip, ole or csv."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        raise InputError(shown, "文件是空的(0 字节)", "the file is empty (0 bytes)")
    if head.startswith(b"PK"):
        return "zip"
    if head.startswith(OLE_MAGIC):
        return "ole"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"urn:schemas-microsoft-com:office:spreadsheet" in text or b'progid="excel.sheet"' in text:
        raise InputError(
            shown,
            "这是 Excel 2003 XML 表格, 不是 xlsx; 请用 Excel 或 WPS 打开后另存为 .xlsx",
            "this is an Excel 2003 XML spreadsheet, not an xlsx; open it in Excel or WPS and save it as .xlsx",
        )
    if text.startswith((b"<html", b"<!doctype html", b"<table", b"<meta", b"<head", b"<body")) or (
        text.startswith(b"<") and path.suffix.lower() != ".csv"
    ):
        raise InputError(
            shown,
            "这是网页(HTML)文件, 只是扩展名为 Excel; 请用 Excel 或 WPS 打开后另存为 .xlsx",
            "this is an HTML page with an Excel name (a web system's 'export to Excel'); open it in Excel or WPS and save it as .xlsx",
        )
    if path.suffix.lower() == ".csv":
        return "csv"
    if _looks_like_text(head) and path.suffix.lower() not in WPS_SUFFIXES:
        # (text named .et is no CSV export a clerk renamed: it is a WPS file gone bad, and the
        # message below, with the WPS hint, says what to do)
        if path.suffix.lower() in SPREADSHEET_SUFFIXES:
            raise InputError(
                shown,
                "这是文本(CSV)文件, 只是扩展名为 Excel; 请把扩展名改为 .csv, 或用 Excel 另存为 .xlsx",
                "this is a text (CSV) file with an Excel name; rename it to .csv or save it as .xlsx from Excel",
            )
        # e.g. Excel's "Unicode text" (UTF-16, tab-separated), which no reader here takes
        raise InputError(
            shown,
            "这是文本文件, 不是电子表格; 若是从 Excel 或 WPS 导出的表格(如'Unicode 文本'), 请打开后另存为 .xlsx 或 CSV UTF-8(.csv)",
            "this is a text file, not a spreadsheet; if it is a table saved from Excel or WPS (such as 'Unicode Text'), "
            "open it there and save it as .xlsx or CSV UTF-8 (.csv)",
        )
    raise UnrecognisedInput(
        shown,
        "不是可识别的电子表格(文件内容既不是 xlsx/xls 也不是 csv), 可能已损坏",
        "not a spreadsheet (the content is neither xlsx/xls nor csv); it may be corrupt",
    )


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    if b"\x00" in head:
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            head.decode(encoding)
            return True
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 4:  # a character cut at the end of the sample
                return True
            continue
    return False


def _read_workbook(path: Path, shown: str, kind: str, limits: Limits, control: ReadControl | None) -> FileRead:
    scan: PackageScan | None = None
    try:
        if kind == "zip":
            infos = check_zip(path, shown, limits)
            # sheets are scanned in the background while calamine opens the workbook
            cancel = threading.Event()
            if control is not None:
                control.link(cancel)  # before the scan starts: a stop reaches its first part too
            try:
                scan = scan_package(path, shown, infos, limits, background=True, largest_first=_cores() >= 2, cancel=cancel)
            except ScanCancelled:
                raise ReadingStopped(shown) from None
            return _read_with_calamine(path, shown, limits, scan, control)
        return _read_with_calamine(path, shown, limits, None, control)
    finally:
        if scan is not None:
            scan.close()


def _read_with_calamine(path: Path, shown: str, limits: Limits, scan: PackageScan | None, control: ReadControl | None) -> FileRead:
    import python_calamine

    notes: list[tuple[str, str]] = []
    not_a_workbook: InputError | None = None
    if scan is not None:
        if scan.encrypted:
            raise encrypted_workbook(shown)
        real = scan.kind
        if real == "unknown":
            # no main part found by name: let calamine try, and say what it is if it cannot
            real = path.suffix.lower().lstrip(".") if path.suffix.lower() in {".xlsx", ".xlsm", ".xlsb", ".ods"} else "xlsx"
            not_a_workbook = not_a_workbook_zip(shown, scan.names)
    else:
        examined = compound.examine(path)  # header, FAT and directory, read once for both questions
        names = {name.lower() for name in examined.names} if examined is not None else set()
        if names & {"encryptioninfo", "encryptedpackage"}:
            raise encrypted_workbook(shown)
        if examined is not None and examined.cut_short:
            raise InputError(
                shown,
                "文件不完整(在拷贝或下载时被截断), 无法读取; 请重新拷贝或重新导出",
                "the file is cut short (truncated in a copy or download) and cannot be read; copy or export it again",
            )
        real = "xls"
        if names and not names & {"workbook", "book"}:
            not_a_workbook = _ole_not_workbook(shown, names)
    suffixes = {"xlsx": (".xlsx", ".xlsm"), "xlsm": (".xlsm",), "xlsb": (".xlsb",), "ods": (".ods",), "xls": (".xls",)}[real]
    renamed = path.suffix.lower() not in suffixes
    wps = path.suffix.lower() in WPS_SUFFIXES

    def open_workbook() -> Any:
        if not renamed:
            return python_calamine.CalamineWorkbook.from_path(str(path))
        # calamine picks its reader from the extension; handed the bytes it sniffs them
        with path.open("rb") as handle:
            return python_calamine.CalamineWorkbook.from_filelike(handle)

    try:
        with calamine_errors(shown):
            workbook = open_workbook()
    except InputError as error:
        raise (not_a_workbook or error) from None
    if renamed and wps:
        notes.append((f"{shown}: WPS 表格文件, 已按其内容(.{real} 格式)读取",
                      f"{shown}: a WPS Spreadsheets file, read as what it holds (.{real})"))
    elif renamed:
        notes.append((
            f"{shown}: 文件实际是 .{real} 格式(扩展名不符), 已按 .{real} 读取",
            f"{shown}: the file is really .{real} (its extension says otherwise); read as .{real}",
        ))
    try:
        with calamine_errors(shown):
            worksheets = [meta.name for meta in workbook.sheets_metadata
                          if str(getattr(meta.typ, "name", meta.typ)).lower() in {"worksheet", "sheettypeenum.worksheet"}]
            hidden = {meta.name for meta in workbook.sheets_metadata if meta.visible != python_calamine.SheetVisibleEnum.Visible}
    except InputError:
        workbook.close()
        raise
    errors = WorkbookErrors(real, path, scan, repeated_names=len(set(worksheets)) < len(worksheets))
    reader = _SheetReader(shown, limits, scan, lengths_checked=scan is not None and real in ("xlsx", "xlsm"),
                          two_lanes=two_lanes_possible(real), control=control, path=path, errors=errors)
    if control is not None:
        control.link(reader.stop)
    sheets = reader.read_all(workbook, open_workbook, worksheets)
    if (unread := errors.note(shown)) is not None:
        notes.append(unread)
    for sheet in sheets:
        sheet.hidden = sheet.name in hidden
    return FileRead(sheets, notes, kind=real)


class ReadingStopped(Exception):
    """The reading was stopped from outside (ReadControl.stop) before every sheet was read."""


_T = TypeVar("_T")


class Background(Generic[_T]):
    """`work(*args)` run at once on a daemon thread; its outcome in `future`.

    Not a ThreadPoolExecutor: the interpreter joins an executor's threads before it exits, and
    calamine cannot be interrupted inside a sheet. A program that ends on an error (a mistyped
    option, a bad rule set) would wait seconds for a sheet no one will use; a daemon thread
    lets it go. Callers that stay alive (tests, other programs) `join` as before.
    """

    def __init__(self, name: str, work: Callable[..., _T], *args: object) -> None:
        self.future: Future[_T] = Future()
        self.future.set_running_or_notify_cancel()  # running from the start: nothing to cancel
        self._thread = threading.Thread(target=self._run, args=(work, args), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[..., _T], args: tuple[object, ...]) -> None:
        try:
            result = work(*args)
        except BaseException as error:  # handed to whoever asks for the result, as an executor does
            self.future.set_exception(error)
        else:
            self.future.set_result(result)

    def join(self) -> None:
        self._thread.join()


#: Formats whose reader parses a sheet only when asked for it, so that a second handle reads
#: other sheets. calamine parses every sheet of an .xls or .ods when it opens the file: a
#: second handle would parse it all twice (0.15 -> 0.23 s for an .xls, 0.34 -> 0.54 s for an
#: .ods) and hold it twice. .xlsb is left in one lane until it is measured.
LAZY_KINDS = frozenset({"xlsx", "xlsm"})


def two_lanes_possible(kind: str) -> bool:
    """Whether a workbook of this kind is read in two lanes on this machine."""
    return kind in LAZY_KINDS and _cores() >= 2


@dataclass
class _SheetReader:
    """Reads the worksheets of one workbook, in two lanes when it pays.

    python-calamine lets go of the GIL while it parses a sheet, and one workbook handle
    parses one sheet at a time: a second handle in a second thread reads the other sheets
    while the first reads the largest (docs/speed.md has the figures). Each sheet's part is
    waited for in the package scan before calamine lays it out, in either lane.

    An error is raised after both lanes end, for the first failing sheet in workbook order,
    so that the message does not depend on which lane met its sheet first; sheets after a
    failing one are not read. An interrupt (Ctrl-C) or an error of our own stops the other
    lane and the scan at their next sheet or chunk.
    """

    shown: str
    limits: Limits
    scan: PackageScan | None
    lengths_checked: bool
    two_lanes: bool
    control: ReadControl | None = None  # told when calamine starts on a sheet, and given each sheet read
    path: Path | None = None  # the file, to name a cell in an error (an xlsx's sheet parts)
    errors: WorkbookErrors | None = None  # puts back the error values (#N/A) calamine gives as ''
    stop: threading.Event = field(default_factory=threading.Event, init=False)
    _first_failure: int = field(default=1 << 30, init=False)  # workbook index of the earliest failed sheet
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def read_all(self, workbook: Any, open_workbook: Callable[[], Any], names: list[str]) -> list[SheetRead]:
        order = {name: index for index, name in enumerate(names)}
        outcome: dict[str, SheetRead | InputError] = {}
        other: Background[dict[str, SheetRead | InputError]] | None = None
        try:
            lanes = self._lanes(names)
            if len(lanes) == 2:
                other = Background("exitcheck-read", self._read_lane_own_handle, open_workbook, lanes[1], order)
            outcome.update(self._read_lane(workbook, lanes[0], order))
            if other is not None:
                outcome.update(other.future.result())
        except BaseException:
            self.stop.set()
            if self.scan is not None:
                self.scan.cancel.set()
            raise
        finally:
            if other is not None:
                other.join()
            workbook.close()
        if self.stop.is_set():
            raise ReadingStopped(self.shown)
        # the first failing sheet in workbook order decides, whichever lane met it first; the
        # sheets left unread all come after it
        for name in names:
            if isinstance(outcome.get(name), InputError):
                raise outcome[name]
        return [cast(SheetRead, outcome[name]) for name in names]

    def _lanes(self, names: list[str]) -> list[list[str]]:
        """The largest sheet first in one lane, the others in the second, balanced by size."""
        if not self.two_lanes or len(names) < 2:
            return [names]
        size = (lambda name: self.scan.sheet_bytes(name)) if self.scan is not None else (lambda name: 0)
        lanes: list[list[str]] = [[], []]
        loads = [0, 0]
        for name in sorted(names, key=size, reverse=True):
            lane = loads.index(min(loads))
            lanes[lane].append(name)
            loads[lane] += max(size(name), 1)
        return lanes

    def _read_lane_own_handle(self, open_workbook: Callable[[], Any], names: list[str], order: dict[str, int]) -> dict[str, SheetRead | InputError]:
        try:
            with calamine_errors(self.shown):
                workbook = open_workbook()
        except InputError as error:
            first = min(names, key=order.__getitem__)
            self._failed(order[first])
            return {first: error.with_traceback(None)}
        try:
            return self._read_lane(workbook, names, order)
        finally:
            workbook.close()

    def _read_lane(self, workbook: Any, names: list[str], order: dict[str, int]) -> dict[str, SheetRead | InputError]:
        outcome: dict[str, SheetRead | InputError] = {}
        for name in names:
            if self.stop.is_set():
                break
            if order[name] > self._first_failure:
                continue  # a sheet before this one has failed: its message is the one given
            try:
                outcome[name] = self._read_sheet(workbook, name)
            except (ScanCancelled, CancelledError):  # stopped while this sheet waited for its scan
                self.stop.set()  # read_all then raises ReadingStopped, whichever event came first
                break
            except InputError as error:  # the file's fault; an error of exitcheck's own goes up
                # without its traceback, whose frames hold the refused sheet's grid
                outcome[name] = error.with_traceback(None)
            if isinstance(outcome[name], InputError):
                self._failed(order[name])
            elif self.control is not None:
                self.control.arrived.put(cast(SheetRead, outcome[name]))
        return outcome

    def _failed(self, index: int) -> None:
        with self._lock:
            self._first_failure = min(self._first_failure, index)

    def _read_sheet(self, workbook: Any, name: str) -> SheetRead:
        if self.scan is not None:
            self.scan.wait_sheet(name)  # its part has passed the limits: calamine may lay it out
        if self.control is not None:
            self.control.parsing.set()
        with calamine_errors(self.shown):
            sheet = workbook.get_sheet_by_name(name)
            end = sheet.end
        # to_python(skip_empty_area=False) lays the grid out from A1: check that first.
        height, width = (end[0] + 1, end[1] + 1) if end else (0, 0)
        check_shape(self.shown, name, height, width, self.limits)
        with calamine_errors(self.shown):
            try:
                rows = sheet.to_python(skip_empty_area=False) if end else []
            except BaseException as error:  # noqa: BLE001 - pyo3's PanicException is one
                if not is_out_of_range(error):
                    raise
                part = self.scan.sheets.get(name) if self.scan is not None else None
                raise out_of_range_error(self.shown, sheet, name, self.path, part) from None
            ranges = sheet.merged_cell_ranges or ()
        if self.errors is not None:
            self.errors.restore(name, rows, self.stop)
        tall = [(top, left, bottom, right) for (top, left), (bottom, right) in ranges if bottom > top]
        merged = tuple(span for span in tall if span[0] < HEADER_SEARCH_ROWS)
        merged_down = tuple(span for span in tall if span[1] == span[3])
        return SheetRead(name, rows, 1, merged, merged_down, lengths_checked=self.lengths_checked, hidden_rows=self._hidden_rows(name))

    def _hidden_rows(self, name: str) -> tuple[int, ...]:
        part = self.scan.parts.get(self.scan.sheets.get(name, "")) if self.scan is not None else None
        return tuple(sorted(part.hidden_rows)) if part is not None else ()


def _cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _ole_not_workbook(shown: str, names: set[str]) -> InputError:
    if "worddocument" in names:
        what = ("这是 Word 文档(.doc)", "this is a Word document (.doc)")
    elif "powerpoint document" in names:
        what = ("这是 PowerPoint 演示文稿(.ppt)", "this is a PowerPoint presentation (.ppt)")
    else:
        # an OLE file of another program's own: the one that made it can save it as .xlsx
        return UnrecognisedInput(shown, "这是 Office 文件, 但不含工作表, 不是 Excel 工作簿", "this is an Office file with no workbook in it, not an Excel workbook")
    return InputError(shown, f"{what[0]}, 不是 Excel 工作簿", f"{what[1]}, not an Excel workbook")


@contextlib.contextmanager
def calamine_errors(shown: str) -> Iterator[None]:
    """Around calls into python-calamine: what it raises is the file's fault (or calamine's), and
    becomes the "corrupt file" InputError; a Rust panic arrives as pyo3's PanicException, a
    BaseException. Only calamine's calls go in here: an error of exitcheck's own must stay an
    internal error (exit 70), not send a clerk to export a good file again."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit, InputError):
        raise
    except BaseException as exc:
        raise _unreadable(shown, exc) from None


def _unreadable(shown: str, exc: BaseException) -> InputError:
    import python_calamine

    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    lowered = reason.lower()
    if isinstance(exc, python_calamine.PasswordError) or "password" in lowered or "encrypt" in lowered:
        return encrypted_workbook(shown)
    if "cell limit exceeded" in lowered:  # calamine's own cap on one sheet's grid
        return InputError(
            shown,
            f"工作表过大, 超过读取器的上限({reason}); 请删除多余的行列",
            f"a sheet is too large for the reader ({reason}); delete the stray rows and columns",
        )
    return UnrecognisedInput(
        shown,
        f"文件已损坏或格式不对, 无法读取({reason}); 请重新导出或重新拷贝",
        f"the file is corrupt or not a spreadsheet ({reason}); export or copy it again",
    )


def _decode_csv(data: bytes, shown: str) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read with.

    UTF-16 with a byte-order mark is what Excel's "Unicode text" export writes; otherwise UTF-8
    (with or without BOM), then GB18030, which is what Chinese Windows and WPS write.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates: tuple[str, ...] = ("utf-16",)
    else:
        candidates = ("utf-8-sig", "gb18030")
    for encoding in candidates:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InputError(
        shown,
        "CSV 文件的编码既不是 UTF-8 也不是 GB18030(可能是其他语言的编码); 请另存为 UTF-8 编码",
        "the CSV file is neither UTF-8 nor GB18030 (another language's encoding?); save it as UTF-8",
    )


def _read_csv(path: Path, shown: str, limits: Limits) -> FileRead:
    text, encoding = _decode_csv(path.read_bytes(), shown)
    if "\x00" in text:
        raise InputError(shown, "CSV 文件含有二进制内容, 不是文本文件", "the CSV file holds binary data, not text")
    first_line = text[: text.find("\n")] if "\n" in text else text
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    rows: list[list[object]] = []
    width = 0
    previous = csv.field_size_limit(limits.max_cell_chars)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            rows.append(list(row))
            width = max(width, len(row))
            if len(rows) > limits.max_rows or width > limits.max_columns or len(rows) * width > limits.max_cells:
                check_shape(shown, path.name, len(rows), width, limits)
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise InputError(
                shown,
                f"第 {reader.line_num} 行有单元格超过 {limits.max_cell_chars} 个字符的上限",
                f"line {reader.line_num} has a cell over the limit of {limits.max_cell_chars} characters",
            ) from None
        raise InputError(shown, f"CSV 文件格式错误({exc})", f"malformed CSV ({exc})") from None
    finally:
        csv.field_size_limit(previous)
    if rows:
        _check_quotes_closed(text, rows[-1], shown)
    rows = [row + [""] * (width - len(row)) for row in rows]
    decoded = None if encoding in ("utf-8-sig", "utf-16") else encoding
    return FileRead([SheetRead(path.stem, rows, 1)], decoded_as=decoded, kind="csv")


def _check_quotes_closed(text: str, last_row: list[str], shown: str) -> None:
    """Refuse a CSV whose last field opened a quote that never closes: the reader then takes
    every line after it as that one cell, and the rows it swallowed are lost without a word."""
    field = last_row[-1] if last_row else ""
    if "\n" not in field or not text.endswith(field):
        return
    start = len(text) - len(field)
    if start == 0 or text[start - 1] != '"':
        return
    line = text.count("\n", 0, start) + 1
    lost = field.rstrip("\r\n").count("\n")  # whole lines after the one the quote opened on
    raise InputError(
        shown,
        f"第 {line} 行有一个引号(\")没有配对, 其后 {lost} 行都被读成了同一个单元格; 请在该行删去或补全引号",
        f'line {line} opens a quote (") that is never closed, so the {lost} lines after it were read as one cell; '
        "remove or close the quote on that line",
    )


@dataclass
class ReadControl:
    """What the caller of a background read sees of it, and how it stops it.

    `parsing` is set once calamine is laying out a sheet whose scan has passed (or the read
    has ended); `stop()` stops the reading at the scan's next chunk and the reader's next sheet.
    `arrived` receives each sheet as it is read, in whatever order the lanes finish them, and
    None when the reading has ended, however it ended.
    """

    parsing: threading.Event = field(default_factory=threading.Event)
    arrived: queue.SimpleQueue[SheetRead | None] = field(default_factory=queue.SimpleQueue)
    stopped: threading.Event = field(default_factory=threading.Event)
    _linked: list[threading.Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def link(self, event: threading.Event) -> None:
        """`event` is set when the reading is stopped (a file's scan and reader each have one,
        so that ending one file's reading does not stop the next)."""
        with self._lock:
            self._linked.append(event)
            if self.stopped.is_set():
                event.set()

    def stop(self) -> None:
        with self._lock:
            self.stopped.set()
            for event in self._linked:
                event.set()


def read_file(path: Path, shown: str, limits: Limits, control: ReadControl | None = None) -> FileRead:
    """Every worksheet of a file, with what the reading has to say about it (read_sheets)."""
    try:
        return _read_file(path, shown, limits, control)
    finally:
        if control is not None:
            control.parsing.set()  # a file without a sheet to parse (CSV, an error) ends here
            control.arrived.put(None)


def _read_file(path: Path, shown: str, limits: Limits, control: ReadControl | None) -> FileRead:
    if not path.exists():
        raise InputError(shown, "文件不存在", "no such file")
    if not path.is_file():
        raise InputError(shown, "不是文件", "not a file")
    check_file_size(path, shown, limits)
    try:
        kind = _sniff(path, shown)
        if kind == "csv":
            return _read_csv(path, shown, limits)
        return _read_workbook(path, shown, kind, limits, control)
    except UnrecognisedInput as error:
        if path.suffix.lower() not in WPS_SUFFIXES:
            raise
        # only where the content was not made out: a limit, a password or a cut-short file is
        # no matter of the format, and saving it again would not help
        raise error.with_hint(f"; 这是 WPS 表格文件({path.suffix.lower()}): 请在 WPS 中「另存为」Excel 工作簿(.xlsx)后再核查",
                              f"; this is a WPS Spreadsheets file ({path.suffix.lower()}): save it from WPS as an Excel workbook (.xlsx), "
                              f"then check the .xlsx") from None


def read_sheets(path: Path, shown: str, limits: Limits) -> list[SheetRead]:
    """Every worksheet of a file, read once, after the checks that must come before parsing.

    Raises InputError for a file that is missing, not a spreadsheet, encrypted, corrupt or
    over one of `limits` (registers/limits.py says what is checked, in which order).
    """
    return read_file(path, shown, limits).sheets
