"""member_of must answer exactly as Series.isin would, on arrow strings and on anything else;
kinds_of as a lookup of each cell's type would."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from exitcheck.fastpaths import kinds_of, member_of


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", "string[python]", "object"])
def test_member_of_matches_isin_and_never_counts_blank_as_member(dtype: str) -> None:
    values = pd.Series(["a", None, "b", "c", "a"], dtype=dtype, index=[5, 6, 7, 8, 9])
    pool = pd.Series(["a", "c", None, "z"], dtype=dtype)
    got = member_of(values, pool)
    assert got.dtype == bool
    assert got.index.tolist() == [5, 6, 7, 8, 9]
    assert got.tolist() == [True, False, False, True, True]


def test_member_of_pool_of_another_dtype_is_compared_as_text() -> None:
    values = pd.Series(["1", "2"], dtype="string[pyarrow]")
    pool = pd.Series(["2"], dtype=object)
    assert member_of(values, pool).tolist() == [False, True]


def test_member_of_empty_pool_matches_nothing() -> None:
    values = pd.Series(["1", None], dtype="string[pyarrow]")
    assert member_of(values, pd.Series([], dtype="string[pyarrow]")).tolist() == [False, False]


def test_kinds_of_asks_once_per_type_and_answers_per_cell() -> None:
    cells = np.array(["a", 1.5, None, True, "b", dt.date(2020, 1, 1), 3, 2.0], dtype=object)
    asked: list[type] = []

    def kind(t: type) -> int:
        asked.append(t)
        return {str: 1, float: 2, bool: 3}.get(t, 0)

    assert kinds_of(cells, kind).tolist() == [1, 2, 0, 3, 1, 0, 0, 2]
    assert sorted(asked, key=str) == sorted({str, float, type(None), bool, dt.date, int}, key=str)
    assert kinds_of(np.array([], dtype=object), kind).dtype == np.int8
