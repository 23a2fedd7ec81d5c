"""Workbooks a clerk can print and work through, written with xlsxwriter.

Every sheet gets frozen headers, filters, set widths, print titles and landscape fit-to-width;
every cell of a list row is top-aligned and boxed with a thin border, so that rows of several
lines stay readable and apart on paper.
The workbook is created with `strings_to_formulas` off, so a cell that starts with '=' in the
data is written as text and never becomes a formula.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from exitcheck.report.files import FORMULA_STARTS

WORKBOOK_OPTIONS = {
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    "nan_inf_to_errors": True,
}


def open_workbook(path: Path) -> Any:
    import xlsxwriter

    return xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)


FORMATS: dict[str, dict[str, Any]] = {
    "plain": {},
    "header": {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "vcenter"},
    # a narrow column's header, read from top to bottom: Chinese stacked, other text turned
    "header:stacked": {"bold": True, "bg_color": "#DDEBF7", "border": 1, "rotation": 270, "align": "center", "valign": "bottom"},
    "header:turned": {"bold": True, "bg_color": "#DDEBF7", "border": 1, "rotation": 90, "align": "center", "valign": "bottom"},
    "title": {"bold": True, "font_size": 14},
    "date": {"num_format": "yyyy-mm-dd"},
    "wrap": {"text_wrap": True, "valign": "top"},
    "pct": {"num_format": "0.00%"},
}
#: Every cell of a list row: top-aligned, so that a row's cells start on one line beside a
#: wrapped neighbour, and boxed, so that rows stay apart on paper (gridlines are not printed).
LIST_CELL: dict[str, Any] = {"valign": "top", "border": 1}
#: A number in a list cell: kept off the right border, so that it does not run into the text
#: of the next column on paper (615 beside E read as 615E).
NUMBER: dict[str, Any] = {"align": "right", "indent": 1}
#: A row that must stand out (a special group), and a totals row.
STAND_OUT: dict[str, Any] = {"bg_color": "#FCE4D6"}
TOTAL: dict[str, Any] = {"bold": True}


def formats(workbook: Any) -> dict[str, Any]:
    """The named formats, and for each a "quoted:" variant with Excel's quote prefix."""
    cached = getattr(workbook, "_exitcheck_formats", None)
    if cached:
        return cached
    made = {name: workbook.add_format(props) for name, props in FORMATS.items()}
    # Formula-like text is written as text already (strings_to_formulas is off); the quote
    # prefix also keeps Excel from making it a formula when a clerk edits the cell.
    made.update({f"quoted:{name}": workbook.add_format({**props, "quote_prefix": True}) for name, props in FORMATS.items()})
    workbook._exitcheck_formats = made
    return made


def cell_format(workbook: Any, props: dict[str, Any], *, quoted: bool = False) -> Any:
    """One xlsxwriter format per set of properties (and quote prefix), made once per workbook."""
    made = workbook.__dict__.setdefault("_exitcheck_cell_formats", {})
    key = (tuple(sorted(props.items())), quoted)
    if key not in made:
        made[key] = workbook.add_format({**props, "quote_prefix": True} if quoted else props)
    return made[key]


def write_list_row(workbook: Any, sheet: Any, row: int, values: Sequence[Any], pct_columns: Sequence[int] = ()) -> None:
    """A row of a small table outside write_table (a summary's): boxed and top-aligned like a
    list row, numbers kept off the border, `pct_columns` as percentages."""
    props = [_list_cell(False, index in pct_columns, None, _is_number(value)) for index, value in enumerate(values)]
    _write_values(sheet, row, 0, values, [cell_format(workbook, p) for p in props], [cell_format(workbook, p, quoted=True) for p in props])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers(cells: Sequence[Any]) -> bool:
    """Whether a column holds numbers (and blanks) only."""
    return any(_is_number(cell) for cell in cells) and all(cell is None or _is_number(cell) for cell in cells)


def write_cells(workbook: Any, sheet: Any, row: int, values: Sequence[Any], style: str = "plain", first: int = 0) -> None:
    """A row of values; text that starts like a formula (=, +, -, @, tab, CR) gets the quote
    prefix. Every row written from data goes through here (or write_table, which uses it)."""
    fmt = formats(workbook)
    _write_values(sheet, row, first, values, [None if style == "plain" else fmt[style]] * len(values),
                  [fmt[f"quoted:{style}"]] * len(values))


