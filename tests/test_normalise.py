"""Tests of exitcheck.registers.normalise (cells as offices type them)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exitcheck.registers.normalise import (
    Parsed,
    choice,
    date,
    integer,
    is_blank,
    number,
    raw_repr,
    text,
    year,
    yes_no,
)

FAST = settings(max_examples=200, deadline=None)
AS_OF = dt.date(2020, 6, 30)


def col(*cells: object) -> pd.Series:
    return pd.Series(list(cells), dtype=object)


def full_width(s: str) -> str:
    """ASCII to the full-width forms a Chinese input method types."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def parse_one(parser: Callable[[pd.Series], Parsed], cell: object) -> tuple[object, bool]:
    values, bad = parser(col(cell))
    value = values.iloc[0]
    return (None if pd.isna(value) else value), bool(bad.iloc[0])


BLANKS = [None, math.nan, "", " ", "\u3000", " \t\u3000 ", pd.NA, pd.NaT]


# --------------------------------------------------------------------------
# is_blank
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cell", BLANKS)
def test_is_blank_true(cell: object) -> None:
    assert is_blank(col(cell)).tolist() == [True]


@pytest.mark.parametrize("cell", ["0", 0, 0.0, False, "-", "无", dt.date(2019, 1, 1), "\u00b7"])
def test_is_blank_false(cell: object) -> None:
    assert is_blank(col(cell)).tolist() == [False]


# --------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("  张三 ", "张三"),
        ("\u3000阿苏·拉哈\u3000", "阿苏·拉哈"),  # the middle dot stays
        ("A 级", "A 级"),  # inner spaces stay
        ("Ａ级", "A级"),
        ("４２００", "4200"),
        ("（元）", "(元)"),
        ("a\u3000b", "a b"),
        (4200.0, "4200"),
        (5134.5, "5134.5"),
        (-3.0, "-3"),
        (42, "42"),
        (13812345678.0, "13812345678"),
        (5.13434199001011e17, "5.13434199001011e+17"),
        (True, "TRUE"),
        (False, "FALSE"),
        (dt.date(2019, 10, 1), "2019-10-01"),
        (dt.datetime(2019, 10, 1), "2019-10-01"),
        (dt.datetime(2019, 10, 1, 8, 30), "2019-10-01 08:30:00"),
        (dt.time(8, 30), "08:30:00"),
        (np.float64(4200.0), "4200"),
        (np.int64(7), "7"),
    ],
)
def test_text(cell: object, expected: str) -> None:
    result = text(col(cell))
    assert result.dtype == "string"
    assert result.iloc[0] == expected


@pytest.mark.parametrize("cell", BLANKS)
def test_text_blank_is_na(cell: object) -> None:
    assert text(col(cell)).isna().all()


def test_text_keeps_index_and_name() -> None:
    raw = pd.Series([" a", None, "b "], index=[5, 5, 2], name="村名", dtype=object)
    result = text(raw)
    assert result.index.equals(raw.index)
    assert result.name == "村名"
    assert result.tolist() == ["a", pd.NA, "b"]


def test_text_of_non_object_series() -> None:
    assert text(pd.Series([4200.0, math.nan])).tolist() == ["4200", pd.NA]
    assert text(pd.Series([" a ", pd.NA], dtype="string")).tolist() == ["a", pd.NA]
    assert text(pd.Series(pd.to_datetime(["2019-10-01", None]))).tolist() == ["2019-10-01", pd.NA]


def test_text_empty_series() -> None:
    assert len(text(pd.Series([], dtype=object))) == 0


# --------------------------------------------------------------------------
# raw_repr
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (5.13434199001011e17, "5.13434199001011e+17"),
        (4200.0, "4200.0"),
        (42, "42"),
        (True, "True"),
        (False, "False"),
        ("  是 ", "  是 "),
        ("４２００", "４２００"),
        (dt.date(2019, 10, 1), "2019-10-01"),
        (dt.datetime(2019, 10, 1, 8, 30), "2019-10-01T08:30:00"),
        (dt.time(8, 30), "08:30:00"),
    ],
)
def test_raw_repr(cell: object, expected: str) -> None:
    assert raw_repr(col(cell)).iloc[0] == expected


@pytest.mark.parametrize("cell", [None, "", math.nan])
def test_raw_repr_blank(cell: object) -> None:
    assert raw_repr(col(cell)).isna().all()


