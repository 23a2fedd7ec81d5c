"""Broken and hostile input files for issue 7, made by the tests themselves.

Each generator writes one file into a folder and returns its path. Nothing here is downloaded
or checked in: bombs are crafted so that the file on disk stays small (a few MB at most) and is
built in well under a second, while the content it declares or expands to is gigabytes.

`build_all(folder)` writes every case; `python tests/corpus_build.py DIR` does the same from a
shell, to try a case by hand. `run_bounded` runs a command and reports its wall time and the
peak memory of that one child process, for the time and memory bounds the tests assert.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from builders import County, base_county, excel_row, header_row  # noqa: E402
from exitcheck.registers.read import column_letter

GIB = 1024**3
Generator = Callable[[Path], Path]
CASES: dict[str, Generator] = {}


def case(name: str) -> Callable[[Generator], Generator]:
    def register(func: Generator) -> Generator:
        CASES[name] = func
        return func

    return register


def build_all(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {name: make(folder) for name, make in CASES.items()}


# ---- raw zip writing: honest or lying sizes, pre-deflated data ------------------------------


@dataclass
class Entry:
    """One member of a hand-written zip. `data` is the stored bytes (raw deflate or plain)."""

    name: str
    data: bytes
    crc: int
    size: int  # real uncompressed size
    declared_size: int | None = None  # what the headers claim; None = the truth
    method: int = zipfile.ZIP_DEFLATED


def deflated(content: bytes) -> Entry:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = compressor.compress(content) + compressor.flush()
    return Entry("", data, zlib.crc32(content), len(content))


def deflated_repeat(head: bytes, chunk: bytes, count: int, tail: bytes) -> Entry:
    """head + chunk * count + tail as one raw deflate stream, without compressing it all.

    After a full flush the compressor starts afresh, so compressing the same chunk again gives
    the same bytes: the stream is built from one compressed chunk copied `count` times. The CRC
    is computed over the real content (1 MiB chunks: about a second for 3 GiB).
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert piece == again, "deflate of a repeated chunk after a full flush is not stable"
    end = compressor.compress(tail) + compressor.flush()
    crc = zlib.crc32(head)
    for _ in range(count):  # Python's zlib has no crc32_combine
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(tail, crc)
    data = start + piece * count + end
    return Entry("", data, crc, len(head) + len(chunk) * count + len(tail))


def write_zip(path: Path, entries: Sequence[Entry]) -> Path:
    """A plain zip (no zip64) written field by field, so sizes can lie when a case wants it."""
    out = io.BytesIO()
    central = []
    for entry in entries:
        name = entry.name.encode("utf-8")
        declared = entry.size if entry.declared_size is None else entry.declared_size
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, entry.method, 0, 0x21,
                              entry.crc, len(entry.data), declared, len(name), 0))
        out.write(name)
        out.write(entry.data)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0x800, entry.method, 0,
                                   0x21, entry.crc, len(entry.data), declared, len(name), 0, 0, 0, 0,
                                   0, offset) + name)
    start = out.tell()
    for record in central:
        out.write(record)
    size = out.tell() - start
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), size, start, 0))
    path.write_bytes(out.getvalue())
    return path


def county_parts(county: County | None = None) -> dict[str, bytes]:
    """The parts of a valid register workbook (builders.base_county), to tamper with."""
    with tempfile.TemporaryDirectory() as folder:
        path = (county or base_county()).write(Path(folder) / "county.xlsx")
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist()}


def sheet_part(parts: dict[str, bytes], sheet_name: str) -> str:
    """The part name of a sheet, from workbook.xml and its relationships."""
    workbook = parts["xl/workbook.xml"].decode()
    rels = parts["xl/_rels/workbook.xml.rels"].decode()
    rid = re.search(rf'<sheet name="{re.escape(sheet_name)}" sheetId="\d+" r:id="(rId\d+)"', workbook)
    assert rid, sheet_name
    target = re.search(rf'<Relationship Id="{rid.group(1)}" [^>]*Target="([^"]+)"', rels)
    if target is None:
        target = re.search(rf'Target="([^"]+)" [^>]*Id="{rid.group(1)}"', rels)
    assert target
    return "xl/" + target.group(1).lstrip("/").removeprefix("xl/")


