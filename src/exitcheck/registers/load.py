"""Cells to register frames: sheet and header detection, row positions, blank and totals rows.

Reading the files (formats, limits, python-calamine) is registers/read.py; this module finds
the register in each sheet and turns its cells into one frame per register, column-wise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from exitcheck.errors import InputError
from exitcheck.i18n import join_list
from exitcheck.issues import DataIssue
from exitcheck.registers.limits import (
    Limits,
    uncached_formulas,
)
from exitcheck.registers.model import ROW, SOURCE, ColumnInfo, Registers, SheetSource
from exitcheck.registers.parse import ColumnsAhead, keep_columns_ahead, parse_columns
from exitcheck.registers.read import (
    HEADER_SEARCH_ROWS,
    FileRead,
    SheetRead,
    column_letter,
    expand_paths,
    outputs_in_folders,
    read_file,
)
from exitcheck.registers.schema import (
    REGISTER_LABELS,
    REGISTERS,
    REQUIRED_REGISTERS,
    SHEET_NAMES,
    RegisterName,
    fields,
    match_header,
    normalise_header,
)

MIN_HEADER_MATCHES = 3
MAX_HEADER_DEPTH = 3  # rows a merged header cell may span below the header row
#: A totals row's label, spaces removed: 合计, 总计 or 小计, as clerks type it, with a colon
#: (合计：) or a unit in brackets (总计(人), 小计（户）) after it.
TOTAL_LABEL = re.compile(r"(?:合计|总计|小计)[:：]?(?:\([^()]*\)|（[^（）]*）)?[:：]?")
#: A totals row's label with its place before it (越城镇小计, 瓦曲村合计：, 一组小计(户)), spaces
#: removed and punctuation trimmed from its ends: a text that ENDS with 合计, 总计 or 小计. It is
#: looked for only in LABEL_FIELDS, so that 合计村 (the word first) and a village or person
#: whose name merely holds the word stay data.
ENDING_TOTAL_LABEL = re.compile(r".*(?:合计|总计|小计)[:：]?(?:\([^()]*\)|（[^（）]*）)?")
#: Punctuation trimmed from the ends of a cell before ENDING_TOTAL_LABEL (brackets are kept: a
#: unit in brackets is part of the label).
LABEL_PUNCTUATION = ":：;；,，.。、!！?？-—_*#~～·"
#: The columns where a subtotal's label stands after its place: the places, and the household
#: id (the label typed into column A). Not a person's name: 张小计 is a name, not a label.
LABEL_FIELDS = ("county", "township", "village", "group", "household_id")

HeaderMap = dict[str, dict[str, str]]  # register -> {header as typed: field}


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
    used: set[str] = {ROW, SOURCE}  # an unknown column headed _row or _src must not take their place
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


Span = tuple[int, int, int, int]  # a merged range: first row, first column, last row, last column (0-based)
MergedRead = tuple[Span, int] | None  # the first merged range read on each row it covers, and how many were


def _frame(sheet: SheetRead, header_index: int, columns: tuple[ColumnInfo, ...], limits: Limits, shown: str) -> tuple[pd.DataFrame, MergedRead]:
    """The records of a sheet below its header row, and the merged ranges read on each row
    they cover (_fill_merged_down)."""
    body = sheet.rows[header_index + 1 :]
    width = len(columns)
    frame = pd.DataFrame(body, columns=range(len(body[0])) if body else range(width), dtype=object)
    frame = frame.iloc[:, :width]
    frame.columns = [column.name for column in columns[: frame.shape[1]]]
    frame[ROW] = range(sheet.first_row + header_index + 1, sheet.first_row + header_index + 1 + len(body))
    cells = frame.drop(columns=[ROW])
    keep = ~(_blank_rows(cells) | _totals_rows(cells) | _place_totals_rows(cells, columns))
    letters = {column.name: column.letter for column in columns}
    every = bool(keep.all())  # the usual register: then no masked copy of every cell (60 ms a county)
    if not sheet.lengths_checked:  # an xlsx's XML was checked as it was inflated; others here
        _check_cell_lengths(cells if every else cells[keep], frame[ROW], limits, shown, sheet.name, letters)
    # after the blank and totals rows are found: a row that is blank but for a merge reaching
    # into it (a block merged one row too far) stays blank, and a 合计 stays a totals row
    filled = _fill_merged_down(sheet, header_index, columns, frame, keep)
    return (frame if every else frame[keep].reset_index(drop=True)), filled


def _fill_merged_down(sheet: SheetRead, header_index: int, columns: tuple[ColumnInfo, ...], frame: pd.DataFrame,
                      keep: np.ndarray) -> MergedRead:
    """Read each range merged down one column in the records as the value of its top cell on
    every row it covers, which is what the spreadsheet shows there (a 乡镇 merged over a block of
    households); return the first range so read in sheet order and how many were, or None.
    `frame` is changed in place.

    Left as they are: a range in a column no field is read from (a 备注: nothing to gain);
    one that starts in the header or above it (its cells show a header, not a value); one
    whose top cell is blank, or in a row that is no record (a 合计 row); and a range merged
    across several columns (a note written across a row is no household's value, and the
    value of a block merged over 乡镇 and 行政村 belongs to no one column)."""
    if not sheet.merged_down or not len(frame):
        return None
    first = header_index + 1  # frame row 0
    read = {column.index: column.name for column in columns if column.field is not None and column.index < frame.shape[1]}
    spans = np.array(sheet.merged_down, dtype=np.int64).reshape(-1, 4)
    # a member sheet merges 户编号 over each household's members: 20,000 ranges, looked at in numpy
    tops, lefts = spans[:, 0] - first, spans[:, 1]
    inside = np.isin(lefts, list(read)) & (tops >= 0) & (tops < len(frame))
    inside[inside] = keep[tops[inside]]
    spans = spans[inside]
    filled: list[np.ndarray] = []
    for left in np.unique(spans[:, 1]):
        name = read[int(left)]
        own = spans[spans[:, 1] == left]
        values = frame[name].to_numpy(dtype=object, copy=True)
        tops = own[:, 0] - first
        bottoms = np.minimum(own[:, 2] - first, len(values) - 1)
        visible = ~_blank_cells(pd.Series(values[tops], dtype=object)) & (bottoms > tops)
        if not visible.any():
            continue
        tops, bottoms = tops[visible], bottoms[visible]
        lengths = bottoms - tops  # the rows below each top cell
        # the covered rows, range after range, and the top row each one shows
        starts = np.repeat(tops + 1 - np.cumsum(lengths) + lengths, lengths)
        covered = starts + np.arange(int(lengths.sum()))
        values[covered] = values[np.repeat(tops, lengths)]
        frame[name] = pd.Series(values, index=frame.index, dtype=object)  # object, as read: not inferred as text
        filled.append(own[visible])
    if not filled:
        return None
    every = np.concatenate(filled)
    top, left, bottom, right = every[np.lexsort((every[:, 1], every[:, 0]))[0]].tolist()
    return (top, left, bottom, right), len(every)


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
    """Rows whose first non-blank cell among the first three is a TOTAL_LABEL (spaces inside,
    '合 计', are typed too). Each column's distinct cells are looked at once, and a
    column only in the rows whose cells to its left are all blank (few, after the first)."""
    totals = np.zeros(len(cells), dtype=bool)
    rows = np.arange(len(cells))  # rows whose every cell to the left is blank
    for position in range(min(3, cells.shape[1])):
        codes, distinct = pd.factorize(cells.iloc[rows, position].to_numpy(dtype=object))
        present = codes >= 0
        at = codes[present]
        totals[rows[present]] = _total_labels(distinct)[at]
        blank = ~present
        blank[present] = (distinct == "")[at]
        rows = rows[blank]
        if not len(rows):
            break
    return totals


def _place_totals_rows(cells: pd.DataFrame, columns: Sequence[ColumnInfo]) -> np.ndarray:
    """Rows whose cell in a LABEL_FIELDS column ends with 合计, 总计 or 小计 (越城镇小计: a
    subtotal under its place), when the row's household id is blank or is that label: a row
    with a household id is a record, whatever its 乡镇 says (it gets its own issues, it is not
    dropped). Column by column, each column's distinct cells looked at once."""
    named = {column.field: column.name for column in columns if column.field in LABEL_FIELDS and column.name in cells.columns}
    totals = np.zeros(len(cells), dtype=bool)
    if not named:
        return totals
    labelled = {name: _column_labels(cells[name], ending=True) for name in named.values()}
    for label in labelled.values():
        totals |= label
    if "household_id" in named and totals.any():
        key = named["household_id"]
        totals &= _blank_cells(cells[key]) | labelled[key]
    return totals


