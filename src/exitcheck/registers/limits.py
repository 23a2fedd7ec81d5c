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
4. the parts themselves, inflated as a stream and thrown away (`scan_package`): a part that
   inflates past its declared size, its ratio or the limits is refused there, whatever its
   headers said; an XML part with a DTD (entity bomb) or not in UTF-8 is refused; and the
   extent of each sheet (its last row and column, and so the grid a reader lays out) is
   measured from the cell references, so a sheet over `max_rows`, `max_columns` or
   `max_cells` is refused before python-calamine allocates it.

Only then does calamine read the file. For .xls, .xlsb and .ods, which are not scanned, the
sheet's extent is checked as soon as calamine reports it (`check_shape`), before its cells are
turned into Python objects; calamine itself refuses a sheet of more than 100 million cells.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from exitcheck.errors import InputError

MIB = 1024 * 1024
#: Parts this small are not held to the inflate ratio (POI's grace): tiny XML compresses well.
RATIO_GRACE_BYTES = MIB
CHUNK = 4 * MIB


class Limits(BaseModel):
    """How big an input may be. Field names are the keys under `limits:` in exitcheck.yaml.

    Sizes are in bytes. Each limit is checked before the thing it guards is allocated; see the
    module docstring for the order and docs/limits.md for the reasoning behind each default.
    """

    model_config = ConfigDict(extra="forbid")

    max_file_bytes: int = Field(1024 * MIB, gt=0, description="largest input file on disk")
    max_part_bytes: int = Field(2048 * MIB, gt=0, description="largest uncompressed part of an xlsx")
    max_total_bytes: int = Field(4096 * MIB, gt=0, description="largest uncompressed xlsx in all")
    max_inflate_ratio: float = Field(
        200.0, gt=1, description="largest uncompressed/compressed ratio of an xlsx part over 1 MiB (POI: 100)"
    )
    max_rows: int = Field(2_000_000, gt=0, description="most rows in one sheet (or CSV file)")
    max_columns: int = Field(1000, gt=0, description="most columns in one sheet")
    max_cell_chars: int = Field(32_767, gt=0, description="longest text in one cell (Excel's own limit)")
    max_cells: int = Field(
        40_000_000, gt=0,
        description="largest grid of one sheet: last row x last column holding a value",
    )
    max_zip_entries: int = Field(20_000, gt=0, description="most members in an xlsx package")


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

#: A cell or row reference attribute: r="AB12" (cell) or r="12" (row).
_REF = re.compile(rb'\sr="([A-Z]{0,3}[0-9]{1,10})"')
_SELF_CLOSED_FORMULA = re.compile(rb"<f\b[^>]*/></c>")
_XML_SUFFIXES = (".xml", ".rels", ".vml")


@dataclass
class PartScan:
    """What streaming through one XML part found."""

    name: str
    size: int = 0
    max_row: int = 0  # largest row number referenced (1-based), cells and rows
    max_column: int = 0  # largest column referenced (1-based)
    row_elements: int = 0
    cell_elements: int = 0
    row_refs: int = 0
    cell_refs: int = 0
    uncached_formulas: int = 0  # formula cells saved without a value

    def grid(self) -> tuple[int, int]:
        """A bound on the grid a reader lays out: rows and cells without a reference follow
        the last one, so they can push the grid out by at most their number."""
        rows = self.max_row + max(0, self.row_elements - self.row_refs)
        columns = self.max_column + max(0, self.cell_elements - self.cell_refs)
        return rows, columns


@dataclass
class PackageScan:
    """The result of scanning an xlsx/xlsm/xlsb/ods package before a reader touches it."""

    kind: str  # "xlsx" (also .xlsm), "xlsb" or "ods"
    sheets: dict[str, str] = field(default_factory=dict)  # sheet name -> part name (xlsx)
    parts: dict[str, PartScan] = field(default_factory=dict)

    def sheet_scan(self, sheet: str) -> PartScan | None:
        part = self.sheets.get(sheet)
        return self.parts.get(part) if part else None


def package_kind(names: set[str], mimetype: bytes) -> str | None:
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "content.xml" in names and mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
        return "ods"
    return None


