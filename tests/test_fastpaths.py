"""member_of must answer exactly as Series.isin would, on arrow strings and on anything else."""

import pandas as pd
import pytest

from exitcheck.fastpaths import member_of


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