def _column_labels(column: pd.Series, *, ending: bool) -> np.ndarray:
    codes, distinct = pd.factorize(column.to_numpy(dtype=object))
    labels = _total_labels(distinct, ending=ending)
    return np.where(codes >= 0, labels[np.maximum(codes, 0)], False) if len(distinct) else np.zeros(len(column), dtype=bool)


def _total_labels(distinct: np.ndarray, *, ending: bool = False) -> np.ndarray:
    """Which distinct cells are a totals label (`ending`: a label that ends the text, after its
    place): a text holding 计 is looked at closely."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pd.api.types.infer_dtype(distinct, skipna=True) == "string":  # the usual column: in C++
        texts = pa.array(distinct, type=pa.string())
        candidates = np.flatnonzero(pc.match_substring(texts, "计").to_numpy(zero_copy_only=False))
    else:
        candidates = np.array([i for i, v in enumerate(distinct) if type(v) is str and "计" in v], dtype=np.int64)
    labels = np.zeros(len(distinct), dtype=bool)
    if ending:
        labels[candidates] = [ENDING_TOTAL_LABEL.fullmatch("".join(str(v).split()).strip(LABEL_PUNCTUATION)) is not None
                              for v in distinct[candidates]]
    else:
        labels[candidates] = [TOTAL_LABEL.fullmatch("".join(str(v).split())) is not None for v in distinct[candidates]]
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
    """What one file gave: register sheets, remarks, and sheets refused for a missing column.
    `parsed_ahead` holds the columns parsed while later sheets were still being read."""

    found: list[tuple[SheetSource, pd.DataFrame]]
    notes: list[tuple[str, str]]
    missing: list[DataIssue]
    parsed_ahead: list[ColumnsAhead] = field(default_factory=list)
    unheaded: list[str] = field(default_factory=list)  # sheets with no header row in their first rows


def _missing_columns_error(shown: str, missing: list[DataIssue]) -> InputError:
    """One message for the refused sheets of a file: each sheet with its own missing columns
    and the header cells that may be them (blank, or matching no field), then how to fix it:
    the header typed in, or mapped with --headers (or `headers:` in a workspace's exitcheck.yaml)."""
    by_sheet: dict[tuple[str | None, int | None], list[DataIssue]] = {}
    for issue in missing:
        by_sheet.setdefault((issue.sheet, issue.row), []).append(issue)
    zh, en = [], []
    for (sheet, row), issues in by_sheet.items():
        columns = list(dict.fromkeys((issue.header or "", issue.field or "") for issue in issues))
        clue = issues[0].params.get("clue") or {"zh": "", "en": ""}
        assert isinstance(clue, dict)
        zh.append(f"工作表「{sheet}」第 {row} 行的表头缺少必填列" + "、".join(f"「{h}」({f})" for h, f in columns) + clue["zh"])
        plural = "s" if len(columns) > 1 else ""
        en.append(f"sheet '{sheet}' header row {row} lacks the required column{plural} " + ", ".join(f"{h} ({f})" for h, f in columns)
                  + clue["en"])
    first = missing[0]
    register = str(first.params.get("register", "households"))
    blank, unknown = first.params.get("blank_headers") or [], first.params.get("unknown_headers") or []
    assert isinstance(blank, list) and isinstance(unknown, list)
    if len(missing) == 1 and len(blank) == 1:  # one column missing, one blank header over data: surely it
        fix_zh = f"请在单元格 {blank[0]} 写上列名「{first.header}」"
        fix_en = f"type the header {first.header} into cell {blank[0]}"
    else:
        likely = _likely_header(first, [str(h) for h in unknown]) if len(missing) == 1 else None
        mine_zh, mine_en = (likely, likely) if likely else ("你的表头", "your header")
        fix_zh = (f"请在表头行写上缺少的列名, 或用 --headers 文件(YAML; 工作区中也可写在 exitcheck.yaml 的 headers: 下)把表头映射到字段, "
                  f"例如 {{{register}: {{{mine_zh}: {first.field}}}}}")
        fix_en = (f"type the missing header into the header row, or map your header to the field with --headers FILE (YAML; in a "
                  f"workspace, under headers: in exitcheck.yaml too), e.g. {{{register}: {{{mine_en}: {first.field}}}}}")
    return InputError(
        shown,
        "; ".join(zh) + f"; {fix_zh}; 用 exitcheck columns {shown} 查看各列的读法",
        "; ".join(en) + f"; {fix_en}; exitcheck columns {shown} shows how each column was read",
        issues=missing,
    )


def _likely_header(issue: DataIssue, unknown: list[str]) -> str | None:
    """The unknown header most like the missing column's header or an alias of it (户主名字
    for 户主姓名), when one stands out; a 备注 beside it is nothing like it."""
    from difflib import SequenceMatcher

    spec = next((s for s in fields(str(issue.params.get("register")))  # type: ignore[arg-type]
                 if s.name == issue.field), None)
    if spec is None or not unknown:
        return None
    names = [normalise_header(name) for name in (spec.header, *spec.aliases)]
    scores = sorted(((max(SequenceMatcher(None, normalise_header(h), n).ratio() for n in names), h) for h in unknown), reverse=True)
    best, header = scores[0]
    if best < 0.5 or (len(scores) > 1 and scores[1][0] == best):
        return None
    return header


class FileReader(Protocol):
    """How a file's cells are got: read_file, or a read-ahead's answer for it (registers/ahead.py),
    which gives `on_sheet` each sheet that is ready while it reads on."""

    def __call__(self, path: Path, shown: str, limits: Limits, *, on_sheet: Callable[[SheetRead], None] | None = None) -> FileRead: ...


def _read_now(path: Path, shown: str, limits: Limits, *, on_sheet: Callable[[SheetRead], None] | None = None) -> FileRead:
    return read_file(path, shown, limits)


@dataclass
class _SheetLoad:
    """What one sheet gave the loader."""

    notes: list[tuple[str, str]] = field(default_factory=list)
    missing: list[DataIssue] = field(default_factory=list)
    found: tuple[SheetSource, pd.DataFrame] | None = None
    parsed_ahead: ColumnsAhead | None = None
    unheaded: bool = False  # cells in its first rows, none of them a header row


@dataclass
class SheetHeader:
    """How a sheet's header row was understood: the register, its columns, and the required
    columns it lacks (missing_column issues; the sheet is then not read)."""

    source: SheetSource
    header_index: int  # index of the header row in the sheet's rows
    missing: list[DataIssue]
    notes: list[tuple[str, str]]


def sheet_header(sheet: SheetRead, shown: str, headers: HeaderMap) -> SheetHeader | None:
    """The header of the register a sheet holds, or None when no row of it looks like one."""
    detected = find_header(sheet, headers)
    if detected is None:
        return None
    register, header_index = detected
    notes: list[tuple[str, str]] = []
    duplicates: list[tuple[str, str, str]] = []
    columns = _columns(sheet.header_cells(header_index), register, headers, duplicates)
    for header, letter, first in duplicates:
        notes.append((
            f"{shown} 工作表「{sheet.name}」: 第 {letter} 列「{header}」与第 {first} 列重复, 读取第 {first} 列, 第 {letter} 列原样保留",
            f"{shown} sheet '{sheet.name}': column {letter} '{header}' repeats column {first}; column {first} is read, column {letter} is carried as is",
        ))
    source = SheetSource(shown, sheet.name, register, sheet.first_row + header_index, columns)
    missing = []
    names = _missing_required(source, register)
    if names:
        clue = _header_clues(sheet, header_index, source, headers)
        for name in names:
            spec = next(s for s in fields(register) if s.name == name)
            missing.append(
                DataIssue("missing_column", shown, sheet.name, source.header_row, None, spec.header, name, None, None,
                          params={"register": register, **clue})
            )
    return SheetHeader(source, header_index, missing, notes)


#: Header cells a message about a missing column names at most, of each kind.
MAX_CLUES = 5


def _header_clues(sheet: SheetRead, header_index: int, source: SheetSource, headers: HeaderMap) -> dict[str, object]:
    """Where a required column whose header was blanked or misspelt may be: the blank header
    cells over a column that holds data (E4), and the headers that match no field (E4
    '户主名字'). Looked for only when a column is missing."""
    body = sheet.rows[header_index + 1:]
    blank = [
        f"{column.letter}{source.header_row}" for column in source.columns
        if not column.header and any(column.index < len(row) and row[column.index] not in ("", None) for row in body)
    ]
    unknown = [
        (f"{column.letter}{source.header_row}", column.header) for column in source.columns
        if column.field is None and column.header and not match_header(source.register, column.header, headers.get(source.register))
    ]
    clues: dict[str, object] = {}
    if blank:
        shown = blank[:MAX_CLUES]
        more_zh, more_en = _more_than_shown(len(blank))
        clues["blank_headers"] = blank
        clues["clue"] = {"zh": f"; 表头为空的单元格: {'、'.join(shown)}{more_zh}",
                         "en": f"; blank header cell{'s' if len(blank) > 1 else ''}: {', '.join(shown)}{more_en}"}
    if unknown:
        shown_zh = "、".join(f"{cell}「{header}」" for cell, header in unknown[:MAX_CLUES])
        shown_en = ", ".join(f"{cell} '{header}'" for cell, header in unknown[:MAX_CLUES])
        more_zh, more_en = _more_than_shown(len(unknown))
        clues["unknown_headers"] = [header for _, header in unknown]
        previous = clues.get("clue", {"zh": "", "en": ""})
        assert isinstance(previous, dict)
        clues["clue"] = {"zh": f"{previous['zh']}; 未识别的表头: {shown_zh}{more_zh}",
                         "en": f"{previous['en']}; headers that match no field: {shown_en}{more_en}"}
    return clues


def _more_than_shown(count: int) -> tuple[str, str]:
    """What follows the first MAX_CLUES of `count` cells named: ' 等 N 个' / ' and M more'."""
    if count <= MAX_CLUES:
        return "", ""
    return f" 等 {count} 个", f" and {count - MAX_CLUES} more"


def _no_header_note(sheet: SheetRead, shown: str) -> list[tuple[str, str]]:
    """The note for a sheet with no header row: none for a sheet blank at its top."""
    if sheet.rows and any(any(c not in ("", None) for c in row) for row in sheet.rows[:HEADER_SEARCH_ROWS]):
        return [(
            f"{shown} 工作表「{sheet.name}」: 前 {HEADER_SEARCH_ROWS} 行中没有可识别的表头, 已跳过",
            f"{shown} sheet '{sheet.name}': no recognisable header row in the first {HEADER_SEARCH_ROWS} rows; skipped",
        )]
    return []


def _load_sheet(sheet: SheetRead, shown: str, headers: HeaderMap, limits: Limits) -> _SheetLoad:
    """The register a sheet holds, as a frame; or why it holds none."""
    out = _SheetLoad()
    understood = sheet_header(sheet, shown, headers)
    if understood is None:
        out.notes.extend(_no_header_note(sheet, shown))
        out.unheaded = bool(out.notes)
        return out
    out.notes.extend(understood.notes)
    if understood.missing:
        out.missing.extend(understood.missing)
        return out
    source = understood.source
    frame, filled = _frame(sheet, understood.header_index, source.columns, limits, shown)
    out.found = (source, frame)
    out.notes.extend(_sheet_notes(shown, sheet, source, frame))
    if filled is not None:
        out.notes.append(_merged_note(shown, sheet, *filled))
    if sheet.hidden_rows:
        out.notes.extend(_hidden_rows_note(shown, sheet, frame))
    return out


_HIDDEN_ROWS_SHOWN = 3  # rows named in the note before 等N行


def _hidden_rows_note(shown: str, sheet: SheetRead, frame: pd.DataFrame) -> list[tuple[str, str]]:
    """A note for the records on rows hidden by hand or by a filter (筛选): they are read and
    audited like the others, which a clerk who hid a township's rows, or households meant to be
    left out, would not guess from the screen."""
    hidden = np.asarray(sheet.hidden_rows)
    rows = [int(row) for row in frame[ROW].to_numpy()[np.isin(frame[ROW].to_numpy(), hidden)]]
    if not rows:
        return []
    first = rows[:_HIDDEN_ROWS_SHOWN]
    more = len(rows) - len(first)
    where_zh = f"第 {join_list(first, 'zh')} 行等 {len(rows)} 行" if more else f"第 {join_list(first, 'zh')} 行"
    where_en = f"rows {join_list(first, 'en')} and {more} more" if more else f"row{'s' if len(rows) > 1 else ''} {join_list(first, 'en')}"
    verbs = ("is", "was") if len(rows) == 1 else ("are", "were")
    return [(f"{shown} 工作表「{sheet.name}」: {where_zh}被隐藏(筛选或隐藏行), 已照常读取和核查; 不该核查的行请从表中删除",
             f"{shown} sheet '{sheet.name}': {where_en} {verbs[0]} hidden (a filter or hidden rows) and {verbs[1]} read and audited "
             f"like the others; delete the rows that must not be audited")]


def _merged_note(shown: str, sheet: SheetRead, span: Span, count: int) -> tuple[str, str]:
    """One note for the `count` merged ranges of a sheet read on each row, naming the first, `span`."""
    top, left, bottom, _right = span
    letter = column_letter(left)
    first = f"{letter}{sheet.first_row + top}:{letter}{sheet.first_row + bottom}"
    if count == 1:
        return (f"{shown} 工作表「{sheet.name}」: 合并单元格 {first} 已按显示的值逐行读取",
                f"{shown} sheet '{sheet.name}': the merged cells {first} were read as the value they show on each row")
    return (f"{shown} 工作表「{sheet.name}」: {first} 等 {count} 处合并单元格已按显示的值逐行读取",
            f"{shown} sheet '{sheet.name}': merged cells {first} and {count - 1} more were read as the value they show on each row")


def load_file(
    path: Path, shown: str, headers: HeaderMap, limits: Limits, reader: FileReader = _read_now, parse_ahead: date | None = None
) -> LoadedFile:
    """The register sheets of one file. Raises InputError when the file yields none.

    A sheet the reader hands over while it reads on is loaded at once, and with `parse_ahead`
    its columns are parsed for that reference date too (parse.parse_columns): the work is then
    done while calamine reads the later sheets. Errors still come in workbook order, after the
    reading's own: a bad sheet's, and exitcheck's own failure on a sheet loaded early too.
    """
    early: dict[str, _SheetLoad | Exception] = {}
    registers_seen: set[str] = set()

    def load_early(sheet: SheetRead) -> None:
        try:
            early[sheet.name] = load_and_parse(sheet)
        except InputError as error:
            early[sheet.name] = error.with_traceback(None)
        except Exception as error:  # a bug in exitcheck: raised in workbook order as well
            early[sheet.name] = error

    def load_and_parse(sheet: SheetRead) -> _SheetLoad:
        loaded = _load_sheet(sheet, shown, headers, limits)
        if loaded.found is None:
            return loaded
        source, frame = loaded.found
        # columns parsed ahead serve a register of one sheet: a second sheet of it is not
        # parsed ahead (the first was, in time the loader would have spent waiting)
        if parse_ahead is not None and source.register not in registers_seen:
            loaded.parsed_ahead = parse_columns(source.register, frame, parse_ahead)
        registers_seen.add(source.register)
        return loaded

    read = reader(path, shown, limits, on_sheet=load_early)
    sheets = read.sheets
    found: list[tuple[SheetSource, pd.DataFrame]] = []
    notes: list[tuple[str, str]] = list(read.notes)
    missing_issues: list[DataIssue] = []
    parsed_ahead: list[ColumnsAhead] = []
    loads: list[tuple[SheetRead, _SheetLoad]] = []
    for sheet in sheets:
        loaded = early.pop(sheet.name, None) or _load_sheet(sheet, shown, headers, limits)
        if isinstance(loaded, Exception):
            raise loaded
        loads.append((sheet, loaded))
    kept = _without_hidden_copies(loads, shown, notes)
    complete = {loaded.found[0].register: sheet.name for sheet, loaded in kept if loaded.found is not None}
    for sheet, loaded in kept:
        notes.extend(loaded.notes)
        stray = _stray_table_note(shown, sheet, loaded, complete)
        if stray:
            notes.append(stray)
        else:
            missing_issues.extend(loaded.missing)
        if loaded.found is not None:
            found.append(loaded.found)
        if loaded.parsed_ahead is not None:
            parsed_ahead.append(loaded.parsed_ahead)
    notes.extend(_combined_sheets_notes(shown, [source for source, _ in found]))
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
        raise _no_register_sheet(shown, read)
    return LoadedFile(found, notes, missing_issues, parsed_ahead, [sheet.name for sheet, loaded in kept if loaded.unheaded])


def _combined_sheets_notes(shown: str, sources: list[SheetSource]) -> list[tuple[str, str]]:
    """A note for each register read from several sheets of one file. A county that keeps a 户表
    a township wants it; a table of figures (统计: 乡镇, 行政村, 户籍人口) read as a second 村表
    does not, and its rows for villages the real 村表 lacks would join it unnoticed."""
    by_register: dict[RegisterName, list[str]] = {}
    for source in sources:
        by_register.setdefault(source.register, []).append(source.sheet)
    notes = []
    for register, sheets in by_register.items():
        if len(sheets) > 1:
            label = REGISTER_LABELS[register][0]
            named_zh = join_list([f"「{sheet}」" for sheet in sheets], "zh")
            named_en = join_list([f"'{sheet}'" for sheet in sheets], "en")
            notes.append((f"{shown}: {label}由 {len(sheets)} 张工作表合起来读取: {named_zh}; 如其中有不是{label}的表(如统计表), 请把它删除",
                          f"{shown}: the {register} register is read from {len(sheets)} sheets together: {named_en}; "
                          f"if one of them is not a {register} register (a table of figures), delete it"))
    return notes


def _lacking_columns_notes(registers: Registers) -> list[tuple[str, str]]:
    """A note for each sheet of a register read from several that lacks a column another of
    them has: its rows' values of it are not blank but unknown, and the indicators using them
    待核实 (checks.check_indicator_blanks lists no missing_value for them)."""
    notes = []
    for source, names in registers.columns_lacking().items():
        sheet = registers.sources[source]
        specs = [spec for spec in fields(sheet.register) if spec.name in names]
        label = REGISTER_LABELS[sheet.register][0]
        zh = join_list([f"「{spec.header}」" for spec in specs], "zh")
        en = join_list([spec.label("en") for spec in specs], "en")
        notes.append((f"{sheet.file} 工作表「{sheet.sheet}」没有{zh}列(同一{label}的其他工作表有): 这些行的该项不知道, 用到它的指标待核实; 请补上该列",
                      f"{sheet.file} sheet '{sheet.sheet}' has no column for {en} (other sheets of the {sheet.register} register have it): "
                      f"its rows' values are unknown and the indicators using them cannot be told; add the column"))
    return notes


def _no_register_sheet(shown: str, read: FileRead) -> InputError:
    zh = en = ""
    if read.decoded_as:  # a CSV in another language's encoding decodes, as gibberish
        zh = f"(按 {read.decoded_as.upper()} 编码读取; 如表头显示为乱码, 请另存为 UTF-8 编码)"
        en = f" (read as {read.decoded_as.upper()}; if the headers come out garbled, save the file as UTF-8)"
    return InputError(
        shown,
        f"没有可识别的登记表工作表(户表、成员表、村表、乡镇表): 前 10 行中找不到表头{zh}",
        f"no recognisable register sheet (households, members, villages, townships): no known header row in the first 10 rows{en}",
    )


@dataclass
class HeadersRead:
    """What `exitcheck columns` shows: every register sheet's header as understood, refused
    sheets included, and the files or sheets that could not be read (each an InputError)."""

    sheets: list[SheetHeader]
    failures: list[InputError]
    notes: list[tuple[str, str]]


def read_headers(paths: Iterable[str | Path], *, headers: HeaderMap | None = None, limits: Limits | None = None) -> HeadersRead:
    """How each sheet's headers map to fields, without loading the registers: a sheet that
    lacks a required column is shown too (its missing columns are what the clerk is after),
    and reported as a failure, as `load` would refuse it."""
    headers = headers or {}
    limits = limits or Limits()
    files = expand_paths(paths)
    if not files:
        raise _no_spreadsheets(paths)
    out = HeadersRead([], [], [])
    unheaded: dict[RegisterName, list[tuple[str, str]]] = {}
    for path, shown in files:
        try:
            read = read_file(path, shown, limits)
        except InputError as error:
            out.failures.append(error.with_traceback(None))
            continue
        out.notes.extend(read.notes)
        understood = []
        for sheet in read.sheets:
            header = sheet_header(sheet, shown, headers)
            if header is None:
                note = _no_header_note(sheet, shown)
                out.notes.extend(note)
                _note_unheaded(unheaded, shown, [sheet.name] if note else [])
                continue
            understood.append(header)
            out.notes.extend(header.notes)
        if not understood:
            out.failures.append(_no_register_sheet(shown, read))
        missing = [issue for header in understood for issue in header.missing]
        if missing:
            out.failures.append(_missing_columns_error(shown, missing))
        out.sheets.extend(understood)
    # as load would refuse the inputs: a required register that no sheet holds (a refused sheet
    # of it is a failure already), said as the audit says it, but for the unreadable files,
    # which are failures of their own here
    shown_all = [shown for _, shown in files]
    held = {header.source.register for header in out.sheets}
    if out.sheets:
        out.failures.extend(_register_not_found(register, shown_all, [], unheaded.get(register, []))
                            for register in REQUIRED_REGISTERS if register not in held)
    return out


#: The column without which a sheet's rows cannot be records of its register at all.
KEY_FIELDS: dict[RegisterName, str] = {
    "households": "household_id", "members": "household_id", "villages": "village", "townships": "township",
}


def _stray_table_note(shown: str, sheet: SheetRead, loaded: _SheetLoad, complete: dict[str, str]) -> tuple[str, str] | None:
    """The note for a sheet left out rather than refused, or None. A table of figures beside the
    registers (统计: 乡镇, 行政村, 户数, 人均纯收入) has headers enough to look like a register,
    and lacks that register's key column; refused, it stopped the audit and every delivery
    (exit 3) though the real register was read whole. It is left out, and said so, when
    another sheet of the file holds that register complete, the key column is among what it
    lacks (its rows could be no records of it), and its name does not say it is that register
    (a 户表2 without 户编号 is still refused: it was meant to hold households)."""
    if not loaded.missing:
        return None
    register = loaded.missing[0].params.get("register")
    lacking = {issue.field for issue in loaded.missing}
    if register not in complete or KEY_FIELDS[register] not in lacking or _register_by_name(sheet.name) is not None:
        return None
    label = REGISTER_LABELS[register][0]
    key = next(issue.header for issue in loaded.missing if issue.field == KEY_FIELDS[register])
    return (f"{shown} 工作表「{sheet.name}」: 有几列像{label}的表头, 但没有「{key}」列, 不是{label}的记录, 未读取; "
            f"{label}取自工作表「{complete[register]}」",
            f"{shown} sheet '{sheet.name}': some headers look like the {register} register's, but it has no '{key}' "
            f"column, so its rows are no {register} records; not read (the {register} register is the sheet '{complete[register]}')")


def _without_hidden_copies(
    loads: list[tuple[SheetRead, _SheetLoad]], shown: str, notes: list[tuple[str, str]]
) -> list[tuple[SheetRead, _SheetLoad]]:
    """The sheets to use, each hidden one said so. A hidden sheet of a register that a visible
    sheet also holds is left out: it is what the clerk does not see and keep up (an old copy, a
    lookup table), and read beside the visible one every household in it would be a duplicate.
    A hidden sheet that is the only one of its register is read."""
    visible = {loaded.found[0].register for sheet, loaded in loads if loaded.found is not None and not sheet.hidden}
    kept = []
    for sheet, loaded in loads:
        register = loaded.found[0].register if loaded.found is not None else None
        if sheet.hidden and register is not None:
            label = REGISTER_LABELS[register][0]
            if register in visible:
                notes.append((f"{shown}: 隐藏的工作表「{sheet.name}」也像{label}, 未读取: 已按可见的{label}核查; 如它才是要核查的表, 请取消隐藏并隐藏或删除另一张",
                              f"{shown}: the hidden sheet '{sheet.name}' looks like a {register} register too and was not read: the "
                              f"visible one was; if it is the one to audit, unhide it and hide or delete the other"))
                continue
            notes.append((f"{shown}: 工作表「{sheet.name}」是隐藏的, 已作为{label}读取",
                          f"{shown}: the sheet '{sheet.name}' is hidden; it was read as the {register} register"))
        kept.append((sheet, loaded))
    return kept


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
    reader: FileReader | None = None,
    parse_ahead: date | None = None,
) -> Registers:
    """Load registers from workbooks, CSV files or folders of them.

    One unreadable file is recorded in `Registers.failures` and the others are still read,
    unless `strict`, in which case its InputError is raised. When no file can be read, or the
    households or members register is missing from all of them, InputError is raised.
    `reader` gets each file's cells (a ReadAhead's `read` hands over what it read already).
    `parse_ahead` is the reference date the registers will be parsed for: sheets a reader hands
    over while it reads on are parsed at once, and parse.parse takes those columns over.
    """
    headers = headers or {}
    limits = limits or Limits()
    files = expand_paths(paths)
    if not files:
        raise _no_spreadsheets(paths)
    sources: list[SheetSource] = []
    frames: dict[RegisterName, list[pd.DataFrame]] = {}
    failures: list[InputError] = []
    notes: list[tuple[str, str]] = [(f"{output}: exitcheck 的输出文件, 未作为登记表读取", f"{output}: an output of exitcheck, not read as a register")
                                    for output in outputs_in_folders(paths)]
    missing: list[DataIssue] = []
    ahead: list[ColumnsAhead] = []
    unheaded: dict[RegisterName, list[tuple[str, str]]] = {}  # register -> (file, sheet) named for it, unread
    for path, shown in files:
        try:
            # with several files a register has several sheets: nothing to parse ahead
            loaded = load_file(path, shown, headers, limits, reader or _read_now, parse_ahead if len(files) == 1 else None)
        except InputError as error:
            if strict:
                raise
            # kept to the end of the run: without the traceback, whose frames hold the cells read
            failures.append(error.with_traceback(None))
            continue
        notes.extend(loaded.notes)
        missing.extend(loaded.missing)
        ahead.extend(loaded.parsed_ahead)
        _note_unheaded(unheaded, shown, loaded.unheaded)
        if loaded.missing and strict:
            raise _missing_columns_error(shown, loaded.missing)
        if len(files) > 1 and any(i.params.get("register") == "households" for i in loaded.missing):
            # Its households unread, the file's members would all be orphans and its villages
            # empty: the file is left out whole (its refused sheet is the failure it counts as).
            continue
        for source, frame in loaded.found:
            frame[SOURCE] = len(sources)
            sources.append(source)
            frames.setdefault(source.register, []).append(frame)
    if failures and not frames:
        raise failures[0] if len(failures) == 1 else _all_failed(failures)
    raw = {register: _concat(parts) for register, parts in frames.items()}
    registers = Registers(raw=raw, sources=sources, inputs=[shown for _, shown in files], failures=failures, notes=notes)
    notes.extend(_lacking_columns_notes(registers))
    for columns in ahead:
        keep_columns_ahead(registers, columns)
    for issue in missing:  # a refused sheet counts as an unreadable input (exit 3)
        registers.failures.append(_missing_columns_error(issue.file or "", [issue]))
    # and its missing columns are data issues, listed with the others (issues.xlsx, the gap
    # workbook's 数据问题) where the clerk works through them
    registers.load_issues.extend(missing)
    for register in REQUIRED_REGISTERS:
        own = [i for i in missing if i.params.get("register") == register]
        if register not in raw and own:
            raise _missing_columns_error(own[0].file or "", own)
        if register not in raw:
            raise _register_not_found(register, [shown for _, shown in files], failures, unheaded.get(register, []))
        label = REGISTER_LABELS[register][0]
        if raw[register].empty:
            # An audit of no households would pass every indicator: refuse rather than mislead.
            raise InputError(
                registers.files_of(register),
                f"{label}只有表头, 没有数据行",
                f"the {register} register has a header but no data rows",
            )
    return registers


