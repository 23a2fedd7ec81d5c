"""Files to register frames: formats, sheet and header detection, row positions, limits.

Reading goes through python-calamine: it reads .xlsx, .xlsm, .xlsb, .xls and .ods in Rust and
hands back each cell with its type (text, number, date), which the checks need: an ID number
typed into a number cell has lost digits, and the "value as typed" of a number keeps its repr.
fastexcel is faster still but turns every cell into text, losing exactly that distinction.
Each sheet is read once; everything after is column-wise.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from exitcheck.errors import InputError
from exitcheck.issues import DataIssue
from exitcheck.registers.limits import Limits, check_file_size, check_shape, check_zip
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
    """The cells of one sheet: rows as python-calamine gives them, and the first Excel row."""

    name: str
    rows: list[list[object]]
    first_row: int  # Excel row number of rows[0]


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


def _sniff(path: Path, shown: str) -> str:
    """What the file really is, from its first bytes, whatever its name says."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        raise InputError(shown, "文件是空的(0 字节)", "the file is empty (0 bytes)")
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if head.startswith(b"PK"):
        return "zip"
    if path.suffix.lower() == ".csv":
        return "csv"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<html", b"<!doctype", b"<table", b"<?xml", b"<meta", b"<head", b"<")):
        raise InputError(
            shown,
            "这是网页(HTML)文件, 只是扩展名为 Excel; 请用 Excel 或 WPS 打开后另存为 .xlsx",
            "this is an HTML page with an Excel name (a web system's 'export to Excel'); open it in Excel or WPS and save it as .xlsx",
        )
    if _looks_like_text(head):
        raise InputError(
            shown,
            "这是文本(CSV)文件, 只是扩展名为 Excel; 请把扩展名改为 .csv, 或用 Excel 另存为 .xlsx",
            "this is a text (CSV) file with an Excel name; rename it to .csv or save it as .xlsx from Excel",
        )
    raise InputError(
        shown,
        "不是可识别的电子表格(文件内容既不是 xlsx/xls 也不是 csv), 可能已损坏",
        "not a spreadsheet (the content is neither xlsx/xls nor csv); it may be corrupt",
    )


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            head.decode(encoding)
            return True
        except UnicodeDecodeError:
            continue
    return False


def _is_encrypted_ole(path: Path) -> bool:
    """An encrypted xlsx is an OLE container holding an 'EncryptionInfo' stream."""
    marker = "EncryptionInfo".encode("utf-16-le")
    with path.open("rb") as handle:
        data = handle.read(1 << 20)
    return marker in data


def _read_workbook(path: Path, shown: str, kind: str, limits: Limits) -> list[SheetRead]:
    import python_calamine

    if kind == "zip":
        check_zip(path, shown, limits)
    elif kind == "ole" and _is_encrypted_ole(path):
        raise _encrypted(shown)
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for every bad file
        raise _unreadable(shown, exc) from None
    sheets: list[SheetRead] = []
    try:
        for meta in workbook.sheets_metadata:
            if str(getattr(meta.typ, "name", meta.typ)).lower() not in {"worksheet", "sheettypeenum.worksheet"}:
                continue
            sheet = workbook.get_sheet_by_name(meta.name)
            height, width = sheet.total_height, sheet.total_width
            check_shape(shown, meta.name, height, width, limits)
            rows = sheet.to_python(skip_empty_area=False) if height else []
            sheets.append(SheetRead(meta.name, rows, 1))
    except InputError:
        raise
    except Exception as exc:
        raise _unreadable(shown, exc) from None
    finally:
        workbook.close()
    return sheets


def _encrypted(shown: str) -> InputError:
    return InputError(
        shown,
        "工作簿设有打开密码(已加密), 无法读取; 请在 Excel 中取消密码后另存",
        "the workbook is password-protected (encrypted); remove the password in Excel and save it again",
    )


def _unreadable(shown: str, exc: Exception) -> InputError:
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    lowered = reason.lower()
    if "password" in lowered or "encrypt" in lowered:
        return _encrypted(shown)
    return InputError(
        shown,
        f"文件已损坏或格式不对, 无法读取({reason}); 请重新导出或重新拷贝",
        f"the file is corrupt or not a spreadsheet ({reason}); export or copy it again",
    )


