"""Citizen ID numbers (公民身份号码, GB 11643-1999).

An ID number has 18 characters: a 6-digit area code, the birth date as 8 digits
(YYYYMMDD), a 3-digit sequence number whose last digit is odd for men and even
for women, and a check digit (0-9 or X) computed with ISO 7064 MOD 11-2.

The registers carry one ID per member, so :func:`analyse` works on a whole
column at once with pyarrow string functions and numpy arithmetic: a county
register has tens of thousands of members and the audit must stay instant.

The checks follow the cascade of the register format:

* an ID stored as a number (``5.13434E+17``) has lost its last digits, so it is
  flagged ``precision_lost`` and gets no other check;
* an ID with a wrong check digit still has its birth-date digits read, checked
  and used (for ages), because the check digit is more often mistyped than the
  birth date;
* a birth date is impossible when it is not a calendar date, is before
  1900-01-01 or is after the reference date.

This module imports nothing from the rest of the package but exitcheck.fastpaths
(which imports nothing of it) so that any part of it (readers, rules, reports,
logging) can use it without import cycles.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from exitcheck.fastpaths import flags as _flags
from exitcheck.fastpaths import kinds_of, selected

__all__ = [
    "CHECK_MAP",
    "WEIGHTS",
    "age_on",
    "analyse",
    "check_digit",
    "digits_lost",
    "mask",
    "mask_text",
]

#: ISO 7064 MOD 11-2 weights of the first 17 digits (2**(18-i) mod 11).
WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
#: Check character for each remainder of the weighted sum modulo 11.
CHECK_MAP = "10X98765432"

_WEIGHTS_NP = np.array(WEIGHTS, dtype=np.int64)
_CHECK_NP = np.frombuffer(CHECK_MAP.encode("ascii"), dtype=np.uint8)
_MIN_BIRTH = 19000101
_ZERO = ord("0")

# Full-width ASCII forms (U+FF01..U+FF5E) to their half-width letters, the
# ideographic space to a plain space, and a lowercase x to X: offices type IDs
# with a Chinese input method switched on, and "x" and "X" are the same check
# character.
_ID_TRANSLATION = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_ID_TRANSLATION[0x3000] = 0x20
_ID_TRANSLATION[0xFF58] = ord("X")  # full-width x
_ID_TRANSLATION[ord("x")] = ord("X")

_SHAPE_RE = r"[0-9]{17}[0-9X]"
# What Excel shows of a long number (5.13434E+17), typed or exported as text: a CSV saved
# from Excel, or a cell copied from one. The digits after the sixth are gone.
_SCIENTIFIC_RE = r"^[0-9](\.[0-9]+)?[Ee]\+?[0-9]+$"
#: What Excel shows of a long number in a General cell (excel_display): at most six digits.
_EXCEL_SHOWN = re.compile(r"[0-9](\.[0-9]{1,5})?E\+[0-9]{2}")
#: Excel keeps 15 significant digits: a number cell of 16 digits or more has lost its tail.
EXACT_DIGITS = 15
_DIGITS8_RE = r"[0-9]{8}"

# Free-text ID numbers: 17 digits and a digit or X, or an old 15-digit ID, not
# part of a longer run of digits (bank accounts, phone numbers glued together).
_ID_IN_TEXT = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])")


def check_digit(first17: str) -> str:
    """Return the check character ('0'-'9' or 'X') for the first 17 digits.

    Used to tell the user which check digit an ID should have had, and by
    tests to build valid IDs.  Raises ValueError unless ``first17`` is exactly
    17 ASCII digits, because a check digit of anything else is meaningless.
    """
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError(f"expected 17 digits, got {len(first17)} characters")
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_MAP[total % 11]


def excel_display(value: object) -> object:
    """A number cell as Excel shows it in a General cell of standard width (11 characters at
    most): an ID number stored as a number reads 5.13434E+17, which is what the clerk sees and
    searches for, not Python's 5.134341949111128e+17. Text is returned as it is."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers too
        return value
    number = float(value)
    if not math.isfinite(number):  # a cell past the largest float (1.797693134862316E+308) reads as inf
        return str(number)
    if number.is_integer() and abs(number) < 1e11:
        return str(int(number))
    if 1e-4 <= abs(number) < 1e11:
        return f"{number:.10G}"
    mantissa, exponent = f"{number:.5E}".split("E")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}E{int(exponent):+03d}"


