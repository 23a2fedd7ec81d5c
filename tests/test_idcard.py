"""Tests of exitcheck.idcard (GB 11643-1999 ID numbers)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exitcheck.idcard import age_on, analyse, check_digit, mask, mask_text

AS_OF = dt.date(2020, 6, 30)
FAST = settings(max_examples=200, deadline=None)


def reference_check_digit(first17: str) -> str:
    """Independent formula: weights are 2**(17-i) mod 11, check = (12 - S) mod 11."""
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def make_id(area: str, birth: dt.date, seq: int) -> str:
    first17 = f"{area}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq:03d}"
    return first17 + check_digit(first17)


def wrong_check(id18: str) -> str:
    """The same ID with another (wrong) check character."""
    return id18[:17] + ("0" if id18[17] != "0" else "1")


VALID = make_id("513434", dt.date(1990, 1, 1), 123)  # seq 123: odd -> 男
VALID_F = make_id("513434", dt.date(1985, 12, 31), 124)  # seq 124: even -> 女
# The textbook example of the standard.
TEXTBOOK = "11010519491231002X"


# --------------------------------------------------------------------------
# check_digit
# --------------------------------------------------------------------------


def test_check_digit_textbook_examples() -> None:
    assert check_digit("11010519491231002") == "X"
    assert check_digit("44052418800101001") == "4"
    assert check_digit(VALID[:17]) == VALID[17]


@pytest.mark.parametrize("bad", ["", "1234567890123456", "123456789012345678", "1101051949123100A"])
def test_check_digit_rejects_non_17_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        check_digit(bad)


def test_check_digit_rejects_full_width_digits() -> None:
    with pytest.raises(ValueError):
        check_digit("１１０１０５１９４９１２３１００２")


@FAST
@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_digit_matches_reference(first17: str) -> None:
    assert check_digit(first17) == reference_check_digit(first17)


# --------------------------------------------------------------------------
# mask and mask_text
# --------------------------------------------------------------------------


def test_mask_18_characters() -> None:
    assert mask(TEXTBOOK) == "110105********002X"


def test_mask_15_characters() -> None:
    assert mask("110105491231002") == "110105*****1002"


def test_mask_11_characters_keeps_six_and_four() -> None:
    assert mask("12345678901") == "123456*8901"


@pytest.mark.parametrize("value", ["", "1", "1234567890"])
def test_mask_short_values_are_hidden_entirely(value: str) -> None:
    assert mask(value) == "*" * len(value)


def test_mask_leaves_what_excel_shows_of_an_id_stored_as_a_number() -> None:
    """5.13434E+17 holds six digits, the area code: nothing to hide, and masked it read as
    5.1343*E+17, which no clerk could find. Python's full repr of the number still is masked."""
    assert mask("5.13434E+17") == "5.13434E+17"
    assert mask("5.1E+17") == "5.1E+17"
    assert mask("5.13434199001011e+17") == "5.1343**********e+17"
    assert mask("5.134341990E+17") == "5.1343*****E+17"


def test_mask_none() -> None:
    assert mask(None) is None


@FAST
@given(st.text())
def test_mask_keeps_length_and_ends(value: str) -> None:
    masked = mask(value)
    assert masked is not None
    assert len(masked) == len(value)
    if len(value) >= 11:
        assert masked[:6] == value[:6]
        assert masked[-4:] == value[-4:]
        assert set(masked[6:-4]) == {"*"}
    else:
        assert set(masked) <= {"*"}


def test_mask_text_masks_ids() -> None:
    text = f"身份证号{TEXTBOOK}重复, old 110105491231002; lower 11010519491231002x."
    assert mask_text(text) == (
        "身份证号110105********002X重复, old 110105*****1002; lower 110105********002x."
    )


@pytest.mark.parametrize(
    "text",
    [
        "account 1234567890123456",  # 16 digits: not an ID
        "account 1101051949123100221",  # 19 digits
        "phone 13812345678",
        "number 12345678901234",  # 14 digits
        "",
    ],
)
def test_mask_text_leaves_other_numbers(text: str) -> None:
    assert mask_text(text) == text


non_digits = st.text(alphabet=st.characters(blacklist_categories=("Nd",)))


@FAST
@given(
    non_digits,
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2099, 12, 31)),
    st.integers(min_value=0, max_value=999),
    non_digits,
)
def test_mask_text_hides_birth_digits(
    prefix: str, area: str, birth: dt.date, seq: int, suffix: str
) -> None:
    id18 = make_id(area, birth, seq)
    masked = mask_text(prefix + id18 + suffix)
    assert masked == prefix + mask(id18) + suffix


