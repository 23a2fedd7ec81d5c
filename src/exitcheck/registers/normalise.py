"""Column-wise parsers of register cells as offices type them.

County workbooks are typed by hand: numbers as text with thousands separators
and a trailing 元, full-width digits from a Chinese input method, yes/no as
是/否, √/×, Y/N or 1/0, dates as Excel serial numbers or in half a dozen text
forms, stray spaces everywhere.  The reader (python-calamine) hands us each
cell as a Python object (str, int, float, bool, datetime.datetime,
datetime.date, datetime.time, datetime.timedelta or None), so one column can
mix types.

Every parser takes a whole column (an object Series of raw cells) and returns
a :class:`Parsed` pair ``(values, bad)``:

* ``values`` has a typed pandas dtype and NA for blank or unparseable cells;
* ``bad`` is True where a cell was not blank but could not be parsed, so that
  the caller reports a ``bad_value`` issue.  A blank cell is never bad: blank
  means "unknown", which the rules treat differently from a wrong value.

The parsers are vectorised: cells are split by Python type once, text cells go
through pyarrow's string functions on their *distinct* values (a register column
rarely has many) and numbers through numpy, so a 100 000-row sheet is read in
milliseconds.  There is never a Python loop over all rows.  The distinct texts are
worked on as pyarrow arrays, not pandas Series: a column of a dozen distinct
cells made each pandas string call cost a hundred times its work (0.2 ms against
2 µs), twenty calls a column, sixty columns a county.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Callable, Mapping
from typing import NamedTuple, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from exitcheck.fastpaths import flags as arrow_flags
from exitcheck.fastpaths import kinds_of, selected

__all__ = [
    "Parsed",
    "choice",
    "date",
    "integer",
    "is_blank",
    "multi_choice",
    "number",
    "raw_repr",
    "text",
    "year",
    "yes_no",
]


class Parsed(NamedTuple):
    """Result of a column parser.

    ``values``: typed values, NA for blank or unparseable cells.
    ``bad``: bool, True where a non-blank cell could not be parsed.
    """

    values: pd.Series
    bad: pd.Series


# --------------------------------------------------------------------------
# Cell kinds
# --------------------------------------------------------------------------

_BLANK, _STR, _BOOL, _INT, _FLOAT, _DATETIME, _DATE, _TIME, _TIMEDELTA, _OTHER = range(10)


def _kind_of_type(t: type) -> int:
    """Kind code of a Python type (order matters: bool is an int, datetime a date)."""
    if issubclass(t, str):
        return _STR
    if issubclass(t, (bool, np.bool_)):
        return _BOOL
    if issubclass(t, (int, np.integer)):
        return _INT
    if issubclass(t, (float, np.floating)):
        return _FLOAT
    if issubclass(t, (_dt.datetime, np.datetime64)):
        return _DATETIME
    if issubclass(t, _dt.date):
        return _DATE
    if issubclass(t, _dt.time):
        return _TIME
    if issubclass(t, (_dt.timedelta, np.timedelta64)):
        return _TIMEDELTA
    if t is type(None) or t is type(pd.NA) or t is type(pd.NaT):
        return _BLANK
    return _OTHER


# Whole-column shortcuts from pandas' type inference (one C pass instead of a
# type lookup per cell).
_INFERRED_KIND = {
    "string": _STR,
    "empty": _BLANK,
    "integer": _INT,
    "floating": _FLOAT,
    "boolean": _BOOL,
}


def _true(flags: pd.Series | pa.Array) -> np.ndarray:
    """A writable bool array of a nullable bool Series or pyarrow array, NA as False."""
    if isinstance(flags, pa.Array):
        return arrow_flags(flags)
    return np.array(flags.fillna(False), dtype=bool)


def _texts(values: object) -> pa.Array:
    """A pyarrow string array of str objects (None is null)."""
    return pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)


def _fullmatch(texts: pa.Array, pattern: str) -> np.ndarray:
    """Whether each text matches the whole of `pattern` (null: False). RE2 syntax, whose
    `$` is the end of the text only; the patterns here spell white space as _WS."""
    return _true(pc.match_substring_regex(texts, f"^(?:{pattern})$"))


def _contains(texts: pa.Array, pattern: str) -> np.ndarray:
    return _true(pc.match_substring_regex(texts, pattern))


def _where(keep: np.ndarray, texts: pa.Array) -> pa.Array:
    """The texts where `keep`, null elsewhere."""
    return pc.if_else(pa.array(keep, type=pa.bool_()), texts, pa.nulls(len(texts), pa.string()))


def _as_string_series(texts: pa.Array) -> pd.Series:
    """Texts as a pandas string Series (no copy)."""
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([texts], type=pa.string())))


def _map_unique(values: pd.Series, fn: Callable[[object], object]) -> np.ndarray:
    """Apply ``fn`` once per distinct value (cells of one kind only).

    Values of different kinds must not be mixed here: 1, 1.0 and True hash
    alike and would share one result.
    """
    if values.empty:
        return np.empty(0, dtype=object)
    try:
        codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=False)
    except TypeError:  # unhashable objects: rare, convert one by one
        return np.array([fn(v) for v in values], dtype=object)
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [fn(v) for v in uniques]
    return mapped[codes]


# --------------------------------------------------------------------------
# Parsing each distinct cell once
# --------------------------------------------------------------------------

_Result = TypeVar("_Result", pd.Series, Parsed)
_DISTINCT = "exitcheck-distinct"  # in Series.attrs: the cells are the distinct cells of a column
_NUMERIC_TYPES = (bool, int, float, np.bool_, np.integer, np.floating)


def _distinct_cells(raw: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(codes, distinct cells) of a column, blanks (None, NaN) coded -1; None when cells
    of different kinds would share a code.

    A register column holds few distinct cells (twelve forms of yes/no in 90,000 rows), so
    parsing them and spreading the results by code is where the speed comes from. But
    hashing equates True, 1 and 1.0, which text tells apart ('TRUE' against '1'): a column
    mixing boolean and number cells, or int and float cells, is parsed cell by cell instead.
    (-0.0 and 0.0 share a code too; no parser tells them apart.)
    """
    try:
        codes, uniques = pd.factorize(raw.to_numpy(dtype=object))
    except TypeError:  # unhashable cells
        return None
    if pd.api.types.infer_dtype(uniques, skipna=True) in ("string", "empty"):
        return codes, np.asarray(uniques, dtype=object)
    numeric = [t for t in set(map(type, uniques)) if issubclass(t, _NUMERIC_TYPES)]
    if len(numeric) > 1:
        return None
    return codes, np.asarray(uniques, dtype=object)


