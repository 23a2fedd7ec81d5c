"""A reference date typed by a person (--as-of, a workspace's as_of), read as a register reads
its date cells: 2020-06-30, 2020/6/30, 2020.06.30, 20200630, 2020年6月30日 and the rest of
registers.normalise.date's text forms, so that no date a clerk types in a register is refused
on the command line."""

from __future__ import annotations

import re
from datetime import date

#: The forms an error message offers, in Chinese and English.
DAY_FORMS = ("2020-06-30、2020/6/30、2020.06.30、20200630 或 2020年6月30日",
             "2020-06-30, 2020/6/30, 2020.06.30, 20200630 or 2020年6月30日")
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(text: str) -> date | None:
    """The day `text` names, or None when a register's date cell holding it would be bad."""
    text = text.strip()
    if _ISO.fullmatch(text):
        # The usual form, read without importing pandas: a command parses its --as-of before
        # the registers are read, and the read overlaps that import (registers/ahead.py).
        try:
            return date.fromisoformat(text)
        except ValueError:  # 2020-13-01: a bad cell in a register too
            return None
    from exitcheck.registers.normalise import day

    return day(text)


def day_problem(text: str) -> tuple[str, str]:
    """Why `text` is not a date and how to write one, in Chinese and English (no key named)."""
    return (f"「{text}」不是有效的日期(日历上没有这一天, 或写法无法识别); 请写成 {DAY_FORMS[0]}",
            f"{text!r} is not a valid date (no such day in the calendar, or a form not understood); "
            f"write it as {DAY_FORMS[1]}")
