"""Files to register frames: formats, sheet and header detection, row positions, limits.

Reading goes through python-calamine: it reads .xlsx, .xlsm, .xlsb, .xls and .ods in Rust and
hands back each cell with its type (text, number, date), which the checks need: an ID number
typed into a number cell has lost digits, and the "value as typed" of a number keeps its repr.
fastexcel is faster still but turns every cell into text, losing exactly that distinction.
Each sheet is read once; everything after is column-wise.
"""

from __future__ import annotations

import codecs
import csv
import io
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from exitcheck.errors import InputError
from exitcheck.issues import DataIssue
from exitcheck.registers.limits import (
    Limits,
    PackageScan,
    check_file_size,
    check_shape,
    check_zip,
    not_a_workbook_zip,
    scan_package,
    uncached_formulas,
)
from exitcheck.registers.model import ROW, SOURCE, ColumnInfo, Registers, SheetSource
from exitcheck.registers.schema import (
    REGISTERS,
    REQUIRED_REGISTERS,
    SHEET_NAMES,
    RegisterName,
    fields,
    match_header,
    normalise_header,
)

SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods", ".csv"}
HEADER_SEARCH_ROWS = 10
MIN_HEADER_MATCHES = 3
MAX_HEADER_DEPTH = 3  # rows a merged header cell may span below the header row
TOTAL_LABELS = {"合计", "总计", "小计"}