def _spread(values: pd.Series, codes: np.ndarray, raw: pd.Series, blank: object) -> pd.Series:
    """A result per distinct cell spread back over the rows; blank rows get `blank`."""
    if values.dtype == bool:
        flags = np.full(len(codes), bool(blank))
        present = codes >= 0
        flags[present] = values.to_numpy(dtype=bool)[codes[present]]
        return pd.Series(flags, index=raw.index, name=raw.name)
    spread = pd.api.extensions.take(values.array, codes, allow_fill=True)
    return pd.Series(spread, index=raw.index, name=raw.name)


def _per_distinct(parser: Callable[..., _Result]) -> Callable[..., _Result]:
    """Run a column parser on the column's distinct cells and spread the result back.

    A blank cell (None, NaN) is NA in the values, not bad, and blank for is_blank, exactly
    as the parsers themselves treat it.
    """

    @functools.wraps(parser)
    def on_distinct(raw: pd.Series, *args: object, **kwargs: object) -> _Result:
        split = _distinct_cells(raw)
        if split is None:
            return parser(raw, *args, **kwargs)
        codes, uniques = split
        distinct = pd.Series(uniques, dtype=object)
        distinct.attrs[_DISTINCT] = True  # its string cells need no second factorize
        result = parser(distinct, *args, **kwargs)
        if isinstance(result, Parsed):
            return Parsed(_spread(result.values, codes, raw, None), _spread(result.bad, codes, raw, False))
        return _spread(result, codes, raw, True)  # type: ignore[return-value]

    return on_distinct


# --------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------

# pandas' string dtype (backed by pyarrow when it is installed, which makes the
# regular expressions below run in C++).
_STRING = pd.StringDtype()

# Full-width ASCII forms (U+FF01..U+FF5E) to ASCII and the ideographic space
# U+3000 to a space: what a Chinese input method types instead of ASCII.
_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_WIDTH[0x3000] = 0x20
_WIDE_RE = "[\uff01-\uff5e\u3000]"

# Keys for matching accepted forms: no white space at all, ASCII lowercase.
# (U+3000 is the highest code point Python counts as white space.)
_SPACES = [chr(c) for c in range(0x3001) if chr(c).isspace()]
# White space as Python's re means it by \s: RE2's \s is ASCII only (and misses \v).
_WS = "[" + "".join(_SPACES) + "]"
_SPACES_RE = _WS + "+"
_KEY = {ord(c): None for c in _SPACES}
_KEY.update({c: c + 32 for c in range(ord("A"), ord("Z") + 1)})


def _distinct_clean(values: object, *, distinct: bool = False) -> tuple[np.ndarray, pa.Array]:
    """Normalise string cells once per distinct string.

    Returns ``(codes, uniques)``: cell ``i`` is ``uniques[codes[i]]``, a
    pyarrow string array whose strings are width-normalised and stripped, null
    where nothing is left.  Only the strings holding a full-width form are
    translated (in Python); the rest is pyarrow string functions.  With
    `distinct` the strings are known to be so (no hashing them again).
    """
    strings = np.asarray(values, dtype=object)
    if distinct:
        return np.arange(len(strings)), _cleaned(strings)
    codes, uniques = pd.factorize(strings)
    return codes, _cleaned(uniques)


def _cleaned(distinct: np.ndarray) -> pa.Array:
    """Distinct strings width-normalised and stripped, null where nothing is left."""
    u = _texts(distinct)
    wide = _contains(u, _WIDE_RE)
    if wide.any():
        arr = np.asarray(distinct, dtype=object).copy()
        arr[wide] = [str(v).translate(_WIDTH) for v in arr[wide]]
        u = _texts(arr)
    u = pc.utf8_trim_whitespace(u)
    return _where(_true(pc.not_equal(u, "")), u)