def mask(value: str | None) -> str | None:
    """Hide the middle of an ID number: keep the first 6 and last 4 characters.

    ID numbers are personal data; reports and logs show enough (area code and
    last digits) for a clerk to find the row, not the birth date.  Values of
    fewer than 11 characters would keep almost everything, so they are masked
    entirely.  None stays None (a blank cell).
    """
    if value is None:
        return None
    if _EXCEL_SHOWN.fullmatch(value):  # 5.13434E+17: six digits, the area code alone, nothing personal
        return value
    n = len(value)
    if n < 11:
        return "*" * n
    return value[:6] + "*" * (n - 10) + value[-4:]


def mask_text(text: str) -> str:
    """Mask every ID-looking token in free text (log lines, console messages).

    A token is 17 digits followed by a digit or X/x, or 15 digits (the old
    ID), not adjacent to other digits, whose birth-date digits look like a date
    (year 18xx-20xx, month 01-12, day 01-31). That last test keeps long
    household codes such as 513434001001000070 readable: they are not personal.
    """
    return _ID_IN_TEXT.sub(_mask_match, text)


_BIRTH_18 = re.compile(r"^\d{6}(18|19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
_BIRTH_15 = re.compile(r"^\d{6}\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")


def _mask_match(match: re.Match[str]) -> str:
    token = match.group(0)
    pattern = _BIRTH_18 if len(token) == 18 else _BIRTH_15
    return (mask(token) or "") if pattern.match(token) else token


def _as_date(value: _dt.date) -> _dt.date:
    """Drop the time of a datetime: the reference date is a day."""
    if isinstance(value, _dt.datetime):
        return value.date()
    return value


def _ymd_int(value: _dt.date) -> int:
    return value.year * 10000 + value.month * 100 + value.day


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    """Days in each month, Gregorian leap years (1900 is not one)."""
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    month_idx = np.clip(month - 1, 0, 11)
    return days[month_idx] + ((month == 2) & leap)


def _dates_from_digits(digits: np.ndarray, as_of: _dt.date) -> np.ndarray:
    """Birth dates from an (n, 8) array of YYYYMMDD digit values.

    Returns datetime64[ns] with NaT where the digits are not a calendar date
    in [1900-01-01, as_of].
    """
    d = digits.astype(np.int64)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    ymd = year * 10000 + month * 100 + day
    valid = (
        (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= _days_in_month(year, month))
        & (ymd >= _MIN_BIRTH)
        & (ymd <= _ymd_int(as_of))
    )
    out = np.full(len(d), np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    if valid.any():
        y, m, dd = year[valid], month[valid], day[valid]
        days = (
            (y - 1970).astype("datetime64[Y]").astype("datetime64[M]")
            + (m - 1).astype("timedelta64[M]")
        ).astype("datetime64[D]") + (dd - 1).astype("timedelta64[D]")
        out[valid] = days.astype("datetime64[ns]")
    return out


def _ascii_matrix(values: pa.Array, width: int) -> np.ndarray:
    """Equal-width ASCII strings (no nulls) as an (n, width) uint8 array: the array's own
    bytes, read in place, not a Python string per value."""
    if len(values) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    _, offsets, data = values.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32)[values.offset : values.offset + len(values) + 1]
    if ends[-1] - ends[0] != len(values) * width:
        raise ValueError(f"expected {len(values)} strings of {width} ASCII characters")
    return np.frombuffer(data, dtype=np.uint8)[ends[0] : ends[-1]].reshape(-1, width)


def digits_lost(raw: pd.Series) -> np.ndarray:
    """Cells of a long digit code (a household id such as 513434001001000001) whose last
    digits are gone: number cells of more than 15 digits, which Excel rounds to 15
    significant digits (neighbouring households then share one number), and the text of
    such a number as Excel shows it (5.13434E+17). Short codes stored as numbers (1001)
    are exact and not flagged."""
    is_text, is_number, _ = _kinds(raw)
    lost = np.zeros(len(raw), dtype=bool)
    values = raw.to_numpy(dtype=object)
    if is_number.any():
        with np.errstate(invalid="ignore"):
            lost[is_number] = ~(np.abs(_floats(values[is_number])) < 10.0**EXACT_DIGITS)
    if is_text.any():
        lost[is_text] = _as_excel_shows_a_number(_normalise_text(pa.array(values[is_text], type=pa.string())))
    return lost


def _as_excel_shows_a_number(texts: pa.Array) -> np.ndarray:
    """Normalised texts that are a long number as Excel shows it (5.13434E+17)."""
    return _flags(pc.match_substring_regex(texts, _SCIENTIFIC_RE))


def _number_digits(values: np.ndarray) -> np.ndarray:
    """Text of int(value) for number cells (what is left of a numeric ID).

    Ints and floats within the int64 range are converted by numpy; the rest
    (huge ints, inf) are rare and converted one by one.
    """
    out = np.empty(len(values), dtype=object)
    if len(values) == 0:
        return out
    is_int = kinds_of(values, lambda t: issubclass(t, (int, np.integer))).astype(bool)
    as_float = _floats(values)
    in_range = np.isfinite(as_float) & (np.abs(as_float) < 2.0**62)
    fast_float = ~is_int & in_range
    if fast_float.any():
        out[fast_float] = np.trunc(as_float[fast_float]).astype(np.int64).astype(str)
    fast_int = is_int & in_range
    if fast_int.any():
        out[fast_int] = values[fast_int].astype(np.int64).astype(str)
    slow = ~(fast_float | fast_int)
    if slow.any():
        out[slow] = [_int_text(v) for v in values[slow]]
    return out


def _floats(values: np.ndarray) -> np.ndarray:
    """float64 of number cells; ints beyond the float range become inf."""
    try:
        return values.astype(np.float64)
    except OverflowError:
        return np.array([_to_float(v) for v in values], dtype=np.float64)


def _to_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return math.inf


def _int_text(value: object) -> str:
    try:
        return str(int(value))  # type: ignore[call-overload]
    except (OverflowError, ValueError, TypeError):
        return str(value)


def _kinds(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split cells into (text, number, blank) masks.

    Text cells are str; number cells are int/float but not bool (bool is a
    subclass of int and is never an ID); None, NaN, NaT and pd.NA are blank.
    Other objects (dates, bools) are neither: they are turned into text.
    """
    blank = raw.isna().to_numpy(bool)
    if pd.api.types.infer_dtype(raw, skipna=True) in ("string", "empty"):
        return ~blank, np.zeros(len(raw), dtype=bool), blank
    kinds = kinds_of(raw.to_numpy(dtype=object), lambda t: _KIND_CODES[_kind_of_type(t)])
    is_text = (kinds == _KIND_CODES["text"]) & ~blank
    is_number = (kinds == _KIND_CODES["number"]) & ~blank
    return is_text, is_number, blank


_KIND_CODES = {"text": 0, "number": 1, "other": 2}


def _kind_of_type(t: type) -> str:
    if issubclass(t, str):
        return "text"
    if issubclass(t, (bool, np.bool_)):
        return "other"
    if issubclass(t, (int, float, np.integer, np.floating)):
        return "number"
    return "other"


def _other_text(value: object) -> str:
    """Text of a cell that is neither a string nor a number (date, bool...)."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    return str(value)


def _other_texts(values: np.ndarray) -> np.ndarray:
    """Text of dates, booleans and other objects, once per distinct value."""
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
    except TypeError:  # unhashable objects
        codes, uniques = np.arange(len(values)), values
    texts = np.empty(len(uniques), dtype=object)
    texts[:] = [_other_text(v) for v in uniques]
    return texts[codes]


def _normalise_text(text: pa.Array) -> pa.Array:
    """Normalise ID text: width, lowercase x, surrounding white space; null where empty.

    Only non-ASCII strings need the full translation table; the common case
    (plain ASCII) just needs x -> X, which keeps 100 000 rows fast.
    """
    non_ascii = ~_flags(pc.string_is_ascii(text), null=True)
    if non_ascii.any():
        wide = pa.array(_half_width(selected(text, non_ascii)), type=pa.string())
        text = pc.replace_with_mask(text, pa.array(non_ascii), wide)
    text = pc.utf8_trim_whitespace(pc.replace_substring(text, "x", "X"))
    return pc.if_else(pc.equal(text, ""), pa.nulls(len(text), pa.string()), text)


def _half_width(strings: pa.Array) -> np.ndarray:
    """Apply the ID translation to short non-ASCII strings (no nulls) with numpy.

    A whole column typed with a full-width input method is plausible, so the
    code points are mapped as an array; long strings and strings holding NUL
    (which numpy's fixed-width strings drop) go through str.translate.
    """
    values = strings.to_numpy(zero_copy_only=False)
    width = pc.max(pc.utf8_length(strings)).as_py()
    if width > 64 or _flags(pc.match_substring(strings, "\x00")).any():
        return np.array([v.translate(_ID_TRANSLATION) for v in values], dtype=object)
    fixed = values.astype(f"<U{width}")
    codes = fixed.view(np.uint32).reshape(len(values), width).copy()
    wide = (codes >= 0xFF01) & (codes <= 0xFF5E)
    codes[wide] -= 0xFEE0
    codes[codes == 0x3000] = 0x20
    codes[codes == ord("x")] = ord("X")
    return codes.view(f"<U{width}").ravel().astype(object)


def analyse(raw: pd.Series, as_of: _dt.date) -> pd.DataFrame:
    """Check a column of ID numbers and read their birth date and sex.

    ``raw`` holds cells as the workbook reader returns them (str, float, int,
    bool, dates, None) or already-cleaned text.  ``as_of`` is the reference
    date: a birth date after it is impossible.

    Returns a DataFrame with the same index and the columns ``id``,
    ``precision_lost``, ``shape_ok``, ``checksum_ok``, ``birth``,
    ``birth_impossible`` and ``sex`` (see the module docstring for the
    cascade).  Everything is computed column-wise.
    """
    as_of = _as_date(as_of)
    n = len(raw)
    index = raw.index
    is_text, is_number, blank = _kinds(raw)
    other = ~(is_text | is_number | blank)

    # Every cell as text, normalised together: the digits of a number cell are
    # plain ASCII, which the normalisation leaves as they are.
    values = raw.to_numpy(dtype=object)
    cells = np.full(n, None, dtype=object)
    cells[is_text] = values[is_text]
    if other.any():
        cells[other] = _other_texts(values[other])
    if is_number.any():
        cells[is_number] = _number_digits(values[is_number])
    ids = _normalise_text(pa.array(cells, type=pa.string()))
    # A number cell, or the text of one as Excel showed it: its last digits are gone
    lost = is_number | (is_text & _as_excel_shows_a_number(ids))

    # Shape and check digit (never for numbers: their digits are not theirs).
    shape_ok = _flags(pc.match_substring_regex(ids, f"^{_SHAPE_RE}$")) & ~lost
    checksum_ok = np.zeros(n, dtype=bool)
    male = np.zeros(n, dtype=bool)
    if shape_ok.any():
        mat = _ascii_matrix(selected(ids, shape_ok), 18)
        digits = mat[:, :17].astype(np.int64) - _ZERO
        expected = _CHECK_NP[(digits @ _WEIGHTS_NP) % 11]
        checksum_ok[shape_ok] = expected == mat[:, 17]
        male[shape_ok] = digits[:, 16] % 2 == 1

    # Birth date: any 18-character text with digits at positions 7-14, even
    # when the check digit (or another character) is wrong.
    birth = np.full(n, np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    has18 = _flags(pc.equal(pc.utf8_length(ids), 18)) & ~lost
    if has18.any():
        middle = pc.utf8_slice_codeunits(selected(ids, has18), 6, 14)
        digit_ok = _flags(pc.match_substring_regex(middle, f"^{_DIGITS8_RE}$"))
        if digit_ok.any():
            rows = np.flatnonzero(has18)[digit_ok]
            mat8 = _ascii_matrix(selected(middle, digit_ok), 8)
            birth[rows] = _dates_from_digits(mat8 - _ZERO, as_of)
    birth_impossible = shape_ok & np.isnat(birth)

    return pd.DataFrame(
        {
            "id": pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([ids], type=pa.string())), index=index),
            "precision_lost": pd.Series(lost, index=index),
            "shape_ok": pd.Series(shape_ok, index=index),
            "checksum_ok": pd.Series(checksum_ok, index=index),
            "birth": pd.Series(birth, index=index),
            "birth_impossible": pd.Series(birth_impossible, index=index),
            "sex": pd.Series(_sexes(male, shape_ok), index=index),
        },
        index=index,
    )


def _sexes(male: np.ndarray, known: np.ndarray) -> pd.arrays.ArrowStringArray:
    """男 or 女 where `known`, NA elsewhere, made in Arrow (no Python string per row)."""
    sexes = pc.if_else(pa.array(male), "男", "女")
    sexes = pc.if_else(pa.array(known), sexes, pa.nulls(len(known), pa.string()))
    return pd.arrays.ArrowStringArray(pa.chunked_array([sexes], type=pa.string()))


def age_on(birth: pd.Series, as_of: _dt.date) -> pd.Series:
    """Completed years between each birth date and ``as_of`` (Int64).

    The birthday itself counts (someone born on 2010-06-01 is 10 on
    2020-06-01); someone born on 29 February turns a year older on 1 March in
    common years.  NaT gives NA.
    """
    as_of = _as_date(as_of)
    dates = pd.to_datetime(birth)
    year = dates.dt.year.astype("Int64")
    before_birthday = (dates.dt.month > as_of.month) | (
        (dates.dt.month == as_of.month) & (dates.dt.day > as_of.day)
    )
    age = as_of.year - year - before_birthday.astype("Int64")
    return age.where(dates.notna(), pd.NA).astype("Int64")