def zip_parts(path: Path, parts: dict[str, bytes], override: dict[str, Entry] | None = None) -> Path:
    entries = []
    for name, content in parts.items():
        entry = (override or {}).get(name) or deflated(content)
        entry.name = name
        entries.append(entry)
    return write_zip(path, entries)


def with_rows(xml: bytes, extra_rows: bytes) -> bytes:
    """A sheet XML with rows appended at the end of its sheetData."""
    head, sep, tail = xml.partition(b"</sheetData>")
    assert sep
    return head + extra_rows + sep + tail


# ---- the cases ------------------------------------------------------------------------------


@case("control")
def control(folder: Path) -> Path:
    """A valid register: the baseline every hostile case is measured against."""
    return base_county().write(folder / "control.xlsx")


@case("empty")
def empty(folder: Path) -> Path:
    path = folder / "empty.xlsx"
    path.write_bytes(b"")
    return path


@case("truncated")
def truncated(folder: Path) -> Path:
    """A copy broken off half-way (a USB stick pulled out), central directory lost."""
    data = base_county().write(folder / "truncated.tmp").read_bytes()
    (folder / "truncated.tmp").unlink()
    path = folder / "truncated.xlsx"
    path.write_bytes(data[: len(data) // 2])
    return path


@case("random_bytes")
def random_bytes(folder: Path) -> Path:
    path = folder / "random.xlsx"
    path.write_bytes(random.Random(7).randbytes(64 * 1024))
    return path


def _csv_text(county: County) -> str:
    headers = list(county.households[0])
    lines = [",".join(headers)]
    lines += [",".join(str(row.get(h, "")) for h in headers) for row in county.households]
    return "\n".join(lines) + "\n"


@case("csv_named_xlsx")
def csv_named_xlsx(folder: Path) -> Path:
    """What "export to Excel" of many web systems gives: a CSV with an .xlsx name."""
    path = folder / "csv_named.xlsx"
    path.write_text(_csv_text(base_county()), encoding="utf-8")
    return path


@case("html_named_xlsx")
def html_named_xlsx(folder: Path) -> Path:
    """An HTML table saved as .xlsx (older web systems' "export to Excel")."""
    county = base_county()
    headers = list(county.households[0])
    rows = "".join(
        "<tr>" + "".join(f"<td>{row.get(h, '')}</td>" for h in headers) + "</tr>" for row in county.households
    )
    html = (
        '<html xmlns:x="urn:schemas-microsoft-com:office:excel"><head><meta charset="utf-8"></head><body>'
        f"<table><tr>{''.join(f'<th>{h}</th>' for h in headers)}</tr>{rows}</table></body></html>"
    )
    path = folder / "html_named.xlsx"
    path.write_text(html, encoding="utf-8")
    return path


def cfb(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE compound file (MS-CFB version 3) holding the given streams in its root.

    Streams under 4096 bytes go in the mini stream, as the format requires; the directory is a
    right-leaning chain ordered as CFB orders names (by length, then upper-cased).
    """
    sector = 512
    free, end_chain, fat_mark = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
    names = sorted(streams, key=lambda n: (len(n), n.upper()))
    small = {n: d for n, d in streams.items() if len(d) < 4096}
    large = {n: d for n, d in streams.items() if len(d) >= 4096}

    def pad(data: bytes, size: int) -> bytes:
        return data + b"\0" * (-len(data) % size)

    # mini stream: 64-byte mini sectors, chained in the mini FAT
    mini = b""
    minifat: list[int] = []
    mini_start: dict[str, int] = {}
    for name in names:
        if name not in small:
            continue
        count = max(1, -(-len(small[name]) // 64))
        mini_start[name] = len(minifat)
        minifat += [len(minifat) + i + 1 for i in range(count - 1)] + [end_chain]
        mini += pad(small[name], 64) if small[name] else b"\0" * 64
    # sector layout: FAT, directory, mini FAT, mini stream, large streams
    dir_entries = 1 + len(names)
    n_dir = -(-dir_entries * 128 // sector)
    n_minifat = -(-len(minifat) * 4 // sector) if minifat else 0
    n_mini = -(-len(mini) // sector)
    large_sectors = {n: -(-len(d) // sector) for n, d in large.items()}
    body = n_dir + n_minifat + n_mini + sum(large_sectors.values())
    n_fat = 1
    while n_fat * (sector // 4) < body + n_fat:
        n_fat += 1
    fat: list[int] = [fat_mark] * n_fat
    position = n_fat

    def chain(count: int) -> int:
        nonlocal position
        first = position
        fat.extend([position + i + 1 for i in range(count - 1)] + [end_chain])
        position += count
        return first

    dir_first = chain(n_dir)
    minifat_first = chain(n_minifat) if n_minifat else end_chain
    mini_first = chain(n_mini) if n_mini else end_chain
    large_first = {n: chain(c) for n, c in large_sectors.items()}
    fat += [free] * (n_fat * (sector // 4) - len(fat))

    def entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le")
        return (
            encoded.ljust(64, b"\0")
            + struct.pack("<HBBIII", len(encoded), kind, 1, free, right, child)
            + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
            + struct.pack("<IQ", start, size)
        )

    directory = entry("Root Entry", 5, 1 if names else free, free, mini_first, len(mini))
    for index, name in enumerate(names, start=1):
        right = index + 1 if index < len(names) else free
        start = mini_start[name] if name in small else large_first[name]
        directory += entry(name, 2, free, right, start, len(streams[name]))
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, n_fat, dir_first, 0, 4096, minifat_first, n_minifat, end_chain, 0)
        + struct.pack("<109I", *(list(range(n_fat)) + [free] * (109 - n_fat)))
    )
    out = header
    out += b"".join(struct.pack("<I", v) for v in fat)
    out += pad(directory, sector)
    if n_minifat:
        out += pad(b"".join(struct.pack("<I", v) for v in minifat), sector)
    out += pad(mini, sector) if n_mini else b""
    for name in large:
        out += pad(large[name], sector)
    return out


ENCRYPTION_INFO = (
    struct.pack("<HHI", 4, 4, 0x40)
    + b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b'<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption" '
    b'xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
    b'<keyData saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" '
    b'cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" saltValue="AAAAAAAAAAAAAAAAAAAAAA=="/>'
    b'<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
    b'<p:encryptedKey spinCount="100000" saltSize="16" blockSize="16" keyBits="256" hashSize="64" '
    b'cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" '
    b'saltValue="AAAAAAAAAAAAAAAAAAAAAA=="/></keyEncryptor></keyEncryptors></encryption>'
)


@case("encrypted")
def encrypted(folder: Path) -> Path:
    """A password-protected workbook as Excel saves it: an OLE file with EncryptionInfo and
    EncryptedPackage streams (agile encryption) instead of a zip. The package is noise: no
    reader gets past the missing password anyway."""
    package = struct.pack("<Q", 9000) + random.Random(11).randbytes(9000 + 16)
    path = folder / "encrypted.xlsx"
    path.write_bytes(cfb({"EncryptionInfo": ENCRYPTION_INFO, "EncryptedPackage": package}))
    return path


@case("word_named_xls")
def word_named_xls(folder: Path) -> Path:
    """An OLE file that is not a workbook (a Word document sent as .xls)."""
    path = folder / "word.xls"
    path.write_bytes(cfb({"WordDocument": b"\xec\xa5" + b"\0" * 5000, "\x05SummaryInformation": b"\0" * 200}))
    return path


@case("xlsx_named_xls")
def xlsx_named_xls(folder: Path) -> Path:
    """A valid xlsx renamed .xls by hand (common: the office 'standard' is .xls)."""
    path = base_county().write(folder / "renamed.tmp")
    return path.rename(folder / "renamed.xls")


BOMB_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
BOMB_UNIT = b'<row><c t="inlineStr"><is><t>0</t></is></c></row>'
BOMB_TAIL = b"</sheetData></worksheet>"
BOMB_CHUNKS = 3 * 1024  # 1 MiB each: 3 GiB of sheet XML


def _bomb_entry() -> Entry:
    chunk = BOMB_UNIT * ((1 << 20) // len(BOMB_UNIT))
    return deflated_repeat(BOMB_HEAD, chunk, BOMB_CHUNKS, BOMB_TAIL)


@case("zip_bomb")
def zip_bomb(folder: Path) -> Path:
    """A register whose members sheet inflates to 3 GiB of rows (ratio ~1000:1), honestly declared."""
    parts = county_parts()
    target = sheet_part(parts, "成员表")
    return zip_parts(folder / "zip_bomb.xlsx", parts, {target: _bomb_entry()})


@case("zip_bomb_lying")
def zip_bomb_lying(folder: Path) -> Path:
    """The same bomb, but its headers claim the part inflates to 40 KB: only inflating it tells."""
    parts = county_parts()
    target = sheet_part(parts, "成员表")
    entry = _bomb_entry()
    entry.declared_size = 40_000
    return zip_parts(folder / "zip_bomb_lying.xlsx", parts, {target: entry})


@case("many_entries")
def many_entries(folder: Path) -> Path:
    """A zip with 50,000 tiny members: a central directory that costs memory to list."""
    parts = county_parts()
    for index in range(50_000):
        parts[f"xl/media/x{index}.bin"] = b""
    return zip_parts(folder / "many_entries.xlsx", parts)


LAUGHS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b"<!ENTITY lol%d \"%s\">" % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10)
    )
    + b"]>\n"
)


@case("xml_bomb_shared_strings")
def xml_bomb_shared_strings(folder: Path) -> Path:
    """Billion laughs in sharedStrings.xml: 1 KB that expands to 3 GB in a naive parser."""
    parts = county_parts()
    parts["xl/sharedStrings.xml"] = LAUGHS + (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
        b"<si><t>&lol9;</t></si></sst>"
    )
    content_types = parts["[Content_Types].xml"]
    if b"sharedStrings" not in content_types:
        parts["[Content_Types].xml"] = content_types.replace(
            b"</Types>",
            b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
            b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        )
    return zip_parts(folder / "xml_bomb_shared.xlsx", parts)


@case("xml_bomb_sheet")
def xml_bomb_sheet(folder: Path) -> Path:
    """Billion laughs in a sheet's own XML, the entity used in an inline string cell."""
    parts = county_parts()
    target = sheet_part(parts, "户表")
    xml = parts[target]
    xml = LAUGHS + xml[xml.index(b"<worksheet") :]
    extra = b'<row r="999"><c r="A999" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
    parts[target] = with_rows(xml, extra)
    return zip_parts(folder / "xml_bomb_sheet.xlsx", parts)


@case("wide_16384")
def wide_16384(folder: Path) -> Path:
    """A register whose households sheet has a row of values across all 16,384 columns (A to
    XFD), as when a fill is dragged to the end of the sheet."""
    parts = county_parts()
    target = sheet_part(parts, "户表")
    row = header_row("户表") + len(base_county().households) + 5
    cells = b"".join(b'<c r="%s%d"><v>%d</v></c>' % (_letters(col).encode(), row, col) for col in range(16384))
    parts[target] = with_rows(parts[target], b'<row r="%d">%s</row>' % (row, cells))
    return zip_parts(folder / "wide_16384.xlsx", parts)


_letters = column_letter  # the loader's own: the corpus writes what the loader must read


@case("sparse_far_cell")
def sparse_far_cell(folder: Path) -> Path:
    """Two cells far apart (A1 and ALL60000) under a lying <dimension>: a reader that lays the
    sheet out as a grid allocates 60 million cells (2.3 GB) for a 2 KB file."""
    parts = county_parts()
    target = sheet_part(parts, "户表")
    xml = re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:B2"/>', parts[target])
    parts[target] = with_rows(xml, b'<row r="60000"><c r="ALL60000"><v>1</v></c></row>')
    return zip_parts(folder / "sparse_far_cell.xlsx", parts)


@case("far_cell_in_a_second_reference")
def far_cell_in_a_second_reference(folder: Path) -> Path:
    """sparse_far_cell hidden in a second, single-quoted r attribute: calamine honours the last
    r of a cell, a scan that reads only r="..." sees A1."""
    parts = county_parts()
    target = sheet_part(parts, "户表")
    parts[target] = with_rows(parts[target], b'<row r="60000"><c r="A1" r=\'ALL60000\'><v>1</v></c></row>')
    return zip_parts(folder / "far_cell_in_a_second_reference.xlsx", parts)


@case("cells_after_the_word_sheetData")
def cells_after_the_word_sheetdata(folder: Path) -> Path:
    """A cell whose text is the word "sheetData", then a row of a thousand cells without
    references at row 60,000: a scan that counts cells only between the words sheetData stops
    counting at the text, and calamine places the cells by counting."""
    parts = county_parts()
    target = sheet_part(parts, "户表")
    text = b'<row r="59999"><c r="A59999" t="inlineStr"><is><t>sheetData</t></is></c></row>'
    parts[target] = with_rows(parts[target], text + b'<row r="60000">' + b"<c><v>1</v></c>" * 999 + b"</row>")
    return zip_parts(folder / "cells_after_the_word_sheetData.xlsx", parts)


@case("two_sheets_one_name")
def two_sheets_one_name(folder: Path) -> Path:
    """sparse_far_cell in the households sheet, and the villages sheet renamed 户表 too: calamine
    reads the first sheet of a name, a scan that maps names to parts waited for the second."""
    parts = county_parts()
    target = sheet_part(parts, "户表")
    parts[target] = with_rows(parts[target], b'<row r="60000"><c r="ALL60000"><v>1</v></c></row>')
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace('name="村表"'.encode(), 'name="户表"'.encode())
    return zip_parts(folder / "two_sheets_one_name.xlsx", parts)


@case("styled_to_xfd")
def styled_to_xfd(folder: Path) -> Path:
    """A valid register whose header row and first rows are formatted out to column XFD (a
    border drawn across the whole width): style-only cells, no values. The quick count sees
    16,384 columns; the exact pass sees the real ones."""
    parts = county_parts()
    target = sheet_part(parts, "户表")
    xml = parts[target]
    for row in range(1, header_row("户表") + 3):
        end = xml.index(b"</row>", xml.index(b'<row r="%d"' % row))
        xml = xml[:end] + b'<c r="XFD%d" s="1"/>' % row + xml[end:]
    parts[target] = xml
    return zip_parts(folder / "styled_to_xfd.xlsx", parts)


@case("wide_without_refs")
def wide_without_refs(folder: Path) -> Path:
    """A row of 20,000 cells with no reference attribute, which a reader places one after the
    other: no r="..." to count, so only parsing tells how wide the sheet is."""
    parts = county_parts()
    target = sheet_part(parts, "户表")
    row = header_row("户表") + len(base_county().households) + 5
    parts[target] = with_rows(parts[target], b'<row r="%d">%s</row>' % (row, b"<c><v>1</v></c>" * 20_000))
    return zip_parts(folder / "wide_without_refs.xlsx", parts)


@case("million_formatted_rows")
def million_formatted_rows(folder: Path) -> Path:
    """A valid register with a million empty rows below the data that carry only a style (what
    formatting A1:X1000000 in Excel or WPS leaves behind). Formatting is not data."""
    parts = county_parts()
    target = sheet_part(parts, "户表")
    start = header_row("户表") + len(base_county().households) + 3
    rows = b"".join(
        b'<row r="%d" s="1" customFormat="1"><c r="A%d" s="1"/><c r="X%d" s="1"/></row>' % (r, r, r)
        for r in range(start, start + 1_000_000)
    )
    parts[target] = with_rows(parts[target], rows)
    return zip_parts(folder / "million_rows.xlsx", parts)


@case("long_cell")
def long_cell(folder: Path) -> Path:
    """A cell of 1 MB of text in the 备注 column (Excel itself stops at 32,767 characters, and
    xlsxwriter will not write more, so the cell goes into the XML by hand)."""
    parts = county_parts()
    target = sheet_part(parts, "户表")
    row = excel_row("户表", 2)
    column = _letters(list(base_county().households[0]).index("备注")).encode()
    pick = random.Random(5)  # varied text, so the part does not look like a zip bomb
    text = "".join(chr(pick.randint(0x4E00, 0x9FA5)) for _ in range(1 << 20)).encode("utf-8")
    cell = b'<c r="%s%d" t="inlineStr"><is><t>%s</t></is></c>' % (column, row, text)
    xml = parts[target]
    start = xml.index(b'<row r="%d"' % row)
    end = xml.index(b"</row>", start)
    parts[target] = xml[:end] + cell + xml[end:]
    return zip_parts(folder / "long_cell.xlsx", parts)


def _two_level_header_county(folder: Path, name: str, *, whole_row: bool) -> Path:
    """Households under a two-level header: the first columns merged down over both header
    rows (户编号 sits in the upper row only), the rest under merged group headers."""
    import xlsxwriter

    county = base_county()
    path = folder / name
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False})
    from builders import write_sheet

    sheet = workbook.add_worksheet("户表")
    headers = list(county.households[0])
    sheet.write_string(0, 0, "越西县2020年贫困户信息表")
    if whole_row:
        # the header row itself merged into one cell: its headers are gone
        sheet.merge_range(1, 0, 1, len(headers) - 1, "户编号 乡镇 行政村 户主姓名")
        first = 2
    else:
        for col in range(3):
            sheet.merge_range(1, col, 2, col, headers[col])
        sheet.merge_range(1, 3, 1, len(headers) - 1, "基本情况")
        for col in range(3, len(headers)):
            sheet.write_string(2, col, headers[col])
        first = 3
    for offset, row in enumerate(county.households):
        for col, key in enumerate(headers):
            value = row.get(key)
            if isinstance(value, str):
                if value:
                    sheet.write_string(first + offset, col, value)
            elif value is not None:
                sheet.write_number(first + offset, col, value)
    write_sheet(workbook, "成员表", county.members)
    write_sheet(workbook, "村表", county.villages)
    write_sheet(workbook, "乡镇表", county.townships)
    workbook.close()
    return path


@case("merged_header")
def merged_header(folder: Path) -> Path:
    return _two_level_header_county(folder, "merged_header.xlsx", whole_row=False)


@case("merged_header_row")
def merged_header_row(folder: Path) -> Path:
    return _two_level_header_county(folder, "merged_header_row.xlsx", whole_row=True)


@case("formulas_no_values")
def formulas_no_values(folder: Path) -> Path:
    """Every data cell a formula with no cached value (what generator libraries write when they
    leave calculation to Excel): nothing to read until Excel or WPS has opened and saved it."""
    parts = county_parts()
    for sheet in ("户表", "成员表", "村表", "乡镇表"):
        target = sheet_part(parts, sheet)
        xml = parts[target].decode("utf-8")
        top = header_row(sheet)

        def formula(match: re.Match[str], top: int = top) -> str:
            ref, row = match.group(1), int(match.group(2))
            if row <= top:
                return match.group(0)
            return f'<c r="{ref}{row}"><f>"{ref}{row}"&amp;""</f></c>'

        xml = re.sub(r'<c r="([A-Z]+)(\d+)"(?: [^>]*)?(?:/>|>.*?</c>)', formula, xml)
        parts[target] = xml.encode("utf-8")
    return zip_parts(folder / "formulas.xlsx", parts)


@case("duplicated_headers")
def duplicated_headers(folder: Path) -> Path:
    """Two columns headed 家庭人口数 that disagree: the first is read, the second kept."""
    county = base_county()
    for row in county.households:
        row["家庭人口数 "] = 9  # a stray space: the same header once spaces are stripped
    return county.write(folder / "duplicated_headers.xlsx")


@case("headers_only")
def headers_only(folder: Path) -> Path:
    county = base_county()
    path = folder / "headers_only.xlsx"
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path))
    for name, rows in county.sheets().items():
        sheet = workbook.add_worksheet(name)
        sheet.write_row(0, 0, list(rows[0]))
    workbook.close()
    return path