def _float_text(values: np.ndarray) -> np.ndarray:
    """Text of distinct floats: integral values without '.0' (4200.0 -> '4200').

    Integral values below 1e16 are written as integers; the rest keep Python's
    repr (numpy's shortest round-trip form is the same string).
    """
    out = np.empty(len(values), dtype=object)
    integral = np.isfinite(values) & (np.abs(values) < 1e16)
    integral[integral] = values[integral] == np.trunc(values[integral])
    out[integral] = values[integral].astype(np.int64).astype(str)
    out[~integral] = values[~integral].astype(str)
    return out


def _by_float(values: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a vectorised ``fn`` to the distinct floats only."""
    codes, uniques = pd.factorize(values)
    return fn(np.asarray(uniques, dtype=np.float64))[codes]


def _naive_datetime64(value: object) -> np.datetime64:
    if isinstance(value, _dt.datetime):
        return np.datetime64(value.replace(tzinfo=None), "us")
    return np.datetime64(value, "us")  # type: ignore[call-overload]


def _datetime64(values: pd.Series) -> np.ndarray:
    """datetime64[us] of date/datetime cells (time zones dropped), in C."""
    try:
        stamps = pd.to_datetime(values.to_numpy(dtype=object))
        if stamps.tz is not None:
            stamps = stamps.tz_localize(None)
        return stamps.to_numpy(dtype="datetime64[us]")
    except (TypeError, ValueError, OverflowError):  # mixed time zones and such
        return _map_unique(values, _naive_datetime64).astype("datetime64[us]")


def _datetime_strings(values: np.ndarray, sep: str) -> np.ndarray:
    """ISO text of datetime64[us] values: the date alone at midnight, else the
    date and time joined by ``sep`` (microseconds only when there are some)."""
    days = values.astype("datetime64[D]")
    out = np.datetime_as_string(days).astype(object)
    timed = values != days
    if timed.any():
        t = values[timed]
        whole = t == t.astype("datetime64[s]")
        text = np.where(
            whole, np.datetime_as_string(t, unit="s"), np.datetime_as_string(t, unit="us")
        )
        out[timed] = np.char.replace(text, "T", sep).astype(object)
    return out


def _iso(value: object) -> str:
    return value.isoformat()  # type: ignore[attr-defined]


def _iso_datetime(value: object) -> str:
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    return pd.Timestamp(value).isoformat()  # type: ignore[arg-type]  # numpy datetime64


class _Cells:
    """A raw column split by cell kind, with positional (not label) access.

    ``kinds`` is an int8 array of kind codes; None, NaN, pd.NA and NaT are
    ``_BLANK``.  White-space-only strings are ``_STR`` here: they become NA in
    :meth:`strings`, and every parser treats them as blank.
    """

    def __init__(self, raw: pd.Series) -> None:
        self.index = raw.index
        self.name = raw.name
        values = raw.to_numpy(dtype=object)
        self.values = pd.Series(values, dtype=object)
        self.n = len(raw)
        self.distinct = bool(raw.attrs.get(_DISTINCT))
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if inferred in _INFERRED_KIND:
            kinds = np.full(self.n, _INFERRED_KIND[inferred], dtype=np.int8)
        else:
            kinds = kinds_of(values, _kind_of_type)
        kinds[pd.isna(values)] = _BLANK
        self.kinds = kinds
        self._strings: tuple[np.ndarray, np.ndarray, pa.Array] | None = None

    def mask(self, *kinds: int) -> np.ndarray:
        return np.isin(self.kinds, kinds)

    def take(self, mask: np.ndarray) -> pd.Series:
        """Cells where ``mask`` is True, with a positional RangeIndex."""
        return self.values[mask].reset_index(drop=True)

    def strings(self) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        """(mask of string cells, codes, distinct normalised strings)."""
        if self._strings is None:
            m = self.mask(_STR)
            codes, uniques = _distinct_clean(self.take(m), distinct=self.distinct)
            self._strings = (m, codes, uniques)
        return self._strings

    def present(self) -> np.ndarray:
        """Non-blank cells (a string is blank when only white space)."""
        present = self.kinds != _BLANK
        m, codes, uniques = self.strings()
        if m.any():
            present[m] = _true(uniques.is_valid())[codes]
        return present

    def wrap(self, values: object, dtype: object) -> pd.Series:
        return pd.Series(values, index=self.index, name=self.name, dtype=dtype)

    def flags(self, flags: np.ndarray) -> pd.Series:
        return pd.Series(flags, index=self.index, name=self.name, dtype=bool)


def _parse_strings(
    cells: _Cells, parse: Callable[[pa.Array], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Parse the string cells once per distinct normalised string.

    ``parse`` gets the distinct strings (a pyarrow array, may hold nulls) and returns
    a numpy array with one result each.  Returns (mask of string cells,
    result per string cell).
    """
    m, codes, uniques = cells.strings()
    return m, np.asarray(parse(uniques))[codes]


def _text_object(cells: _Cells) -> np.ndarray:
    """Text of every cell as an object array (None for blank)."""
    out = np.full(cells.n, None, dtype=object)
    m, codes, uniques = cells.strings()
    if m.any():
        out[m] = uniques.to_numpy(zero_copy_only=False)[codes]
    m = cells.mask(_INT)
    if m.any():
        out[m] = _map_unique(cells.take(m), str)
    m = cells.mask(_FLOAT)
    if m.any():
        out[m] = _by_float(cells.take(m).to_numpy(dtype=np.float64), _float_text)
    m = cells.mask(_BOOL)
    if m.any():
        out[m] = np.where(cells.take(m).to_numpy(dtype=bool), "TRUE", "FALSE")
    m = cells.mask(_DATETIME, _DATE)
    if m.any():
        out[m] = _datetime_strings(_datetime64(cells.take(m)), " ")
    for kind, fn in (
        (_TIME, _iso),
        (_TIMEDELTA, str),
        (_OTHER, str),
    ):
        m = cells.mask(kind)
        if m.any():
            codes, uniques = _distinct_clean(_map_unique(cells.take(m), fn))
            out[m] = uniques.to_numpy(zero_copy_only=False)[codes]
    return out


@_per_distinct
def text(raw: pd.Series) -> pd.Series:
    """Cells as text (string dtype, NA for blank).

    Full-width ASCII forms become ASCII, U+3000 a space, surrounding white
    space is removed (inner spaces and the middle dot of names stay).
    Numbers lose a spurious '.0' (4200.0 -> '4200'), dates are ISO
    ('2019-10-01'; a datetime with a time keeps it), booleans 'TRUE'/'FALSE'.
    """
    cells = _Cells(raw)
    return cells.wrap(_text_object(cells), _STRING)


#: What a spreadsheet shows in a cell whose formula failed: Excel's error values and
#: LibreOffice's Err:NNN. Read back from the file by error_cells.py, or typed in a CSV saved
#: from Excel. Not data in any column: an ID, a township or a name of "#N/A" is a lookup
#: that failed, and two of them are not one household or one person.
_SPREADSHEET_ERROR = (r"#(?:NULL!|DIV/0!|VALUE!|REF!|NAME\?|NUM!|N/A|GETTING_DATA|SPILL!|CALC!|FIELD!|BLOCKED!"
                      r"|CONNECT!|BUSY!|UNKNOWN!|PYTHON!)|Err:[0-9]{3}")


def spreadsheet_error(texts: pd.Series) -> pd.Series:
    """Whether each text (cleaned, as `text` gives it) is a spreadsheet error value (blank: False).
    Two prefix tests first (1.5 ms a member column): the pattern runs only where one passes,
    which is nowhere in most registers (7 ms a column saved)."""
    array = pa.array(texts.astype(_STRING))
    error = _true(pc.or_(pc.starts_with(array, "#"), pc.starts_with(array, "Err:")))
    if error.any():
        error &= _fullmatch(array, _SPREADSHEET_ERROR)
    return pd.Series(error, index=texts.index)


@_per_distinct
def is_blank(raw: pd.Series) -> pd.Series:
    """True for None, NaN, NaT, pd.NA and strings that are empty or only white
    space (full-width space included): the cells that mean "unknown"."""
    cells = _Cells(raw)
    return cells.flags(~cells.present())


def raw_repr(raw: pd.Series) -> pd.Series:
    """The value as typed, for issue reports (string dtype, NA for blank).

    Strings are kept exactly (unstripped); numbers keep Python's repr
    ('5.13434199001011e+17', '4200.0') so that a number cell is visibly a
    number; booleans are 'True'/'False'; dates and times are ISO.  None, NaN
    and '' are NA.
    """
    cells = _Cells(raw)
    out = np.full(cells.n, None, dtype=object)
    m = cells.mask(_STR)
    if m.any():
        s = cells.take(m).to_numpy(dtype=object)
        out[m] = np.where(s == "", None, s)
    m = cells.mask(_INT)
    if m.any():
        out[m] = _map_unique(cells.take(m), str)
    m = cells.mask(_FLOAT)
    if m.any():
        floats = cells.take(m).to_numpy(dtype=np.float64)
        out[m] = _by_float(floats, lambda u: u.astype(str).astype(object))
    m = cells.mask(_BOOL)
    if m.any():
        out[m] = np.where(cells.take(m).to_numpy(dtype=bool), "True", "False")
    m = cells.mask(_DATETIME)
    if m.any():
        out[m] = _map_unique(cells.take(m), _iso_datetime)
    m = cells.mask(_DATE)
    if m.any():
        out[m] = _datetime_strings(_datetime64(cells.take(m)), "T")
    for kind, fn in (
        (_TIME, _iso),
        (_TIMEDELTA, str),
        (_OTHER, str),
    ):
        m = cells.mask(kind)
        if m.any():
            out[m] = _map_unique(cells.take(m), fn)
    return cells.wrap(out, _STRING)


def _key(form: str) -> str:
    """Matching key: width-normalised, no white space, ASCII lowercase."""
    return form.translate(_WIDTH).translate(_KEY)


def _keys_of(u: pa.Array) -> np.ndarray:
    """Matching keys of distinct texts: as :func:`_key`, with pyarrow string
    functions; only non-ASCII texts holding an ASCII capital are lowered in
    Python (utf8_lower would lower every alphabet)."""
    k = pc.replace_substring_regex(u, _SPACES_RE, "")
    plain = _true(pc.string_is_ascii(k))
    k = pc.if_else(pa.array(plain, type=pa.bool_()), pc.utf8_lower(k), k)
    mixed = ~plain & _contains(k, "[A-Z]")
    out = k.to_numpy(zero_copy_only=False)
    if mixed.any():
        out[mixed] = [_key(str(v)) for v in out[mixed]]
    return out


def _lookup(raw: pd.Series, table: Mapping[str, object], dtype: str) -> Parsed:
    """Normalise cells to text and look their keys up in ``table``.

    The keys are computed once per distinct text and looked up one by one: a
    choice column has a dozen distinct cells, and a dict lookup each is far
    cheaper than building a pandas hash join for them.
    """
    cells = _Cells(raw)
    codes, distinct = pd.factorize(_text_object(cells))
    found = np.array([table.get(key) for key in _keys_of(_texts(distinct))], dtype=object)
    values = np.full(cells.n, None, dtype=object)
    present = codes >= 0
    values[present] = found[codes[present]]
    values[pd.isna(values)] = None
    bad = present & pd.isna(values)
    return Parsed(cells.wrap(values, dtype), cells.flags(bad))


# --------------------------------------------------------------------------
# Yes / no and choices
# --------------------------------------------------------------------------

_YES_FORMS = ("是", "有", "Y", "YES", "√", "✓", "✔", "1", "1.0", "已", "对", "TRUE")
_NO_FORMS = ("否", "无", "N", "NO", "×", "✗", "✘", "X", "0", "0.0", "未", "没有", "不", "FALSE")
_YES_NO = {_key(f): True for f in _YES_FORMS} | {_key(f): False for f in _NO_FORMS}


@_per_distinct
def yes_no(raw: pd.Series) -> Parsed:
    """Yes/no cells ('boolean' dtype).

    Yes: 是 有 Y Yes √ ✓ ✔ 1 已 对 TRUE; no: 否 无 N No × ✗ ✘ X 0 未 没有 不
    FALSE, in any ASCII case, as numbers, text or booleans.  Blank is NA and
    not bad: an unanswered question is unknown, never silently "no".
    """
    return _lookup(raw, _YES_NO, "boolean")


@_per_distinct
def choice(raw: pd.Series, allowed: Mapping[str, str]) -> Parsed:
    """One of a fixed set of values (string dtype, the canonical value).

    ``allowed`` maps every accepted form to its canonical value.  Cells are
    normalised like :func:`text`; matching ignores white space anywhere and
    ASCII case ('a级', 'A 级' and 'A级' are one form).  Raises ValueError when
    two forms of ``allowed`` match alike but have different canonical values,
    because the mapping would then depend on dict order.
    """
    table: dict[str, str] = {}
    for form, canonical in allowed.items():
        key = _key(form)
        if table.setdefault(key, canonical) != canonical:
            raise ValueError(
                f"form {form!r} matches like another form but means {canonical!r},"
                f" not {table[key]!r}"
            )
    return _lookup(raw, table, "string")


_SEPARATORS = r"[,，、;；/]"


@_per_distinct
def multi_choice(raw: pd.Series, allowed: Mapping[str, str]) -> Parsed:
    """Values like '残疾,长期慢性病' mean all of them; each part must be allowed (string dtype,
    the canonical values joined by commas). Parts are split at , ， 、 ; ； and /."""
    cells = text(raw)
    mapping: dict[str, str | None] = {}
    for value in cells.dropna().unique():
        parts = [part.strip() for part in re.split(_SEPARATORS, value) if part.strip()]
        canon = [allowed.get(part) for part in parts]
        mapping[value] = None if (not canon or None in canon) else ",".join(dict.fromkeys(canon))  # type: ignore[arg-type]
    values = cells.map(mapping).astype("string")
    bad = cells.notna() & values.isna()
    return Parsed(values, bad.astype(bool))


# --------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------

_NUMBER_RE = (
    r"[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?"
    r"|[+-]?\.[0-9]+(?:[eE][+-]?[0-9]+)?"
)
_INT_RE = r"[+-]?[0-9]{1,18}"
# Characters that may need removing before a number is a bare numeral.
_DECORATION_RE = "[¥￥元人口()−]"
_CURRENCY_RE = rf"^[¥￥]{_WS}*"
# Units after an amount: 元, 元/人, 元/人/年, (元) (full-width brackets are
# already ASCII by now).
_YUAN_UNITS = rf"{_WS}*(?:元(?:{_WS}*/{_WS}*人(?:{_WS}*/{_WS}*年)?)?|\({_WS}*元{_WS}*\))$"
# Units after a count of people: the above plus 人, 口, (人), (口).
_COUNT_UNITS = rf"{_WS}*(?:元(?:{_WS}*/{_WS}*人(?:{_WS}*/{_WS}*年)?)?|\({_WS}*[元人口]{_WS}*\)|[人口])$"
_INT64_LIMIT = 2.0**63


def _numerals(u: pa.Array, units: str) -> pa.Array:
    """Bare numerals ('4350', '-1.5e3') of number text, null where not a number.

    ``u`` holds distinct normalised strings.  A currency sign in front, a unit
    behind and thousands separators are removed; commas must group by three
    so that a decimal comma ('43,50') is not misread as 4350.
    """
    ok = _fullmatch(u, _NUMBER_RE)
    decorated = ~ok & _contains(u, _DECORATION_RE)
    if decorated.any():
        s = pc.replace_substring(selected(u, decorated), "−", "-")  # U+2212 minus sign
        s = pc.replace_substring_regex(s, _CURRENCY_RE, "")
        s = pc.utf8_trim_whitespace(pc.replace_substring_regex(s, units, ""))
        u = pc.replace_with_mask(u, pa.array(decorated, type=pa.bool_()), s)
        ok[decorated] = _fullmatch(s, _NUMBER_RE)
    return pc.replace_substring(_where(ok, u), ",", "")


def _numerals_to_float(numerals: pa.Array) -> np.ndarray:
    """Floats of bare numerals (NaN where null), each the nearest to its decimal text.

    Through Python's float, not pd.to_numeric: pandas' own parser rounds some long numerals
    to a neighbouring float (all of them under pandas 2.2, those with a leading '+' under 3.x).
    """
    floats = np.full(len(numerals), np.nan)
    valid = _true(numerals.is_valid())
    if valid.any():
        floats[valid] = selected(numerals, valid).to_numpy(zero_copy_only=False).astype(np.float64)
    return floats


def _safe_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond the float range
        return float("nan")


def _int_cells_as_float(values: pd.Series) -> np.ndarray:
    try:
        return values.to_numpy(dtype=np.float64)
    except OverflowError:
        return _map_unique(values, _safe_float).astype(np.float64)


@_per_distinct
def number(raw: pd.Series) -> Parsed:
    """Amounts and other numbers (Float64).

    Number cells are taken as they are; text such as '4,350', '4，350',
    '４２００', '4200元', '4200 元/人', '4200（元）', '￥4200' is read too.
    Negative values parse (the schema decides limits).  Booleans, dates,
    'NaN' and 'inf' are bad: none of them is an amount.
    """
    cells = _Cells(raw)
    values = np.full(cells.n, np.nan)
    m = cells.mask(_FLOAT)
    if m.any():
        values[m] = cells.take(m).to_numpy(dtype=np.float64)
    m = cells.mask(_INT)
    if m.any():
        values[m] = _int_cells_as_float(cells.take(m))
    m, parsed = _parse_strings(cells, lambda u: _numerals_to_float(_numerals(u, _YUAN_UNITS)))
    values[m] = parsed
    bad = cells.present() & ~np.isfinite(values)
    values[bad] = np.nan
    return Parsed(cells.wrap(pd.array(values, dtype="Float64"), "Float64"), cells.flags(bad))


def _integers_of_floats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, ok) for floats that are integral and within int64."""
    ok = np.isfinite(values) & (np.abs(values) < _INT64_LIMIT)
    ok[ok] = values[ok] == np.trunc(values[ok])
    ints = np.zeros(len(values), dtype=np.int64)
    ints[ok] = values[ok].astype(np.int64)
    return ints, ok


def _fits_int64(value: object) -> bool:
    return -(2**63) <= int(value) < 2**63  # type: ignore[call-overload]


def _integers_of_ints(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, ok) for Python/numpy ints, exactly, within int64."""
    approx = _int_cells_as_float(values)
    ok = np.abs(approx) < _INT64_LIMIT
    edge = np.abs(approx) == _INT64_LIMIT  # rounding hides 2**63 - 1 and -2**63
    if edge.any():
        ok[edge] = _map_unique(values[edge], _fits_int64).astype(bool)
    ints = np.zeros(len(values), dtype=np.int64)
    ints[ok] = values[ok].to_numpy(dtype=np.int64)
    return ints, ok