def scan_package(path: Path, shown: str, infos: list[zipfile.ZipInfo], limits: Limits) -> PackageScan:
    """Inflate every XML part as a stream (nothing is kept) and check what it really holds.

    This catches what the central directory cannot: a part whose headers understate its size
    (a "lying" zip bomb: zipfile stops at the declared size and the CRC then fails), an XML
    entity bomb, and a sheet whose cell references reach far beyond the data (two cells at A1
    and ALL60000 make a 60-million-cell grid in a 2 KB file). It costs about a fifth of
    calamine's own read time (docs/limits.md).
    """
    names = {info.filename for info in infos}
    try:
        with zipfile.ZipFile(path) as archive:
            mimetype = archive.read("mimetype")[:100] if "mimetype" in names else b""
            kind = package_kind(names, mimetype)
            if kind is None:
                raise _not_a_workbook_zip(shown, names)
            scan = PackageScan(kind)
            for info in infos:
                # Binary parts (xlsb records, pictures) are left to the reader: zipfile and
                # calamine's zip crate both stop a member at its declared, checked size.
                if info.filename.lower().endswith(_XML_SUFFIXES):
                    scan.parts[info.filename] = _scan_part(archive, info, shown)
            if kind == "xlsx":
                scan.sheets = _sheet_parts(archive, names)
            if kind == "xlsx":
                by_part = {part: sheet for sheet, part in scan.sheets.items()}
                for name, part in scan.parts.items():
                    if name in by_part or name.startswith("xl/worksheets/"):
                        rows, columns = part.grid()
                        if rows > limits.max_rows or columns > limits.max_columns or rows * columns > limits.max_cells:
                            # the quick bound counts cells that only carry a style; measure
                            # the cells that hold values before refusing
                            rows, columns = value_extent(archive, name)
                            check_shape(shown, by_part.get(name, name), rows, columns, limits)
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, ET.ParseError) as exc:
        raise _corrupt_zip(shown, exc) from None
    return scan


def _scan_part(archive: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str) -> PartScan:
    part = PartScan(info.filename)
    tail = b""
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            if not part.size:
                _check_xml_start(shown, info.filename, chunk)
            part.size += len(chunk)
            data = tail + chunk
            # cut at the last '<' so that no tag straddles two chunks (text holds no '<')
            cut = data.rfind(b"<")
            if cut <= 0 or len(data) - cut > 4096:
                cut = len(data)
            _scan_xml(part, data[:cut], shown)
            tail = data[cut:]
    if tail:
        _scan_xml(part, tail, shown)
    return part