@case("shift_jis_csv")
def shift_jis_csv(folder: Path) -> Path:
    """A Japanese CSV (Shift-JIS): neither UTF-8 nor meaningful as GB18030."""
    text = "世帯番号,氏名,住所,ｶﾅ,収入\n0001,山田太郎,東京都,ﾔﾏﾀﾞ,４２００\n0002,鈴木花子,大阪府,ｽｽﾞｷ,５０００\n"
    path = folder / "shift_jis.csv"
    path.write_bytes(text.encode("shift_jis"))
    return path


@case("latin1_csv")
def latin1_csv(folder: Path) -> Path:
    """Latin-1 text with a byte no CJK encoding accepts as a lead byte (0xFF, "ÿ")."""
    path = folder / "latin1.csv"
    path.write_bytes("ID,Name,Ville\n0001,Müller,Zürich\n0002,Ÿves ÿ,Besançon\n".encode("cp1252"))
    return path


#: Where huge_number_as_duration puts its number: the first household's income.
HUGE_NUMBER_CELL = ("户表", "人均纯收入", 0)


@case("huge_number_as_duration")
def huge_number_as_duration(folder: Path) -> Path:
    """An ID number typed into a cell formatted as a duration ([h]:mm:ss): python-calamine
    cannot make it a timedelta, and the file is not corrupt for that."""
    import openpyxl

    path = base_county().write(folder / "huge_number_as_duration.xlsx")
    book = openpyxl.load_workbook(path)
    cell = book[HUGE_NUMBER_CELL[0]][huge_number_reference(book)]
    cell.value = 4.301021990010113e17
    cell.number_format = "[h]:mm:ss"
    book.save(path)
    return path