@FAST
@given(st.floats(allow_nan=False))
def test_raw_repr_of_floats_is_python_repr(value: float) -> None:
    assert raw_repr(col(value)).iloc[0] == repr(value)


# --------------------------------------------------------------------------
# yes_no
# --------------------------------------------------------------------------

YES = ["是", "有", "Y", "y", "Yes", "yes", "YES", "√", "✓", "✔", "1", 1, 1.0, "1.0", "已", "对"]
YES += ["TRUE", "true", "True", True, " 是 ", "\u3000是", "Ｙ", "１", "Y e s"]
NO = ["否", "无", "N", "n", "No", "no", "NO", "×", "✗", "✘", "X", "x", "0", 0, 0.0, "未"]
NO += ["没有", "不", "FALSE", "false", False, "Ｎ", "０", " 否\u3000"]


@pytest.mark.parametrize("cell", YES)
def test_yes(cell: object) -> None:
    assert parse_one(yes_no, cell) == (True, False)


@pytest.mark.parametrize("cell", NO)
def test_no(cell: object) -> None:
    assert parse_one(yes_no, cell) == (False, False)


@pytest.mark.parametrize("cell", BLANKS)
def test_yes_no_blank_is_unknown(cell: object) -> None:
    assert parse_one(yes_no, cell) == (None, False)


@pytest.mark.parametrize(
    "cell", ["是否", "2", 2, 0.5, "maybe", "不知道", dt.date(2019, 1, 1), "ok"]
)
def test_yes_no_bad(cell: object) -> None:
    assert parse_one(yes_no, cell) == (None, True)


def test_yes_no_dtype() -> None:
    values, bad = yes_no(col("是", None, "否", "?"))
    assert values.dtype == "boolean"
    assert bad.dtype == bool
    assert values.tolist() == [True, pd.NA, False, pd.NA]
    assert bad.tolist() == [False, False, False, True]


# --------------------------------------------------------------------------
# number
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (4350.0, 4350.0),
        (4350, 4350.0),
        ("4350", 4350.0),
        ("4,350", 4350.0),
        ("4，350", 4350.0),
        ("1,234,567.5", 1234567.5),
        ("４２００", 4200.0),
        ("4200元", 4200.0),
        ("4200 元", 4200.0),
        ("4200元/人", 4200.0),
        ("4200元/\u00a0人", 4200.0),  # white space as Python means it, not RE2's ASCII \s
        ("4200\u2002元 /\u00a0人 / 年", 4200.0),
        ("4200（元）", 4200.0),
        ("￥4200", 4200.0),
        ("¥ 4,200.50", 4200.5),
        ("  4200  ", 4200.0),
        ("\u30004200\u3000", 4200.0),
        ("-120", -120.0),
        ("−120", -120.0),
        ("+5", 5.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("0", 0.0),
        (np.float64(2.5), 2.5),
    ],
)
def test_number(cell: object, expected: float) -> None:
    assert parse_one(number, cell) == (expected, False)


@pytest.mark.parametrize(
    "cell",
    [
        True,
        False,
        "NaN",
        "nan",
        "inf",
        "-inf",
        "Infinity",
        math.inf,
        "abc",
        "43,50",
        "1,0000",
        "4200美元",
        "4.2.1",
        "1e999",
        dt.date(2019, 1, 1),
        dt.time(8),
        "",
        "元",
    ],
)
def test_number_bad(cell: object) -> None:
    value, bad = parse_one(number, cell)
    assert value is None
    assert bad is (cell not in ("",))


@pytest.mark.parametrize("cell", BLANKS)
def test_number_blank(cell: object) -> None:
    assert parse_one(number, cell) == (None, False)


def test_number_dtype_and_index() -> None:
    raw = pd.Series(["1", None, "x", 2.5], index=list("abcd"), dtype=object)
    values, bad = number(raw)
    assert values.dtype == "Float64"
    assert values.index.equals(raw.index)
    assert bad.index.equals(raw.index)
    assert values.tolist() == [1.0, pd.NA, pd.NA, 2.5]
    assert bad.tolist() == [False, False, True, False]


def test_number_of_huge_int_does_not_raise() -> None:
    values, bad = number(col(10**400))
    assert bad.tolist() == [True]


