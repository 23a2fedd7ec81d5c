"""What loading produces: the registers as frames, each record tied to its file, sheet and row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from exitcheck.registers.schema import RegisterName

if TYPE_CHECKING:
    from exitcheck.errors import InputError
    from exitcheck.issues import DataIssue

#: Bookkeeping columns every register frame carries beside its fields.
SOURCE = "_src"  # index into Registers.sources
ROW = "_row"  # the Excel row number (1-based), as a clerk sees it


@dataclass(frozen=True)
class ColumnInfo:
    """One column of a sheet as found: its letter, its header as typed, what it was read as."""

    index: int
    letter: str
    header: str
    field: str | None  # canonical field, or None for a column exitcheck does not know
    name: str  # the frame column holding it: the field, or the header for unknown columns


@dataclass(frozen=True)
class SheetSource:
    """A sheet that contributed records to a register."""

    file: str  # the path as given on the command line
    sheet: str
    register: RegisterName
    header_row: int  # Excel row number of the header row
    columns: tuple[ColumnInfo, ...]

    def column_for(self, field_name: str) -> ColumnInfo | None:
        for column in self.columns:
            if column.field == field_name:
                return column
        return None


@dataclass
class Registers:
    """The four registers as loaded: raw cells (as read) per field, plus where each came from.

    `raw` holds one object frame per register found, columns named by canonical field (unknown
    columns by their header), and the bookkeeping columns `_src` and `_row`. Parsing the values
    is the validator's job, done once and cached in `parsed`.
    """

    raw: dict[RegisterName, pd.DataFrame]
    sources: list[SheetSource]
    inputs: list[str]
    failures: list[InputError] = field(default_factory=list)
    load_issues: list[DataIssue] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (zh, en) remarks on the load
    parsed: dict[str, object] = field(default_factory=dict, repr=False)

    def has(self, register: RegisterName) -> bool:
        return register in self.raw

    def files_of(self, register: str) -> str:
        """The input files that gave `register` rows, as given, for a message naming them."""
        return ", ".join(dict.fromkeys(source.file for source in self.sources if source.register == register))

    def refused_columns(self, register: str) -> list[str]:
        """The required columns for want of which a sheet of `register` was refused (not read)."""
        return list(dict.fromkeys(i.header or "" for i in self.load_issues
                                  if i.code == "missing_column" and i.params.get("register") == register))

    def present_fields(self, register: RegisterName) -> set[str]:
        """Fields that some sheet of the register actually has as a column."""
        return {
            column.field
            for source in self.sources
            if source.register == register
            for column in source.columns
            if column.field
        }

    def sheets_lacking(self, register: RegisterName) -> dict[str, list[int]]:
        """Field -> the sources (SOURCE indexes) of `register` whose sheet has no column for a
        field another sheet of it has: their rows' cells of it are not blank, they are not
        there (a county's 户表 one sheet or one file a township, one without 安全饮水)."""
        own = [(index, {c.field for c in source.columns if c.field}) for index, source in enumerate(self.sources)
               if source.register == register]
        present = set().union(*(fields for _, fields in own)) if own else set()
        return {name: lacking for name in sorted(present)
                if (lacking := [index for index, fields in own if name not in fields])}

    def columns_lacking(self) -> dict[int, list[str]]:
        """Source (SOURCE index) -> the fields its sheet lacks that another sheet of its register
        has, for every register (sheets_lacking turned round): what a note and a reason say."""
        lacking: dict[int, list[str]] = {}
        for register in dict.fromkeys(source.register for source in self.sources):
            for name, sources in self.sheets_lacking(register).items():
                for source in sources:
                    lacking.setdefault(source, []).append(name)
        return dict(sorted(lacking.items()))

    def extra_columns(self, register: RegisterName) -> list[str]:
        """Unknown columns, in the order first seen: carried through to the outputs."""
        seen: dict[str, None] = {}
        for source in self.sources:
            if source.register == register:
                for column in source.columns:
                    if column.field is None:
                        seen.setdefault(column.name)
        return list(seen)

    def counts(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.raw.items()}
