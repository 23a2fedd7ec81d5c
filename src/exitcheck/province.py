"""Many counties at once, on a Dask cluster: a prefecture's or a province's registers overnight.

Each county (a workbook or a folder of them) is audited exactly as `exitcheck audit` audits it
on its own — load, validate, evaluate — as one task of a dask.distributed cluster. The task
sends back plain data only: its gaps and data issues as dicts, the households the gap lists
show, and the counts behind every ratio; for the nightly run also its households in an income
band (banded on the worker: the members never leave it). The client merges them: gaps carry their county, the
same household id in two counties becomes a data issue (never a merge), and the figures above
county level (prefecture, province, everything audited) are ratios of summed numerators and
denominators, never averages of the counties' ratios. The result reads like an AuditResult, so
the same writers produce the same outputs, plus a county column and a 县汇总 sheet.

Dask is an optional extra (`pip install 'exitcheck[dask]'`); nothing here imports it until a
cluster is needed, so `--engine local` never does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from exitcheck.auditing import AuditResult, Gap
from exitcheck.errors import ConfigError, ExitcheckError, ExitCode, UsageError, worst
from exitcheck.issues import DataIssue
from exitcheck.rules.engine import Skipped, plain, rule_notes, unfounded_figures
from exitcheck.rules.model import Rule, RuleSet

if TYPE_CHECKING:
    from exitcheck.registers.limits import Limits

INSTALL = "pip install 'exitcheck[dask]'"
#: Columns of the household frame that the gap lists show (household_sheet, risk_sheet).
WRITER_COLUMNS = ("township", "village", "group", "household_id", "head_name", "category", "status", "helper_name", "helper_phone")
#: A county task is retried this often when it raises (a file share that hiccups, a worker
#: that runs out of memory). A worker that dies mid-task is a different case: the scheduler
#: reschedules the task elsewhere on its own (distributed's `allowed-failures`).
RETRIES = 2
SUMMED = ("households", "registered_households", "households_with_gaps", "fail", "unknown", "poor_people", "satisfied", "answered")


def import_distributed(asked_by: str = "--engine dask") -> Any:
    """dask.distributed, or ConfigError (exit 4) with the install line when it is missing;
    `asked_by` names what asked for Dask (an option, or the line of exitcheck.yaml)."""
    try:
        import distributed
    except ImportError:
        raise ConfigError(f"{asked_by} 需要 Dask, 请安装: {INSTALL}", f"{asked_by} needs Dask; install it with: {INSTALL}") from None
    return distributed


# ---- what goes to the cluster and what comes back: plain, picklable data ----

@dataclass(frozen=True)
class CountyInput:
    """One county: its name (the folder or file it came from) and its files or folders."""

    name: str
    paths: tuple[str, ...]


def county_inputs(county_paths: Sequence[Sequence[str | Path]]) -> list[CountyInput]:
    """Name each county by its folder or file name; two counties with one name is a usage error,
    because every finding is reported under the county's name."""
    counties = []
    for paths in county_paths:
        if not paths:
            raise UsageError("有一个县没有给出文件", "a county was given no files")
        first = Path(paths[0])
        name = first.name if first.is_dir() else first.stem
        counties.append(CountyInput(name, tuple(str(p) for p in paths)))
    seen: dict[str, CountyInput] = {}
    for county in counties:
        if county.name in seen:
            both = f"{seen[county.name].paths[0]}, {county.paths[0]}"
            raise UsageError(f"两个县同名「{county.name}」({both}): 每个县的文件或文件夹名须不同",
                             f"two counties are named '{county.name}' ({both}): give each county's file or folder its own name")
        seen[county.name] = county
    return counties


@dataclass
class CountyFailure:
    """A county, or one file of it, that could not be audited; the message names the file."""

    county: str
    zh: str
    en: str
    exit_code: int = int(ExitCode.INPUT)

    def message(self, lang: str = "zh") -> str:
        return f"{self.county}: {self.en if lang == 'en' else self.zh}"