# --------------------------------------------------------------------------
# integer
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (5, 5),
        (5.0, 5),
        ("5", 5),
        ("5人", 5),
        ("5 口", 5),
        ("５", 5),
        ("1,200", 1200),
        ("3.0", 3),
        ("1e3", 1000),
        ("-2", -2),
        (2**63 - 1, 2**63 - 1),
        ("-123456789012345678", -123456789012345678),
        ("123456789012345678", 123456789012345678),
        (np.int64(4), 4),
    ],
)
def test_integer(cell: object, expected: int) -> None:
    assert parse_one(integer, cell) == (expected, False)


@pytest.mark.parametrize(
    "cell",
    [
        2.5,
        "2.5",
        "2.5人",
        True,
        "五",
        2**63,
        10**30,
        "1e30",
        "12345678901234567890",
        math.inf,
        "NaN",
        "人",
        dt.date(2019, 1, 1),
    ],
)
def test_integer_bad(cell: object) -> None:
    assert parse_one(integer, cell) == (None, True)


def test_integer_dtype() -> None:
    values, bad = integer(col("3", None, "x"))
    assert values.dtype == "Int64"
    assert values.tolist() == [3, pd.NA, pd.NA]
    assert bad.tolist() == [False, False, True]


# --------------------------------------------------------------------------
# date
# --------------------------------------------------------------------------

OCT1 = pd.Timestamp("2019-10-01")


@pytest.mark.parametrize(
    "cell",
    [
        "2019-10-01",
        "2019/10/1",
        "2019.10.01",
        "20191001",
        "2019年10月1日",
        "2019年10月01日",
        "2019 年 10 月 1 日",
        "2019\u00a0年10月\u20021日",  # white space RE2's \s misses: session 6's code crashed here
        "2019-10-01 00:00:00",
        "2019-10-01 08:30",
        "２０１９－１０－０１",
        " 2019-10-01\u3000",
        20191001,
        20191001.0,
        43739,
        43739.0,
        43739.75,  # with a time of day
        dt.date(2019, 10, 1),
        dt.datetime(2019, 10, 1),
        dt.datetime(2019, 10, 1, 17, 45),
        pd.Timestamp("2019-10-01"),
        np.datetime64("2019-10-01"),
    ],
)
def test_date(cell: object) -> None:
    assert parse_one(date, cell) == (OCT1, False)


@pytest.mark.parametrize(
    ("serial", "expected"),
    [(1, "1900-01-01"), (59, "1900-02-28"), (61, "1900-03-01"), (36526, "2000-01-01")],
)
def test_date_excel_serials(serial: int, expected: str) -> None:
    assert parse_one(date, serial) == (pd.Timestamp(expected), False)


@pytest.mark.parametrize(
    "cell",
    [
        "2019-02-30",
        "2019-13-01",
        "20190230",
        "2019/10-01",  # mixed separators
        "2019-10",
        "2019年10月",
        "19-10-01",
        "10/01/2019",
        "abc",
        60,  # 1900-02-29 does not exist
        0,
        -5,
        20190230,
        30000101,  # above 29991231
        20191001.5,
        math.inf,
        True,
        dt.time(8),
        dt.timedelta(days=1),
    ],
)
def test_date_bad(cell: object) -> None:
    assert parse_one(date, cell) == (None, True)


@pytest.mark.parametrize("cell", BLANKS)
def test_date_blank(cell: object) -> None:
    assert parse_one(date, cell) == (None, False)


def test_date_after_as_of_is_bad() -> None:
    values, bad = date(col("2020-06-30", "2020-07-01", 20200701), as_of=AS_OF)
    assert values.tolist()[0] == pd.Timestamp("2020-06-30")
    assert bad.tolist() == [False, True, True]
    values, bad = date(col("2020-07-01"))
    assert bad.tolist() == [False]


def test_date_outside_datetime64_range_is_bad() -> None:
    assert parse_one(date, dt.date(1, 1, 1)) == (None, True)
    assert parse_one(date, "2999-12-31") == (None, True)


def test_date_dtype() -> None:
    values, bad = date(col("2019-10-01", None))
    assert values.dtype == "datetime64[ns]"
    assert bad.dtype == bool


# --------------------------------------------------------------------------
# year
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell", [2019, 2019.0, "2019", "2019年", "2019 年", "2019年度", "２０１９", " 2019 "]
)
def test_year(cell: object) -> None:
    assert parse_one(year, cell) == (2019, False)


