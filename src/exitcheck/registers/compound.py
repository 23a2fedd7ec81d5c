"""OLE compound files (MS-CFB), the container of an .xls: what must be known of one before
python-calamine opens it.

An encrypted xlsx is a compound file too (holding 'EncryptionInfo' and 'EncryptedPackage'), and
a copy cut short makes calamine 0.37 panic on a sector past the end of the file: Rust prints the
panic (with RUST_BACKTRACE, its stack) on the terminal before python-calamine turns it into an
exception. Both are found here from the header, the FAT and the directory, without reading the
streams. Bounded: every chain is cut where it loops, and nothing is read past the file's end.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: Sector numbers at or above this are markers: end of chain, free, a FAT or DIFAT sector.
MARKERS = 0xFFFFFFFA
#: A stream shorter than this lives in the mini stream (the root entry's chain).
MINI_CUTOFF = 4096
_ENTRY = 128  # bytes of a directory entry


class _Layout(NamedTuple):
    sector_size: int
    fat_sectors: list[int]  # where the FAT's own sectors are, in order
    difat_cut: bool  # the DIFAT chain ran past the end of the file
    first_directory: int
    first_minifat: int


class _Entry(NamedTuple):
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    start: int
    size: int


def _layout(handle: BinaryIO) -> _Layout | None:
    """The header and DIFAT of a compound file, or None when it is not one."""
    header = handle.read(512)
    if len(header) < 512 or not header.startswith(SIGNATURE):
        return None
    shift = struct.unpack_from("<H", header, 30)[0]
    if shift not in (9, 12):
        return None
    size = 1 << shift
    n_fat, first_directory = struct.unpack_from("<II", header, 44)
    first_minifat = struct.unpack_from("<I", header, 60)[0]
    next_difat, n_difat = struct.unpack_from("<II", header, 68)
    # Only the first n_fat slots count: some writers leave 0, not FREESECT, in the others.
    fat_sectors = [s for s in struct.unpack_from("<109I", header, 76)[:n_fat] if s < MARKERS]
    seen: set[int] = set()
    cut = False
    while next_difat < MARKERS and len(fat_sectors) < n_fat and next_difat not in seen and len(seen) <= n_difat:
        seen.add(next_difat)
        block = _sector(handle, size, next_difat)
        if len(block) < size:
            cut = True
            break
        ids = struct.unpack(f"<{size // 4}I", block)
        fat_sectors += [s for s in ids[:-1] if s < MARKERS][: n_fat - len(fat_sectors)]
        next_difat = ids[-1]
    return _Layout(size, fat_sectors, cut, first_directory, first_minifat)


def _sector(handle: BinaryIO, size: int, number: int) -> bytes:
    handle.seek((number + 1) * size)  # the header takes the place of sector -1
    return handle.read(size)


def _fat(handle: BinaryIO, layout: _Layout) -> list[int]:
    """The FAT, as far as its sectors are in the file."""
    fat: list[int] = []
    for number in layout.fat_sectors:
        block = _sector(handle, layout.sector_size, number)
        if len(block) < layout.sector_size:
            break
        fat.extend(struct.unpack(f"<{layout.sector_size // 4}I", block))
    return fat


def _chain(fat: list[int], start: int) -> Iterator[int]:
    """The sectors of a chain, in order; cut where it loops or points past the FAT."""
    sector, steps = start, 0
    while sector < MARKERS and steps <= len(fat):
        yield sector
        if sector >= len(fat):
            return
        sector, steps = fat[sector], steps + 1


def _entries(handle: BinaryIO, layout: _Layout, directory: list[int]) -> list[_Entry]:
    """The directory's entries, the root first, from the sectors that are whole in the file."""
    entries = []
    for number in directory:
        block = _sector(handle, layout.sector_size, number)
        if len(block) < layout.sector_size:
            break
        for at in range(0, layout.sector_size, _ENTRY):
            length, kind = struct.unpack_from("<HB", block, at + 64)
            start, size = struct.unpack_from("<IQ", block, at + 116)
            if layout.sector_size == 512:
                size &= 0xFFFFFFFF  # version 3: the high half is not part of the size
            name = block[at : at + length - 2].decode("utf-16-le", "replace") if 2 <= length <= 64 and length % 2 == 0 else ""
            entries.append(_Entry(name, kind, start, size))
    return entries


class Examined(NamedTuple):
    names: set[str]  # the directory's storages and streams (what was read of a directory cut short)
    cut_short: bool  # a sector calamine reads to open the workbook is not wholly in the file


def examine(path: Path) -> Examined | None:
    """A compound file's directory names, and whether it was cut short (a copy or download
    that stopped early), from one read of its header, FAT and directory; None for a file that
    is not a compound file. Cut short means a sector of a chain calamine reads is missing:
    the DIFAT, the FAT, the directory, the mini stream and its FAT, and the Workbook (or Book)
    stream. A stray FAT entry past the end that no stream uses is no reason to refuse a file
    calamine reads."""
    with path.open("rb") as handle:
        layout = _layout(handle)
        if layout is None:
            return None
        end = os.fstat(handle.fileno()).st_size

        def missing(sectors: Iterator[int] | list[int]) -> bool:
            return any((sector + 2) * layout.sector_size > end for sector in sectors)

        fat = _fat(handle, layout)
        directory = list(_chain(fat, layout.first_directory))
        entries = _entries(handle, layout, directory)
    names = {entry.name for entry in entries if entry.kind in (1, 2, 5) and entry.name}
    if layout.difat_cut or missing(layout.fat_sectors) or missing(directory):
        return Examined(names, True)
    if not entries:
        return Examined(names, False)  # calamine says what is wrong with it
    chains = [entries[0].start, layout.first_minifat]
    book = _workbook_entry(entries)
    if book is not None and book.size >= MINI_CUTOFF:
        chains.append(book.start)
    return Examined(names, any(missing(_chain(fat, start)) for start in chains))


def stream_names(path: Path) -> set[str]:
    """Names in a compound file's directory, without reading the streams; empty for a file
    that is not one."""
    examined = examine(path)
    return examined.names if examined is not None else set()


def _workbook_entry(entries: list[_Entry]) -> _Entry | None:
    streams = {entry.name.lower(): entry for entry in entries if entry.kind == 2}
    return streams.get("workbook") or streams.get("book")