def _write_values(sheet: Any, row: int, first: int, values: Sequence[Any], styles: Sequence[Any], quoted: Sequence[Any],
                  *, blanks: bool = True) -> None:
    """Each value by its own kind, text always as text: xlsxwriter's write() and write_row()
    guess from the value, and before 3.3.1 made text in braces ('{=...}') an array formula
    whatever strings_to_formulas said. `styles[i]` is the format of column first + i, and
    `quoted[i]` its format for text that starts like a formula (Excel's quote prefix keeps it
    text when a clerk edits it). Without `blanks`, a blank cell is not written: the list's
    box (see _box_list) draws its border."""
    for index, value in enumerate(values):
        column, style = first + index, styles[index]
        if isinstance(value, str) and value:  # numpy's str_ too: write() would guess at it
            sheet.write_string(row, column, value, quoted[index] if value.startswith(FORMULA_STARTS) else style)
        elif value is None or isinstance(value, str):  # blank, as write() leaves it
            if style is not None and blanks:
                sheet.write_blank(row, column, None, style)
        elif isinstance(value, bool):
            sheet.write_boolean(row, column, value, style)
        elif isinstance(value, int | float):
            sheet.write_number(row, column, value, style)
        else:  # dates, numpy numbers: never text, so never a formula
            sheet.write(row, column, value, style)


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        return "、".join(str(v) for v in value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def write_table(
    workbook: Any,
    name: str,
    frame: pd.DataFrame,
    headers: Sequence[str],
    *,
    title: str | None = None,
    pct_columns: Sequence[int] = (),
    number_formats: Mapping[str, str] | None = None,
    stand_out: Sequence[bool] | None = None,
    total_rows: int = 0,
    none_note: str | None = None,
    upright: Sequence[int] = (),
    page_header: str | None = None,
) -> Any:
    """One sheet: optional title line, a header row, the rows; set up for filtering and print.

    Each column is as wide as its header (wrapped on up to three lines, never inside a word)
    and its longest cell, in whatever language they are; a column of text longer than
    WRAP_WIDTH wraps at that width, and its rows are made as tall as their text.
    `number_formats` gives a frame column its number format ("#,##0.00"); the rows marked in
    `stand_out` are shaded; the last `total_rows` rows are totals: bold, and outside the filter,
    so that sorting or filtering the list leaves them where they are. No rows: `none_note`
    under the headers, so that the printed page says there are none, and no filter (a filter
    over a blank row offers nothing to choose). The columns in `upright` (marks such as ✗)
    are as narrow as their cells, their headers written top to bottom; and a list too wide to
    print readably on one A4 page's width has its columns of running text narrowed (they wrap)
    until it does (fit_to_page). `page_header` is printed at the top of every page (which
    list, of where, as of when), so that a loose page still says what it is; a `title` line
    is printed on every page too.
    """
    sheet = workbook.add_worksheet(name[:31])
    fmt = formats(workbook)
    top = 0
    if title:
        sheet.write_string(0, 0, title, fmt["title"])
        top = 1
    # a mark column's header is written top to bottom; every header goes through _write_values,
    # as the extra columns' headers come from the input
    header_styles = [_upright_style(h) if i in upright else "header" for i, h in enumerate(headers)]
    _write_values(sheet, top, 0, list(headers), [fmt[style] for style in header_styles],
                  [fmt[f"quoted:{style}"] for style in header_styles])
    # Cells are prepared a column at a time (a text column as it is), and only the rows that
    # need it are made taller: the per-cell work left is one write each.
    columns = [_column_cells(frame[c]) for c in frame.columns]
    formatted = {frame.columns.get_loc(name): code for name, code in (number_formats or {}).items() if name in frame}
    numeric = [_numbers(cells) for cells in columns]
    chosen = [column_width([] if i in upright else [h], columns[i] if i < len(columns) else [], formatted=i in formatted,
                           numbers=numeric[i] if i < len(columns) else None, narrowest=MARK_WIDTH if i in upright else 4)
              for i, h in enumerate(headers)]
    if not len(frame) and none_note and chosen:  # the note is the list's only text: it must show whole
        chosen[0] = max(chosen[0], column_width([], [none_note]) - sum(chosen[1:]))
    fitted = fit_to_page(chosen, headers, lambda i: i < len(columns) and not numeric[i] and i not in upright and _breakable(columns[i]))
    sheet.set_row(top, max([LINE_HEIGHT * max((header_lines(h, w) for i, (h, w) in enumerate(zip(headers, chosen, strict=False))
                                              if i not in upright), default=1),
                            *(_upright_height(headers[i]) for i in upright)]))
    wrapped = [i for i in range(len(columns)) if chosen[i] >= WRAP_WIDTH or fitted[i] < chosen[i]]
    chosen = fitted
    props = [_list_cell(index in wrapped, index in pct_columns, formatted.get(index), numeric[index]) for index in range(len(columns))]
    kinds = {"plain": props, "stand_out": [{**p, **STAND_OUT} for p in props], "total": [{**p, **TOTAL} for p in props]}
    styles = {kind: ([cell_format(workbook, p) for p in ps], [cell_format(workbook, p, quoted=True) for p in ps]) for kind, ps in kinds.items()}
    first_total = len(frame) - total_rows
    for offset, cells in enumerate(zip(*columns, strict=True) if columns else []):
        kind = "total" if offset >= first_total else "stand_out" if stand_out is not None and stand_out[offset] else "plain"
        _write_values(sheet, top + 1 + offset, 0, cells, *styles[kind], blanks=kind != "plain")  # shading and bold need the cell
    if len(frame) and len(headers):
        _box_list(workbook, sheet, top + 1, top + len(frame), len(headers) - 1)
    lines = [max(row) for row in zip(*(_lines(columns[i], chosen[i]) for i in wrapped), strict=True)] if wrapped else []
    for offset, count in enumerate(lines):
        if count > 1:  # spreadsheet programs do not grow rows for wrapped text on their own
            sheet.set_row(top + 1 + offset, LINE_HEIGHT * count)
    last_row = top + max(len(frame) - total_rows, 1)
    sheet.freeze_panes(top + 1, 0)
    if not len(frame):
        if none_note:  # a boxed row across the list, printed like the rows it stands for
            boxed = cell_format(workbook, _list_cell(False, False, None, False))
            if len(headers) > 1:
                sheet.merge_range(top + 1, 0, top + 1, len(headers) - 1, none_note, boxed)
            else:
                sheet.write_string(top + 1, 0, none_note, boxed)
    elif len(headers):
        sheet.autofilter(top, 0, last_row, len(headers) - 1)
    for index, width in enumerate(chosen):
        sheet.set_column(index, index, width)
    sheet.repeat_rows(0, top)  # the title line too: a page of a long list says which list it is
    set_up_page(sheet, page_header)
    return sheet


def set_up_page(sheet: Any, page_header: str | None = None) -> None:
    """A4 landscape, fitted to one page's width, page numbers at the foot and `page_header`
    at the head of every page."""
    sheet.set_landscape()
    sheet.set_paper(9)  # A4: the paper every office printer has (A3 would stop some asking for it)
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(left=MARGIN_INCHES, right=MARGIN_INCHES, top=0.6, bottom=0.6)
    if page_header:
        # '&' starts a code in a header; Excel takes 255 characters at most
        sheet.set_header("&L" + page_header.replace("&", "&&")[:250])
    sheet.set_footer("&C&P / &N")


#: Left and right margins of a printed list, in inches.
MARGIN_INCHES = 0.4
#: What a landscape A4 page prints across, in pixels at 96 to the inch.
PRINTABLE_PIXELS = (11.69 - 2 * MARGIN_INCHES) * 96
#: The smallest fit-to-width scale at which 11-point text still reads on paper (about 7.5 points).
READABLE_SCALE = 0.68
#: Narrowest a column of running text is made to fit a list to the page (twelve Chinese characters).
NARROWEST_WRAP = 24
#: Width of a column of marks (✗, ?) with its header written top to bottom.
MARK_WIDTH = 3


def _pixels(width: float) -> int:
    """A column's width on screen at 100 %: Excel's rule for its default font."""
    return int(width * 7 + 0.5) + 5


def fit_to_page(widths: Sequence[float], headers: Sequence[str], breakable: Callable[[int], bool]) -> list[float]:
    """Widths at which a list prints at READABLE_SCALE or larger across one A4 page: the
    widest columns of running text (`breakable(i)`: it can wrap) are brought down to a common
    width first, none below NARROWEST_WRAP or the width its header needs. A list that still
    does not fit keeps those floors: narrower text would wrap into rows taller than a page."""
    budget = PRINTABLE_PIXELS / READABLE_SCALE
    if sum(map(_pixels, widths)) <= budget:
        return list(widths)
    floors = [max(NARROWEST_WRAP, _header_width(headers[i]) if i < len(headers) else 0)
              if width > NARROWEST_WRAP and breakable(i) else width for i, width in enumerate(widths)]
    fitted = list(widths)
    cap = max(widths, default=0)
    while sum(map(_pixels, fitted)) > budget and cap > NARROWEST_WRAP:
        cap -= 1
        fitted = [max(floor, min(width, cap)) for width, floor in zip(widths, floors, strict=True)]
    return fitted


def _breakable(cells: Sequence[Any]) -> bool:
    """Whether a column holds running text that can wrap between words or Chinese characters
    (an ID number or a phone number cannot: it would break mid-number)."""
    return any(isinstance(cell, str) and len(_pieces(cell)) > 1 for cell in cells)


def _box_list(workbook: Any, sheet: Any, first_row: int, last_row: int, last_column: int) -> None:
    """A thin border around every cell of a list's rows, as a conditional format that always
    applies: a blank cell of a plain row need not be written just to carry its border (writing
    them was a quarter of the gap workbook's time), and a cell a clerk fills in later (备注)
    keeps its box."""
    boxed = workbook.__dict__.get("_exitcheck_box")
    if boxed is None:  # a format of its own: a conditional format's may not serve a cell
        boxed = workbook._exitcheck_box = workbook.add_format({"border": 1})
    sheet.conditional_format(first_row, 0, last_row, last_column, {"type": "formula", "criteria": "TRUE", "format": boxed})


def _list_cell(wrapped: bool, pct: bool, number_format: str | None, number: bool = False) -> dict[str, Any]:
    """The properties of a list cell in a column that wraps its text, shows percentages, has a
    number format of its own, or holds numbers."""
    return {**LIST_CELL, **(FORMATS["wrap"] if wrapped else {}), **(FORMATS["pct"] if pct else {}),
            **({"num_format": number_format} if number_format else {}), **(NUMBER if number or pct else {})}


def _column_cells(column: pd.Series) -> list[Any]:
    """A column's cells as written: text as it is (blank as None), anything else through _cell."""
    if pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
        return column.to_numpy(dtype=object, na_value=None).tolist()
    return [_cell(v) for v in column.astype(object).tolist()]


#: Points per line of 11-point text, Chinese or English.
LINE_HEIGHT = 15
#: Widest a column gets; longer text wraps at this width.
WRAP_WIDTH = 48
#: A header wraps on up to this many lines before its column is made wider for it.
HEADER_LINES = 3
#: Room around a cell's text: its margins, and a bold header's wider letters.
PADDING = 2


def column_width(headers: Sequence[str], cells: Sequence[Any], *, formatted: bool = False, numbers: bool | None = None,
                 narrowest: float = 4) -> float:
    """The width a column needs for its header(s) and its cells, measured in the text itself:
    its longest cell, capped at WRAP_WIDTH (longer text wraps), and room for each header on
    HEADER_LINES lines with no word broken; `narrowest` at least. `formatted`: numbers shown
    with thousands separators and two decimals; `numbers`: whether the cells are numbers, when
    known."""
    shown = (lambda cell: f"{cell:,.2f}" if isinstance(cell, int | float) else _shown(cell)) if formatted else _shown
    longest = max((_display_len(text) for text in {shown(cell) for cell in cells if cell is not None}), default=0)
    longest += _numbers(cells) if numbers is None else numbers  # the indent that keeps a number off the border
    return max(min(longest + PADDING, WRAP_WIDTH), *(_header_width(header) for header in headers), narrowest)


Block = tuple[int | None, Sequence[str], Sequence[Sequence[Any]]]


def fit_columns(sheet: Any, blocks: Sequence[Block]) -> None:
    """Widths for a sheet of several small tables, each written from column A: a block is its
    header row's index (None for a table with no header row), its headers and its rows. Each
    column fits the widest header and cell of every block; header rows get their lines."""
    count = max((len(row) for _, headers, rows in blocks for row in [headers, *rows]), default=0)
    widths = [
        column_width([headers[c] for _, headers, _ in blocks if c < len(headers)],
                     [row[c] for _, _, rows in blocks for row in rows if c < len(row)])
        for c in range(count)
    ]
    for column, width in enumerate(widths):
        sheet.set_column(column, column, width)
    for top, headers, _ in blocks:
        if top is not None:
            sheet.set_row(top, LINE_HEIGHT * max((header_lines(h, w) for h, w in zip(headers, widths, strict=False)), default=1))


def _upright_style(header: str) -> str:
    """The format of a mark column's header: stacked (Chinese) or turned (letters)."""
    return "header:stacked" if _stacks(header) else "header:turned"


def _stacks(header: str) -> bool:
    """Whether a header reads stacked, a character under the other (Chinese), not turned."""
    return not header.isascii() and len(_WIDE.findall(header)) * 2 >= len(header)


def _upright_height(header: str) -> float:
    """Points a header written top to bottom needs: a line for each stacked character, or
    about half a line for each letter of a turned one."""
    return LINE_HEIGHT * (len(header) if _stacks(header) else len(header) * 0.5) + 2 * PADDING


def _header_width(header: str) -> int:
    """The narrowest width at which a header takes HEADER_LINES lines at most, words whole."""
    width = max((_display_len(word) for word in _pieces(header)), default=0) + PADDING
    while header_lines(header, width) > HEADER_LINES:
        width += 1
    return width


def header_lines(header: str, width: float) -> int:
    """Lines a header takes at this width (the header format wraps)."""
    return _wrapped_lines(header, width - PADDING)


def _shown(cell: Any) -> str:
    """A cell as the spreadsheet shows it, near enough to measure."""
    return f"{cell:.2f}" if isinstance(cell, float) and not cell.is_integer() else str(cell)


def _lines(cells: list[Any], width: float) -> list[int]:
    """Lines each cell of a wrapped column takes at this width: each distinct text measured
    once (a county's household list repeats its reasons and departments: 1,364 texts in
    5,118 cells)."""
    room = max(width - 1, 1)
    measured: dict[str, int] = {}

    def lines(cell: Any) -> int:
        if not isinstance(cell, str) or not cell:
            return 1
        if (count := measured.get(cell)) is None:
            count = measured[cell] = _wrapped_lines(cell, room)
        return count
    return [lines(cell) for cell in cells]


_WIDE = re.compile(r"[\u2e81-\U0010ffff]")
#: What a line may break after: a Chinese character, or a word with the spaces after it.
_PIECE = re.compile(r"[\u2e81-\U0010ffff]|[^\s\u2e81-\U0010ffff]+\s*|\s+")


def _pieces(text: str) -> list[str]:
    return [piece.rstrip() for piece in _PIECE.findall(text) if piece.strip()]


def _wrapped_lines(text: str, room: float) -> int:
    """Lines `text` takes in a wrapped cell `room` characters wide: broken between Chinese
    characters and between words, as spreadsheet programs do, a word only when it is wider
    than the cell."""
    if "\n" not in text and _display_len(text) <= room:
        return 1
    total = 0
    for paragraph in text.split("\n"):
        lines, used = 1, 0.0
        for piece in _PIECE.findall(paragraph):
            size, advance = _display_len(piece.rstrip()), _display_len(piece)
            if used and used + size > room:
                lines, used = lines + 1, 0.0
            while size > room:  # a word wider than the cell is broken where it runs out
                lines, size, advance = lines + 1, size - room, advance - room
            used += advance
        total += lines
    return total


def _display_len(text: str) -> int:
    """Chinese characters take two columns in a spreadsheet."""
    return len(text) if text.isascii() else len(text) + len(_WIDE.findall(text))
