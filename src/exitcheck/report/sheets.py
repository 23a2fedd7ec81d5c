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
from collections.abc import Sequence
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
    "title": {"bold": True, "font_size": 14},
    "date": {"num_format": "yyyy-mm-dd"},
    "wrap": {"text_wrap": True, "valign": "top"},
    "pct": {"num_format": "0.00%"},
}
#: Every cell of a list row: top-aligned, so that a row's cells start on one line beside a
#: wrapped neighbour, and boxed, so that rows stay apart on paper (gridlines are not printed).
LIST_CELL: dict[str, Any] = {"valign": "top", "border": 1}


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


def write_cells(workbook: Any, sheet: Any, row: int, values: Sequence[Any], style: str = "plain", first: int = 0) -> None:
    """A row of values; text that starts like a formula (=, +, -, @, tab, CR) gets the quote
    prefix. Every row written from data goes through here (or write_table, which uses it)."""
    fmt = formats(workbook)
    _write_values(sheet, row, first, values, [None if style == "plain" else fmt[style]] * len(values),
                  [fmt[f"quoted:{style}"]] * len(values))


def _write_values(sheet: Any, row: int, first: int, values: Sequence[Any], styles: Sequence[Any], quoted: Sequence[Any]) -> None:
    """Each value by its own kind, text always as text: xlsxwriter's write() and write_row()
    guess from the value, and before 3.3.1 made text in braces ('{=...}') an array formula
    whatever strings_to_formulas said. `styles[i]` is the format of column first + i, and
    `quoted[i]` its format for text that starts like a formula (Excel's quote prefix keeps it
    text when a clerk edits it)."""
    for index, value in enumerate(values):
        column, style = first + index, styles[index]
        if isinstance(value, str) and value:  # numpy's str_ too: write() would guess at it
            sheet.write_string(row, column, value, quoted[index] if value.startswith(FORMULA_STARTS) else style)
        elif value is None or isinstance(value, str):  # blank, as write() leaves it
            if style is not None:
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
    widths: Sequence[int | None] | None = None,
    title: str | None = None,
    pct_columns: Sequence[int] = (),
    wrap_columns: Sequence[int] = (),
) -> Any:
    """One sheet: optional title line, a header row, the rows; set up for filtering and print."""
    sheet = workbook.add_worksheet(name[:31])
    fmt = formats(workbook)
    top = 0
    if title:
        sheet.write_string(0, 0, title, fmt["title"])
        top = 1
    write_cells(workbook, sheet, top, list(headers), "header")  # extra columns' headers come from input
    sheet.set_row(top, 30)  # two lines, so wrapped headers of narrow columns stay legible
    # Cells are prepared a column at a time (a text column as it is), and only the rows that
    # need it are made taller: the per-cell work left is one write each.
    columns = [_column_cells(frame[c]) for c in frame.columns]
    chosen = [
        (widths[i] if widths and i < len(widths) and widths[i] else None) or _guess_width(h, columns[i] if i < len(columns) else [])
        for i, h in enumerate(headers)
    ]
    wrapped = [i for i in wrap_columns if i < len(columns)]
    props = [_list_cell(index in wrapped, index in pct_columns) for index in range(len(columns))]
    styles = [cell_format(workbook, p) for p in props]
    quoted = [cell_format(workbook, p, quoted=True) for p in props]
    for offset, cells in enumerate(zip(*columns, strict=True) if columns else []):
        _write_values(sheet, top + 1 + offset, 0, cells, styles, quoted)
    lines = [max(row) for row in zip(*(_lines(columns[i], chosen[i]) for i in wrapped), strict=True)] if wrapped else []
    for offset, count in enumerate(lines):
        if count > 1:  # spreadsheet programs do not grow rows for wrapped text on their own
            sheet.set_row(top + 1 + offset, 15 * count)
    last_row = top + max(len(frame), 1)
    sheet.freeze_panes(top + 1, 0)
    if len(headers):
        sheet.autofilter(top, 0, last_row, len(headers) - 1)
    for index, width in enumerate(chosen):
        sheet.set_column(index, index, width)
    sheet.repeat_rows(top)
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    sheet.set_footer("&C&P / &N")
    return sheet


def _list_cell(wrapped: bool, pct: bool) -> dict[str, Any]:
    """The properties of a list cell in a column that wraps its text, or shows percentages."""
    return {**LIST_CELL, **(FORMATS["wrap"] if wrapped else {}), **(FORMATS["pct"] if pct else {})}


def _column_cells(column: pd.Series) -> list[Any]:
    """A column's cells as written: text as it is (blank as None), anything else through _cell."""
    if pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
        return column.to_numpy(dtype=object, na_value=None).tolist()
    return [_cell(v) for v in column.astype(object).tolist()]


def _guess_width(header: str, cells: list[Any]) -> float:
    sample = [str(cell) for cell in cells[:200] if cell is not None]
    longest = max([_display_len(header), *(_display_len(s) for s in sample)], default=8)
    return min(max(6, longest + 2), 60)


def _lines(cells: list[Any], width: float) -> list[int]:
    """Lines each cell of a wrapped column takes at this width."""
    room = max(int(width) - 1, 1)
    return [-(-_display_len(cell) // room) if isinstance(cell, str) and cell else 1 for cell in cells]


_WIDE = re.compile("[\u2e81-\U0010ffff]")


def _display_len(text: str) -> int:
    """Chinese characters take two columns in a spreadsheet."""
    return len(text) + len(_WIDE.findall(text))