def _note_unheaded(unheaded: dict[RegisterName, list[tuple[str, str]]], shown: str, sheets: Iterable[str]) -> None:
    """Keep, by register, the sheets of file `shown` named for a register and left unread for
    want of a header row: the register's absence is then explained by them."""
    for sheet in sheets:
        if (named := _register_by_name(sheet)) is not None:
            unheaded.setdefault(named, []).append((shown, sheet))


def _register_not_found(register: RegisterName, shown: list[str], failures: list[InputError],
                        unheaded: list[tuple[str, str]]) -> InputError:
    """No input holds `register`: the files that could not be read and the sheets named for it
    whose header was not found may hold it, so they are named, with how to fix each."""
    label = REGISTER_LABELS[register][0]
    unread_zh = "".join(f"; 无法读取: {f.zh}" for f in failures)
    unread_en = "".join(f"; unreadable: {f.en}" for f in failures)
    for file, sheet in unheaded:
        unread_zh += (f"; {file} 工作表「{sheet}」的前 {HEADER_SEARCH_ROWS} 行中没有可识别的表头: 表头须在前 "
                      f"{HEADER_SEARCH_ROWS} 行之内, 请删除表头上方多余的行")
        unread_en += (f"; {file} sheet '{sheet}' has no recognisable header in its first {HEADER_SEARCH_ROWS} rows: "
                      f"the header must be within them; delete the extra rows above it")
    return InputError(
        ", ".join(shown),
        f"找不到{label}: 输入中没有可识别的{label}工作表{unread_zh}",
        f"no {register} register: none of the inputs has a recognisable {register} sheet{unread_en}",
    )


def _no_spreadsheets(paths: Iterable[str | Path]) -> InputError:
    """Nothing to read in `paths` (as given); a folder is read without its subfolders, so name
    those that hold spreadsheets (a register unzipped into a folder of its own is the usual case)."""
    given = [str(p) for p in paths] if not isinstance(paths, str | Path) else [str(paths)]
    nested = sorted(
        str(sub) for folder in map(Path, given) if folder.is_dir()
        for sub in folder.iterdir() if sub.is_dir() and expand_paths([sub])
    )
    where_zh = f"; 子文件夹中有表格文件, 请直接指定子文件夹: {', '.join(nested)}" if nested else ""
    where_en = f"; subfolders are not read, and these hold spreadsheets: give them instead: {', '.join(nested)}" if nested else ""
    return InputError(", ".join(given), "没有找到电子表格文件" + where_zh, "no spreadsheet files found" + where_en)


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