def _check_xml_start(shown: str, name: str, chunk: bytes) -> None:
    head = chunk[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        raise InputError(
            shown,
            f"文件内部件 {name} 不是 UTF-8 编码的 XML(Excel 和 WPS 从不这样保存), 已拒绝读取",
            f"part {name} is not UTF-8 XML (Excel and WPS never save it so); refused",
        )


def _scan_xml(part: PartScan, data: bytes, shown: str) -> None:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InputError(
            shown,
            f"文件内部件 {part.name} 含有 DTD/实体声明(xlsx 中从不出现), 疑似 XML 实体炸弹, 已拒绝读取",
            f"part {part.name} declares a DTD or entities, which no xlsx has (an XML entity bomb?); refused",
        )
    part.row_elements += data.count(b"<row") + data.count(b":row ")
    part.cell_elements += (
        data.count(b"<c ") + data.count(b"<c>") + data.count(b"<c/>")
        + data.count(b":c ") + data.count(b":c>") + data.count(b":c/>")
    )
    part.uncached_formulas += data.count(b"</f></c>")
    if b"/></c>" in data:
        part.uncached_formulas += len(_SELF_CLOSED_FORMULA.findall(data))
    refs = _REF.findall(data)
    if not refs:
        return
    max_row, max_column, cell_refs = refs_extent(refs)
    part.max_row = max(part.max_row, max_row)
    part.max_column = max(part.max_column, max_column)
    part.cell_refs += cell_refs
    part.row_refs += len(refs) - cell_refs


def refs_extent(refs: list[bytes]) -> tuple[int, int, int]:
    """(largest row, largest column, number of cell references) of refs like b"AB12" / b"12".

    Vectorised: a few numpy operations over an n x 13 byte matrix instead of parsing each
    reference in Python, which would cost more than calamine's whole read.
    """
    matrix = np.array(refs, dtype="S13").view(np.uint8).reshape(len(refs), 13).astype(np.int64)
    letters = (matrix >= 65) & (matrix <= 90)
    digits = (matrix >= 48) & (matrix <= 57)
    n_letters = letters.sum(axis=1)
    n_digits = digits.sum(axis=1)
    position = np.arange(13)
    letter_power = np.where(letters, n_letters[:, None] - 1 - position, 0)
    columns = np.where(letters, (matrix - 64) * np.power(26, letter_power), 0).sum(axis=1)
    digit_power = np.where(digits, (n_letters + n_digits)[:, None] - 1 - position, 0)
    rows = np.where(digits, (matrix - 48) * np.power(10, digit_power), 0).sum(axis=1)
    return int(rows.max()), int(columns.max()), int((n_letters > 0).sum())


def value_extent(archive: zipfile.ZipFile, part: str) -> tuple[int, int]:
    """The grid of the cells that hold a value (rows, columns), by parsing the sheet XML.

    The slow, exact pass, run only when the quick bound is over a limit: cells that carry only
    a style (a million formatted empty rows) take no room in the reader and should not count.
    A cell counts when it has a non-empty <v> or an inline string, as calamine reads it.
    """
    parser = ET.XMLPullParser(events=("start", "end"))
    row = column = 0
    last_row = last_column = 0
    cell_row = cell_column = 0
    has_value = False
    sheet_data: ET.Element | None = None
    with archive.open(part) as stream:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            parser.feed(chunk)
            for event, element in parser.read_events():
                tag = element.tag.rsplit("}", 1)[-1]
                if event == "start":
                    if tag == "row":
                        reference = element.get("r")
                        row = int(reference) if reference and reference.isdigit() else row + 1
                        column = 0
                    elif tag == "c":
                        cell_row, cell_column = _parse_ref(element.get("r"), row, column + 1)
                        column = cell_column
                        has_value = False
                    elif tag == "sheetData":
                        sheet_data = element
                elif tag == "v":
                    has_value = has_value or bool(element.text)
                elif tag == "is":
                    has_value = True
                elif tag == "c" and has_value:
                    last_row = max(last_row, cell_row)
                    last_column = max(last_column, cell_column)
                elif tag == "row" and sheet_data is not None:
                    sheet_data.clear()  # rows already measured: keep memory flat
        parser.close()
    return last_row, last_column


def _parse_ref(reference: str | None, row: int, column: int) -> tuple[int, int]:
    if not reference:
        return row, column
    match = re.fullmatch(r"([A-Z]{1,3})([0-9]{1,10})", reference)
    if not match:
        return row, column
    value = 0
    for letter in match.group(1):
        value = value * 26 + ord(letter) - 64
    return int(match.group(2)), value


def _sheet_parts(archive: zipfile.ZipFile, names: set[str]) -> dict[str, str]:
    """Sheet name -> part, from xl/workbook.xml and its relationships (for messages)."""
    # Both parts have been scanned: no DTD, so no entity can expand (what defusedxml guards).
    # They are a few KB in any real workbook; a huge one is left unmapped, not read whole.
    rels_name = "xl/_rels/workbook.xml.rels"
    if any(archive.getinfo(n).file_size > 16 * MIB for n in ("xl/workbook.xml", rels_name) if n in names):
        return {}
    try:
        workbook = ET.fromstring(archive.read("xl/workbook.xml"))  # noqa: S314
        rels = ET.fromstring(archive.read(rels_name)) if rels_name in names else None  # noqa: S314
    except (ET.ParseError, KeyError):
        return {}
    targets = {}
    for rel in rels.iter() if rels is not None else ():
        if rel.tag.endswith("Relationship") and rel.get("Id") and rel.get("Target"):
            target = rel.get("Target", "")
            resolved = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
            targets[rel.get("Id")] = _normalise_part(resolved)
    out = {}
    for sheet in workbook.iter():
        if sheet.tag.endswith("}sheet") or sheet.tag == "sheet":
            rid = next((v for k, v in sheet.attrib.items() if k.endswith("}id")), None)
            if rid in targets and sheet.get("name"):
                out[sheet.get("name", "")] = targets[rid]
    return out


def _normalise_part(name: str) -> str:
    parts: list[str] = []
    for piece in name.split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece and piece != ".":
            parts.append(piece)
    return "/".join(parts)


def _not_a_workbook_zip(shown: str, names: set[str]) -> InputError:
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