def _integers_of_text(u: pa.Array, units: str) -> np.ndarray:
    """Python ints (None when not a whole number) of distinct number strings.

    Plain integers are converted exactly; decimals and exponents through
    float, and must be whole ('3.0' and '1e3' are fine, '2.5' is not).
    """
    out = np.full(len(u), None, dtype=object)
    if len(u) == 0:
        return out
    numerals = _numerals(u, units)
    plain = _fullmatch(numerals, _INT_RE)
    if plain.any():
        ints = pd.to_numeric(_as_string_series(selected(numerals, plain))).astype("int64").to_numpy(dtype=np.int64)
        out[plain] = ints.astype(object)
    rest = ~plain & _true(numerals.is_valid())
    if rest.any():
        ints, ok = _integers_of_floats(_numerals_to_float(selected(numerals, rest)))
        out[np.flatnonzero(rest)[ok]] = ints[ok].astype(object)
    return out


@_per_distinct
def integer(raw: pd.Series) -> Parsed:
    """Counts and other whole numbers (Int64).

    Read like :func:`number`, and a trailing 人 or 口 is allowed ('5人').  A
    value that is not a whole number (2.5) or does not fit in 64 bits is bad.
    """
    cells = _Cells(raw)
    values = np.zeros(cells.n, dtype=np.int64)
    ok = np.zeros(cells.n, dtype=bool)
    m = cells.mask(_FLOAT)
    if m.any():
        values[m], ok[m] = _integers_of_floats(cells.take(m).to_numpy(dtype=np.float64))
    m = cells.mask(_INT)
    if m.any():
        values[m], ok[m] = _integers_of_ints(cells.take(m))
    m, parsed = _parse_strings(cells, lambda u: _integers_of_text(u, _COUNT_UNITS))
    if m.any():
        good = pd.notna(parsed)
        ints = np.zeros(len(parsed), dtype=np.int64)
        ints[good] = parsed[good].astype(np.int64)
        values[m], ok[m] = ints, good
    bad = cells.present() & ~ok
    values[~ok] = 0
    array = pd.arrays.IntegerArray(values, ~ok)
    return Parsed(cells.wrap(array, "Int64"), cells.flags(bad))


