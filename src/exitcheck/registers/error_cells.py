"""Cells holding an Excel error value (#N/A, #DIV/0!, #REF!, #VALUE!, #NAME?).

python-calamine gives such a cell as '', the same as an empty cell: a VLOOKUP that found nothing
became a blank income ("人均纯收入为空"), and a birth date of #NAME? no issue at all. The package
scan notes which sheet parts hold an error cell (`PartScan.error_cells`: a search for '#' a
stretch, and for t="e" only where one is found); for those few parts this reads the error values back from the sheet XML, so that the
parsers see "#N/A" and report it as a value that cannot be read, with the value shown.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from exitcheck.registers.limits import cells_matching, parse_ref

# A cell with its reference first (every writer puts it there), t="e" among its attributes, and
# its value after an optional formula.
_ERROR_CELL = re.compile(
    rb"<c r=\"([A-Z]{1,3}[0-9]+)\"[^>]*?\st=[\"']e[\"'][^>]*>(?:<f\b[^>]*/>|<f\b[^>]*>[^<]*</f>)?<v>([^<]*)</v>"
)


def error_values(path: Path, part: str) -> dict[tuple[int, int], str]:
    """{(row, column), 0-based from A1: error text} of an xlsx sheet part that passed the scan."""
    found: dict[tuple[int, int], str] = {}
    with zipfile.ZipFile(path) as archive:
        for stretch in cells_matching(archive, part, _ERROR_CELL):
            for reference, value in stretch:
                row, column = parse_ref(reference.decode(), 0, 0)
                found[(row - 1, column - 1)] = value.decode("utf-8", "replace")
    return found


def put_error_values(rows: list[list[object]], errors: dict[tuple[int, int], str]) -> None:
    """Write each error text into the cell calamine left empty (rows are laid out from A1)."""
    for (row, column), value in errors.items():
        if row < len(rows) and column < len(rows[row]) and rows[row][column] == "":
            rows[row][column] = value