def test_mask_text_keeps_household_codes() -> None:
    # 18 digits whose "birth date" is no date: a household code, not personal.
    text = "户编号 513434001001000070 缺少户主"
    assert mask_text(text) == text


# --------------------------------------------------------------------------
# analyse: concrete cases
# --------------------------------------------------------------------------


def one(cell: object, as_of: dt.date = AS_OF) -> pd.Series:
    """The analysis row of a single cell."""
    return analyse(pd.Series([cell], dtype=object), as_of).iloc[0]


def test_valid_id() -> None:
    row = one(VALID)
    assert row["id"] == VALID
    assert not row["precision_lost"]
    assert row["shape_ok"]
    assert row["checksum_ok"]
    assert row["birth"] == pd.Timestamp("1990-01-01")
    assert not row["birth_impossible"]
    assert row["sex"] == "男"


def test_female_id() -> None:
    row = one(VALID_F)
    assert row["checksum_ok"]
    assert row["sex"] == "女"
    assert row["birth"] == pd.Timestamp("1985-12-31")


def test_textbook_id_with_x() -> None:
    row = one(TEXTBOOK)
    assert row["checksum_ok"]
    assert row["birth"] == pd.Timestamp("1949-12-31")
    assert row["sex"] == "女"  # digit 17 is 2


def test_lowercase_x_is_read_as_x() -> None:
    row = one(TEXTBOOK.lower())
    assert row["id"] == TEXTBOOK
    assert row["shape_ok"]
    assert row["checksum_ok"]


def test_wrong_check_digit_still_gives_birth_and_sex() -> None:
    row = one(wrong_check(VALID))
    assert row["shape_ok"]
    assert not row["checksum_ok"]
    assert row["birth"] == pd.Timestamp("1990-01-01")
    assert not row["birth_impossible"]
    assert row["sex"] == "男"


def test_number_cell_lost_precision() -> None:
    row = one(5.13434199001011e17)
    assert row["precision_lost"]
    assert row["id"] == "513434199001011008"
    assert not row["shape_ok"]
    assert not row["checksum_ok"]
    assert pd.isna(row["birth"])
    assert not row["birth_impossible"]
    assert pd.isna(row["sex"])


def test_int_cell_is_precision_lost_too() -> None:
    row = one(int(VALID[:17] + "0") if VALID[17] == "X" else int(VALID))
    assert row["precision_lost"]
    assert not row["shape_ok"]
    assert pd.isna(row["birth"])


def test_numpy_number_cell_is_precision_lost() -> None:
    row = one(np.float64(5.13434199001011e17))
    assert row["precision_lost"]


def test_infinite_number_does_not_raise() -> None:
    row = one(math.inf)
    assert row["precision_lost"]


def test_impossible_birth_date_19000229() -> None:
    id18 = make_id("513434", dt.date(1900, 3, 1), 1)
    id18 = id18[:6] + "19000229" + id18[14:17]
    id18 = id18 + check_digit(id18)
    row = one(id18)
    assert row["shape_ok"]
    assert row["checksum_ok"]
    assert pd.isna(row["birth"])
    assert row["birth_impossible"]


def test_leap_day_2000_is_possible() -> None:
    row = one(make_id("513434", dt.date(2000, 2, 29), 1))
    assert row["birth"] == pd.Timestamp("2000-02-29")
    assert not row["birth_impossible"]


@pytest.mark.parametrize(
    ("birth_digits", "possible"),
    [
        ("18991231", False),  # before 1900
        ("19000101", True),
        ("20200630", True),  # the reference date itself
        ("20200701", False),  # after the reference date
        ("19901301", False),  # month 13
        ("19900100", False),  # day 0
        ("19900431", False),  # 31 April
        ("00000000", False),
    ],
)
def test_birth_date_bounds(birth_digits: str, possible: bool) -> None:
    first17 = "513434" + birth_digits + "123"
    row = one(first17 + check_digit(first17))
    assert row["birth_impossible"] is not possible
    assert pd.isna(row["birth"]) is not possible


def test_impossible_birth_with_wrong_check_digit() -> None:
    first17 = "513434" + "19900230" + "123"
    row = one(first17 + ("0" if check_digit(first17) != "0" else "1"))
    assert not row["checksum_ok"]
    assert row["birth_impossible"]