# --------------------------------------------------------------------------
# Dates and years
# --------------------------------------------------------------------------

_EPOCH = _dt.date(1970, 1, 1)
# datetime64[ns] covers 1677-09-21 .. 2262-04-11; keep whole years inside it.
_MIN_DAY = (_dt.date(1678, 1, 1) - _EPOCH).days
_MAX_DAY = (_dt.date(2261, 12, 31) - _EPOCH).days
# Excel's 1900 date system: serial 1 is 1900-01-01 and serial 60 the
# non-existent 1900-02-29, so serials from 61 count from 1899-12-30.
_SERIAL_ORIGIN_LOW = (_dt.date(1899, 12, 31) - _EPOCH).days
_SERIAL_ORIGIN = (_dt.date(1899, 12, 30) - _EPOCH).days
_YYYYMMDD_MIN, _YYYYMMDD_MAX = 19000101, 29991231

# Text dates: 2019-10-01, 2019/10/1, 2019.10.01 (one separator throughout)
# with an optional time, as Excel writes a date turned into text; 20191001;
# 2019年10月1日.  No back-references, so the patterns run on pyarrow too.
_TIME_RE = r"(?:[ T]+[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)?"
_DATE_PATTERNS = tuple(
    rf"^(?P<y>[0-9]{{4}}){sep}(?P<m>[0-9]{{1,2}}){sep}(?P<d>[0-9]{{1,2}}){_TIME_RE}$"
    for sep in ("-", "/", r"\.")
) + (
    r"^(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})$",
    rf"^(?P<y>[0-9]{{4}}){_WS}*年{_WS}*(?P<m>[0-9]{{1,2}}){_WS}*月{_WS}*(?P<d>[0-9]{{1,2}}){_WS}*[日号]?$",
)


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    return days[np.clip(month - 1, 0, 11)] + ((month == 2) & leap)