HeaderMap = dict[str, dict[str, str]]  # register -> {header as typed: field}


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
    row only.
    """

    name: str
    rows: list[list[object]]
    first_row: int  # Excel row number of rows[0]
    merged: tuple[tuple[int, int, int, int], ...] = ()
    lengths_checked: bool = False  # the package scan already refused any over-long text

    def header_cells(self, index: int) -> list[object]:
        """Row `index` with the cells hidden under a merge from above filled in, for header
        matching only: data rows are never filled."""
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


def expand_paths(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Files to read, each with the path as the user gave it (folders give their spreadsheets)."""
    out: list[tuple[Path, str]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if (
                    child.is_file()
                    and child.suffix.lower() in SPREADSHEET_SUFFIXES
                    and not child.name.startswith(("~$", "."))
                ):
                    out.append((child, str(child)))
        else:
            out.append((path, str(given)))
    return out


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
    if _looks_like_text(head):
        if path.suffix.lower() in SPREADSHEET_SUFFIXES:
            raise InputError(
                shown,
                "这是文本(CSV)文件, 只是扩展名为 Excel; 请把扩展名改为 .csv, 或用 Excel 另存为 .xlsx",
                "this is a text (CSV) file with an Excel name; rename it to .csv or save it as .xlsx from Excel",
            )
        raise InputError(shown, "这是文本文件, 不是电子表格", "this is a text file, not a spreadsheet")
    raise InputError(
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


_CFB_END = 0xFFFFFFFA  # sector numbers at or above this are markers (end of chain, free, ...)


def ole_stream_names(path: Path) -> set[str]:
    """Names in an OLE compound file's directory (MS-CFB), read without reading the streams.

    An encrypted xlsx is an OLE file holding 'EncryptionInfo' and 'EncryptedPackage'; an .xls
    holds 'Workbook' (or 'Book'). Bounded: at most 100,000 directory sectors, cycles cut. An
    unreadable directory gives what was read so far; calamine has the last word on it.
    """
    names: set[str] = set()
    with path.open("rb") as handle:
        header = handle.read(512)
        if len(header) < 512:
            return names
        shift = struct.unpack_from("<H", header, 30)[0]
        if shift not in (9, 12):
            return names
        size = 1 << shift
        n_fat, first_dir = struct.unpack_from("<II", header, 44)
        next_difat, n_difat = struct.unpack_from("<II", header, 68)
        fat_sectors = [s for s in struct.unpack_from("<109I", header, 76) if s < _CFB_END]
        seen: set[int] = set()
        while next_difat < _CFB_END and len(fat_sectors) < n_fat and next_difat not in seen and len(seen) <= n_difat:
            seen.add(next_difat)
            handle.seek((next_difat + 1) * size)
            block = handle.read(size)
            if len(block) < size:
                break
            ids = struct.unpack(f"<{size // 4}I", block)
            fat_sectors += [s for s in ids[:-1] if s < _CFB_END]
            next_difat = ids[-1]
        per_sector = size // 4

        def next_sector(sector: int) -> int:
            index, offset = divmod(sector, per_sector)
            if index >= len(fat_sectors):
                return _CFB_END
            handle.seek((fat_sectors[index] + 1) * size + offset * 4)
            raw = handle.read(4)
            return struct.unpack("<I", raw)[0] if len(raw) == 4 else _CFB_END

        sector = first_dir
        visited: set[int] = set()
        while sector < _CFB_END and sector not in visited and len(visited) < 100_000:
            visited.add(sector)
            handle.seek((sector + 1) * size)
            block = handle.read(size)
            if len(block) < size:
                break
            for at in range(0, size, 128):
                length, kind = struct.unpack_from("<HB", block, at + 64)
                if kind in (1, 2, 5) and 2 <= length <= 64 and length % 2 == 0:
                    names.add(block[at : at + length - 2].decode("utf-16-le", "replace"))
            sector = next_sector(sector)
    return names


def _read_workbook(path: Path, shown: str, kind: str, limits: Limits) -> FileRead:
    scan: PackageScan | None = None
    try:
        if kind == "zip":
            infos = check_zip(path, shown, limits)
            # sheets are scanned in the background while calamine opens the workbook
            scan = scan_package(path, shown, infos, limits, background=True)
            return _read_with_calamine(path, shown, limits, scan)
        return _read_with_calamine(path, shown, limits, None)
    finally:
        if scan is not None:
            scan.close()


def _read_with_calamine(path: Path, shown: str, limits: Limits, scan: PackageScan | None) -> FileRead:
    import python_calamine

    notes: list[tuple[str, str]] = []
    not_a_workbook: InputError | None = None
    if scan is not None:
        if scan.encrypted:
            raise _encrypted(shown)
        real = scan.kind
        if real == "unknown":
            # no main part found by name: let calamine try, and say what it is if it cannot
            real = path.suffix.lower().lstrip(".") if path.suffix.lower() in {".xlsx", ".xlsm", ".xlsb", ".ods"} else "xlsx"
            not_a_workbook = not_a_workbook_zip(shown, scan.names)
    else:
        names = {name.lower() for name in ole_stream_names(path)}
        if names & {"encryptioninfo", "encryptedpackage"}:
            raise _encrypted(shown)
        real = "xls"
        if names and not names & {"workbook", "book"}:
            not_a_workbook = _ole_not_workbook(shown, names)
    suffixes = {"xlsx": (".xlsx", ".xlsm"), "xlsm": (".xlsm",), "xlsb": (".xlsb",), "ods": (".ods",), "xls": (".xls",)}[real]
    try:
        if path.suffix.lower() in suffixes:
            workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        else:
            # calamine picks its reader from the extension; handed the bytes it sniffs them
            with path.open("rb") as handle:
                workbook = python_calamine.CalamineWorkbook.from_filelike(handle)
            notes.append((
                f"{shown}: 文件实际是 .{real} 格式(扩展名不符), 已按 .{real} 读取",
                f"{shown}: the file is really .{real} (its extension says otherwise); read as .{real}",
            ))
    except Exception as exc:  # calamine raises its own error types for every bad file
        raise (not_a_workbook or _unreadable(shown, exc)) from None
    sheets: list[SheetRead] = []
    try:
        for meta in workbook.sheets_metadata:
            if str(getattr(meta.typ, "name", meta.typ)).lower() not in {"worksheet", "sheettypeenum.worksheet"}:
                continue
            if scan is not None:
                scan.wait_sheet(meta.name)  # its part has passed the limits: calamine may lay it out
            sheet = workbook.get_sheet_by_name(meta.name)
            end = sheet.end
            # to_python(skip_empty_area=False) lays the grid out from A1: check that first.
            height, width = (end[0] + 1, end[1] + 1) if end else (0, 0)
            check_shape(shown, meta.name, height, width, limits)
            rows = sheet.to_python(skip_empty_area=False) if end else []
            merged = tuple(
                (top, left, bottom, right)
                for (top, left), (bottom, right) in (sheet.merged_cell_ranges or ())
                if bottom > top and top < HEADER_SEARCH_ROWS
            )
            sheets.append(SheetRead(meta.name, rows, 1, merged, lengths_checked=scan is not None and real in ("xlsx", "xlsm")))
    except InputError:
        raise
    except Exception as exc:
        raise _unreadable(shown, exc) from None
    finally:
        workbook.close()
    return FileRead(sheets, notes, kind=real)


def _ole_not_workbook(shown: str, names: set[str]) -> InputError:
    if "worddocument" in names:
        what = ("这是 Word 文档(.doc)", "this is a Word document (.doc)")
    elif "powerpoint document" in names:
        what = ("这是 PowerPoint 演示文稿(.ppt)", "this is a PowerPoint presentation (.ppt)")
    else:
        what = ("这是 Office 文件, 但不含工作表", "this is an Office file with no workbook in it")
    return InputError(shown, f"{what[0]}, 不是 Excel 工作簿", f"{what[1]}, not an Excel workbook")


def _encrypted(shown: str) -> InputError:
    return InputError(
        shown,
        "工作簿设有打开密码(已加密), 无法读取; 请在 Excel 中取消密码后另存",
        "the workbook is password-protected (encrypted); remove the password in Excel and save it again",
    )


def _unreadable(shown: str, exc: Exception) -> InputError:
    import python_calamine

    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    lowered = reason.lower()
    if isinstance(exc, python_calamine.PasswordError) or "password" in lowered or "encrypt" in lowered:
        return _encrypted(shown)
    if "cell limit exceeded" in lowered:  # calamine's own cap on one sheet's grid
        return InputError(
            shown,
            f"工作表过大, 超过读取器的上限({reason}); 请删除多余的行列",
            f"a sheet is too large for the reader ({reason}); delete the stray rows and columns",
        )
    return InputError(
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
    rows = [row + [""] * (width - len(row)) for row in rows]
    decoded = None if encoding in ("utf-8-sig", "utf-16") else encoding
    return FileRead([SheetRead(path.stem, rows, 1)], decoded_as=decoded, kind="csv")


def _read_file(path: Path, shown: str, limits: Limits) -> FileRead:
    if not path.exists():
        raise InputError(shown, "文件不存在", "no such file")
    if not path.is_file():
        raise InputError(shown, "不是文件", "not a file")
    check_file_size(path, shown, limits)
    kind = _sniff(path, shown)
    if kind == "csv":
        return _read_csv(path, shown, limits)
    return _read_workbook(path, shown, kind, limits)


def read_sheets(path: Path, shown: str, limits: Limits) -> list[SheetRead]:
    """Every worksheet of a file, read once, after the checks that must come before parsing.

    Raises InputError for a file that is missing, not a spreadsheet, encrypted, corrupt or
    over one of `limits` (registers/limits.py says what is checked, in which order).
    """
    return _read_file(path, shown, limits).sheets


def _register_by_name(sheet_name: str) -> RegisterName | None:
    key = normalise_header(sheet_name)
    for register in REGISTERS:
        if key in {normalise_header(name) for name in SHEET_NAMES[register]}:
            return register
    for register in REGISTERS:
        if any(normalise_header(name) in key for name in SHEET_NAMES[register][:3]):
            return register
    return None


def _row_matches(row: Sequence[object], register: RegisterName, headers: HeaderMap) -> set[str]:
    found = set()
    for cell in row:
        if isinstance(cell, str) and cell.strip():
            name = match_header(register, cell, headers.get(register))
            if name:
                found.add(name)
    return found


def _distinct_fields() -> dict[RegisterName, set[str]]:
    """Per register, headers that no other register has: they decide an ambiguous sheet."""
    keys: dict[RegisterName, set[str]] = {}
    for register in REGISTERS:
        keys[register] = {normalise_header(spec.header) for spec in fields(register)}
    out: dict[RegisterName, set[str]] = {}
    for register in REGISTERS:
        others = set().union(*(keys[other] for other in REGISTERS if other != register))
        out[register] = {
            spec.name for spec in fields(register) if normalise_header(spec.header) not in others
        }
    return out


def find_header(
    sheet: SheetRead, headers: HeaderMap
) -> tuple[RegisterName, int] | None:
    """The register a sheet holds and the index of its header row, or None.

    The header row is the first of the first ten rows in which at least three cells match headers
    of one register; the sheet name, when it says which register, decides which one. When that
    row's cells are merged down over the rows below (a two-level header: 户编号 merged over both
    levels, 基本信息 over its sub-headers), the header is the last row of those merges, where
    the sub-headers are, and its hidden cells take the merged headers.
    """
    by_name = _register_by_name(sheet.name)
    candidates: tuple[RegisterName, ...] = (by_name,) if by_name else REGISTERS
    distinct = _distinct_fields()
    for index in range(min(HEADER_SEARCH_ROWS, len(sheet.rows))):
        row = sheet.header_cells(index)
        scores = []
        for register in candidates:
            found = _row_matches(row, register, headers)
            if len(found) >= MIN_HEADER_MATCHES:
                scores.append((len(found & distinct[register]), len(found), register))
        if scores:
            scores.sort(key=lambda item: (item[0], item[1]), reverse=True)
            register = scores[0][2]
            # Only header cells merged down a few rows move the header: a merge that runs on
            # into the data (a notes column) must not swallow records.
            bottom = max(
                (
                    b for top, left, b, _r in sheet.merged
                    if top == index and b - top <= MAX_HEADER_DEPTH and left < len(row)
                    and isinstance(row[left], str) and match_header(register, row[left], headers.get(register))
                ),
                default=index,
            )
            return register, min(bottom, len(sheet.rows) - 1)
    return None


def _columns(
    header_row: Sequence[object], register: RegisterName, headers: HeaderMap, duplicates: list[tuple[str, str, str]] | None = None
) -> tuple[ColumnInfo, ...]:
    """The columns of a sheet from its header row. A second column for a field already taken
    is carried as an unknown column, not read; it is listed in `duplicates` as
    (header, its column letter, the letter of the column that is read)."""
    columns: list[ColumnInfo] = []
    used: set[str] = set()
    for index, cell in enumerate(header_row):
        letter = column_letter(index)
        header = "" if cell is None else str(cell).strip()
        field_name = match_header(register, header, headers.get(register)) if header else None
        if field_name in used:
            if duplicates is not None:
                first = next(c.letter for c in columns if c.field == field_name)
                duplicates.append((header, letter, first))
            field_name = None  # a second column for the same field is carried, not read
        if field_name:
            used.add(field_name)
            name = field_name
        else:
            name = header or f"列{letter}"
            while name in used:
                name = f"{name}({letter})"
        used.add(name)
        columns.append(ColumnInfo(index, letter, header, field_name, name))
    return tuple(columns)


def _frame(sheet: SheetRead, header_index: int, columns: tuple[ColumnInfo, ...], limits: Limits, shown: str) -> pd.DataFrame:
    body = sheet.rows[header_index + 1 :]
    width = len(columns)
    frame = pd.DataFrame(body, columns=range(len(body[0])) if body else range(width), dtype=object)
    frame = frame.iloc[:, :width]
    frame.columns = [column.name for column in columns[: frame.shape[1]]]
    frame[ROW] = range(sheet.first_row + header_index + 1, sheet.first_row + header_index + 1 + len(body))
    cells = frame.drop(columns=[ROW])
    keep = ~(_blank_rows(cells) | _totals_rows(cells))
    letters = {column.name: column.letter for column in columns}
    if not sheet.lengths_checked:  # an xlsx's XML was checked as it was inflated; others here
        _check_cell_lengths(cells[keep], frame[ROW], limits, shown, sheet.name, letters)
    return frame[keep].reset_index(drop=True)


def _blank_cells(column: pd.Series) -> np.ndarray:
    """None or '' (calamine's empty cell), as a bool array."""
    values = column.to_numpy(dtype=object)
    return pd.isna(values) | (values == "")


def _blank_rows(cells: pd.DataFrame) -> np.ndarray:
    """Rows with nothing in any cell. Only rows blank in the first column can be: the rest
    of the row is looked at for those alone (few, in a register)."""
    if not len(cells.columns):
        return np.ones(len(cells), dtype=bool)
    blank = _blank_cells(cells.iloc[:, 0])
    for position in range(1, cells.shape[1]):
        rows = np.flatnonzero(blank)
        if not len(rows):
            break
        blank[rows] = _blank_cells(cells.iloc[rows, position])
    return blank


def _totals_rows(cells: pd.DataFrame) -> np.ndarray:
    """Rows whose first non-blank cell among the first three is 合计, 总计 or 小计 (spaces
    inside, '合 计', are typed too). Each column's distinct cells are looked at once."""
    totals = np.zeros(len(cells), dtype=bool)
    left_blank = np.ones(len(cells), dtype=bool)  # every cell to the left is blank
    for position in range(min(3, cells.shape[1])):
        codes, distinct = pd.factorize(cells.iloc[:, position].to_numpy(dtype=object))
        present = codes >= 0
        at = codes[present]
        totals[present] |= left_blank[present] & _total_labels(distinct)[at]
        blank = ~present
        blank[present] = (distinct == "")[at]
        left_blank &= blank
    return totals


def _total_labels(distinct: np.ndarray) -> np.ndarray:
    """Which distinct cells are a totals label: a text holding 计 is looked at closely."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pd.api.types.infer_dtype(distinct, skipna=True) == "string":  # the usual column: in C++
        texts = pa.array(distinct, type=pa.string())
        candidates = np.flatnonzero(pc.match_substring(texts, "计").to_numpy(zero_copy_only=False))
    else:
        candidates = np.array([i for i, v in enumerate(distinct) if type(v) is str and "计" in v], dtype=np.int64)
    labels = np.zeros(len(distinct), dtype=bool)
    labels[candidates] = ["".join(str(v).split()) in TOTAL_LABELS for v in distinct[candidates]]
    return labels


def _check_cell_lengths(cells: pd.DataFrame, rows: pd.Series, limits: Limits, shown: str, sheet: str, letters: dict[str, str]) -> None:
    """No text cell longer than `max_cell_chars` (Excel's own limit is 32,767): a longer one was
    not typed in Excel, and would bloat every output it is copied to."""
    for name in cells.columns:
        values = cells[name].to_numpy(dtype=object)
        # one pass in Python is ~10x cheaper than converting the column to pandas strings
        lengths = [len(v) if type(v) is str else 0 for v in values]
        longest = max(lengths, default=0)
        if longest > limits.max_cell_chars:
            at = cells.index[lengths.index(longest)]
            cell = f"{letters.get(name, '')}{rows[at]}"
            raise InputError(
                shown,
                f"工作表「{sheet}」单元格 {cell}(列「{name}」)长达 {longest} 个字符, 超过上限 {limits.max_cell_chars}; 如确属正常, 请在 exitcheck.yaml 的 limits.max_cell_chars 中调高上限",
                f"sheet '{sheet}' cell {cell} (column '{name}') holds {longest} characters, over the limit of {limits.max_cell_chars}; raise limits.max_cell_chars in exitcheck.yaml if it is genuine",
            )


def _missing_required(source: SheetSource, register: RegisterName) -> list[str]:
    present = {column.field for column in source.columns if column.field}
    missing = [spec.name for spec in fields(register) if spec.required and spec.name not in present]
    if register == "households":
        # National exports carry no 农户类别: a sheet of 贫困户属性 or 脱贫标志 is all registered.
        if "category" in missing and present & {"poverty_attribute", "status"}:
            missing.remove("category")
        # 是否危房户 alone says the house is safe (grade A) or dangerous without a grade.
        if "housing_grade" in missing and "dangerous_house" in present:
            missing.remove("housing_grade")
    return missing


@dataclass
class LoadedFile:
    """What one file gave: register sheets, remarks, and sheets refused for a missing column."""

    found: list[tuple[SheetSource, pd.DataFrame]]
    notes: list[tuple[str, str]]
    missing: list[DataIssue]


def _missing_columns_error(shown: str, missing: list[DataIssue]) -> InputError:
    first = missing[0]
    names = "、".join(f"「{issue.header}」" for issue in missing)
    return InputError(
        shown,
        f"工作表「{first.sheet}」第 {first.row} 行的表头缺少必填列 {names}; 请补上该列或在 headers 中映射",
        f"sheet '{first.sheet}' header row {first.row} lacks required column(s) {', '.join(i.field or '' for i in missing)}; add them or map your headers under `headers:`",
        issues=missing,
    )


def load_file(path: Path, shown: str, headers: HeaderMap, limits: Limits) -> LoadedFile:
    """The register sheets of one file. Raises InputError when the file yields none."""
    read = _read_file(path, shown, limits)
    sheets = read.sheets
    found: list[tuple[SheetSource, pd.DataFrame]] = []
    notes: list[tuple[str, str]] = list(read.notes)
    missing_issues: list[DataIssue] = []
    for sheet in sheets:
        detected = find_header(sheet, headers)
        if detected is None:
            if sheet.rows and any(any(c not in ("", None) for c in row) for row in sheet.rows[:HEADER_SEARCH_ROWS]):
                notes.append((
                    f"{shown} 工作表「{sheet.name}」: 前 {HEADER_SEARCH_ROWS} 行中没有可识别的表头, 已跳过",
                    f"{shown} sheet '{sheet.name}': no recognisable header row in the first {HEADER_SEARCH_ROWS} rows; skipped",
                ))
            continue
        register, header_index = detected
        duplicates: list[tuple[str, str, str]] = []
        columns = _columns(sheet.header_cells(header_index), register, headers, duplicates)
        for header, letter, first in duplicates:
            notes.append((
                f"{shown} 工作表「{sheet.name}」: 第 {letter} 列「{header}」与第 {first} 列重复, 读取第 {first} 列, 第 {letter} 列原样保留",
                f"{shown} sheet '{sheet.name}': column {letter} '{header}' repeats column {first}; column {first} is read, column {letter} is carried as is",
            ))
        source = SheetSource(shown, sheet.name, register, sheet.first_row + header_index, columns)
        missing = _missing_required(source, register)
        if missing:
            for name in missing:
                spec = next(s for s in fields(register) if s.name == name)
                missing_issues.append(
                    DataIssue("missing_column", shown, sheet.name, source.header_row, None, spec.header, name, None, None,
                              params={"register": register})
                )
            continue
        frame = _frame(sheet, header_index, columns, limits, shown)
        found.append((source, frame))
        notes.extend(_sheet_notes(shown, sheet, source, frame))
    if found and all(frame.empty for _, frame in found) and read.kind == "xlsx":
        formulas = uncached_formulas(path)
        if formulas:
            raise _formulas_error(shown, formulas)
    if missing_issues and not found:
        raise _missing_columns_error(shown, missing_issues)
    if not found:
        formulas = uncached_formulas(path) if read.kind == "xlsx" else 0
        if formulas:
            raise _formulas_error(shown, formulas)
        zh = en = ""
        if read.decoded_as:  # a CSV in another language's encoding decodes, as gibberish
            zh = f"(按 {read.decoded_as.upper()} 编码读取; 如表头显示为乱码, 请另存为 UTF-8 编码)"
            en = f" (read as {read.decoded_as.upper()}; if the headers come out garbled, save the file as UTF-8)"
        raise InputError(
            shown,
            f"没有可识别的登记表工作表(户表、成员表、村表、乡镇表): 前 10 行中找不到表头{zh}",
            f"no recognisable register sheet (households, members, villages, townships): no known header row in the first 10 rows{en}",
        )
    return LoadedFile(found, notes, missing_issues)


def _sheet_notes(shown: str, sheet: SheetRead, source: SheetSource, frame: pd.DataFrame) -> list[tuple[str, str]]:
    notes = []
    if frame.empty:
        notes.append((
            f"{shown} 工作表「{sheet.name}」只有表头(第 {source.header_row} 行), 没有数据行",
            f"{shown} sheet '{sheet.name}' has a header (row {source.header_row}) but no data rows",
        ))
    return notes


def _formulas_error(shown: str, count: int) -> InputError:
    return InputError(
        shown,
        f"表中的数据是公式, 且 {count} 个公式单元格没有保存计算结果(文件由程序生成, 未经 Excel 计算); 请用 Excel 或 WPS 打开并保存后再核查",
        f"the data are formulas, and {count} formula cells were saved without their values (written by a program, never calculated); open and save the file in Excel or WPS first",
    )


def load(
    paths: Iterable[str | Path],
    *,
    headers: HeaderMap | None = None,
    limits: Limits | None = None,
    strict: bool = False,
) -> Registers:
    """Load registers from workbooks, CSV files or folders of them.

    One unreadable file is recorded in `Registers.failures` and the others are still read,
    unless `strict`, in which case its InputError is raised. When no file can be read, or the
    households or members register is missing from all of them, InputError is raised.
    """
    headers = headers or {}
    limits = limits or Limits()
    files = expand_paths(paths)
    given = [str(p) for p in paths] if not isinstance(paths, str | Path) else [str(paths)]
    if not files:
        raise InputError(", ".join(given), "没有找到电子表格文件", "no spreadsheet files found")
    sources: list[SheetSource] = []
    frames: dict[RegisterName, list[pd.DataFrame]] = {}
    failures: list[InputError] = []
    notes: list[tuple[str, str]] = []
    missing: list[DataIssue] = []
    for path, shown in files:
        try:
            loaded = load_file(path, shown, headers, limits)
        except InputError as error:
            if strict:
                raise
            failures.append(error)
            continue
        notes.extend(loaded.notes)
        missing.extend(loaded.missing)
        if loaded.missing and strict:
            raise _missing_columns_error(shown, loaded.missing)
        for source, frame in loaded.found:
            frame[SOURCE] = len(sources)
            sources.append(source)
            frames.setdefault(source.register, []).append(frame)
    if failures and not frames:
        raise failures[0] if len(failures) == 1 else _all_failed(failures)
    raw = {register: _concat(parts) for register, parts in frames.items()}
    registers = Registers(raw=raw, sources=sources, inputs=[shown for _, shown in files], failures=failures, notes=notes)
    for issue in missing:  # a refused sheet counts as an unreadable input (exit 3)
        registers.failures.append(_missing_columns_error(issue.file or "", [issue]))
    for register in REQUIRED_REGISTERS:
        own = [i for i in missing if i.params.get("register") == register]
        if register not in raw and own:
            raise _missing_columns_error(own[0].file or "", own)
        label = {"households": "户表", "members": "成员表"}[register]
        if register not in raw:
            raise InputError(
                ", ".join(shown for _, shown in files),
                f"找不到{label}: 输入中没有可识别的{label}工作表",
                f"no {register} register: none of the inputs has a recognisable {register} sheet",
            )
        if raw[register].empty:
            # An audit of no households would pass every indicator: refuse rather than mislead.
            where = ", ".join(dict.fromkeys(s.file for s in sources if s.register == register))
            raise InputError(
                where,
                f"{label}只有表头, 没有数据行",
                f"the {register} register has a header but no data rows",
            )
    return registers


def _all_failed(failures: list[InputError]) -> InputError:
    error = InputError(
        failures[0].path,
        "所有输入文件都无法读取: " + "; ".join(f.zh for f in failures),
        "none of the input files can be read: " + "; ".join(f.en for f in failures),
    )
    error.issues = [issue for f in failures for issue in f.issues]
    return error


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts, ignore_index=True, sort=False).astype(object)