def test_full_width_digits_and_spaces() -> None:
    full = "".join(chr(ord(c) + 0xFEE0) for c in TEXTBOOK)
    row = one("\u3000 " + full + " \u3000")
    assert row["id"] == TEXTBOOK
    assert row["checksum_ok"]


def test_full_width_lowercase_x() -> None:
    row = one(TEXTBOOK[:17] + "\uff58")
    assert row["id"] == TEXTBOOK
    assert row["checksum_ok"]


@pytest.mark.parametrize("cell", [None, math.nan, "", "   ", "\u3000", pd.NA, pd.NaT])
def test_blank_cells(cell: object) -> None:
    row = one(cell)
    assert pd.isna(row["id"])
    assert not row["precision_lost"]
    assert not row["shape_ok"]
    assert not row["checksum_ok"]
    assert pd.isna(row["birth"])
    assert not row["birth_impossible"]
    assert pd.isna(row["sex"])


@pytest.mark.parametrize(
    "cell",
    [
        "12345",
        "abc",
        VALID[:17],  # 17 characters
        VALID + "1",  # 19 characters
        VALID[:10] + " " + VALID[10:],  # an inner space
        "110105491231002",  # old 15-digit ID
    ],
)
def test_wrong_shapes(cell: str) -> None:
    row = one(cell)
    assert not row["shape_ok"]
    assert not row["checksum_ok"]
    assert not row["birth_impossible"]
    assert pd.isna(row["sex"])
    assert not row["precision_lost"]


def test_eighteen_characters_with_a_letter_still_give_birth() -> None:
    cell = VALID[:3] + "A" + VALID[4:]  # a letter in the area code
    row = one(cell)
    assert not row["shape_ok"]
    assert row["birth"] == pd.Timestamp("1990-01-01")
    assert not row["birth_impossible"]  # that is an id_checksum matter


@pytest.mark.parametrize("cell", [True, False, dt.date(2019, 1, 1), dt.datetime(2019, 1, 1, 8)])
def test_non_text_non_number_cells(cell: object) -> None:
    row = one(cell)
    assert not row["precision_lost"]
    assert not row["shape_ok"]
    assert isinstance(row["id"], str)


def test_columns_dtypes_and_index() -> None:
    raw = pd.Series(
        [VALID, None, 5.13434199001011e17, TEXTBOOK], index=[10, 10, 7, 3], dtype=object
    )
    result = analyse(raw, AS_OF)
    assert list(result.columns) == [
        "id",
        "precision_lost",
        "shape_ok",
        "checksum_ok",
        "birth",
        "birth_impossible",
        "sex",
    ]
    assert result.index.equals(raw.index)
    assert result["id"].dtype == "string"
    assert result["sex"].dtype == "string"
    assert result["birth"].dtype == "datetime64[ns]"
    for column in ("precision_lost", "shape_ok", "checksum_ok", "birth_impossible"):
        assert result[column].dtype == bool
    assert result["checksum_ok"].tolist() == [True, False, False, True]
    assert result["precision_lost"].tolist() == [False, False, True, False]


def test_empty_series() -> None:
    result = analyse(pd.Series([], dtype=object), AS_OF)
    assert len(result) == 0
    assert result["birth"].dtype == "datetime64[ns]"


def test_already_clean_string_series() -> None:
    raw = pd.Series([VALID, pd.NA, TEXTBOOK], dtype="string")
    result = analyse(raw, AS_OF)
    assert result["checksum_ok"].tolist() == [True, False, True]


def test_float_series() -> None:
    raw = pd.Series([5.13434199001011e17, math.nan])
    result = analyse(raw, AS_OF)
    assert result["precision_lost"].tolist() == [True, False]


def test_as_of_may_be_a_datetime() -> None:
    row = one(make_id("513434", dt.date(2020, 6, 30), 1), dt.datetime(2020, 6, 30, 23, 59))
    assert not row["birth_impossible"]


def test_large_column_is_consistent() -> None:
    rng = np.random.default_rng(1)
    ids = [
        make_id("513434", dt.date(1950, 1, 1) + dt.timedelta(days=int(d)), int(s))
        for d, s in zip(rng.integers(0, 25000, 2000), rng.integers(0, 1000, 2000), strict=True)
    ]
    raw = pd.Series(ids, dtype=object)
    result = analyse(raw, AS_OF)
    assert result["checksum_ok"].all()
    assert not result["birth_impossible"].any()


# --------------------------------------------------------------------------
# analyse: properties
# --------------------------------------------------------------------------