@dataclass
class CountyAudit:
    """What one county task sends back to the client: small beside the county's registers."""

    name: str
    code: str | None  # the county code: the most common first 6 digits of its household ids
    codes: dict[str, int]  # every county code among its household ids, with its households
    gaps: list[dict[str, Any]]  # Gap fields
    issues: list[dict[str, Any]]  # DataIssue fields
    households: pd.DataFrame  # the households with a gap or a data issue: what the lists show
    ids: pd.DataFrame  # every household id with its place, for duplicates across counties
    townships: pd.DataFrame  # households, registered households and incidence per township
    villages: pd.DataFrame | None
    figures: dict[str, Any]  # counts, and the numerators and denominators of the ratios
    # (households with gaps, fails and unknowns are counted from the gaps on the client)
    evaluated: list[str]
    skipped: list[dict[str, Any]]
    extra_columns: list[str]
    digests: list[dict[str, str]]
    failures: list[CountyFailure] = field(default_factory=list)  # files of it that were unreadable
    notes: list[tuple[str, str]] = field(default_factory=list)
    township_names: list[str] = field(default_factory=list)  # its townships, as a single county's audit has them
    bands: pd.DataFrame | None = None  # its households in an income band, every column (when asked for)
    blank_income: int = 0  # households in no band because their income is blank
    no_household_id: int = 0  # rows of its households sheet with no usable household ID
    unfounded: dict[str, list[str]] = field(default_factory=dict)  # engine.unfounded_figures("household")
    #: every living member's ID number with its household and place, for people across counties
    people: pd.DataFrame | None = None


def audit_county(
    county: CountyInput,
    ruleset: RuleSet,
    as_of: date,
    lang: str,
    headers: dict[str, dict[str, str]] | None = None,
    limits: Limits | None = None,
    strict: bool = False,
    bands: bool = False,
    id_numbers: bool = False,
    chinese_messages: bool = False,
) -> CountyAudit | CountyFailure:
    """The cluster task: load, validate and evaluate one county, as `exitcheck audit` does;
    with `bands`, also its households in an income band (`id_numbers`: with the heads' IDs).

    Pure and retry-safe: it reads its files and writes nothing, so running it twice (a retry, or
    a worker lost half-way) gives the same answer. An unreadable county is an answer too (a
    CountyFailure), not an exception: retrying would not make the file readable.
    """
    from exitcheck.auditing import audit
    from exitcheck.registers.load import load

    try:
        registers = load(list(county.paths), headers=headers, limits=limits, strict=strict)
        result = audit(registers, ruleset, as_of=as_of, lang=lang, chinese_messages=chinese_messages)
    except ExitcheckError as error:
        return CountyFailure(county.name, error.zh, error.en, int(error.exit_code))
    return county_audit(county.name, result, bands=bands, id_numbers=id_numbers)


def county_audit(name: str, result: AuditResult, *, bands: bool = False, id_numbers: bool = False) -> CountyAudit:
    """The plain-data form of one county's audit."""
    from exitcheck.income_bands import rows_without_household_id
    from exitcheck.report.gaps_out import township_totals
    from exitcheck.rules.figures import INCIDENCE_WHY, satisfaction_counts

    frames = result.frames
    households = frames["household"]
    shown = {g.household_id for g in result.gaps} | {i.household_id for i in result.data_issues}
    extras = result.registers.extra_columns("households")
    columns = [c for c in dict.fromkeys([*WRITER_COLUMNS, *extras]) if c in households]
    county = frames["county"].iloc[0]
    satisfied, answered = satisfaction_counts(households)
    summary = result.summary()
    codes = county_codes(households["household_id"])
    villages = frames.get("village")
    return CountyAudit(
        name=name,
        code=next(iter(codes), None),
        codes=codes,
        gaps=[asdict(g) for g in result.gaps],
        issues=[asdict(i) for i in result.data_issues],
        households=households.loc[households["household_id"].isin(shown), columns].reset_index(drop=True),
        ids=_id_places(result),
        townships=township_totals(result).reset_index(),
        villages=villages[["township", "village", "poverty_village", "population", "poor_people", "incidence"]].reset_index(drop=True) if villages is not None else None,
        figures={
            "households": summary["households"], "members": summary["members"], "villages": summary["villages"],
            "townships": summary["townships"], "registered_households": summary["registered_households"],
            "poor_people": int(county["poor_people"]),
            "population": plain(county.get("population")), "satisfied": satisfied, "answered": answered,
            # a poor household counted in no village: the sums would give a part for the whole
            "incidence_unknown": plain(county.get(INCIDENCE_WHY)) is not None,
        },
        evaluated=list(result.evaluation.outcomes),
        skipped=[{"rule": s.rule, "zh": s.zh, "en": s.en, "registers": list(s.registers), "partly": s.partly} for s in result.skipped],
        extra_columns=extras,
        digests=result.input_digests,
        failures=[CountyFailure(name, f.zh, f.en, int(f.exit_code)) for f in result.registers.failures],
        notes=list(result.registers.notes),
        township_names=[str(t) for t in frames["township"]["township"].dropna().unique()],
        bands=county_bands(result, id_numbers) if bands else None,
        blank_income=int(households["income_per_capita"].isna().sum()),
        no_household_id=rows_without_household_id(result),
        unfounded=unfounded_figures("household", result.registers),
        people=_people_places(result),
    )


