"""Input limits, checked before a file is parsed, so a crafted file cannot exhaust the machine.

The defaults let a prefecture register (200,000 households, 900,000 members) through with room
to spare; a workspace raises them under `limits:` in exitcheck.yaml. The zip checks follow
Apache POI's ZipSecureFile: a part may not inflate more than `max_inflate_ratio` times its
compressed size, and the declared sizes are capped before anything is decompressed.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from exitcheck.errors import InputError

MIB = 1024 * 1024


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_file_bytes: int = Field(1024 * MIB, description="largest input file on disk")
    max_part_bytes: int = Field(2048 * MIB, description="largest uncompressed part of an xlsx")
    max_total_bytes: int = Field(4096 * MIB, description="largest uncompressed xlsx in all")
    max_inflate_ratio: float = Field(
        200.0, description="largest uncompressed/compressed ratio of an xlsx part (POI: 100)"
    )
    max_rows: int = Field(2_000_000, description="most rows in one sheet")
    max_columns: int = Field(1000, description="most columns in one sheet")
    max_cell_chars: int = Field(32_767, description="longest text in one cell (Excel's own limit)")


def check_file_size(path: Path, shown: str, limits: Limits) -> int:
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise InputError(
            shown,
            f"文件过大({size // MIB} MiB, 上限 {limits.max_file_bytes // MIB} MiB); 如确属正常, 请在 exitcheck.yaml 的 limits.max_file_bytes 中调高上限",
            f"file too large ({size // MIB} MiB, limit {limits.max_file_bytes // MIB} MiB); raise limits.max_file_bytes in exitcheck.yaml if it is genuine",
        )
    return size


def check_zip(path: Path, shown: str, limits: Limits) -> None:
    """Refuse a zip bomb from its central directory, before any part is inflated."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(
            shown,
            f"文件已损坏或不完整(无法作为 xlsx 打开: {exc}); 请重新导出或重新拷贝",
            f"file is corrupt or truncated (not a readable xlsx: {exc}); export or copy it again",
        ) from None
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.max_part_bytes or (
            info.file_size > MIB and ratio > limits.max_inflate_ratio
        ):
            raise InputError(
                shown,
                f"文件内部分 {info.filename} 解压后过大({info.file_size // MIB} MiB, 压缩比 {ratio:.0f}), 疑似压缩炸弹, 已拒绝读取",
                f"part {info.filename} would inflate to {info.file_size // MIB} MiB (ratio {ratio:.0f}): a zip bomb? refused",
            )
    if total > limits.max_total_bytes:
        raise InputError(
            shown,
            f"文件解压后共 {total // MIB} MiB, 超过上限 {limits.max_total_bytes // MIB} MiB, 已拒绝读取",
            f"file would inflate to {total // MIB} MiB in all, over the limit of {limits.max_total_bytes // MIB} MiB; refused",
        )


def check_shape(shown: str, sheet: str, rows: int, columns: int, limits: Limits) -> None:
    if rows > limits.max_rows or columns > limits.max_columns:
        raise InputError(
            shown,
            f"工作表「{sheet}」有 {rows} 行 {columns} 列, 超过上限({limits.max_rows} 行, {limits.max_columns} 列); 请删除多余的空行空列",
            f"sheet '{sheet}' has {rows} rows and {columns} columns, over the limits ({limits.max_rows} rows, {limits.max_columns} columns); delete the stray empty rows and columns",
        )
