"""Fast paths for the few pandas operations that are slow on pyarrow-backed strings.

pandas 3 stores text as pyarrow strings, and most string work then runs in C++. Membership
in a large pool is the exception: `Series.isin` turns the pool into Python objects first
(100 ms for 90,000 ids against 20,000 on the benchmark machine, 2 ms with pyarrow's is_in).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def member_of(values: pd.Series, pool: pd.Series) -> pd.Series:
    """`values.isin(pool)` as a bool Series (NA is never a member), for pools of any size."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        candidates = pa.array(pool.dropna().astype(values.dtype).array).unique()
        found = pc.is_in(pa.array(values.array), value_set=candidates, skip_nulls=True)
        flags = found.to_numpy(zero_copy_only=False).astype(bool, copy=False)
        return pd.Series(np.asarray(flags, dtype=bool), index=values.index, name=values.name)
    return values.isin(pool.dropna().unique()).fillna(False).astype(bool)
