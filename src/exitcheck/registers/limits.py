"""Input limits, checked before a file is parsed, so a crafted file cannot exhaust the machine.

The defaults let a prefecture register (200,000 households, 900,000 members) through with room
to spare; a workspace raises them under `limits:` in exitcheck.yaml (docs/limits.md). Every
refusal is an InputError (exit 3) that names the file, the limit and the setting that raises it.

What is checked, in order, for an .xlsx/.xlsm (a zip package):

1. the file's size on disk (`max_file_bytes`);
2. the zip's end record: the number of members (`max_zip_entries`), before the central
   directory is read into memory;
3. the central directory, as Apache POI's ZipSecureFile does: each part's declared size
   (`max_part_bytes`), the sum (`max_total_bytes`) and each part's inflate ratio
   (`max_inflate_ratio`);
4. the XML parts themselves, inflated as a stream and thrown away (`scan_package`): zipfile
   stops a part at its declared size and its CRC then fails, whatever the data said (a
   "lying" zip bomb); a part whose prolog declares a DTD (entity bomb) or that holds a text
   over `max_cell_chars` is refused; and the grid of each sheet (its last row and column, what
   calamine lays out densely) is bounded from its cells, never the <dimension>, so a sheet
   over `max_rows`, `max_columns` or `max_cells` is refused before python-calamine allocates
   it. Three measures, each taken only when the one before finds the sheet over a limit:
   `QuickBound` (one pass: every cell in the plain form writers use, inside a fixed bound);
   the cell references, read out of every cell, and the cells counted, wherever they stand;
   and `value_extent`, which parses the XML and counts only the cells holding a value
   (formatting is free). A reference in a form the second measure does not read (a second r
   attribute, spaced, single-quoted, prefixed: calamine honours them all) sends the sheet to
   the third, and tests/test_scan.py holds the scan to what calamine lays out.
   Sheets are scanned in a background thread while calamine opens the workbook; each is
   waited for (`PackageScan.wait_sheet`) before calamine reads it.

Only then does calamine read a sheet. For .xls, .xlsb and .ods, which are not scanned, the
sheet's extent is checked as soon as calamine reports it (`check_shape`), before its cells are
turned into Python objects; calamine itself refuses a sheet of more than 100 million cells.
"""

from __future__ import annotations

import contextlib
import functools
import html
import re
import struct
import threading
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exitcheck.errors import InputError

if TYPE_CHECKING:
    import numpy as np

MIB = 1024 * 1024
UNBOUNDED = 1 << 40
#: Parts this small are not held to the inflate ratio (POI's grace): tiny XML compresses well.
RATIO_GRACE_BYTES = MIB
CHUNK = 4 * MIB


def _limit(default: float, description: str, above: float = 0) -> Any:
    return field(default=default, metadata={"description": description, "above": above})


@dataclass(frozen=True)
class Limits:
    """How big an input may be. Field names are the keys under `limits:` in exitcheck.yaml.

    Sizes are in bytes. Each limit is checked before the thing it guards is allocated; see the
    module docstring for the order and docs/limits.md for the reasoning behind each default.

    A plain dataclass, not a pydantic model, so that reading a register needs no pydantic: its
    import took 0.2 s before the read could start (docs/speed.md). exitcheck.workspace makes
    the pydantic model that validates `limits:` from these fields, bounds and descriptions.
    """

    max_file_bytes: int = _limit(1024 * MIB, "largest input file on disk")
    max_part_bytes: int = _limit(2048 * MIB, "largest uncompressed part of an xlsx")
    max_total_bytes: int = _limit(4096 * MIB, "largest uncompressed xlsx in all")
    max_inflate_ratio: float = _limit(200.0, "largest uncompressed/compressed ratio of an xlsx part over 1 MiB (POI: 100)", above=1)
    max_rows: int = _limit(2_000_000, "most rows in one sheet (or CSV file)")
    max_columns: int = _limit(1000, "most columns in one sheet")
    max_cell_chars: int = _limit(32_767, "longest text in one cell (Excel's own limit)")
    max_cells: int = _limit(40_000_000, "largest grid of one sheet: last row x last column holding a value")
    max_zip_entries: int = _limit(20_000, "most members in an xlsx package")

    def __post_init__(self) -> None:
        for limit in fields(self):
            above = limit.metadata["above"]
            if not getattr(self, limit.name) > above:
                raise ValueError(f"{limit.name} must be greater than {above:g}")


def _raise_hint(setting: str) -> tuple[str, str]:
    return (
        f"如确属正常, 请在 exitcheck.yaml 的 limits.{setting} 中调高上限",
        f"raise limits.{setting} in exitcheck.yaml if it is genuine",
    )


def check_file_size(path: Path, shown: str, limits: Limits) -> int:
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        zh, en = _raise_hint("max_file_bytes")
        raise InputError(
            shown,
            f"文件过大({size // MIB} MiB, 上限 {limits.max_file_bytes // MIB} MiB); {zh}",
            f"file too large ({size // MIB} MiB, limit {limits.max_file_bytes // MIB} MiB); {en}",
        )
    return size


def _corrupt_zip(shown: str, reason: object) -> InputError:
    return InputError(
        shown,
        f"文件已损坏或不完整(无法作为 xlsx 打开: {reason}); 请重新导出或重新拷贝",
        f"file is corrupt or truncated (not a readable xlsx: {reason}); export or copy it again",
    )