def county_bands(result: AuditResult, id_numbers: bool = False) -> pd.DataFrame:
    """The county's households in an income band: every household column (a department's
    `where` and `columns` may name any), the band, and with `id_numbers` the head's ID number
    (from the members, which stay here). The special groups are worked out on the client."""
    from exitcheck.income_bands import HEAD_ID, head_id_numbers, in_bands

    rows = in_bands(result.frames["household"], result.ruleset.bands)
    rows = rows.drop(columns=[c for c in ("_src", "_row") if c in rows]).reset_index(drop=True)
    if id_numbers:
        rows[HEAD_ID] = head_id_numbers(result, rows["household_id"]).to_numpy()
    return rows


def county_codes(ids: pd.Series) -> dict[str, int]:
    """County codes (the first 6 digits of household ids) by households, most common first."""
    prefix = ids.dropna().astype(str).str[:6]
    return {str(k): int(v) for k, v in prefix[prefix.str.fullmatch(r"\d{6}")].value_counts().items()}


def _id_places(result: AuditResult) -> pd.DataFrame:
    """Each household id with the cell it was read from, compactly (categories, not strings)."""
    households = result.frames["household"]
    return _places(result, households, "household_id").assign(
        township=pd.Categorical(households["township"]), village=pd.Categorical(households["village"]))


def _people_places(result: AuditResult) -> pd.DataFrame:
    """Each living member's ID number with its household and the cell it was read from: the
    same person in two counties is counted poor in both, and only a prefecture sees it."""
    members = result.frames["member"]
    members = members[members["id_number"].notna().to_numpy(dtype=bool)]
    return _places(result, members, "id_number").assign(household_id=members["household_id"].astype(str).to_numpy())