def _days_of_ymd(ymd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(days since 1970-01-01, ok) of YYYYMMDD integers; ok False for 2019-02-30."""
    ymd = ymd.astype(np.int64)
    year, month, day = ymd // 10000, ymd // 100 % 100, ymd % 100
    ok = (
        (year >= 1)
        & (year <= 9999)
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= _days_in_month(year, month))
    )
    days = np.zeros(len(ymd), dtype=np.int64)
    if ok.any():
        y, m, d = year[ok], month[ok], day[ok]
        months = (y - 1970).astype("datetime64[Y]").astype("datetime64[M]")
        months = months + (m - 1).astype("timedelta64[M]")
        first = months.astype("datetime64[D]")
        days[ok] = (first + (d - 1).astype("timedelta64[D]")).astype(np.int64)
    return days, ok


def _days_of_numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(days, ok) of number cells: YYYYMMDD from 19000101 to 29991231, else an
    Excel serial (its fraction, the time of day, is dropped)."""
    days = np.zeros(len(values), dtype=np.int64)
    ok = np.zeros(len(values), dtype=bool)
    finite = np.isfinite(values)
    whole = np.zeros(len(values), dtype=bool)
    whole[finite] = values[finite] == np.trunc(values[finite])
    is_ymd = whole & (values >= _YYYYMMDD_MIN) & (values <= _YYYYMMDD_MAX)
    if is_ymd.any():
        days[is_ymd], ok[is_ymd] = _days_of_ymd(values[is_ymd].astype(np.int64))
    serial = finite & (values >= 1) & (values < _YYYYMMDD_MIN)
    if serial.any():
        n = np.floor(values[serial]).astype(np.int64)
        days[serial] = np.where(n < 60, _SERIAL_ORIGIN_LOW, _SERIAL_ORIGIN) + n
        ok[serial] = n != 60
    return days, ok


def serial_meaning(cell: object) -> str | None:
    """The day a text of five digits would be as an Excel serial date (2005-10-30 for "38655"),
    or None. Text is never read as a serial: "2019" may be a year typed alone, not 1905-07-11.
    But a CSV of a column that Excel showed as numbers holds such text, and a message can say
    what it would mean; five digits are the serials of 1927-05-18 to 2173-10-14, and no year."""
    text = cell.strip() if isinstance(cell, str) else ""
    if not (text.isascii() and text.isdigit() and len(text) == 5):
        return None
    days, _ = _days_of_numbers(np.array([float(text)]))
    return (_EPOCH + _dt.timedelta(days=int(days[0]))).isoformat()


def _ymd_fields(matched: pa.Array, pattern: str) -> np.ndarray:
    """YYYYMMDD of strings that all match `pattern` (named groups y, m, d), in C++: pandas'
    str.extract calls Python's re once a string."""
    parts = pc.extract_regex(matched, pattern)
    y, m, d = (pc.cast(parts.field(name), pa.int64()).to_numpy() for name in ("y", "m", "d"))
    return y * 10000 + m * 100 + d


def _ymd_of_text(u: pa.Array) -> np.ndarray:
    """YYYYMMDD integers (0 when no form matches) of distinct date strings."""
    out = np.zeros(len(u), dtype=np.int64)
    todo = _true(u.is_valid())
    for pattern in _DATE_PATTERNS:
        if not todo.any():
            break
        rest = selected(u, todo)
        hit = _fullmatch(rest, pattern)
        if not hit.any():
            continue
        rows = np.flatnonzero(todo)[hit]
        out[rows] = _ymd_fields(selected(rest, hit), pattern)
        todo[rows] = False
    return out


@_per_distinct
def date(raw: pd.Series, as_of: _dt.date | None = None) -> Parsed:
    """Dates (datetime64[ns], at midnight).

    Date and datetime cells (the time of day is dropped); numbers from
    19000101 to 29991231 as YYYYMMDD, smaller positive numbers as Excel serial
    dates; text '2019-10-01', '2019/10/1', '2019.10.01', '20191001',
    '2019年10月1日', '2019-10-01 00:00:00'.  Impossible dates (2019-02-30),
    dates outside what datetime64[ns] holds (years 1678-2261) and, when
    ``as_of`` is given, dates after it are bad.
    """
    cells = _Cells(raw)
    days = np.zeros(cells.n, dtype=np.int64)
    ok = np.zeros(cells.n, dtype=bool)
    m = cells.mask(_INT, _FLOAT)
    if m.any():
        days[m], ok[m] = _days_of_numbers(_int_cells_as_float(cells.take(m)))
    m = cells.mask(_DATETIME, _DATE)
    if m.any():
        days[m] = _datetime64(cells.take(m)).astype("datetime64[D]").astype(np.int64)
        ok[m] = True
    m, ymd = _parse_strings(cells, _ymd_of_text)
    if m.any():
        days[m], ok[m] = _days_of_ymd(ymd.astype(np.int64))
    last = _MAX_DAY
    if as_of is not None:
        as_of_day = as_of.date() if isinstance(as_of, _dt.datetime) else as_of
        last = min(last, (as_of_day - _EPOCH).days)
    ok &= (days >= _MIN_DAY) & (days <= last)
    out = np.full(cells.n, np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    out[ok] = days[ok].astype("datetime64[D]").astype("datetime64[ns]")
    return Parsed(cells.wrap(out, "datetime64[ns]"), cells.flags(cells.present() & ~ok))


_YEAR_RE = rf"^(?P<y>[0-9]{{4}}){_WS}*(?:年度?)?$"


def _years_of_text(u: pa.Array) -> np.ndarray:
    """Years (0 when not a year) of distinct strings such as '2019', '2019年'."""
    out = np.zeros(len(u), dtype=np.int64)
    hit = _fullmatch(u, _YEAR_RE)
    if hit.any():
        found = pc.extract_regex(selected(u, hit), _YEAR_RE).field("y")
        out[hit] = pc.cast(found, pa.int64()).to_numpy()
    return out


@_per_distinct
def year(raw: pd.Series) -> Parsed:
    """Years (Int64): 2019, 2019.0, '2019', '2019年', '2019年度'.

    Only four-digit years (1000-9999) are years; the schema narrows the range
    (e.g. exit_year from 1990 to the reference year).  A date is bad: a year
    column holding a date is a typing slip the office should see.
    """
    cells = _Cells(raw)
    values = np.zeros(cells.n, dtype=np.int64)
    m = cells.mask(_INT, _FLOAT)
    if m.any():
        ints, whole = _integers_of_floats(_int_cells_as_float(cells.take(m)))
        values[m] = np.where(whole, ints, 0)
    m, years = _parse_strings(cells, _years_of_text)
    values[m] = years
    ok = (values >= 1000) & (values <= 9999)
    array = pd.arrays.IntegerArray(np.where(ok, values, 0), ~ok)
    return Parsed(cells.wrap(array, "Int64"), cells.flags(cells.present() & ~ok))


def day(text: str) -> _dt.date | None:
    """The day one text names, read as a register's date cell holding that text is (`date`):
    None where such a cell would be bad or blank. For a date given outside a register (--as-of,
    a workspace's as_of), so that every form a clerk may type in a cell works there too."""
    value = date(pd.Series([text], dtype=object)).values.iloc[0]
    return None if pd.isna(value) else value.date()
