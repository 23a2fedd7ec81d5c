"""validate(): parse the registers and run every consistency check, once per reference date."""

from __future__ import annotations

from datetime import date

from exitcheck.issues import DataIssue
from exitcheck.registers.checks import run_checks
from exitcheck.registers.model import Registers
from exitcheck.registers.parse import IssueSink, Parsed, parse


def prepare(registers: Registers, as_of: date | None = None) -> Parsed:
    """Typed registers plus every data issue; computed once and kept on `registers`."""
    as_of = as_of or date.today()
    key = f"parsed:{as_of.isoformat()}"
    cached = registers.parsed.get(key)
    if isinstance(cached, Parsed):
        return cached
    parsed = parse(registers, as_of)
    sink = IssueSink(registers)
    run_checks(registers, parsed, sink)
    issues = [*registers.load_issues, *parsed.issues, *sink.issues]
    issues.sort(key=lambda i: (i.file or "", i.sheet or "", i.row or 0, i.column or "", i.code))
    parsed.issues = issues
    registers.parsed[key] = parsed
    return parsed


def validate(registers: Registers, as_of: date | None = None) -> list[DataIssue]:
    """Every data issue of the registers, ordered by file, sheet, row and column."""
    return prepare(registers, as_of).issues