def huge_number_reference(book: object) -> str:
    """The reference (K8, say) of HUGE_NUMBER_CELL in an openpyxl workbook of base_county."""
    sheet_name, header, index = HUGE_NUMBER_CELL
    sheet = book[sheet_name]  # type: ignore[index]
    column = next(c.column_letter for c in sheet[header_row(sheet_name)] if str(c.value).strip() == header)
    return f"{column}{excel_row(sheet_name, index)}"


# ---- running a command with time and memory bounds ----------------------------------------


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int  # bytes, of the child process alone
    timed_out: bool
    cpu_seconds: float = 0.0  # user + system time of the child alone: a bound on its work that a busy machine does not move


def run_bounded(args: Sequence[str], *, timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None) -> Outcome:
    """Run a command; its own peak RSS comes from wait4() (Linux/macOS), not from the
    cumulative RUSAGE_CHILDREN of the test process, so each case is measured alone."""
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200", **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        process = subprocess.Popen(list(args), stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd, env=environment)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                process.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.monotonic() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return Outcome(
            process.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            seconds,
            usage.ru_maxrss * scale,
            killed.is_set(),
            usage.ru_utime + usage.ru_stime,
        )


def exitcheck_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "exitcheck", *args]


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    for name, path in build_all(target).items():
        print(f"{name:26s} {path.stat().st_size:>12,d}  {path}")