@pytest.mark.parametrize(
    "cell", ["19", 19, 2019.5, "2019-10-01", dt.date(2019, 1, 1), True, "二〇一九", "20191", 20191]
)
def test_year_bad(cell: object) -> None:
    assert parse_one(year, cell) == (None, True)


# --------------------------------------------------------------------------
# choice
# --------------------------------------------------------------------------

GRADES = {"A": "A", "A级": "A", "B": "B", "B级": "B", "C": "C", "C级": "C", "D": "D", "D级": "D"}


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("A", "A"), ("a", "A"), ("A级", "A"), ("a 级", "A"), (" Ｃ级 ", "C"), ("d\u3000级", "D")],
)
def test_choice(cell: object, expected: str) -> None:
    assert parse_one(lambda raw: choice(raw, GRADES), cell) == (expected, False)


@pytest.mark.parametrize("cell", ["E", "A级危房", 1, True])
def test_choice_bad(cell: object) -> None:
    assert parse_one(lambda raw: choice(raw, GRADES), cell) == (None, True)


def test_choice_numbers_match_their_text() -> None:
    values, bad = choice(col(1, 1.0, "1", 2), {"1": "一", "2": "二"})
    assert values.tolist() == ["一", "一", "一", "二"]
    assert not bad.any()


def test_choice_chinese_forms() -> None:
    allowed = {"满意": "满意", "基本满意": "基本满意", "不满意": "不满意"}
    values, bad = choice(col("满意", " 基本 满意", "不满意", "很满意", None), allowed)
    assert values.tolist() == ["满意", "基本满意", "不满意", pd.NA, pd.NA]
    assert bad.tolist() == [False, False, False, True, False]
    assert values.dtype == "string"


def test_choice_conflicting_forms_raise() -> None:
    with pytest.raises(ValueError):
        choice(col("a"), {"A": "x", "a": "y"})


def test_choice_non_ascii_case_is_kept() -> None:
    # Only ASCII letters are case-folded; other alphabets must match exactly.
    values, bad = choice(col("Ⅰ级", "ⅰ级", "Ä"), {"Ⅰ级": "1", "ä": "a"})
    assert values.tolist() == ["1", pd.NA, pd.NA]
    assert bad.tolist() == [False, True, True]


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

cells = st.one_of(
    st.none(),
    st.just(""),
    st.just(math.nan),
    st.text(),
    st.text(alphabet=" \u3000\t0123456789,.-年月日元人/：:０１２９，．", max_size=14),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.times(),
    st.timedeltas(),
    st.sampled_from(["是", "否", "√", "4,350", "２０１９年", "2019-02-30", "A级"]),
)

PARSERS: list[Callable[[pd.Series], Parsed]] = [
    yes_no,
    number,
    integer,
    date,
    lambda raw: date(raw, AS_OF),
    year,
    lambda raw: choice(raw, GRADES),
]


@FAST
@given(st.lists(cells, max_size=25))
def test_parsers_never_raise_and_respect_blanks(values: list[object]) -> None:
    raw = pd.Series(values, dtype=object, index=pd.RangeIndex(100, 100 + len(values)))
    blank = is_blank(raw)
    assert blank.index.equals(raw.index)
    txt = text(raw)
    assert txt.index.equals(raw.index)
    assert (txt.isna() == blank).all()
    reprs = raw_repr(raw)
    assert reprs.index.equals(raw.index)
    for parser in PARSERS:
        parsed_values, bad = parser(raw)
        assert parsed_values.index.equals(raw.index)
        assert bad.index.equals(raw.index)
        assert bad.dtype == bool
        assert not (bad & blank).any()
        assert parsed_values[bad].isna().all()
        assert parsed_values[blank].isna().all()
        # every non-blank cell is either parsed or bad
        assert (parsed_values.notna() | bad | blank).all()


@FAST
@given(st.lists(cells, max_size=25))
def test_text_is_idempotent(values: list[object]) -> None:
    once = text(pd.Series(values, dtype=object))
    twice = text(once.astype(object))
    assert once.equals(twice)