def _places(result: AuditResult, frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """`name` of each row of a register frame with the file, sheet, column and row it was read
    from, compactly (categories, not strings)."""
    # a county's 90,000 members come from a sheet or a few: each source looked up once
    used, at = np.unique(frame["_src"].to_numpy(dtype=np.int64), return_inverse=True)
    sources = [result.registers.sources[int(i)] for i in used]
    cells = [source.column_for(name) for source in sources]

    def per_row(values: list[object]) -> pd.Categorical:
        return pd.Categorical(np.asarray(values, dtype=object)[at])

    return pd.DataFrame({
        name: frame[name].astype(str).to_numpy(),
        "file": per_row([s.file for s in sources]),
        "sheet": per_row([s.sheet for s in sources]),
        "column": per_row([c.letter if c else None for c in cells]),
        "header": per_row([c.header if c else None for c in cells]),
        "row": frame["_row"].astype("int32").to_numpy(),
    })


# ---- the merged result ----

@dataclass
class RulesRun:
    """Which rules ran in some county, and which were skipped where: all the writers ask of an
    evaluation (`rule id in outcomes`)."""

    outcomes: dict[str, None]
    skipped: list[Skipped]


@dataclass
class ProvinceInputs:
    """What the writers ask of the registers of several counties."""

    extra: list[str]
    failures: list[CountyFailure]

    def extra_columns(self, register: str) -> list[str]:
        return self.extra if register == "households" else []

    def refused_columns(self, register: str) -> list[str]:
        """None known across counties: a county's grouped skipped-rule line says its 村表 is
        absent even when it was refused (its issues list the missing_column)."""
        return []


@dataclass
class ProvinceResult:
    """Several counties' audits merged; read by the writers like an AuditResult.

    frames: "household" the households the gap lists show, "township" the per-township totals,
    "village" the villages' incidence, "county" one row per county (an unreadable one too):
    each with a `county` column.
    """

    as_of: date
    ruleset: RuleSet
    lang: str
    counties: list[CountyInput]
    gaps: list[Gap]
    issues: list[DataIssue]
    frames: dict[str, pd.DataFrame]
    evaluation: RulesRun
    registers: ProvinceInputs
    input_digests: list[dict[str, str]]
    notes: list[tuple[str, str]] = field(default_factory=list)
    #: Each county's townships, as a single county's audit lists them (frames["township"]).
    township_names: dict[str, list[str]] = field(default_factory=dict)
    #: The counties' households in an income band, with their county (exitcheck.income_bands.bands
    #: reads them); None when the counties were audited without.
    band_rows: pd.DataFrame | None = None
    blank_income: int = 0
    no_household_id: int = 0
    #: household figures some county cannot tell (figure -> the member columns it lacks), and
    #: which counties those are (figure -> county names)
    unfounded: dict[str, list[str]] = field(default_factory=dict)
    unfounded_in: dict[str, list[str]] = field(default_factory=dict)
    several_counties: ClassVar[bool] = True

    @property
    def data_issues(self) -> list[DataIssue]:
        return self.issues

    @property
    def skipped(self) -> list[Skipped]:
        return self.evaluation.skipped

    @property
    def failures(self) -> list[CountyFailure]:
        return self.registers.failures

    def indicator_rules(self) -> list[Rule]:
        return [r for r in self.ruleset.rules if r.kind == "indicator"]

    def exit_code(self) -> int:
        return 1 if self.gaps else 0

    def county_table(self, gaps: Sequence[Gap] | None = None) -> pd.DataFrame:
        """One row per county with the counts of `gaps` (default: all): the 县汇总 rows."""
        from exitcheck.report.gaps_out import gap_counts

        counties = self.frames["county"].set_index("county")
        counted = gap_counts(self.gaps if gaps is None else gaps, counties.index)
        return counties.join(counted).reset_index()

    def summary(self) -> dict[str, Any]:
        """AuditResult.summary()'s keys, summed over the counties, plus the counties and the
        roll-ups; incidence and satisfaction are ratios of sums."""
        table = self.county_table()
        audited = table[table["state"] == "audited"]
        by_rule = {rule.id: {"fail": 0, "unknown": 0} for rule in self.ruleset.rules if rule.id in self.evaluation.outcomes}
        for gap in self.gaps:
            by_rule[gap.rule][gap.status] += 1
        everything = totals(audited)
        villages = self.frames.get("village")
        incidence: dict[str, Any] = {
            "all": everything["incidence"],
            "counties": {row["county"]: plain(row["incidence"]) for row in audited.to_dict("records")},
        }
        if villages is not None:
            incidence["villages"] = {
                f"{c}/{t}/{v}": plain(x) for c, t, v, x in zip(villages["county"], villages["township"], villages["village"], villages["incidence"], strict=True)
            }
        return {
            **{name: int(audited[name].sum()) for name in ("households", "members", "villages", "townships")},
            "registered_households": int(audited["registered_households"].sum()),
            "households_with_gaps": int(audited["households_with_gaps"].sum()),
            "by_rule": by_rule,
            "incidence": incidence,
            "satisfaction_rate": everything["satisfaction_rate"],
            **rule_notes(self.skipped, self.lang),
            "input_failures": [f.message(self.lang) for f in self.failures],
            "counties": [{k: plain(v) for k, v in row.items()} for row in table.to_dict("records")],
            "rollups": [{k: plain(v) for k, v in row.items()} for row in rollups(audited).to_dict("records")],
        }


def totals(rows: pd.DataFrame) -> dict[str, Any]:
    """Sums over counties, and the ratios of those sums. Incidence is unknown when one of the
    counties has no village populations: a part taken for the whole would mislead."""
    out: dict[str, Any] = {name: int(rows[name].sum()) for name in SUMMED if name in rows}
    population = rows["population"]
    out["population"] = None if population.isna().any() or not len(rows) else float(population.sum())
    unknown = "incidence_unknown" in rows and rows["incidence_unknown"].fillna(False).astype(bool).any()
    out["incidence"] = out["poor_people"] / out["population"] if out["population"] and not unknown else None
    out["satisfaction_rate"] = out["satisfied"] / out["answered"] if out["answered"] else None
    return out


def rollups(rows: pd.DataFrame) -> pd.DataFrame:
    """The figures above county level: each prefecture (code ..00) and province (code ..0000)
    from its counties' codes, then everything audited when that is not one province."""
    groups: list[tuple[str, str | None, pd.DataFrame]] = []
    codes = rows["code"].astype(object)
    known = codes.notna()
    for level, width, pad in (("prefecture", 4, "00"), ("province", 2, "0000")):
        parent = codes[known].map(lambda c, w=width, p=pad: c[:w] + p)
        groups.extend((level, str(code), rows.loc[members.index]) for code, members in parent.groupby(parent, sort=True))
    if len({g[1] for g in groups if g[0] == "province"}) != 1 or not known.all():
        groups.append(("all", None, rows))
    return pd.DataFrame([{"level": level, "code": code, **totals(members)} for level, code, members in groups],
                        columns=["level", "code", *SUMMED, "population", "incidence", "satisfaction_rate"])


ROLLUP_LABEL = {"prefecture": ("{code} 市(州)合计", "prefecture {code}"), "province": ("{code} 省合计", "province {code}"),
                "all": ("全部合计", "all counties")}


def rollup_rows(rows: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The roll-up lines under the 县汇总 rows, labelled in the county column."""
    audited = rows[rows["state"] == "audited"]
    lines = rollups(audited)
    lines.insert(0, "county", [ROLLUP_LABEL[lv][1 if lang == "en" else 0].format(code=c) for lv, c in zip(lines["level"], lines["code"], strict=True)])
    return lines.drop(columns=["level"])


def merge(counties: Sequence[CountyInput], outcomes: dict[str, CountyAudit | CountyFailure], ruleset: RuleSet,
          as_of: date, lang: str) -> ProvinceResult:
    """The counties' answers, in input order, as one result."""
    audits = [o for c in counties if isinstance(o := outcomes[c.name], CountyAudit)]
    failures = [f for c in counties for f in _failures_of(outcomes[c.name])]
    gaps = [Gap(**{**g, "county": a.name}) for a in audits for g in a.gaps]
    issues = [DataIssue(**{**i, "county": a.name}) for a in audits for i in a.issues]
    duplicates = duplicates_across_counties(audits)
    issues.extend(duplicates)
    evaluated = {rule_id for a in audits for rule_id in a.evaluated}
    skipped = [Skipped(s["rule"], f"{a.name}: {s['zh']}", f"{a.name}: {s['en']}", tuple(s["registers"]), a.name, s.get("partly", False))
               for a in audits for s in a.skipped]
    extras = list(dict.fromkeys(e for a in audits for e in a.extra_columns))
    notes = [(f"{a.name}: {zh}", f"{a.name}: {en}") for a in audits for zh, en in a.notes] + _code_notes(audits)
    frames = {
        "household": _households(audits, duplicates),
        "township": _stack([(a.name, a.townships) for a in audits], ["county", "township", "households", "registered"]),
        "village": _stack([(a.name, a.villages) for a in audits if a.villages is not None],
                          ["county", "township", "village", "poverty_village", "population", "poor_people", "incidence"]),
        "county": _county_rows(counties, outcomes),
    }
    return ProvinceResult(
        as_of=as_of, ruleset=ruleset, lang=lang, counties=list(counties), gaps=gaps, issues=issues, frames=frames,
        evaluation=RulesRun(outcomes={r.id: None for r in ruleset.rules if r.id in evaluated}, skipped=skipped),
        registers=ProvinceInputs(extras, failures), input_digests=[d for a in audits for d in a.digests], notes=notes,
        township_names={a.name: a.township_names for a in audits},
        band_rows=_band_rows(audits) if audits and all(a.bands is not None for a in audits) else None,
        blank_income=sum(a.blank_income for a in audits),
        no_household_id=sum(a.no_household_id for a in audits),
        unfounded={figure: list(dict.fromkeys(c for a in audits for c in a.unfounded.get(figure, ())))
                   for figure in dict.fromkeys(f for a in audits for f in a.unfounded)},
        unfounded_in={figure: [a.name for a in audits if figure in a.unfounded]
                      for figure in dict.fromkeys(f for a in audits for f in a.unfounded)},
    )


def _band_rows(audits: Sequence[CountyAudit]) -> pd.DataFrame:
    """The counties' band rows one under the other, each with its county. A column that some
    county lacks (an unknown column of its own, a rule skipped there) keeps its type."""
    parts = [(a.name, a.bands) for a in audits if a.bands is not None]
    stacked = _stack(parts, ["county", "household_id", "band"])
    for column in stacked.columns:
        kinds = {str(frame[column].dtype) for _, frame in parts if column in frame}
        if len(kinds) == 1 and str(stacked[column].dtype) not in kinds:
            kind = next(iter(kinds))
            with contextlib.suppress(TypeError, ValueError):
                stacked[column] = stacked[column].astype(kind)
    return stacked


def _failures_of(outcome: CountyAudit | CountyFailure) -> list[CountyFailure]:
    return [outcome] if isinstance(outcome, CountyFailure) else outcome.failures


def _stack(parts: list[tuple[str, pd.DataFrame]], columns: list[str]) -> pd.DataFrame:
    """Per-county frames one under the other, each row naming its county first."""
    frames = [frame.assign(county=name) for name, frame in parts]
    if not frames:
        return pd.DataFrame(columns=columns)
    stacked = pd.concat(frames, ignore_index=True)
    return stacked[["county", *[c for c in stacked.columns if c != "county"]]]


def _households(audits: Sequence[CountyAudit], duplicates: Sequence[DataIssue]) -> pd.DataFrame:
    """The households the lists show. One known only from a cross-county duplicate gets its
    place from the id list, so that its township's book still carries the issue."""
    frames = _stack([(a.name, a.households) for a in audits], ["county", *WRITER_COLUMNS])
    shown = set(zip(frames["county"], frames["household_id"], strict=True))
    wanted = {(i.county, i.household_id) for i in duplicates} - shown
    if wanted:
        places = _stack([(a.name, a.ids[["household_id", "township", "village"]]) for a in audits], ["county", "household_id"])
        keys = pd.MultiIndex.from_frame(places[["county", "household_id"]].astype(object))
        extra = places[keys.isin(list(wanted))].drop_duplicates(["county", "household_id"])
        frames = pd.concat([frames, extra.astype({"township": object, "village": object})], ignore_index=True)
    return frames


def _county_rows(counties: Sequence[CountyInput], outcomes: dict[str, CountyAudit | CountyFailure]) -> pd.DataFrame:
    rows = []
    for county in counties:
        outcome = outcomes[county.name]
        if isinstance(outcome, CountyFailure):
            rows.append({"county": county.name, "code": None, "state": "unreadable"})
            continue
        figures = outcome.figures
        population = figures["population"]
        rows.append({
            "county": county.name, "code": outcome.code, "state": "audited", **figures,
            "incidence": figures["poor_people"] / population if population and not figures.get("incidence_unknown") else None,
            "satisfaction_rate": figures["satisfied"] / figures["answered"] if figures["answered"] else None,
        })
    frame = pd.DataFrame(rows)
    for name in ("households", "members", "villages", "townships", "registered_households", "poor_people", "satisfied", "answered"):
        frame[name] = frame[name].astype("Int64") if name in frame else pd.array([pd.NA] * len(frame), dtype="Int64")
    for name in ("population", "incidence", "satisfaction_rate"):
        frame[name] = frame[name].astype("Float64") if name in frame else pd.array([pd.NA] * len(frame), dtype="Float64")
    return frame


def _code_notes(audits: Sequence[CountyAudit]) -> list[tuple[str, str]]:
    """County codes that do not name one county each: a county's ids under several codes, or two
    counties under one code (the same county given twice?)."""
    notes = []
    for audit in audits:
        if len(audit.codes) > 1:
            others = ", ".join(f"{code} ({n})" for code, n in list(audit.codes.items())[1:])
            notes.append((f"{audit.name}: 户编号的县代码以 {audit.code} 为主, 另有 {others}",
                          f"{audit.name}: household ids are mostly under county code {audit.code}, also {others}"))
    by_code: dict[str, list[str]] = {}
    for audit in audits:
        if audit.code:
            by_code.setdefault(audit.code, []).append(audit.name)
    for code, names in by_code.items():
        if len(names) > 1:
            notes.append((f"县代码 {code} 同时出现在 {'、'.join(names)}: 是否同一个县给了两次?",
                          f"county code {code} is shared by {', '.join(names)}: the same county given twice?"))
    return notes


def duplicates_across_counties(audits: Sequence[CountyAudit]) -> list[DataIssue]:
    """The same household id, or the same living person's ID number, in two or more counties:
    a data issue on each county's row, never a merge (each county goes on auditing its own)."""
    households = _across_counties([(a.name, a.ids) for a in audits], "household_id", "household_id",
                                  "duplicate_household_across_counties")
    people = _across_counties([(a.name, a.people) for a in audits if a.people is not None], "id_number", "household_id",
                              "duplicate_person_across_counties")
    return households + people


def _across_counties(frames: Sequence[tuple[str, pd.DataFrame]], key: str, household: str, code: str) -> list[DataIssue]:
    """`code` on every row whose `key` is in more than one county, naming the other counties'
    rows (by file and row); `household` is the column that gives the row's household."""
    places = _stack(list(frames), ["county", key])
    if places.empty:
        return []
    per_county = places.drop_duplicates([key, "county"])
    shared = per_county.loc[per_county[key].duplicated(keep=False), key]
    rows = places[places[key].isin(set(shared))].astype({"file": object, "sheet": object, "column": object, "header": object})
    issues = []
    for value, group in rows.groupby(key, sort=True):  # the shared values: few
        records = group.to_dict("records")
        for record in records:
            others = [r for r in records if r["county"] != record["county"]]
            issues.append(DataIssue(
                code=code, file=record["file"], sheet=record["sheet"], row=int(record["row"]),
                column=record["column"], header=record["header"], field=key, value=str(value),
                household_id=str(record[household]), county=record["county"],
                params={"others": {
                    "zh": "、".join(f"{r['county']}({r['file']} 第 {r['row']} 行)" for r in others),
                    "en": ", ".join(f"{r['county']} ({r['file']} row {r['row']})" for r in others),
                }},
            ))
    return issues


# ---- running on the cluster ----

class ClusterError(ExitcheckError):
    """Some county's task never came back (its workers kept dying, or it failed past its
    retries): nothing is written, because a province report missing a county would mislead."""

    exit_code = ExitCode.INTERNAL


class CountyError(ExitcheckError):
    """No output: with --strict the first county that could not be audited stops the run;
    without, a run in which no county at all could be audited has nothing to report."""

    def __init__(self, failures: Sequence[CountyFailure]) -> None:
        super().__init__("; ".join(f.message("zh") for f in failures), "; ".join(f.message("en") for f in failures))
        self.exit_code = ExitCode(worst(*(f.exit_code for f in failures)))


#: A LocalCluster's scheduler serves HTTP (health, metrics) even with its dashboard off. On Dask's
#: default 8787 it would take the port of an office's own Dask dashboard, or warn when another
#: cluster runs on the machine: a free port, on this machine only.
LOCAL_SCHEDULER = {"dashboard_address": "127.0.0.1:0"}


@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, workers: int | None = None, *, tasks: int | None = None) -> Iterator[Any]:
    """A Client of the scheduler at `scheduler`, or of a LocalCluster started (and stopped) here.

    The local cluster runs one single-threaded process per worker: loading and evaluating hold
    the GIL much of the time, so processes, not threads, give parallel counties.
    """
    distributed = import_distributed()
    if scheduler:
        try:
            # No timeout of our own: Dask's (distributed.comm.timeouts.connect, 30 s unless the
            # Dask configuration or DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT says otherwise) is
            # where a site that starts its scheduler slowly, or wants to fail fast, sets it.
            client = distributed.Client(scheduler)
        except (OSError, TimeoutError) as error:
            raise ConfigError(f"无法连接 Dask 调度器 {scheduler}: {error}", f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
        with client:
            yield client
        return
    count = workers or min(os.cpu_count() or 1, tasks or os.cpu_count() or 1)
    with distributed.LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=None,
                                  scheduler_kwargs=LOCAL_SCHEDULER, silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        yield client


def audit_counties(
    county_paths: Sequence[Sequence[str | Path]],
    ruleset: RuleSet,
    *,
    as_of: date | None,
    lang: str = "zh",
    scheduler: str | None = None,
    workers: int | None = None,
    strict: bool = False,
    headers: dict[str, dict[str, str]] | None = None,
    limits: Limits | None = None,
    on_county: Callable[[CountyAudit | CountyFailure, int, int], None] | None = None,
    bands: bool = False,
    id_numbers: bool = False,
    chinese_messages: bool = False,
) -> ProvinceResult:
    """Audit each county (a list of workbooks or folders) as one task on a Dask cluster.

    A county that cannot be read is reported in `failures` and the others complete, unless
    `strict`. With `bands` each county also bands its households on its worker, so that
    exitcheck.income_bands.bands() and the department lists work on the result; `id_numbers` adds the
    heads' ID numbers, for a department that lists `id_number`; `chinese_messages` keeps each gap's
    Chinese message too (exitcheck.auditing.audit). Raises ClusterError when a county's task never comes back, so that no output is
    written without every county accounted for. `on_county(outcome, done, total)` is called as
    each county comes back. The files must be readable at the same paths on the workers.
    """
    distributed = import_distributed()
    counties = county_inputs(county_paths)
    # One reference date for every county, fixed here: a run that crosses midnight must not
    # judge two counties by two different days.
    as_of = as_of or date.today()
    outcomes: dict[str, CountyAudit | CountyFailure] = {}
    lost: dict[str, str] = {}
    with cluster_client(scheduler, workers, tasks=len(counties)) as client:
        run = uuid.uuid4().hex[:12]  # fresh keys: a long-lived scheduler must not hand back last night's answer
        futures = {
            client.submit(audit_county, county, ruleset, as_of, lang, headers, limits, strict, bands, id_numbers,
                          chinese_messages, key=f"exitcheck-county-{run}-{index}", retries=RETRIES): county
            for index, county in enumerate(counties)
        }
        for future in distributed.as_completed(list(futures)):
            county = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # lost to the cluster: KilledWorker, or a bug past its retries
                lost[county.name] = f"{type(error).__name__}: {error}"
                continue
            if strict and _failures_of(outcome):
                client.cancel(list(futures))
                raise CountyError(_failures_of(outcome)[:1])
            outcomes[county.name] = outcome
            if on_county:
                on_county(outcome, len(outcomes) + len(lost), len(counties))
    if lost:
        detail = "; ".join(f"{name}: {reason}" for name, reason in lost.items())
        raise ClusterError(f"{len(lost)} 个县的核查任务失败, 未写出任何结果: {detail}",
                           f"the audit of {len(lost)} counties failed on the cluster; nothing was written: {detail}")
    if not any(isinstance(outcome, CountyAudit) for outcome in outcomes.values()):
        raise CountyError([f for outcome in outcomes.values() for f in _failures_of(outcome)])
    return merge(counties, outcomes, ruleset, as_of, lang)
