"""Numbers python-calamine cannot turn into the date or duration their cell's format asks for.

calamine makes a date of each number in a date format and a duration of each number in a
duration format ([h]:mm:ss). A number far outside any date (an ID number typed into such a
column, a negative amount of that size) makes it fail: Python's timedelta ends at 999,999,999
days (OverflowError), and chrono panics below about -1e11 days (pyo3's PanicException). Neither
means the file is corrupt. This finds the rows (by reading the sheet's rows one at a time) and,
in an xlsx, the cells (numbers of that size in those rows, in a date or duration format), so
that the message can name them and say what to change.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

from exitcheck.errors import InputError
from exitcheck.registers.limits import cells_matching, part_key

#: Beyond this many days no date or duration can be made (Python's timedelta ends here).
HUGE = 999_999_999
#: Rows named at most: a column of them is one mistake, named by its first rows.
MOST_ROWS = 5
#: Built-in number formats of dates, times and durations (ECMA-376 18.8.30, and the Chinese,
#: Japanese and Korean ones calamine knows).
_DATE_FORMAT_IDS = frozenset([*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)])
#: A custom format code is a date or duration when d, m, y, h or s is left once quoted text,
#: escaped characters and [colour] or [$-804] sections are taken out ([h] is kept: a duration).
_CODE_NOISE = re.compile(r'"[^"]*"|\\.|_.|\*.|\[(?![hHmMsS]+\])[^\]]*\]')
_DATE_LETTERS = re.compile(r"[dmyhsDMYHS]")
_STYLES_BYTES = 16 * 1024 * 1024


def is_out_of_range(error: BaseException) -> bool:
    """Whether python-calamine failed to make a date or duration of a number."""
    if isinstance(error, OverflowError):
        return True
    return type(error).__name__ == "PanicException" and "out of bounds" in str(error)


def out_of_range_error(shown: str, sheet: Any, name: str, path: Path | None, part: str | None) -> InputError:
    """The error naming the cells (or rows) of `sheet` whose numbers calamine cannot convert."""
    rows = _failing_rows(sheet)
    cells = _cells(path, part, rows) if path is not None and part else []
    if cells:
        where_zh, where_en = f"单元格 {'、'.join(cells)}", f"cell {', '.join(cells)}"
    else:
        where_zh = "第 " + "、".join(map(str, rows)) + " 行中有单元格"
        where_en = "row " + ", ".join(map(str, rows)) + ": a cell"
    return InputError(
        shown,
        f"工作表「{name}」{where_zh}的数值过大, 无法按其日期或时长格式(如 yyyy-mm-dd、[h]:mm:ss)读取; 请把该单元格的格式改为「常规」或「文本」后保存",
        f"sheet '{name}' {where_en} holds a number too large for its date or duration format (such as yyyy-mm-dd or [h]:mm:ss); set the cell's format to General or Text and save",
    )


def _failing_rows(sheet: Any) -> list[int]:
    """Excel row numbers of the first rows python-calamine cannot convert."""
    failing: list[int] = []
    iterator = sheet.iter_rows()
    count = 0
    while True:
        try:
            next(iterator)
        except StopIteration:
            break
        except BaseException as error:  # noqa: BLE001 - a panic is a BaseException
            if not is_out_of_range(error):
                raise
            if len(failing) < MOST_ROWS:
                failing.append(count)
        count += 1
    # iter_rows starts at row 1 (python-calamine 0.9) or at the first row holding a value: the
    # number of rows it gave tells which
    start, end = sheet.start or (0, 0), sheet.end or (0, 0)
    first = 1 if count == end[0] + 1 else start[0] + 1
    return [first + index for index in failing]


def _cells(path: Path, part: str, rows: list[int]) -> list[str]:
    """The cells of `rows` in an xlsx sheet part holding a number over HUGE in magnitude in a
    date or duration format, read as a stream (the part has passed the package scan)."""
    if not rows:
        return []
    wanted = "|".join(map(str, rows)).encode()
    cell = re.compile(
        rb'<c r="([A-Z]{1,3}(?:%s))"(?: s="([0-9]+)")?[^>]*>(?:<f\b[^>]*/>|<f\b[^>]*>[^<]*</f>)?<v>([^<]*)</v>' % wanted
    )
    found: list[tuple[bytes, bytes, bytes]] = []
    try:
        with zipfile.ZipFile(path) as archive:
            dated = _date_styles(archive)
            for stretch in cells_matching(archive, part, cell):
                found += stretch
    except (OSError, KeyError, zipfile.BadZipFile, RuntimeError, SyntaxError, ValueError):
        return []  # (ParseError is a SyntaxError) the rows are named instead
    return [ref.decode() for ref, style, value in found if _huge(value) and (dated is None or int(style or 0) in dated)]


def _huge(value: bytes) -> bool:
    try:
        return abs(float(value)) > HUGE
    except ValueError:
        return False


def _date_styles(archive: zipfile.ZipFile) -> set[int] | None:
    """The cell styles (s="3") whose number format is a date, time or duration; None when the
    styles part cannot tell."""
    info = next((i for i in archive.infolist() if part_key(i.filename) == "xl/styles.xml"), None)
    if info is None or info.file_size > _STYLES_BYTES:
        return None
    root = ET.fromstring(archive.read(info))  # noqa: S314 - scanned: no DTD, no entity
    local = lambda element: element.tag.rsplit("}", 1)[-1]  # noqa: E731
    codes = {int(e.get("numFmtId", "-1")): e.get("formatCode", "") for e in root.iter() if local(e) == "numFmt"}
    xfs = next((e for e in root.iter() if local(e) == "cellXfs"), None)
    dated = set()
    for index, xf in enumerate(x for x in (xfs if xfs is not None else ()) if local(x) == "xf"):
        format_id = int(xf.get("numFmtId", "0"))
        code = codes.get(format_id)
        if format_id in _DATE_FORMAT_IDS if code is None else bool(_DATE_LETTERS.search(_CODE_NOISE.sub("", code))):
            dated.add(index)
    return dated