SEPARATED_FORMS: list[Callable[[dt.date], str]] = [
    lambda d: f"{d.year}-{d.month:02d}-{d.day:02d}",
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: f"{d.year}.{d.month:02d}.{d.day:02d}",
    lambda d: f"{d.year}{d.month:02d}{d.day:02d}",
    lambda d: f"{d.year}年{d.month}月{d.day}日",
    lambda d: f"{d.year}-{d.month:02d}-{d.day:02d} 00:00:00",
    lambda d: full_width(f"{d.year}-{d.month:02d}-{d.day:02d}"),
]

valid_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2261, 12, 31))


@FAST
@given(valid_dates)
def test_dates_round_trip_through_every_form(day: dt.date) -> None:
    cells_ = [form(day) for form in SEPARATED_FORMS]
    cells_ += [day, dt.datetime(day.year, day.month, day.day, 13, 5)]
    cells_.append(day.year * 10000 + day.month * 100 + day.day)
    values, bad = date(pd.Series(cells_, dtype=object))
    assert not bad.any(), cells_
    assert (values == pd.Timestamp(day)).all()


@FAST
@given(st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(2261, 12, 31)))
def test_excel_serials_round_trip(day: dt.date) -> None:
    serial = (day - dt.date(1899, 12, 30)).days
    values, bad = date(col(serial, float(serial) + 0.5))
    assert not bad.any()
    assert (values == pd.Timestamp(day)).all()


@FAST
@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from(["", "元", " 元/人", "(元)"]),
)
def test_integers_with_separators_round_trip(value: int, unit: str) -> None:
    grouped = f"{value:,}"
    cells_ = [
        grouped + unit,
        full_width(grouped) + unit,
        grouped.replace(",", "，"),
        str(value),
        value,
    ]
    ints, bad_i = integer(pd.Series(cells_, dtype=object))
    floats, bad_f = number(pd.Series(cells_, dtype=object))
    assert not bad_i.any()
    assert not bad_f.any()
    assert (ints == value).all()
    assert (floats == float(value)).all()


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip_through_text(value: float) -> None:
    as_text = text(col(value)).iloc[0]
    values, bad = number(col(value, as_text, repr(value)))
    assert not bad.any()
    assert (values == value).all()


@FAST
@given(st.from_regex(r"[+-]?[0-9]{1,25}(\.[0-9]{0,20})?([eE][+-]?[0-9]{1,2})?", fullmatch=True))
def test_number_text_gives_the_nearest_float(numeral: str) -> None:
    """Long numerals, signed ones too, parse to the float nearest their decimal value, as
    Python's float does (pandas' to_numeric rounded '+87.93199898412221975121' to a neighbour)."""
    values, bad = number(col(numeral, f"{numeral}元"))
    assert not bad.any()
    assert (values == float(numeral)).all()


def test_a_signed_long_numeral_is_not_rounded_to_a_neighbour() -> None:
    values, _ = number(col("+87.93199898412221975121", "22517997598961716.0"))
    assert values.tolist() == [87.93199898412222, 22517997598961716.0]


@FAST
@given(st.integers(min_value=1000, max_value=9999), st.sampled_from(["", "年", " 年度"]))
def test_years_round_trip(value: int, suffix: str) -> None:
    values, bad = year(col(value, float(value), f"{value}{suffix}", full_width(str(value))))
    assert not bad.any()
    assert (values == value).all()


yes_no_forms = st.sampled_from(
    ["是", "Yes", "y", "√", "1", "TRUE", "否", "No", "n", "×", "0", "FALSE", "x"]
)


@FAST
@given(
    yes_no_forms, st.text(alphabet=" \u3000\t", max_size=3), st.text(alphabet=" \u3000", max_size=3)
)
def test_yes_no_ignores_spaces_and_case(form: str, before: str, after: str) -> None:
    expected = form in ("是", "Yes", "y", "√", "1", "TRUE")
    cells_ = [before + form + after, form.swapcase(), full_width(form)]
    values, bad = yes_no(pd.Series(cells_, dtype=object))
    assert not bad.any()
    assert (values == expected).all()


def test_large_mixed_column() -> None:
    rng = np.random.default_rng(0)
    raw = pd.Series(rng.choice(np.array(["是", "否", "", None, "√", 1.0, "?"], dtype=object), 5000))
    values, bad = yes_no(raw)
    assert bad.sum() == (raw == "?").sum()
    assert values.sum() == ((raw == "是") | (raw == "√") | (raw == 1.0)).sum()
