"""Fast paths for the few pandas operations that are slow on register columns.

pandas 3 stores text as pyarrow strings, and most string work then runs in C++. Membership
in a large pool is the exception: `Series.isin` turns the pool into Python objects first
(100 ms for 90,000 ids against 20,000 on the benchmark machine, 2 ms with pyarrow's is_in).
And `Series.map(type)` over a column of cells infers a dtype for the 90,000 type objects it
returns (14 ms), where numpy's ufunc of `type` does not (2 ms).

This module imports nothing from the rest of the package: idcard, which must not, uses it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

_TYPE_OF = np.frompyfunc(type, 1, 1)


def flags(mask: pa.Array, null: bool = False) -> np.ndarray:
    """A writable bool array of a pyarrow boolean array, null as `null`."""
    return np.array(mask.fill_null(null).to_numpy(zero_copy_only=False), dtype=bool)


def selected(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """The elements of a pyarrow array where a numpy bool mask is True. pyarrow before 16
    (our floor is 15) takes only a pyarrow array as a filter's mask."""
    return values.filter(pa.array(mask, type=pa.bool_()))


def kinds_of(cells: np.ndarray, kind_of_type: Callable[[type], int]) -> np.ndarray:
    """`kind_of_type(type(cell))` for each cell of an object array, as int8: the function is
    called once per distinct type, not once per cell."""
    codes, types = pd.factorize(_TYPE_OF(cells))
    return np.array([kind_of_type(t) for t in types], dtype=np.int8)[codes]


def member_of(values: pd.Series, pool: pd.Series) -> pd.Series:
    """`values.isin(pool)` as a bool Series (NA is never a member), for pools of any size."""
    import pyarrow.compute as pc

    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        candidates = pa.array(pool.dropna().astype(values.dtype).array).unique()
        found = pc.is_in(pa.array(values.array), value_set=candidates, skip_nulls=True)
        flags = found.to_numpy(zero_copy_only=False).astype(bool, copy=False)
        return pd.Series(np.asarray(flags, dtype=bool), index=values.index, name=values.name)
    return values.isin(pool.dropna().unique()).fillna(False).astype(bool)