def _read_csv(path: Path, shown: str) -> list[SheetRead]:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InputError(
            shown,
            "CSV 文件的编码既不是 UTF-8 也不是 GB18030; 请另存为 UTF-8 编码",
            "the CSV file is neither UTF-8 nor GB18030; save it as UTF-8",
        )
    if "\x00" in text:
        raise InputError(shown, "CSV 文件含有二进制内容, 不是文本文件", "the CSV file holds binary data, not text")
    try:
        rows: list[list[object]] = [list(row) for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise InputError(shown, f"CSV 文件格式错误({exc})", f"malformed CSV ({exc})") from None
    width = max((len(row) for row in rows), default=0)
    rows = [row + [""] * (width - len(row)) for row in rows]
    return [SheetRead(path.stem, rows, 1)]


def read_sheets(path: Path, shown: str, limits: Limits) -> list[SheetRead]:
    """Every worksheet of a file, read once, after the checks that must come before parsing."""
    if not path.exists():
        raise InputError(shown, "文件不存在", "no such file")
    if not path.is_file():
        raise InputError(shown, "不是文件", "not a file")
    check_file_size(path, shown, limits)
    kind = _sniff(path, shown)
    if kind == "csv":
        return _read_csv(path, shown)
    return _read_workbook(path, shown, kind, limits)


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
    of one register; the sheet name, when it says which register, decides which one.
    """
    by_name = _register_by_name(sheet.name)
    candidates: tuple[RegisterName, ...] = (by_name,) if by_name else REGISTERS
    distinct = _distinct_fields()
    for index, row in enumerate(sheet.rows[:HEADER_SEARCH_ROWS]):
        scores = []
        for register in candidates:
            found = _row_matches(row, register, headers)
            if len(found) >= MIN_HEADER_MATCHES:
                scores.append((len(found & distinct[register]), len(found), register))
        if scores:
            scores.sort(key=lambda item: (item[0], item[1]), reverse=True)
            return scores[0][2], index
    return None


def _columns(header_row: Sequence[object], register: RegisterName, headers: HeaderMap) -> tuple[ColumnInfo, ...]:
    columns: list[ColumnInfo] = []
    used: set[str] = set()
    for index, cell in enumerate(header_row):
        letter = column_letter(index)
        header = "" if cell is None else str(cell).strip()
        field_name = match_header(register, header, headers.get(register)) if header else None
        if field_name in used:
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
    blank = cells.isna() | cells.eq("")  # calamine gives '' for an empty cell
    keep = ~blank.all(axis=1)
    if len(cells.columns):
        keep &= ~_totals_rows(cells, blank)
    _check_cell_lengths(cells[keep], limits, shown, sheet.name)
    return frame[keep].reset_index(drop=True)


def _totals_rows(cells: pd.DataFrame, blank: pd.DataFrame) -> pd.Series:
    """Rows whose first non-blank cell among the first three is 合计, 总计 or 小计."""
    first = pd.Series(None, index=cells.index, dtype=object)
    for position in range(min(3, cells.shape[1]) - 1, -1, -1):
        first = cells.iloc[:, position].where(~blank.iloc[:, position], first)
    labels = {label: True for label in TOTAL_LABELS}
    # Spaces inside the label ('合 计') are typed too; few rows get that far.
    candidates = first[first.map(type).eq(str)]
    hits = candidates.map(lambda text: "".join(text.split()) in labels)
    return hits.reindex(first.index, fill_value=False).astype(bool)


def _check_cell_lengths(cells: pd.DataFrame, limits: Limits, shown: str, sheet: str) -> None:
    for name in cells.columns:
        values = cells[name].to_numpy(dtype=object)
        # builtins map/len run at C speed; pandas' string conversion costs ~10x more here
        longest = max(map(len, (v for v in values if type(v) is str)), default=0)
        if longest > limits.max_cell_chars:
            raise InputError(
                shown,
                f"工作表「{sheet}」列「{name}」有单元格长达 {int(longest)} 个字符, 超过上限 {limits.max_cell_chars}",
                f"sheet '{sheet}' column '{name}' has a cell of {int(longest)} characters, over the limit of {limits.max_cell_chars}",
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


def load_file(path: Path, shown: str, headers: HeaderMap, limits: Limits) -> tuple[list[tuple[SheetSource, pd.DataFrame]], list[tuple[str, str]]]:
    """The register sheets of one file. Raises InputError when the file yields none."""
    sheets = read_sheets(path, shown, limits)
    found: list[tuple[SheetSource, pd.DataFrame]] = []
    notes: list[tuple[str, str]] = []
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
        columns = _columns(sheet.rows[header_index], register, headers)
        source = SheetSource(shown, sheet.name, register, sheet.first_row + header_index, columns)
        missing = _missing_required(source, register)
        if missing:
            for name in missing:
                spec = next(s for s in fields(register) if s.name == name)
                missing_issues.append(
                    DataIssue("missing_column", shown, sheet.name, source.header_row, None, spec.header, name, None, None)
                )
            continue
        found.append((source, _frame(sheet, header_index, columns, limits, shown)))
    if missing_issues and not found:
        first = missing_issues[0]
        names = "、".join(f"「{issue.header}」" for issue in missing_issues)
        raise InputError(
            shown,
            f"工作表「{first.sheet}」第 {first.row} 行的表头缺少必填列 {names}; 请补上该列或在 headers 中映射",
            f"sheet '{first.sheet}' header row {first.row} lacks required column(s) {', '.join(i.field or '' for i in missing_issues)}; add them or map your headers under `headers:`",
            issues=missing_issues,
        )
    if not found:
        raise InputError(
            shown,
            "没有可识别的登记表工作表(户表、成员表、村表、乡镇表): 前 10 行中找不到表头",
            "no recognisable register sheet (households, members, villages, townships): no known header row in the first 10 rows",
        )
    if missing_issues:
        for issue in missing_issues:
            notes.append((
                f"{shown} 工作表「{issue.sheet}」缺少必填列「{issue.header}」, 该表未读取",
                f"{shown} sheet '{issue.sheet}' lacks required column '{issue.header}'; sheet not read",
            ))
    return found, notes


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
    for path, shown in files:
        try:
            found, file_notes = load_file(path, shown, headers, limits)
        except InputError as error:
            if strict:
                raise
            failures.append(error)
            continue
        notes.extend(file_notes)
        for source, frame in found:
            frame[SOURCE] = len(sources)
            sources.append(source)
            frames.setdefault(source.register, []).append(frame)
    if failures and not frames:
        raise failures[0] if len(failures) == 1 else _all_failed(failures)
    raw = {register: _concat(parts) for register, parts in frames.items()}
    registers = Registers(raw=raw, sources=sources, inputs=[shown for _, shown in files], failures=failures, notes=notes)
    for register in REQUIRED_REGISTERS:
        if register not in raw:
            label = {"households": "户表", "members": "成员表"}[register]
            raise InputError(
                ", ".join(shown for _, shown in files),
                f"找不到{label}: 输入中没有可识别的{label}工作表",
                f"no {register} register: none of the inputs has a recognisable {register} sheet",
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