birth_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=AS_OF)
areas = st.text(alphabet="0123456789", min_size=6, max_size=6)
sequences = st.integers(min_value=0, max_value=999)


@FAST
@given(areas, birth_dates, sequences, st.booleans())
def test_valid_ids_round_trip(area: str, birth: dt.date, seq: int, lower: bool) -> None:
    id18 = make_id(area, birth, seq)
    cell = id18.lower() if lower else id18
    wrong = wrong_check(id18)
    result = analyse(pd.Series([cell, wrong], dtype=object), AS_OF)
    good, bad = result.iloc[0], result.iloc[1]
    assert good["id"] == id18
    assert good["shape_ok"] and good["checksum_ok"]
    assert good["birth"] == pd.Timestamp(birth)
    assert not good["birth_impossible"]
    assert good["sex"] == ("男" if seq % 2 == 1 else "女")
    assert bad["shape_ok"] and not bad["checksum_ok"]
    assert bad["birth"] == pd.Timestamp(birth)
    assert bad["sex"] == good["sex"]


@FAST
@given(areas, st.dates(min_value=dt.date(1, 1, 1)), sequences)
def test_birth_outside_range_is_impossible(area: str, birth: dt.date, seq: int) -> None:
    row = one(make_id(area, birth, seq))
    possible = dt.date(1900, 1, 1) <= birth <= AS_OF
    assert row["birth_impossible"] is not possible


cells = st.one_of(
    st.none(),
    st.text(),
    st.text(alphabet="0123456789xX \u3000\uff10\uff11\uff58", max_size=20),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.just(VALID),
    st.just(wrong_check(VALID)),
)


@FAST
@given(st.lists(cells, max_size=30), st.dates(min_value=dt.date(1900, 1, 1)))
def test_analyse_never_raises_and_keeps_invariants(values: list[object], as_of: dt.date) -> None:
    raw = pd.Series(values, dtype=object, index=pd.RangeIndex(5, 5 + len(values)))
    result = analyse(raw, as_of)
    assert len(result) == len(raw)
    assert result.index.equals(raw.index)
    assert not (result["checksum_ok"] & ~result["shape_ok"]).any()
    assert not (result["shape_ok"] & result["precision_lost"]).any()
    assert (result["sex"].notna() == result["shape_ok"]).all()
    impossible = result["birth_impossible"]
    assert (result.loc[impossible, "shape_ok"]).all()
    assert result.loc[impossible, "birth"].isna().all()
    assert result.loc[result["precision_lost"], "birth"].isna().all()
    assert (result["birth"].dropna() <= pd.Timestamp(as_of)).all()
    ids = result["id"].dropna()
    assert not ids.str.contains("x", regex=False).any()
    assert (ids == ids.str.strip()).all()


# --------------------------------------------------------------------------
# age_on
# --------------------------------------------------------------------------


def test_age_on_completed_years() -> None:
    births = pd.Series(
        pd.to_datetime(["2010-06-30", "2010-07-01", "2004-02-29", None, "2020-06-30"])
    )
    ages = age_on(births, AS_OF)
    assert ages.dtype == "Int64"
    assert ages.tolist()[:3] == [10, 9, 16]
    assert pd.isna(ages.iloc[3])
    assert ages.iloc[4] == 0


def test_age_on_leap_day_birthday() -> None:
    births = pd.Series(pd.to_datetime(["2004-02-29"]))
    assert age_on(births, dt.date(2021, 2, 28)).iloc[0] == 16
    assert age_on(births, dt.date(2021, 3, 1)).iloc[0] == 17
    assert age_on(births, dt.date(2024, 2, 29)).iloc[0] == 20


def test_age_on_keeps_index() -> None:
    births = pd.Series(pd.to_datetime(["2000-01-01", None]), index=["a", "b"])
    assert age_on(births, AS_OF).index.tolist() == ["a", "b"]


@FAST
@given(
    st.lists(st.one_of(st.none(), birth_dates), max_size=20),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 1, 1)),
)
def test_age_on_matches_reference(births: list[dt.date | None], as_of: dt.date) -> None:
    series = pd.Series(pd.to_datetime(pd.Series(births, dtype=object)), dtype="datetime64[ns]")
    ages = age_on(series, as_of)
    for birth, age in zip(births, ages.tolist(), strict=True):
        if birth is None:
            assert pd.isna(age)
        else:
            expected = (
                as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))
            )
            assert age == expected
