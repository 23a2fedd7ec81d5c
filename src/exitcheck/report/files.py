"""Writing output files safely: atomically, not world-readable, formulas never made from data."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_MODE = 0o600
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Characters Windows forbids in file names (and NUL, which no system allows).
_FORBIDDEN_IN_NAMES = frozenset('\\/:*?"<>|\0')


#: Characters of a data name kept in a file name (40 Chinese characters are 120 bytes).
MAX_STEM_CHARS = 40


def file_stem(name: str, default: str) -> str:
    """A name from the data (a township's, a county's) as a file or folder name: forbidden and
    control characters and leading or trailing spaces and dots removed. A name that had to
    change gets the first 6 hex digits of its sha256 appended: two names that differ only in
    what was removed ("中所镇" and a typo "中所镇?") must never share a file or a delivery folder,
    or one township would be sent the other's households. A name longer than
    MAX_STEM_CHARS (a note typed into the township cell) is cut, and hashed the same way: file
    systems refuse a name over 255 bytes, and a Chinese character takes three."""
    kept = "".join(ch for ch in name if ch not in _FORBIDDEN_IN_NAMES and ch.isprintable()).strip(" .")
    kept = kept[:MAX_STEM_CHARS].rstrip(" .")
    if kept == name:
        return name
    return f"{kept or default}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:6]}"


@contextlib.contextmanager
def atomic_path(final: Path, mode: int = DEFAULT_MODE) -> Iterator[Path]:
    """A temporary path beside `final`, renamed over it only once the writer has finished.

    A reader (or a run killed half-way) never sees half a file under the final name.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(handle)
    temp = Path(name)
    try:
        os.chmod(temp, mode)
        yield temp
        os.chmod(temp, mode)
        os.replace(temp, final)
    finally:
        if temp.exists():
            temp.unlink()


def write_bytes(final: Path, data: bytes, mode: int = DEFAULT_MODE) -> Path:
    with atomic_path(final, mode) as temp, temp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return final


def write_json(final: Path, document: Any, mode: int = DEFAULT_MODE) -> Path:
    text = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    return write_bytes(final, text.encode("utf-8"), mode)


def neutralise(value: object) -> object:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