def zip_entry_count(path: Path) -> int | None:
    """Members in a zip, from its end-of-central-directory record (zip64 too), or None.

    Read from the last 64 KiB before `zipfile` lists the members: a crafted zip of millions of
    empty members would otherwise cost gigabytes of ZipInfo objects before any check.
    """
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 65_557))
        tail = handle.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            return None
        count = struct.unpack_from("<H", tail, at + 10)[0]
        if count != 0xFFFF:
            return count
        locator = at - 20
        if locator < 0 or tail[locator : locator + 4] != b"PK\x06\x07":
            return None
        offset = struct.unpack_from("<Q", tail, locator + 8)[0]
        if offset >= size:
            return None
        handle.seek(offset)
        record = handle.read(56)
        if len(record) < 56 or record[:4] != b"PK\x06\x06":
            return None
        return struct.unpack_from("<Q", record, 32)[0]


def check_zip(path: Path, shown: str, limits: Limits) -> list[zipfile.ZipInfo]:
    """Refuse a zip bomb from its end record and central directory, before any part is inflated.

    Returns the members, for `scan_package`.
    """
    try:
        count = zip_entry_count(path)
    except OSError as exc:
        raise _corrupt_zip(shown, exc.strerror) from None
    if count is not None and count > limits.max_zip_entries:
        zh, en = _raise_hint("max_zip_entries")
        raise InputError(
            shown,
            f"文件内含 {count} 个部件, 超过上限 {limits.max_zip_entries}(正常的 xlsx 只有几十个), 疑似恶意文件, 已拒绝读取; {zh}",
            f"the package holds {count} members, over the limit of {limits.max_zip_entries} (a real xlsx has a few dozen): refused; {en}",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _corrupt_zip(shown, exc) from None
    if len(infos) > limits.max_zip_entries:  # an end record that lied about its count
        raise _corrupt_zip(shown, f"{len(infos)} members, the end record says {count}")
    seen: set[str] = set()
    for info in infos:
        key = part_key(info.filename)
        if key in seen:
            # Two members of one name: the scan would pass one and a reader might read the other.
            raise _corrupt_zip(shown, f"two members named {key}")
        seen.add(key)
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.max_part_bytes or (
            info.file_size > RATIO_GRACE_BYTES and ratio > limits.max_inflate_ratio
        ):
            raise _bomb(shown, info.filename, info.file_size, ratio, limits)
    if total > limits.max_total_bytes:
        zh, en = _raise_hint("max_total_bytes")
        raise InputError(
            shown,
            f"文件解压后共 {total // MIB} MiB, 超过上限 {limits.max_total_bytes // MIB} MiB, 已拒绝读取; {zh}",
            f"file would inflate to {total // MIB} MiB in all, over the limit of {limits.max_total_bytes // MIB} MiB; refused; {en}",
        )
    return infos


def _bomb(shown: str, part: str, size: int, ratio: float, limits: Limits) -> InputError:
    setting = "max_part_bytes" if size > limits.max_part_bytes else "max_inflate_ratio"
    zh, en = _raise_hint(setting)
    return InputError(
        shown,
        f"文件内部件 {part} 解压后过大({size // MIB} MiB, 压缩比 {ratio:.0f}), 疑似压缩炸弹, 已拒绝读取; {zh}",
        f"part {part} would inflate to {size // MIB} MiB (ratio {ratio:.0f}): a zip bomb? refused; {en}",
    )


def check_shape(shown: str, sheet: str, rows: int, columns: int, limits: Limits) -> None:
    """A sheet's grid (last row and last column holding a value) against the limits."""
    over = [
        name
        for name, value, limit in (
            ("max_rows", rows, limits.max_rows),
            ("max_columns", columns, limits.max_columns),
            ("max_cells", rows * columns, limits.max_cells),
        )
        if value > limit
    ]
    if over:
        zh, en = _raise_hint(over[0])
        raise InputError(
            shown,
            f"工作表「{sheet}」有 {rows} 行 {columns} 列(共 {rows * columns} 格), 超过上限({limits.max_rows} 行, {limits.max_columns} 列, {limits.max_cells} 格); 请删除多余的行列, 或{zh}",
            f"sheet '{sheet}' has {rows} rows and {columns} columns ({rows * columns} cells), over the limits ({limits.max_rows} rows, {limits.max_columns} columns, {limits.max_cells} cells); delete the stray rows and columns, or {en}",
        )


# ---- streaming scan of a package's parts ---------------------------------------------------

#: A cell in the plain form, its reference captured: the reference first, then only the other
#: attributes CT_Cell has (s, t, cm, vm, ph). Excel, WPS, LibreOffice, openpyxl, xlsxwriter and
#: POI all write cells so. Anything else calamine would still read (a second r, which calamine
#: takes over the first; r = "..", r='..', lower case, leading zeros in the row, a character
#: reference) is not plain, and a sheet with such a cell is measured by value_extent.
_PLAIN_CELL = re.compile(rb'<c r="([A-Z]{1,3}[1-9][0-9]{0,9})"(?: (?:s|t|cm|vm|ph)="[^"<>]*")*/?>')
#: Any cell element, <c> or <c r=..> (not <col>, <cfRule> and the like), and a prefixed one
#: (<x:c/>). Each pattern starts with a literal, which the regex engine searches for at C speed.
_CELL = re.compile(rb"<c[\s/>]")
_PREFIXED_CELL = re.compile(rb":c[\s/>]")
_XML_SUFFIXES = (".xml", ".rels", ".vml")


@dataclass(frozen=True)
class QuickBound:
    """A one-pass test that bounds a stretch of sheet XML without reading its references.

    Excel, WPS, LibreOffice, openpyxl and xlsxwriter all write a cell as <c r="B12" s="3"
    t="s">: the reference first, then only style, type and metadata attributes. When every
    cell element of a stretch has that form with a reference of at most `rows` and `columns`,
    that is the stretch's bound, and no reference needs to be taken out: the scan of a county's
    member sheet (61 MB of XML, a million cells) takes 0.44 s of CPU so, 0.89 s taking every
    reference out (session 18, on a machine slower than when this was first measured). Any
    other cell, or a reference past the bound, sends the stretch to the full measurement.
    """

    pattern: re.Pattern[bytes]  # finds a cell element not of the plain form, or past the bound
    rows: int
    columns: int

    @staticmethod
    def within(limits: Limits) -> QuickBound | None:
        """The widest bound (rows below a power of ten, at least 26 columns) that is inside
        `limits`; None when even 9 rows of 26 columns are not."""
        return _quick_bound(limits.max_rows, limits.max_columns, limits.max_cells)

    def bounds(self, data: bytes, cut: int) -> bool:
        """Whether every cell element in data[:cut] is plain and inside the bound."""
        return self.pattern.search(data, 0, cut) is None and _PREFIXED_CELL.search(data, 0, cut) is None


@functools.lru_cache(maxsize=8)
def _quick_bound(max_rows: int, max_columns: int, max_cells: int) -> QuickBound | None:
    for digits in range(7, 0, -1):
        rows = 10**digits - 1
        columns = min(max_columns, max_cells // rows, 702)
        if rows <= max_rows and columns >= 26:
            reference = rb"(?:%s)[1-9][0-9]{0,%d}+" % (_columns_up_to(columns), digits - 1)
            # One lookahead, and possessive repeats (no backtracking can make a cell plain): 17 %
            # less CPU than two lookaheads over a county's member sheet, on the scan that every
            # sheet waits for before calamine may lay it out.
            plain = rb'<c(?![\w.:-]| r="%s"(?: (?:s|t|cm|vm|ph)="[^"<>]*+")*+/?>)' % reference
            return QuickBound(re.compile(plain), rows, columns)
    return None


def _columns_up_to(columns: int) -> bytes:
    """A pattern for the column letters of columns 1 to `columns` (26 to 702): A-Z, then AA.."""
    choices = [b"[A-Z]"]
    whole, rest = divmod(columns - 26, 26)
    if whole:
        choices.append(b"[A-%c][A-Z]" % (64 + whole))
    if rest:
        choices.append(b"%c[A-%c]" % (65 + whole, 64 + rest))
    return b"|".join(choices)


@dataclass
class PartScan:
    """What streaming through one XML part found."""

    name: str
    size: int = 0
    max_row: int = 0  # largest row number of a cell reference (1-based), or the quick bound's
    max_column: int = 0  # largest column of a cell reference (1-based), or the quick bound's
    cell_elements: int = 0
    cell_refs: int = 0
    prefixed: bool = False  # elements carry a namespace prefix (<x:c>): bound by value_extent
    quick: bool = False  # some stretch was bounded by QuickBound, not by its references
    error_cells: bool = False  # some cell may hold an error value (#N/A): calamine gives it as ''
    hidden_rows: set[int] = field(default_factory=set)  # row numbers of <row hidden="1">: filtered or hidden (xlsx)
    last_error_mark: int = -1  # .ods: the offset in the inflated part of the last error cell's mark

    def grid(self) -> tuple[int, int]:
        """A bound on the grid a reader lays out, from the cell references (calamine places a
        cell by its own reference, whatever its row element or the <dimension> says). A cell
        not in the plain form (without a reference, placed by counting; with a second one;
        prefixed) leaves the part unbounded, and value_extent measures it."""
        if self.prefixed or self.cell_elements > self.cell_refs:
            return UNBOUNDED, UNBOUNDED
        return self.max_row, self.max_column


class ScanCancelled(Exception):
    """The reading stopped (an error elsewhere): the background scan gives up."""


@dataclass
class PackageScan:
    """The result of scanning an xlsx/xlsm/xlsb/ods package before a reader touches it.

    Sheet parts may still be being scanned in a background thread (`scan_package(...,
    background=True)`): `wait_sheet(name)` returns once that sheet's part has passed, or raises
    its InputError, and must be called before the reader lays the sheet out. `close()` stops a
    scan still running.
    """

    kind: str  # "xlsx" (also .xlsm), "xlsb", "ods", or "unknown" (left to the reader)
    names: set[str] = field(default_factory=set)
    sheets: dict[str, str] = field(default_factory=dict)  # sheet name -> part name (xlsx)
    part_bytes: dict[str, int] = field(default_factory=dict)  # part name -> declared size
    parts: dict[str, PartScan] = field(default_factory=dict)
    encrypted: bool = False  # an ODS whose manifest says its parts are encrypted
    pending: dict[str, Future[None]] = field(default_factory=dict, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    executor: ThreadPoolExecutor | None = field(default=None, repr=False)

    def sheet_bytes(self, sheet: str) -> int:
        """The uncompressed size of a sheet's part, as declared (0 when not known)."""
        return self.part_bytes.get(self.sheets.get(sheet, ""), 0)

    def wait_sheet(self, sheet: str) -> None:
        """Block until the part of `sheet` is scanned (every pending part when its part is not
        known); raise what the scan found."""
        part = self.sheets.get(sheet)
        futures = [self.pending[part]] if part in self.pending else list(self.pending.values())
        for future in futures:
            future.result()

    def close(self) -> None:
        self.cancel.set()
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None


def part_key(name: str) -> str:
    """Part names as readers match them: some writers use backslashes (calamine issue 530)."""
    return name.replace("\\", "/").lstrip("/").lower()


def package_kind(archive: zipfile.ZipFile, names: set[str]) -> str:
    """What a zip holds, from its parts: the main part named by _rels/.rels, else the usual
    names. "unknown" when nothing says (the reader then gets its chance)."""
    keys = {part_key(n): n for n in names}
    if "mimetype" in keys:
        with archive.open(keys["mimetype"]) as stream:
            if stream.read(100).startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
                return "ods"
    main = None
    if "_rels/.rels" in keys and archive.getinfo(keys["_rels/.rels"]).file_size < MIB:
        found = re.search(rb'Type="[^"]*/officeDocument"[^>]*?Target="([^"]+)"|Target="([^"]+)"[^>]*?Type="[^"]*/officeDocument"',
                          archive.read(keys["_rels/.rels"]))
        if found:
            main = part_key((found.group(1) or found.group(2)).decode("utf-8", "replace"))
    if main and main.endswith(".bin") or "xl/workbook.bin" in keys:
        return "xlsb"
    if main and main.endswith(".xml") or "xl/workbook.xml" in keys:
        return "xlsx"
    return "unknown"


def scan_package(
    path: Path, shown: str, infos: list[zipfile.ZipInfo], limits: Limits, *, background: bool = False, largest_first: bool = False,
    cancel: threading.Event | None = None,
) -> PackageScan:
    """Inflate every XML part as a stream (nothing is kept) and check what it really holds.

    This catches what the central directory cannot: a part whose headers understate its size
    (a "lying" zip bomb: zipfile stops at the declared size and the CRC then fails), an XML
    entity bomb, and a sheet whose cell references reach far beyond the data (two cells at A1
    and ALL60000 make a 60-million-cell grid in a 2 KB file).

    Every part but the sheets is scanned before this returns: the reader parses them when it
    opens the workbook. With `background`, the sheets are scanned in a thread while the reader
    opens the workbook and parses the sheets already passed (python-calamine lets go of the
    GIL), which hides most of the cost; the caller must `wait_sheet` before reading a sheet
    and `close` when done. With `largest_first`, the background scan takes the largest sheet
    first: a reader with two lanes reads it in a lane of its own (read.py), and it is the sheet
    the reading waits for longest; one lane reads in workbook order, and so should the scan.
    Setting `cancel` stops the scan at its next chunk, the parts scanned before this returns too.
    docs/limits.md has the measured costs.
    """
    names = {info.filename for info in infos}
    with _zip_errors(shown), zipfile.ZipFile(path) as archive:
        scan = PackageScan(package_kind(archive, names), names, cancel=cancel or threading.Event())
        scan.part_bytes = {info.filename: info.file_size for info in infos}
        xml = [info for info in infos if info.filename.lower().endswith(_XML_SUFFIXES)]
        # Binary parts (xlsb records, pictures) are left to the reader: zipfile and calamine's
        # zip crate both stop a member at its declared, checked size.
        members: set[str] = set()  # what calamine may open as a sheet (xlsx only)
        if scan.kind == "xlsx":
            workbook = [info for info in xml if part_key(info.filename) in _workbook_keys(names)]
            for info in workbook:
                scan.parts[info.filename] = _scan_part(archive, info, shown, limits, scan.cancel)
            members = sheet_members(archive, names)
            scan.sheets = _sheet_parts(archive, names, members)
        if scan.kind == "ods":
            manifest = next((n for n in names if part_key(n) == "meta-inf/manifest.xml"), None)
            if manifest and archive.getinfo(manifest).file_size < 16 * MIB:
                scan.encrypted = b"encryption-data" in archive.read(manifest)
        sheet_parts = set(scan.sheets.values()) | members
        # A sheet part of an xlsx is scanned whatever its name ends in: calamine reads the part
        # the workbook's relationships point at (an xlsb's sheets are binary, left to calamine).
        candidates = infos if scan.kind == "xlsx" else xml
        later = [i for i in candidates if i.filename in sheet_parts or "worksheets/" in part_key(i.filename)]
        for info in xml:
            if info.filename not in scan.parts and info not in later:
                scan.parts[info.filename] = _measure_part(archive, info, info.filename, shown, limits, scan.cancel, scan.kind)
    by_part = {part: sheet for sheet, part in scan.sheets.items()}
    if background and later:
        # One thread: the scan holds the GIL, a second scanning thread only takes turns.
        scan.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exitcheck-scan")
        for info in sorted(later, key=lambda i: i.file_size, reverse=True) if largest_first else later:
            scan.pending[info.filename] = scan.executor.submit(_scan_sheet, path, info, by_part.get(info.filename, info.filename), shown, limits, scan)
    else:
        for info in later:
            _scan_sheet(path, info, by_part.get(info.filename, info.filename), shown, limits, scan)
    return scan


def _scan_sheet(path: Path, info: zipfile.ZipInfo, label: str, shown: str, limits: Limits, scan: PackageScan) -> None:
    with _zip_errors(shown), zipfile.ZipFile(path) as archive:
        scan.parts[info.filename] = _measure_part(archive, info, label, shown, limits, scan.cancel, scan.kind)


def _measure_part(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, shown: str, limits: Limits, cancel: threading.Event, kind: str
) -> PartScan:
    """Scan a part and hold its grid to the limits, each way of measuring taken only when the
    cheaper one before it finds the sheet over a limit: the quick bound, then every cell
    reference, then parsing the XML for the cells that hold a value."""
    part = _scan_part(archive, info, shown, limits, cancel, kind=kind)
    if part.quick and _over(part.grid(), limits):
        # the quick bound (a million rows) met wider cells elsewhere in the sheet
        part = _scan_part(archive, info, shown, limits, cancel, kind=kind, quick=False)
    if _over(part.grid(), limits):
        # the references count cells that only carry a style; measure the cells that hold
        # values before refusing
        try:
            rows, columns = value_extent(archive, part.name, cancel)
        except NestedTooDeep:
            raise InputError(
                shown,
                f"工作表「{label}」的 XML 嵌套超过 {MAX_XML_DEPTH} 层(表格程序写出的只有 7 层), 疑似构造的文件, 已拒绝读取; 请用 Excel 或 WPS 打开后另存再核查",
                f"sheet '{label}': its XML nests more than {MAX_XML_DEPTH} levels deep (spreadsheet programs write 7), a crafted file?; refused. Open it in Excel or WPS and save it again",
            ) from None
        check_shape(shown, label, rows, columns, limits)
    return part


def _over(grid: tuple[int, int], limits: Limits) -> bool:
    rows, columns = grid
    return rows > limits.max_rows or columns > limits.max_columns or rows * columns > limits.max_cells


def encrypted_workbook(shown: str) -> InputError:
    return InputError(
        shown,
        "工作簿设有打开密码(已加密), 无法读取; 请在 Excel 中取消密码后另存",
        "the workbook is password-protected (encrypted); remove the password in Excel and save it again",
    )


@contextlib.contextmanager
def _zip_errors(shown: str) -> Iterator[None]:
    """Errors of a damaged package, as the InputError a user gets."""
    try:
        yield
    except (InputError, ScanCancelled):
        raise
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):  # also what a part inflating past its declared size ends in
            raise InputError(
                shown,
                f"文件内部件与其声明的大小或校验和不符, 文件被篡改或已损坏({exc}); 请重新导出或重新拷贝",
                f"a part does not match its declared size or checksum: the file is tampered with or corrupt ({exc}); export or copy it again",
            ) from None
        raise _corrupt_zip(shown, exc) from None
    except RuntimeError as exc:
        if "encrypted" in str(exc):  # zipfile's word for a member flagged as encrypted
            raise encrypted_workbook(shown) from None
        raise _corrupt_zip(shown, exc) from None
    except (OSError, EOFError, ValueError, zlib.error, ET.ParseError, NotImplementedError) as exc:
        # NotImplementedError: a compression method zipfile lacks (Deflate64, say)
        raise _corrupt_zip(shown, exc) from None


def _workbook_keys(names: set[str]) -> set[str]:
    """The workbook part and its relationships part (lower-case keys)."""
    keys = {part_key(n) for n in names}
    workbook = "xl/workbook.xml" if "xl/workbook.xml" in keys else next((k for k in sorted(keys) if k.endswith("workbook.xml")), None)
    if workbook is None:
        return set()
    folder = workbook.rpartition("/")[0]
    return {workbook, f"{folder}/_rels/workbook.xml.rels".lstrip("/")}


def _scan_part(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str, limits: Limits, cancel: threading.Event, *, kind: str = "xlsx",
    quick: bool = True,
) -> PartScan:
    part = PartScan(info.filename)
    bound = QuickBound.within(limits) if quick else None
    tail = b""
    with archive.open(info) as stream:
        while True:
            if cancel.is_set():
                raise ScanCancelled
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            if not part.size:
                # No part is skipped, whatever its encoding: calamine reads a sheet's bytes as
                # UTF-8 even after a UTF-16 mark or a NUL, and a UTF-16 part holds no '<c'.
                _check_prolog(part, chunk, shown)
            part.size += len(chunk)
            data = tail + chunk if tail else chunk
            if kind == "ods":
                _note_ods_error_cells(part, data)
            elif not part.error_cells:
                part.error_cells = _may_hold_error_cells(data)
            # Stop at the last '<', so that no tag and no text run straddles two stretches: the
            # tail carried over starts with its tag. When the only '<' is the first byte, the
            # stretch is one tag and the text after it, and is taken whole.
            cut = data.rfind(b"<")
            if cut <= 0:
                cut = len(data)
            _scan_xml(part, data, cut, shown, limits, bound)
            if kind == "xlsx":
                _note_hidden_rows(part, data, cut)
            tail = data[cut:]
    if tail:
        _scan_xml(part, tail, len(tail), shown, limits, bound)
    return part


def _note_hidden_rows(part: PartScan, data: bytes, cut: int) -> None:
    """The rows of a stretch (no tag cut in two) hidden by hand or by a filter: calamine reads
    them like any other, and the clerk who hid them should be told (load.py). The test for the
    attribute costs 25 ms over a county's member sheet; the rows are only parsed where a row or
    column is hidden (LibreOffice writes hidden="false" on every row). Rows past Excel's last
    are no rows of a workbook Excel wrote, and are not kept: a crafted part's millions of
    hidden rows would only fill memory, and a set holds each row once, however often repeated."""
    if data.find(b'hidden="', 0, cut) < 0:
        return
    if data.find(b'hidden="1"', 0, cut) < 0 and data.find(b'hidden="true"', 0, cut) < 0:
        return
    for row in _HIDDEN_ROW.finditer(data, 0, cut):
        number = _ROW_NUMBER.search(row.group(0))
        if number is not None and int(number.group(1)) <= EXCEL_ROWS:
            part.hidden_rows.add(int(number.group(1)))


#: A row element marked hidden (Excel writes hidden="1", some writers hidden="true"), and its
#: row number. No '<' inside the tag: with one allowed, a stretch of unclosed <row tags would
#: make each match attempt run to the stretch's end (minutes over a 4 MiB stretch of a crafted
#: part that compresses to a few KB).
_HIDDEN_ROW = re.compile(rb'<row\s[^<>]*?\bhidden="(?:1|true)"[^<>]*>')
_ROW_NUMBER = re.compile(rb'\sr="([0-9]{1,7})"')
EXCEL_ROWS = 1_048_576


def _may_hold_error_cells(data: bytes) -> bool:
    """Whether a stretch of an xlsx part (no tag cut in two) may hold a cell with an error
    value, which calamine gives as '' and registers/error_cells.py reads back."""
    # Every error value in an xlsx starts with '#', and a byte is found at memchr's speed (16 ms
    # over a county's member sheet); searching for t="e" itself would take 190 ms.
    return b"#" in data and (b't="e"' in data or b"t='e'" in data)


def _note_ods_error_cells(part: PartScan, data: bytes) -> None:
    """Where the last cell marked as an error value starts in a stretch of an .ods part (no tag
    cut in two): LibreOffice writes calcext:value-type="error", and the text may be Err:502,
    without '#'. Reading the values back stops after that cell. The search costs 90 ms over the
    211 MB content.xml of a sheet of 65,536 rows by 20 columns, which calamine reads in 3.3 s."""
    mark = data.rfind(b'value-type="error"')
    if b"'" in data:  # LibreOffice quotes no attribute so; one byte is found at memchr's speed
        mark = max(mark, data.rfind(b"value-type='error'"))
    if mark >= 0:
        part.error_cells = True
        part.last_error_mark = part.size - len(data) + mark


def _check_prolog(part: PartScan, chunk: bytes, shown: str) -> None:
    """No DTD: entities can only be declared in a DOCTYPE, which stands before the root
    element, and no xlsx part has one. (calamine does not expand declared entities either:
    this refuses the file with a clear cause instead of a parse error.)"""
    root = _ROOT.search(chunk)
    prolog = chunk[: root.start()] if root else chunk
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        raise InputError(
            shown,
            f"文件内部件 {part.name} 含有 DTD/实体声明(xlsx 中从不出现), 疑似 XML 实体炸弹, 已拒绝读取",
            f"part {part.name} declares a DTD or entities, which no xlsx has (an XML entity bomb?); refused",
        )
    name = root.group(1) if root else b""
    if b":" in name and name.rpartition(b":")[2] in (b"worksheet", b"dialogsheet", b"macrosheet"):
        part.prefixed = True  # <x:worksheet>: its cells are not counted here; value_extent is


#: The root element: the first '<' that opens an element (not <?, <!).
_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)")


@functools.lru_cache(maxsize=8)
def _long_text(max_chars: int) -> re.Pattern[bytes]:
    """Cell text (<t> or <v>) of more than `max_chars` bytes: a candidate over the limit.
    Characters are at most bytes, so nothing over the limit is missed."""
    return re.compile(rb"<(?:\w+:)?[tv](?:\s[^>]*)?>([^<]{%d,})" % (max_chars + 1))


def _scan_xml(part: PartScan, data: bytes, cut: int, shown: str, limits: Limits, quick: QuickBound | None) -> None:
    """data[:cut], a stretch of a part with no tag cut in two. Each test is one C-speed pass:
    the scan must cost a small fraction of calamine's read, so nothing here loops per cell."""
    _check_long_text(part, data, cut, shown, limits)
    if quick is not None and quick.bounds(data, cut):
        part.max_row = max(part.max_row, quick.rows)
        part.max_column = max(part.max_column, quick.columns)
        part.quick = True
        return
    # Cells are counted wherever they stand, not only inside <sheetData>: a text, a comment or
    # a CDATA section can hold the word, and a count it switched off would miss the cells
    # after it. Every plain cell is a cell too, so the counts are equal only when every cell
    # element is plain. (No real sheet has a cell element outside its sheetData.)
    part.cell_elements += len(_CELL.findall(data, 0, cut)) + len(_PREFIXED_CELL.findall(data, 0, cut))
    refs = _PLAIN_CELL.findall(data, 0, cut)
    if refs:
        max_row, max_column = refs_extent(refs)
        part.max_row = max(part.max_row, max_row)
        part.max_column = max(part.max_column, max_column)
        part.cell_refs += len(refs)


def _check_long_text(part: PartScan, data: bytes, cut: int, shown: str, limits: Limits) -> None:
    """A text over `max_cell_chars` before any reader holds it. A run of that many bytes with
    no '<' covers a whole aligned window of half that size; only then is the regex run."""
    window = max(1, (limits.max_cell_chars + 1) // 2)
    if all(data.find(b"<", start, start + window) >= 0 for start in range(0, cut - window + 1, window)):
        return
    for text in _long_text(limits.max_cell_chars).findall(data, 0, cut):
        chars = len(html.unescape(text.decode("utf-8", "replace")))
        if chars > limits.max_cell_chars:
            zh, en = _raise_hint("max_cell_chars")
            raise InputError(
                shown,
                f"文件内部件 {part.name} 中有长达 {chars} 个字符的文本, 超过单元格上限 {limits.max_cell_chars}(Excel 本身的上限); {zh}",
                f"part {part.name} holds a text of {chars} characters, over the cell limit of {limits.max_cell_chars} (Excel's own); {en}",
            )


def refs_extent(refs: list[bytes]) -> tuple[int, int]:
    """(largest row, largest column) of cell references like b"AB12".

    Vectorised over an n x 13 byte matrix instead of parsing each reference in Python, which
    would cost more than calamine's whole read. Among references with the same number of
    letters (digits), bytes compare as the numbers do: the largest is found by keeping, place
    by place, the rows holding the largest byte, with no per-reference arithmetic.
    """
    import numpy as np  # here: the quick bound needs no numpy, and the reading starts before it loads

    array = np.array(refs, dtype="S13")
    matrix = array.view(np.uint8).reshape(len(refs), 13)
    second = matrix[:, 1] >= 65  # 1 to 3 letters come first; digits and padding are < 65
    third = matrix[:, 2] >= 65
    letters = second.view(np.int8) + third.view(np.int8) + np.int8(1)
    digits = np.char.str_len(array).astype(np.int8) - letters
    most_letters = int(letters.max())
    max_column = 0
    for letter in _largest(matrix[letters == most_letters, :most_letters]).decode():
        max_column = max_column * 26 + ord(letter) - 64
    most_digits = int(digits.max())
    max_row = 0
    for count in (1, 2, 3):
        chosen = (digits == most_digits) & (letters == count)
        if chosen.any():
            max_row = max(max_row, int(_largest(matrix[chosen, count : count + most_digits])))
    return max_row, max_column


def _largest(rows: np.ndarray) -> bytes:
    """The lexicographically largest row of a byte matrix (all rows the same length)."""
    for place in range(rows.shape[1]):
        column = rows[:, place]
        rows = rows[column == column.max()]
        if len(rows) == 1:
            break
    return rows[0].tobytes()


#: What the exact pass feeds its parser at a time: every element of a piece lives until the
#: piece's events are read, ~20 bytes of objects for each byte of XML.
_EXACT_PIECE = 64 * 1024

#: How deep a sheet's XML may nest in the exact pass: a real one is seven deep (worksheet,
#: sheetData, row, c, is, r, t); a crafted one of millions of levels would fill memory.
MAX_XML_DEPTH = 64


class NestedTooDeep(Exception):
    """A sheet's XML nests deeper than MAX_XML_DEPTH: refused as over a limit, not as corrupt."""


def value_extent(archive: zipfile.ZipFile, part: str, cancel: threading.Event | None = None) -> tuple[int, int]:
    """The grid of the cells that hold a value (rows, columns), by parsing the sheet XML.

    The slow, exact pass, run only when the quick bound is over a limit: cells that carry only
    a style (a million formatted empty rows) take no room in the reader and should not count.
    A cell counts when it has a <v> (even an empty one: calamine keeps an empty string or
    date) or an inline string. Only the elements still open are held: each is dropped from
    its parent as it ends, wherever it sits, so that memory stays flat whatever the part holds.
    """
    parser = ET.XMLPullParser(events=("start", "end"))
    row = column = 0
    last_row = last_column = 0
    cell_row = cell_column = 0
    has_value = False
    cell_depth = 0
    open_elements: list[ET.Element] = []
    with archive.open(part) as stream:
        while True:
            if cancel is not None and cancel.is_set():
                raise ScanCancelled
            chunk = stream.read(_EXACT_PIECE)
            if not chunk:
                break
            parser.feed(chunk)
            for event, element in parser.read_events():
                tag = element.tag.rsplit("}", 1)[-1]
                if event == "start":
                    open_elements.append(element)
                    if len(open_elements) > MAX_XML_DEPTH:
                        raise NestedTooDeep
                    if tag in ("row", "c") and cell_depth:
                        # calamine skips what a cell holds; this pass would place it
                        raise ET.ParseError(f"a <{tag}> inside a cell")
                    if tag == "row":
                        row = _row_number(element.get("r"), row + 1)
                        column = 0
                    elif tag == "c":
                        cell_depth += 1
                        cell_row, cell_column = parse_ref(element.get("r"), row, column + 1)
                        column = cell_column
                        has_value = False
                    continue
                open_elements.pop()
                if open_elements:
                    open_elements[-1].remove(element)  # its only child: removed at once
                if tag in ("v", "is"):
                    has_value = True
                elif tag == "c":
                    cell_depth -= 1
                    if has_value:
                        last_row = max(last_row, cell_row)
                        last_column = max(last_column, cell_column)
        parser.close()
    return last_row, last_column


def _row_number(reference: str | None, counted: int) -> int:
    """A row's number as calamine reads its r: any letters before the digits are skipped."""
    match = re.fullmatch(r"[A-Za-z]*([0-9]+)", reference or "")
    return int(match.group(1)) if match else counted


def parse_ref(reference: str | None, row: int, column: int) -> tuple[int, int]:
    """(row, column), 1-based, of a cell reference such as 'K2'; (row, column) as given when
    there is none or it is not one."""
    if not reference:
        return row, column
    # as calamine reads it: letters of either case, as many as there are
    match = re.fullmatch(r"([A-Za-z]+)([0-9]+)", reference)
    if not match:
        return row, column
    value = 0
    for letter in match.group(1).upper():
        value = value * 26 + ord(letter) - 64
    return int(match.group(2)), value


def _sheet_parts(archive: zipfile.ZipFile, names: set[str], members: set[str]) -> dict[str, str]:
    """Sheet name -> part name, from the workbook part and its relationships; empty unless it
    leads to exactly `members`, the parts calamine may open as sheets (sheet_members)."""
    keys = {part_key(n): n for n in names}
    found = sorted(_workbook_keys(names), key=len)
    if not found:
        return {}
    workbook_key, rels_key = found
    folder = workbook_key.rpartition("/")[0]
    # Both parts have been scanned: no DTD, so no entity can expand (what defusedxml guards).
    # They are a few KB in any real workbook; a huge one is left unmapped, not read whole.
    if any(archive.getinfo(keys[k]).file_size > 16 * MIB for k in (workbook_key, rels_key) if k in keys):
        return {}
    try:
        workbook = ET.fromstring(archive.read(keys[workbook_key]))  # noqa: S314
        rels = ET.fromstring(archive.read(keys[rels_key])) if rels_key in keys else None  # noqa: S314
    except (ET.ParseError, KeyError):
        return {}
    targets = {}
    for rel in rels.iter() if rels is not None else ():
        if rel.tag.endswith("Relationship") and rel.get("Id") and rel.get("Target"):
            part = keys.get(_normalised_target(rel.get("Target", ""), folder).lower())
            if part:
                targets[rel.get("Id")] = part
    out = {}
    for sheet in workbook.iter():
        if sheet.tag.endswith("}sheet") or sheet.tag == "sheet":
            ids = [v for k, v in sheet.attrib.items() if k.endswith("}id")]
            if len(ids) > 1:
                return {}  # calamine takes the one written r:id, whatever its namespace
            rid = ids[0] if ids else None
            name = sheet.get("name", "")
            if name.casefold() in {known.casefold() for known in out}:
                # Excel forbids it; calamine reads the first of the two, this map would name
                # the last: leave the map empty, and each sheet waits for every part's scan
                return {}
            if rid in targets and name:
                out[name] = targets[rid]
    if set(out.values()) != members:
        return {}  # a part calamine may read as a sheet that no sheet name leads to
    return out


_RELATIONSHIP = re.compile(rb"<(?:[\w.-]+:)?Relationship\b[^>]*>")


def _attribute(tag: bytes, name: bytes) -> str:
    found = re.search(rb"\s%s\s*=\s*(?:\"([^\"]*)\"|'([^']*)')" % name, tag)
    return (found.group(1) or found.group(2) or b"").decode("utf-8", "replace") if found else ""


def sheet_members(archive: zipfile.ZipFile, names: set[str]) -> set[str]:
    """The members calamine may open as a sheet: each sheet relationship's Target as calamine
    takes it ("xl/" + Target, or Target without its leading "/": no "..", "./", "//" or
    entity resolved), or as a normalising reader would; matched as written or by key.

    All of them are scanned, whatever their names end in, and a sheet-name map that does not
    lead to exactly these is not trusted."""
    keys = {part_key(n): n for n in names}
    found = sorted(_workbook_keys(names), key=len)
    if len(found) < 2 or found[1] not in keys or archive.getinfo(keys[found[1]]).file_size > 16 * MIB:
        return set()
    folder = found[0].rpartition("/")[0]
    members = set()
    for tag in _RELATIONSHIP.findall(archive.read(keys[found[1]])):
        if not _attribute(tag, b"Type").lower().endswith("sheet"):
            continue
        target = _attribute(tag, b"Target")
        for path in (target[1:] if target.startswith("/") else f"xl/{target}", _normalised_target(html.unescape(target), folder)):
            member = path if path in names else keys.get(part_key(path))
            if member:
                members.add(member)
    return members


def _normalised_target(target: str, folder: str) -> str:
    """A relationship's Target (entities decoded) as a normalising reader resolves it: from the
    package root when it starts with '/', else from `folder`; backslashes, '.' and '..' resolved."""
    target = target.replace("\\", "/")
    return _normalise_part(target.lstrip("/") if target.startswith("/") else f"{folder}/{target}")


def _normalise_part(name: str) -> str:
    parts: list[str] = []
    for piece in name.split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece and piece != ".":
            parts.append(piece)
    return "/".join(parts)


def not_a_workbook_zip(shown: str, names: set[str]) -> InputError:
    if "word/document.xml" in names:
        what_zh, what_en = "这是 Word 文档(.docx)", "this is a Word document (.docx)"
    elif "ppt/presentation.xml" in names:
        what_zh, what_en = "这是 PowerPoint 演示文稿", "this is a PowerPoint presentation"
    else:
        what_zh, what_en = "这是一个 zip 压缩包", "this is a zip archive"
    return InputError(
        shown,
        f"{what_zh}, 不是 Excel 工作簿; 请提供 .xlsx 文件(压缩包请先解压)",
        f"{what_en}, not an Excel workbook; give the .xlsx itself (unzip an archive first)",
    )


_UNCACHED_FORMULA = re.compile(rb"</(?:\w+:)?f></(?:\w+:)?c>|<(?:\w+:)?f\b[^>]*/></(?:\w+:)?c>")


def uncached_formulas(path: Path) -> int:
    """Formula cells saved without a value in an xlsx's sheets (a reader sees them blank).

    Asked only when a workbook yields no data: generator libraries write formulas and leave the
    calculation to Excel, and such a file must be opened and saved once before it can be read.
    The package has passed `scan_package`, so its parts are known to be of bounded size.
    """
    count = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if "worksheets/" not in part_key(info.filename) or not info.filename.endswith(".xml"):
                    continue
                count += sum(len(found) for found in cells_matching(archive, info, _UNCACHED_FORMULA))
    except (zipfile.BadZipFile, OSError, zlib.error):
        return count
    return count


#: How far back from a stretch's end `cells_matching` looks for the start of a cell.
_CELL_OVERLAP = 65536


def cells_matching(archive: zipfile.ZipFile, part: str | zipfile.ZipInfo, pattern: re.Pattern[bytes]) -> Iterator[list[Any]]:
    """`pattern.findall` over a sheet part inflated as a stream, a stretch at a time: each
    stretch stops at the last cell that starts near its end, so that a pattern matching within
    one cell is never cut in two. For parts that have passed `scan_package` (bounded size)."""
    with archive.open(part) as stream:
        tail = b""
        while chunk := stream.read(CHUNK):
            data = tail + chunk
            start = data.rfind(b"<c ", max(0, len(data) - _CELL_OVERLAP))
            cut = start if start > 0 else max(0, len(data) - _CELL_OVERLAP)
            yield pattern.findall(data, 0, cut)
            tail = data[cut:]
        yield pattern.findall(tail)
