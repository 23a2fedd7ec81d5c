"""Derived figures the rules see, computed once per audit, column-wise.

Household: living_members, labour_unemployed, disabled_members, data_errors.
Member: age (from the ID number), the household's fields beside the member's own.
Village: poor_people, incidence, collective_per_capita. Township and county: the same sums
(incidence from summed people and populations, never an average of ratios), plus the county's
satisfaction_rate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from exitcheck.issues import DataIssue
from exitcheck.registers.checks import first_rows, registered
from exitcheck.registers.schema import CAN_WORK

WORKING_AGE = (16, 60)
SATISFIED = ("满意", "基本满意")


def household_frame(households: pd.DataFrame, members: pd.DataFrame, issues: Sequence[DataIssue]) -> pd.DataFrame:
    """One row per household (first row of a repeated id), with the household figures."""
    frame = households[first_rows(households) & households["household_id"].notna()].copy()
    alive = members[members["living"]]
    ids = frame["household_id"]
    # each living member's household as a row of `frame` (its ids are unique), found once:
    # every count below is then a bincount, not a value_counts and a map of 20,000 ids
    owner = pd.Index(ids).get_indexer(alive["household_id"])
    age = alive["age"] if "age" in alive else pd.Series(pd.NA, index=alive.index)
    working_age = age.between(*WORKING_AGE).fillna(False).astype(bool)
    can_work = alive["labor_ability"].isin(CAN_WORK).fillna(False).astype(bool)
    idle = alive["employment"].eq("未务工").fillna(False).astype(bool)
    disabled = alive["health"].str.contains("残疾", regex=False).fillna(False).astype(bool)
    frame["living_members"] = _count_by(owner, np.ones(len(alive), dtype=bool), len(frame))
    frame["labour_unemployed"] = _count_by(owner, (working_age & can_work & idle).to_numpy(), len(frame))
    frame["disabled_members"] = _count_by(owner, disabled.to_numpy(), len(frame))
    errors = Counter(i.household_id for i in issues if i.severity == "error" and i.household_id)
    frame["data_errors"] = ids.map(errors).fillna(0).astype("Int64")
    return frame


def _count_by(owner: np.ndarray, chosen: np.ndarray, households: int) -> pd.arrays.IntegerArray:
    """How many chosen members each household row has (`owner`: a member's row, -1 for none)."""
    counted = owner[chosen & (owner >= 0)]
    return pd.array(np.bincount(counted, minlength=households).astype(np.int64), dtype="Int64")


def member_frame(members: pd.DataFrame, households: pd.DataFrame) -> pd.DataFrame:
    """Living members with their household's fields (the member's own win on a name clash)."""
    alive = members[members["living"]]
    extra = [c for c in households.columns if c not in alive.columns or c == "household_id"]
    joined = alive.reset_index().merge(households[extra], on="household_id", how="left", suffixes=("", "_household"))
    return joined.set_index("index")


def poor_people(households: pd.DataFrame) -> pd.Series:
    """Living people of registered households not yet exited, per household row."""
    poor = registered(households) & households["status"].eq("未脱贫").fillna(False).astype(bool)
    return households["living_members"].where(poor, 0).fillna(0).astype(int)


def village_frame(villages: pd.DataFrame, households: pd.DataFrame) -> pd.DataFrame:
    frame = villages.drop_duplicates(["township", "village"]).copy()
    people = poor_people(households).groupby([households["township"], households["village"]]).sum()
    keys = pd.MultiIndex.from_frame(frame[["township", "village"]].astype(object))
    frame["poor_people"] = pd.Series(people.reindex(keys).fillna(0).astype(int).to_numpy(), index=frame.index).astype("Int64")
    population = frame["population"].astype("Float64")
    frame["incidence"] = (frame["poor_people"].astype("Float64") / population).where(population > 0)
    frame["collective_per_capita"] = (frame["collective_income"].astype("Float64") / population).where(population > 0)
    return frame


def township_frame(townships: pd.DataFrame | None, villages: pd.DataFrame | None, households: pd.DataFrame) -> pd.DataFrame:
    names = townships["township"].dropna().unique() if townships is not None else households["township"].dropna().unique()
    frame = townships.drop_duplicates("township").copy() if townships is not None else pd.DataFrame({"township": pd.array(names, dtype="string")})
    if villages is not None:
        sums = villages.groupby("township")[["population", "poor_people"]].sum()
        frame["population"] = frame["township"].map(sums["population"]).astype("Float64")
        frame["poor_people"] = frame["township"].map(sums["poor_people"]).astype("Float64")
        frame["incidence"] = (frame["poor_people"] / frame["population"]).where(frame["population"] > 0)
    return frame


def satisfaction_flags(households: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per household row: (satisfied, answered), among registered households."""
    answered = registered(households) & households["satisfaction"].notna()
    satisfied = answered & households["satisfaction"].isin(SATISFIED).fillna(False).astype(bool)
    return satisfied, answered


def satisfaction_counts(households: pd.DataFrame) -> tuple[int, int]:
    """(satisfied, answered) among registered households: the numerator and denominator of the
    satisfaction rate, kept apart so that several counties' rates can be combined exactly."""
    satisfied, answered = satisfaction_flags(households)
    return int(satisfied.sum()), int(answered.sum())


def county_frame(households: pd.DataFrame, villages: pd.DataFrame | None) -> pd.DataFrame:
    reg = registered(households)
    satisfied, answered = satisfaction_counts(households)
    row: dict[str, object] = {
        "households": len(households),
        "registered_households": int(reg.sum()),
        "poor_people": int(poor_people(households).sum()),
        "satisfaction_rate": (satisfied / answered) if answered else pd.NA,
    }
    if villages is not None:
        population = villages["population"].sum()
        row["population"] = population
        row["incidence"] = row["poor_people"] / population if population else pd.NA  # type: ignore[operator]
    frame = pd.DataFrame([row])
    for name in ("satisfaction_rate", "incidence"):
        if name in frame:
            frame[name] = frame[name].astype("Float64")
    return frame
