"""Derived figures the rules see, computed once per audit, column-wise.

Household: living_members, labour_unemployed, disabled_members, data_errors.
Member: age (from the ID number), the household's fields beside the member's own.
Village: poor_people, incidence, collective_per_capita. Township and county: the same sums
(incidence from summed people and populations, never an average of ratios), plus the county's
satisfaction_rate.

An incidence is never computed from part of its data: it is blank (待核实) when a population it
sums is blank or unreadable, or when a household register row that may hold poor people is
counted in no village (its 户编号 unreadable, so it left the audit; its 乡镇 or 行政村 blank; its
village not in the village register; its 脱贫状态 or 农户类别 blank or unreadable; members of it
whose 户编号 lost its leading zeros). The unit's `incidence__why` column then holds the facts
(ValueUnknown, Uncounted) that the reason names. A village's collective_per_capita (collective
income / population) is blank when either is: `collective_per_capita__why` names which.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from exitcheck.issues import DataIssue
from exitcheck.registers.checks import PlaceDuplicates, first_rows, registered
from exitcheck.registers.model import ROW, SOURCE
from exitcheck.registers.schema import CAN_WORK
from exitcheck.rules.engine import plain_text

WORKING_AGE = (16, 60)
SATISFIED = ("满意", "基本满意")
WHY_SUFFIX = "__why"


def why_column(name: str) -> str:
    """The column holding, per unit, why the figure `name` is blank (a tuple of facts)."""
    return name + WHY_SUFFIX


@dataclass(frozen=True)
class ValueUnknown:
    """A village whose `field` is blank or cannot be read: no figure computed from it is known
    (户籍人口: every incidence that sums it, and the collective income per person; 村集体经济收入:
    the collective income per person)."""

    field: str
    township: str | None
    village: str | None
    source: int  # the village row's register position (Registers.sources, Excel row)
    row: int


@dataclass(frozen=True)
class Conflicting:
    """A village (township, `village` None) on several rows of its register whose `field` the
    rows disagree on: which row is right is not known, so nothing computed from it is (a
    facility rule, the incidence that sums its 户籍人口)."""

    field: str
    township: str | None
    village: str | None
    rows: tuple[tuple[int, int], ...]  # (register position, Excel row) of the rows that hold it


@dataclass(frozen=True)
class Uncounted:
    """A household register row that may hold poor people but is counted in no village.
    cause: household_id (blank or unreadable: the row left the audit), township or village
    (blank), unknown_village (the pair is not in the village register), status or category
    (blank or unreadable: whether its people are poor is not known), members (some of its
    members' 户编号 lost their leading zeros: they are counted in no household)."""

    source: int
    row: int
    cause: str
    township: str | None
    village: str | None


@dataclass(frozen=True)
class InputsUnread:
    """Input files that could not be read (or whose household sheet was refused): their
    households are in no figure, so the county's incidence is not known."""

    files: tuple[str, ...]


INCIDENCE_WHY = why_column("incidence")


def household_frame(households: pd.DataFrame, members: pd.DataFrame, issues: Sequence[DataIssue],
                    unfounded: Collection[str] = ()) -> pd.DataFrame:
    """One row per household (first row of a repeated id), with the household figures; those
    named in `unfounded` (a member column they count from is absent) unknown for every household:
    no 健康状况 column is not "no member with a disability"."""
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
    for name in unfounded:
        frame[name] = pd.array([pd.NA] * len(frame), dtype="Int64")
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


def uncounted_rows(table: pd.DataFrame, households: pd.DataFrame, villages: pd.DataFrame,
                   members_elsewhere: Collection[str] = ()) -> pd.DataFrame:
    """The rows of the household register (`table`, every row as parsed) that may hold poor
    people but that no village's poor_people counts: a row whose household_id is blank or
    unreadable (it is not in the household frame) that is registered and not exited, or blank
    in either; a household of the frame with poor people whose 乡镇 or 行政村 is blank or whose
    pair is not in `villages`; a household of the frame with living members whose 脱贫状态 is
    blank or unreadable while it is registered (or its 农户类别 too), or whose 农户类别 is
    blank or unreadable while it is 未脱贫: poor_people counts it as not poor, and a village
    would pass on it; a household that may be poor whose members are elsewhere
    (`members_elsewhere`: ids that members typed without their leading zeros, which join no
    household): its poor people are undercounted. Columns township, village, SOURCE, ROW and
    cause."""
    dropped = table["household_id"].isna().to_numpy(dtype=bool)
    no_category, no_status = table["category"].isna().to_numpy(dtype=bool), table["status"].isna().to_numpy(dtype=bool)
    not_exited = table["status"].eq("未脱贫").fillna(False).to_numpy(dtype=bool)
    maybe_registered = table["category"].eq("建档立卡户").fillna(False).to_numpy(dtype=bool) | no_category
    maybe_poor = maybe_registered & (not_exited | no_status)
    kept_poor = (poor_people(households) > 0).reindex(table.index, fill_value=False).to_numpy(dtype=bool)
    # a household counted as not poor only because a cell that would say so is blank or unreadable
    first = first_rows(table).to_numpy(dtype=bool)  # a repeated household_id counts once
    lives = (households["living_members"].reindex(table.index).fillna(0) > 0).to_numpy(dtype=bool) & first & ~dropped
    no_status = no_status & lives & maybe_registered
    no_category = no_category & lives & not_exited
    members_lost = table["household_id"].isin(list(members_elsewhere)).to_numpy(dtype=bool) & maybe_poor & first
    township, village = table["township"], table["village"]
    keys = pd.MultiIndex.from_frame(villages[["township", "village"]].astype(object))
    placed = pd.MultiIndex.from_frame(table[["township", "village"]].astype(object)).isin(keys)
    no_township, no_village = township.isna().to_numpy(dtype=bool), village.isna().to_numpy(dtype=bool)
    cause = np.select([dropped, no_township, no_village, ~placed, no_status, no_category, members_lost],
                      ["household_id", "township", "village", "unknown_village", "status", "category", "members"], default="")
    unsure = no_status | no_category | members_lost
    chosen = (dropped & maybe_poor) | ((kept_poor | unsure) & ~placed) | unsure
    out = table.loc[chosen, ["township", "village", SOURCE, ROW]].copy()
    out["cause"] = cause[chosen]
    return out


def _facts(frame: pd.DataFrame, unit: pd.Series) -> pd.Series:
    """Uncounted facts of the rows of `frame` (an uncounted_rows frame), grouped by `unit`
    (the unit's index label per row; rows with none are left out), in register order."""
    if not len(frame):
        return pd.Series(dtype=object)
    # one fact per row that no village counts: a handful, not the register
    facts = pd.Series([Uncounted(int(s), int(r), c, plain_text(t), plain_text(v)) for t, v, s, r, c in zip(
        frame["township"], frame["village"], frame[SOURCE], frame[ROW], frame["cause"], strict=True)], index=frame.index)
    keep = unit.notna().to_numpy(dtype=bool)
    return facts[keep].groupby(unit[keep].to_numpy()).agg(tuple)


def _population_facts(villages: pd.DataFrame) -> pd.Series:
    """ValueUnknown per village whose population is blank or unreadable (by its index)."""
    return _value_facts(villages, "population")


def _value_facts(villages: pd.DataFrame, name: str) -> pd.Series:
    """ValueUnknown per village whose `name` is blank or unreadable (by its index); for a
    village whose repeated rows disagree on it, its Conflicting fact instead."""
    blank = villages[villages[name].isna()]  # a fact per village whose value is blank: few
    facts = pd.Series([ValueUnknown(name, plain_text(t), plain_text(v), int(s), int(r)) for t, v, s, r in zip(
        blank["township"], blank["village"], blank[SOURCE], blank[ROW], strict=True)], index=blank.index, dtype=object)
    why = why_column(name)
    if why in villages and len(facts):
        conflicting = villages.loc[blank.index, why].dropna()  # a 1-tuple per torn village: few
        facts[conflicting.index] = [held[0] for held in conflicting]
    return facts


def collapse_places(frame: pd.DataFrame, keys: Sequence[str], duplicates: PlaceDuplicates | None) -> pd.DataFrame:
    """One row per place of a village (township) register: the first of a repeated place, with
    each column its rows agree on (the rows of a sheet without the column left out) and NA in
    each column they disagree on, whose `why_column` then holds the Conflicting fact. No row is
    picked silently: checks.check_duplicate_places reported the rows."""
    out = frame.drop_duplicates(list(keys)).copy()
    if duplicates is None:
        return out
    first = duplicates.key.index.intersection(out.index)
    place = duplicates.key[first]
    rows = frame.loc[duplicates.key.index]
    for name in duplicates.differ.columns:
        has = duplicates.has[name]
        agreed = rows.loc[has.to_numpy(), name].groupby(duplicates.key[has]).first()  # first() skips a blank
        differs = duplicates.differ[name].reindex(place.to_numpy()).to_numpy(dtype=bool)
        value = pd.Series(agreed.reindex(place.to_numpy()).array, index=first).where(~differs)
        out[name] = out[name].where(~out.index.isin(first), value.reindex(out.index).astype(out[name].dtype))
        if differs.any():  # a fact per place whose rows disagree: few
            torn = first[differs]
            held = rows.loc[has.to_numpy(), [SOURCE, ROW]].groupby(duplicates.key[has]).agg(tuple)
            facts = [(Conflicting(name, plain_text(out.at[i, "township"]),
                                  plain_text(out.at[i, "village"]) if "village" in out else None,
                                  tuple(zip((int(s) for s in held.at[k, SOURCE]), (int(r) for r in held.at[k, ROW]), strict=True))),)
                     for i, k in zip(torn, place[torn], strict=True)]
            out[why_column(name)] = pd.Series(facts, index=torn, dtype=object).reindex(out.index)
    return out


def _join_facts(index: pd.Index, *parts: pd.Series) -> pd.Series:
    """Per label of `index`: the facts of every part (each a Series of tuples or of single
    facts by label), as one tuple; None where there is none."""
    out = np.empty(len(index), dtype=object)
    out[:] = [()] * len(index)
    for part in parts:
        if not len(part):
            continue
        grouped = part.groupby(level=0).agg(lambda items: tuple(f for item in items for f in (item if isinstance(item, tuple) else (item,))))
        found = grouped.reindex(index)
        # one cell at a time (the units with facts: few): a list of one 1-tuple set through a mask
        # is unpacked into its fact by pandas 2.2 and numpy alike
        for at, facts in zip(np.flatnonzero(found.notna().to_numpy(dtype=bool)), found[found.notna()], strict=True):
            out[at] = out[at] + facts
    joined = pd.Series(out, index=index, dtype=object)
    return joined.where(joined.map(len) > 0, None)


def _village_matches(uncounted: pd.DataFrame, villages: pd.DataFrame) -> pd.DataFrame:
    """Pairs (uncounted row, village row) of a row that names the village: the same 乡镇 and
    行政村 (a row that left the audit), or a blank 乡镇 and the village's name (each village of
    that name, in any township: which one cannot be told). Columns: row (label in
    `uncounted`), unit (label in `villages`), township (the village's)."""
    places = villages[["township", "village"]].astype(object).reset_index(names="unit")
    rows = uncounted[["township", "village"]].astype(object).reset_index(names="row")
    named = rows[rows["township"].notna() & rows["village"].notna()].merge(places, on=["township", "village"])
    by_name = rows[rows["township"].isna() & rows["village"].notna()].drop(columns="township").merge(places, on="village")
    return pd.concat([named, by_name], ignore_index=True)[["row", "unit", "township"]]


def village_frame(villages: pd.DataFrame, households: pd.DataFrame, uncounted: pd.DataFrame | None = None,
                  duplicates: PlaceDuplicates | None = None) -> pd.DataFrame:
    """One row per village of the register (collapse_places: a repeated pair once, unknown where
    its rows disagree), with its figures.
    `uncounted` (uncounted_rows): rows that make the incidence of a village they name blank."""
    frame = collapse_places(villages, ("township", "village"), duplicates)
    people = poor_people(households).groupby([households["township"], households["village"]]).sum()
    keys = pd.MultiIndex.from_frame(frame[["township", "village"]].astype(object))
    frame["poor_people"] = pd.Series(people.reindex(keys).fillna(0).astype(int).to_numpy(), index=frame.index).astype("Int64")
    population = frame["population"].astype("Float64")
    frame["incidence"] = (frame["poor_people"].astype("Float64") / population).where(population > 0)
    frame["collective_per_capita"] = (frame["collective_income"].astype("Float64") / population).where(population > 0)
    # per person: a blank population leaves it unknown as surely as a blank income, and the
    # reason must name the one that is missing, not the quotient
    frame[why_column("collective_per_capita")] = _join_facts(frame.index, _value_facts(frame, "collective_income"), _population_facts(frame))
    parts = [_population_facts(frame)]
    if uncounted is not None and len(uncounted):
        matches = _village_matches(uncounted, frame)
        parts.append(_facts(uncounted.loc[matches["row"]], pd.Series(matches["unit"].to_numpy(), index=uncounted.loc[matches["row"]].index)))
    frame[INCIDENCE_WHY] = _join_facts(frame.index, *parts)
    frame["incidence"] = frame["incidence"].where(frame[INCIDENCE_WHY].isna())
    return frame


def township_frame(townships: pd.DataFrame | None, villages: pd.DataFrame | None, households: pd.DataFrame,
                   uncounted: pd.DataFrame | None = None, duplicates: PlaceDuplicates | None = None) -> pd.DataFrame:
    names = townships["township"].dropna().unique() if townships is not None else households["township"].dropna().unique()
    frame = (collapse_places(townships, ("township",), duplicates) if townships is not None
             else pd.DataFrame({"township": pd.array(names, dtype="string")}))
    if villages is not None:
        sums = villages.groupby("township")[["population", "poor_people"]].sum()
        blank = villages["population"].isna().groupby(villages["township"]).any()
        frame["population"] = frame["township"].map(sums["population"].where(~blank)).astype("Float64")
        frame["poor_people"] = frame["township"].map(sums["poor_people"]).astype("Float64")
        frame["incidence"] = (frame["poor_people"] / frame["population"]).where(frame["population"] > 0)
        # by township name: a township's facts are its villages' populations and its rows
        population = _population_facts(villages)
        parts = [pd.Series(population.to_numpy(), index=villages.loc[population.index, "township"].astype(object).to_numpy(), dtype=object)]
        if uncounted is not None and len(uncounted):
            own = uncounted[uncounted["township"].notna()]
            parts.append(_facts(own, own["township"].astype(object)))
            # a blank 乡镇 and a village's name: each township with a village of that name
            matches = _village_matches(uncounted, villages)
            guessed = matches[uncounted.loc[matches["row"], "township"].isna().to_numpy()].drop_duplicates(["row", "township"])
            rows = uncounted.loc[guessed["row"]]
            parts.append(_facts(rows, pd.Series(guessed["township"].to_numpy(), index=rows.index)))
        why = _join_facts(pd.Index(frame["township"].astype(object)), *parts)
        frame[INCIDENCE_WHY] = why.to_numpy()
        frame["incidence"] = frame["incidence"].where(frame[INCIDENCE_WHY].isna())
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


def county_frame(households: pd.DataFrame, villages: pd.DataFrame | None, uncounted: pd.DataFrame | None = None,
                 unread: Sequence[str] = ()) -> pd.DataFrame:
    """The county's figures; `unread`: the input files that could not be read."""
    reg = registered(households)
    satisfied, answered = satisfaction_counts(households)
    row: dict[str, object] = {
        "households": len(households),
        "registered_households": int(reg.sum()),
        "poor_people": int(poor_people(households).sum()),
        "satisfaction_rate": (satisfied / answered) if answered else pd.NA,
    }
    if villages is not None:
        blank = villages["population"].isna()
        population = pd.NA if blank.any() else villages["population"].sum()
        row["population"] = population
        facts = tuple(_population_facts(villages))
        if uncounted is not None and len(uncounted):
            facts += _facts(uncounted, pd.Series(0, index=uncounted.index)).iloc[0]
        if unread:
            facts += (InputsUnread(tuple(dict.fromkeys(unread))),)
        row[INCIDENCE_WHY] = facts or None
        row["incidence"] = pd.NA if facts or not population else row["poor_people"] / population  # type: ignore[operator]
    frame = pd.DataFrame([row])
    for name in ("satisfaction_rate", "incidence"):
        if name in frame:
            frame[name] = frame[name].astype("Float64")
    return frame
