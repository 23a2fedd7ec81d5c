"""Raw cells to typed columns, column by column, with a data issue for every cell that fails.

The schema decides, for each field, which parser reads it, which values it allows and whether
it is required; this module only applies that, one whole column at a time. The result is a
`Parsed` register set: typed frames the rules run on, and the issues found on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

import pandas as pd

from exitcheck import idcard
from exitcheck.issues import DataIssue
from exitcheck.registers import normalise
from exitcheck.registers.model import ROW, SOURCE, Registers
from exitcheck.registers.schema import FieldSpec, RegisterName, fields


@dataclass
class Parsed:
    """Typed register frames (canonical field columns, `_src`, `_row`, unknown columns as text)."""

    tables: dict[RegisterName, pd.DataFrame]
    issues: list[DataIssue] = field(default_factory=list)
    as_of: date = field(default_factory=date.today)
    #: (register, field) -> numpy mask of blank cells, for the checks that need "blank, not bad"
    blanks: dict[tuple[str, str], object] = field(default_factory=dict)
    #: (register, field) -> idcard.analyse of an ID number column, for the ID checks
    id_analyses: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    #: household id -> HouseholdIdZerosLost's pointer {"zh", "en"}, for a household whose
    #: members have its id but for leading zeros (the checks fill it; reasons quote it)
    zeros_pointers: dict[str, dict[str, str]] = field(default_factory=dict)
    #: register -> checks.PlaceDuplicates of a village or township register whose places repeat
    #: (the checks fill it; figures make the cells the rows disagree on unknown)
    place_duplicates: dict[str, Any] = field(default_factory=dict)

    def table(self, register: RegisterName) -> pd.DataFrame | None:
        return self.tables.get(register)


class IssueSink:
    """Turns masks over a register frame into positioned DataIssues."""

    def __init__(self, registers: Registers) -> None:
        self.registers = registers
        self.issues: list[DataIssue] = []

    def add(
        self,
        register: RegisterName,
        frame: pd.DataFrame,
        mask: pd.Series,
        code: str,
        field_name: str | None,
        *,
        values: pd.Series | None = None,
        raw: pd.Series | None = None,
        household: pd.Series | None = None,
        params: dict[str, object] | pd.Series | None = None,
    ) -> None:
        """One issue per row where `mask` is True. `params` may be a Series of dicts per row.

        `raw` (cells as read) gives the "value as typed"; it is turned into text only for the
        flagged rows, which are few, rather than for the whole column.
        """
        mask = mask.fillna(False).astype(bool) if mask.dtype != bool else mask
        if not mask.any():
            return
        rows = frame.index[mask.to_numpy()]
        sources = frame.loc[rows, SOURCE].to_numpy()
        excel_rows = frame.loc[rows, ROW].to_numpy()
        if raw is not None:
            values = normalise.raw_repr(raw.loc[rows])
        typed_values = values.loc[rows].to_numpy() if values is not None else [None] * len(rows)
        households = household.loc[rows].to_numpy() if household is not None else [None] * len(rows)
        per_row = params.loc[rows].to_numpy() if isinstance(params, pd.Series) else None
        for i, source_index in enumerate(sources):
            source = self.registers.sources[int(source_index)]
            column = source.column_for(field_name) if field_name else None
            value = typed_values[i]
            self.issues.append(
                DataIssue(
                    code=code,
                    file=source.file,
                    sheet=source.sheet,
                    row=int(excel_rows[i]),
                    column=column.letter if column else None,
                    header=column.header if column else _header_of(register, field_name),
                    field=field_name,
                    value=None if _is_na(value) else str(value),
                    household_id=None if _is_na(households[i]) else str(households[i]),
                    params=dict(per_row[i]) if per_row is not None else dict(params or {}),
                )
            )


def _is_na(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _header_of(register: RegisterName, field_name: str | None) -> str | None:
    for spec in fields(register):
        if spec.name == field_name:
            return spec.header
    return field_name


#: What bad_value says of a text or ID cell, which only a spreadsheet error makes bad
SPREADSHEET_ERROR_HINT = {"zh": "(是电子表格的错误值: 公式没有算出结果)", "en": " (a spreadsheet error value: its formula found no result)"}


def _serial_hints(bad: pd.Series, column: pd.Series, expected: dict[str, str]) -> pd.Series:
    """bad_value's params for the bad cells of a date column: a cell of digits alone (38655,
    from a CSV of a column Excel showed as numbers) is told what it would be as an Excel
    serial date, and how to have it read as one; it is not read so (never a guess)."""
    flagged = column[bad.to_numpy(dtype=bool)]  # a Python call per bad cell: paid by bad input only
    params = []
    for cell in flagged.tolist():
        day = normalise.serial_meaning(cell)
        params.append({"expected": expected if day is None else {
            "zh": f"{expected['zh'].removesuffix(')')}; 若它是 Excel 的日期序号, 即 {day}: 请在 Excel 中把该列设为日期格式后重新保存)",
            "en": f"{expected['en'].removesuffix(')')}; if it is an Excel serial date, it is {day}: "
                  "format the column as dates in Excel and save it again)"}})
    return pd.Series(params, index=flagged.index, dtype=object)


def _expected(spec: FieldSpec) -> dict[str, str]:
    if spec.kind in ("text", "id_number"):
        return SPREADSHEET_ERROR_HINT
    if spec.kind in ("choice", "multi_choice"):
        canon = list(dict.fromkeys(spec.allowed.values()))
        return {"zh": f"(应为: {'/'.join(canon)})", "en": f" (expected one of: {', '.join(canon)})"}
    if spec.kind in ("number", "integer") and spec.minimum is not None:
        # -100 is a number: the message must say what is wrong with it
        bound = f"{spec.minimum:g}"
        zh_kind, en_kind = ("整数", "whole number") if spec.kind == "integer" else ("数字", "number")
        if spec.exclusive_minimum:
            return {"zh": f"(应为大于 {bound} 的{zh_kind})", "en": f" (expected a {en_kind} above {bound})"}
        return {"zh": f"(应为不小于 {bound} 的{zh_kind})", "en": f" (expected a {en_kind} of at least {bound})"}
    hints = {
        "yes_no": ("(应为: 是/否)", " (expected yes/no: 是/否)"),
        "number": ("(应为数字)", " (expected a number)"),
        "integer": ("(应为整数)", " (expected a whole number)"),
        "date": ("(应为日期, 如 2019-10-01)", " (expected a date such as 2019-10-01)"),
        "year": ("(应为年份)", " (expected a year)"),
    }
    zh, en = hints.get(spec.kind, ("", ""))
    return {"zh": zh, "en": en}


def parse_column(spec: FieldSpec, raw: pd.Series, as_of: date) -> normalise.Parsed:
    """The typed column for a field and the mask of cells that could not be read."""
    if spec.kind == "yes_no":
        return normalise.yes_no(raw)
    if spec.kind == "number":
        return normalise.number(raw)
    if spec.kind == "integer":
        return normalise.integer(raw)
    if spec.kind == "date":
        return normalise.date(raw, as_of)
    if spec.kind == "year":
        return normalise.year(raw)
    if spec.kind == "choice":
        return normalise.choice(raw, spec.allowed)
    if spec.kind == "multi_choice":
        return normalise.multi_choice(raw, spec.allowed)
    return _text_field(normalise.text(raw))


def _text_field(text: pd.Series) -> normalise.Parsed:
    """A text column: any text is a value, but a spreadsheet error (#N/A) is a cell that cannot
    be read, as it is in a number or date column."""
    bad = normalise.spreadsheet_error(text)
    return normalise.Parsed(text.where(~bad), bad)


def _below_minimum(spec: FieldSpec, values: pd.Series) -> pd.Series:
    if spec.minimum is None:
        return pd.Series(False, index=values.index)
    numbers = pd.to_numeric(values, errors="coerce")
    low = numbers <= spec.minimum if spec.exclusive_minimum else numbers < spec.minimum
    return low.fillna(False).astype(bool)


@dataclass
class ColumnsAhead:
    """One register sheet's columns, parsed while the later sheets were still being read
    (load.load_file). parse_register takes them over when the register is that sheet alone and
    is parsed for the same reference date; otherwise they are not used."""

    register: RegisterName
    frame: pd.DataFrame
    as_of: date
    fields: dict[str, normalise.Parsed | pd.DataFrame]  # parse_column, or idcard.analyse for IDs
    texts: dict[str, pd.Series]  # the household ids and the unknown columns, as text

    def field(self, spec: FieldSpec, raw: pd.Series) -> normalise.Parsed | pd.DataFrame:
        if spec.name in self.fields:
            return self.fields[spec.name]
        return idcard.analyse(raw, self.as_of) if spec.kind == "id_number" else parse_column(spec, raw, self.as_of)

    def text(self, raw: pd.Series) -> pd.Series:
        return self.texts[str(raw.name)] if raw.name in self.texts else normalise.text(raw)


def parse_columns(register: RegisterName, frame: pd.DataFrame, as_of: date) -> ColumnsAhead:
    """Every column of one register sheet, parsed as parse_register would parse it."""
    known = {spec.name: spec for spec in fields(register)}
    ahead = ColumnsAhead(register, frame, as_of, {}, {})
    for name in frame.columns:
        spec = known.get(name)
        if name in (ROW, SOURCE):
            continue
        if spec is None or name == "household_id":
            ahead.texts[name] = normalise.text(frame[name])
        else:
            ahead.fields[name] = ahead.field(spec, frame[name])
    return ahead


def keep_columns_ahead(registers: Registers, ahead: ColumnsAhead) -> None:
    """Keep `ahead` for parse_register, if its sheet is the whole of its register."""
    if registers.raw.get(ahead.register) is ahead.frame:
        registers.parsed[_AHEAD + ahead.register] = ahead


_AHEAD = "columns-ahead:"  # + register: a key of Registers.parsed


def _columns_ahead(registers: Registers, register: RegisterName, as_of: date) -> ColumnsAhead:
    """The register's columns parsed ahead for `as_of`, or a ColumnsAhead that parses them now."""
    ahead = registers.parsed.pop(_AHEAD + register, None)  # used once: not kept to the end
    if isinstance(ahead, ColumnsAhead) and ahead.frame is registers.raw[register] and ahead.as_of == as_of:
        return ahead
    return ColumnsAhead(register, registers.raw[register], as_of, {}, {})


def parse_register(register: RegisterName, registers: Registers, sink: IssueSink, parsed: Parsed) -> pd.DataFrame:
    """The typed frame of one register; blank masks and ID analyses are kept on `parsed`."""
    as_of, blanks = parsed.as_of, parsed.blanks
    raw = registers.raw[register]
    ahead = _columns_ahead(registers, register, as_of)
    present = registers.present_fields(register)
    out = pd.DataFrame(index=raw.index)
    out[SOURCE] = raw[SOURCE].astype(int)
    out[ROW] = raw[ROW].astype(int)
    # an issue of a row whose ID is #N/A belongs to no household: the ID is NA from the start
    typed_id = _text_field(ahead.text(raw["household_id"])) if "household_id" in raw else None
    household = typed_id.values if typed_id is not None else None
    for spec in fields(register):
        if spec.name not in present:
            out[spec.name] = pd.Series(pd.NA, index=raw.index, dtype=_dtype(spec))
            continue
        column = raw[spec.name]
        if spec.kind == "id_number":
            # ID numbers have their own cascade of checks (checks.check_ids), which reads this
            # analysis: an ID column is analysed once, not normalised here and again there.
            analysis = cast(pd.DataFrame, ahead.field(spec, column))
            parsed.id_analyses[(register, spec.name)] = analysis
            out[spec.name] = analysis["id"]
            continue
        typed = typed_id if spec.name == "household_id" and typed_id is not None else cast(normalise.Parsed, ahead.field(spec, column))
        values = typed.values
        # A parser gives NA for a blank cell and for a bad one: blank is NA and not bad.
        blanks[(register, spec.name)] = values.isna().to_numpy() & ~typed.bad.to_numpy()
        bad = typed.bad | (_below_minimum(spec, values) & values.notna())
        if spec.kind == "year":
            outside = (values < 1990) | (values > as_of.year)
            bad = bad | outside.fillna(False).astype(bool)
        expected = _expected(spec)
        sink.add(register, raw, bad, "bad_value", spec.name, raw=column, household=household,
                 params=_serial_hints(bad, column, expected) if spec.kind == "date" else {"expected": expected})
        if spec.name == "household_id":
            # Rounded to 15 digits, neighbouring households share one id: such a row must not
            # be merged with another, nor given the members of another.
            lost = pd.Series(idcard.digits_lost(column), index=raw.index)
            sink.add(register, raw, lost, "household_id_precision_lost", spec.name,
                     values=column[lost].map(idcard.excel_display))
            bad = bad | lost
        out[spec.name] = values.where(~bad)
        if spec.required:
            blank = pd.Series(blanks[(register, spec.name)], index=raw.index) & ~_blank_allowed(register, spec, raw, present)
            sink.add(register, raw, blank, "missing_value", spec.name, household=household)
    for name in registers.extra_columns(register):
        if name in raw:
            out[name] = ahead.text(raw[name])
    return out


def _blank_allowed(
    register: RegisterName, spec: FieldSpec, raw: pd.DataFrame, present: set[str]
) -> pd.Series:
    """A blank housing grade is fine where 是否危房户 says 否: the house is safe (grade A)."""
    if register == "households" and spec.name == "housing_grade" and "dangerous_house" in present:
        return normalise.yes_no(raw["dangerous_house"]).values.eq(False).fillna(False).astype(bool)
    return pd.Series(False, index=raw.index)


def _dtype(spec: FieldSpec) -> str:
    return {
        "yes_no": "boolean",
        "number": "Float64",
        "integer": "Int64",
        "year": "Int64",
        "date": "datetime64[ns]",
    }.get(spec.kind, "string")


def parse(registers: Registers, as_of: date | None = None) -> Parsed:
    """Typed frames for every register present, and the value-level data issues."""
    sink = IssueSink(registers)
    parsed = Parsed(tables={}, issues=sink.issues, as_of=as_of or date.today())
    for register in registers.raw:
        parsed.tables[register] = parse_register(register, registers, sink, parsed)  # type: ignore[arg-type]
    _derive_household_fields(parsed.tables["households"], registers)
    return parsed


def _derive_household_fields(households: pd.DataFrame, registers: Registers) -> None:
    """Fill what national exports say in other words (register-format.md)."""
    present = registers.present_fields("households")
    if "category" not in present and present & {"poverty_attribute", "status"}:
        households["category"] = pd.Series("建档立卡户", index=households.index, dtype="string")
    if "dangerous_house" in present:
        safe = households["dangerous_house"].eq(False).fillna(False).astype(bool)
        households["housing_grade"] = households["housing_grade"].mask(
            safe & households["housing_grade"].isna(), "A"
        )
