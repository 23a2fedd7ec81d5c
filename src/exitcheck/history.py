"""The run history: every nightly run and its findings in SQLite under the workspace `state`,
so the county can see, night after night, which gaps were closed, which are new and which are
stuck.

A finding is identified by a fingerprint: the sha256 of its rule id, its level and its unit key
(the household id for household and member rules, "township/village", the township, or
"county"). Never the row, the file, the message or the status: rows move, files are renamed,
messages are reworded and a fail that turns into an unknown is still the same open problem.

Ages are counted in calendar days between the runs' *days*: a run's day is its reference date
(`as_of`), which is the date it ran unless the workspace or `--as-of` pins another. Each stored
finding carries the run that began its current open streak (`open_since`), carried forward from
the previous good run, so an age never needs old rows and survives retention.

Several counties audited together (`engine: dask`) repeat township and village names and each
has its county rules: their findings above household level are keyed by county too, and their
township is labelled "<county>-<township>", as their township books are (a county rule's
finding: the county's name, where a single county's is "county"). A household keeps its
id alone as its key (ids carry the county code), so its findings keep their age when a
workspace moves from the local engine to Dask; the same id in two counties (itself a data issue)
is then one finding.

A failed run (unreadable input, crash, killed) is recorded with its status and nothing else: it
is left out of streaks, the diff and the burn-down, because half-read registers would make
households "resolved" that were merely not read. A run is written in one transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from exitcheck.errors import UsageError
from exitcheck.i18n import did_you_mean, pick
from exitcheck.idcard import mask_text
from exitcheck.state_files import HISTORY, prove_writable, workspace_files

DB_NAME = "history.sqlite"
Status = Literal["ok", "findings", "failed"]
HOUSEHOLD_LEVELS = ("household", "member")
COUNTY = "county"  # the unit key of county rules, and the township label of county counts
#: The township label of the counts of households, members and villages whose 乡镇 is blank:
#: they are not the county's own findings, and a progress sheet that counted them so would say so.
NO_TOWNSHIP = "no-township"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,            -- sortable: 20200630-020000 (local start time)
    started TEXT NOT NULL,          -- ISO 8601 with offset
    ended TEXT NOT NULL,
    day TEXT,                       -- the reference date (as_of); NULL if failed before the audit
    status TEXT NOT NULL CHECK (status IN ('ok', 'findings', 'failed')),
    exit_code INTEGER NOT NULL,
    inputs TEXT NOT NULL,           -- JSON [{path, sha256}]
    ruleset_name TEXT,
    ruleset_version TEXT,
    ruleset_sha256 TEXT,
    note TEXT,                      -- why a run failed, ID numbers masked
    pruned INTEGER NOT NULL DEFAULT 0  -- findings removed by retention (counts are kept)
);
CREATE TABLE IF NOT EXISTS counts (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rule TEXT NOT NULL,
    township TEXT NOT NULL,         -- 'county' for county rules
    fail INTEGER NOT NULL,
    unknown INTEGER NOT NULL,
    PRIMARY KEY (run_id, rule, township)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS findings (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    level TEXT NOT NULL,
    rule TEXT NOT NULL,
    status TEXT NOT NULL,
    household_id TEXT,
    township TEXT,
    village TEXT,
    open_since TEXT NOT NULL,       -- the run that began the current open streak
    open_since_day TEXT NOT NULL,   -- that run's day
    PRIMARY KEY (run_id, fingerprint)
) WITHOUT ROWID;
-- The first run that ever saw a fingerprint: tells "reopened" from "new" even after the rows
-- of old runs are pruned. Holds hashes only.
CREATE TABLE IF NOT EXISTS fingerprints (
    fingerprint TEXT PRIMARY KEY,
    first_run TEXT NOT NULL
) WITHOUT ROWID;
"""


# ---- fingerprints and findings ----

def unit_key(level: str, household_id: str | None, township: str | None, village: str | None,
             county: str | None = None) -> str:
    """What a finding is about, independent of where the row sits in the workbook. `county`
    is set only when several counties were audited together, and for a household only when
    its ID is in several of them (findings_from_gaps)."""
    if level in HOUSEHOLD_LEVELS:
        key = household_id or ""
    elif level == "village":
        key = f"{township or ''}/{village or ''}"
    elif level == "township":
        key = township or ""
    else:
        key = COUNTY
    return key if county is None else f"{county}//{key}"


def place_label(county: str | None, township: str | None, level: str = "county") -> str | None:
    """A township as the history (and the nightly run's township books) name it: its name, or
    "<county>-<township>" when several counties were audited together; then a county rule's
    finding is labelled with its county, so that the diff says which, and a finding of a
    household, member or village whose township is blank "<county>-no-township"."""
    if county is None:
        return township
    if township is None:
        return county if level == "county" else f"{county}-{NO_TOWNSHIP}"
    return f"{county}-{township}"


def fingerprint(rule: str, level: str, key: str) -> str:
    # The unit separator cannot occur in a rule id or level, so no two triples collide.
    return hashlib.sha256("\x1f".join((rule, level, key)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Finding:
    """One open gap as the history keeps it: identity and place, no message, no values."""

    fingerprint: str
    level: str
    rule: str
    status: str
    household_id: str | None
    township: str | None
    village: str | None


def findings_from_gaps(gaps: Iterable[Any], shared: Collection[str] = ()) -> list[Finding]:
    """Findings of an audit's gaps (exitcheck.auditing.Gap), one per fingerprint, IDs masked.

    A duplicated household id in the register gives two gaps with one fingerprint; the history
    keeps one, a fail before an unknown. A household id in several counties audited together
    (`shared`: those of duplicate_household_across_counties) is a household of each (each county
    audits its own row): keyed with its county, or one county's findings vanished from the
    history, the diff and the burn-down. Decided by the registers, not by tonight's gaps, so the
    key holds when one county fixes its row; other households keep their old key (the id alone).
    """
    chosen: dict[str, Finding] = {}
    for gap in gaps:
        county = getattr(gap, "county", None)
        own = gap.level not in HOUSEHOLD_LEVELS or gap.household_id in shared
        key = unit_key(gap.level, gap.household_id, gap.township, gap.village, county if own else None)
        print_ = fingerprint(gap.rule, gap.level, key)
        if print_ in chosen and chosen[print_].status == "fail":
            continue
        chosen[print_] = Finding(print_, gap.level, gap.rule, gap.status, _masked(gap.household_id),
                                 _masked(place_label(county, gap.township, gap.level)), _masked(gap.village))
    return list(chosen.values())


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_text(text)


# ---- runs ----

@dataclass
class RunRecord:
    """A finished run, ready to be recorded."""

    id: str
    started: datetime
    ended: datetime
    status: Status
    exit_code: int
    day: date | None = None
    inputs: list[dict[str, str]] = field(default_factory=list)
    ruleset: dict[str, str] | None = None  # name, version, sha256
    note: str | None = None
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    """A recorded run, with its counts by rule and township."""

    id: str
    started: str
    ended: str
    day: date | None
    status: Status
    exit_code: int
    inputs: list[dict[str, str]]
    ruleset: dict[str, str | None]
    note: str | None
    pruned: bool
    counts: dict[str, dict[str, dict[str, int]]]  # rule -> township -> {fail, unknown}

    @property
    def good(self) -> bool:
        return self.status != "failed"

    def by_rule(self) -> dict[str, int]:
        return {rule: sum(c["fail"] + c["unknown"] for c in towns.values()) for rule, towns in self.counts.items()}

    def by_township(self) -> dict[str, int]:
        return _by_township({(rule, town): c for rule, towns in self.counts.items() for town, c in towns.items()})

    @property
    def total(self) -> int:
        return sum(self.by_rule().values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "started": self.started, "ended": self.ended,
            "as_of": self.day.isoformat() if self.day else None, "status": self.status,
            "exit_code": self.exit_code, "inputs": self.inputs, "ruleset": self.ruleset,
            "note": self.note, "findings_pruned": self.pruned, "total": self.total,
            "by_rule": self.by_rule(), "by_township": self.by_township(), "counts": self.counts,
        }


def township_key(level: str, township: str | None) -> str:
    """The township a finding is counted under: its own, COUNTY for a county rule's, and
    NO_TOWNSHIP for a finding below the county whose township is blank."""
    if township:
        return township
    return COUNTY if level == "county" else NO_TOWNSHIP


#: What a clerk reads for the two township keys that are not townships.
_KEY_LABELS = {COUNTY: ("县级", "County"), NO_TOWNSHIP: ("乡镇未填", "Township blank")}


def township_label(key: str, lang: str) -> str:
    """A township key as a clerk reads it, in `lang` ("<county>-no-township" as well)."""
    label = _KEY_LABELS.get(key)
    if label is not None:
        return pick(lang, *label)
    if key.endswith(f"-{NO_TOWNSHIP}"):
        return key.removesuffix(NO_TOWNSHIP) + pick(lang, *_KEY_LABELS[NO_TOWNSHIP])
    return key


def counts_of(findings: Sequence[Finding]) -> dict[tuple[str, str], dict[str, int]]:
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for finding in findings:
        entry = counts.setdefault((finding.rule, township_key(finding.level, finding.township)), {"fail": 0, "unknown": 0})
        entry["fail" if finding.status == "fail" else "unknown"] += 1
    return counts


# ---- the diff ----

@dataclass(frozen=True)
class DiffEntry:
    fingerprint: str
    level: str
    rule: str
    household_id: str | None
    township: str | None
    village: str | None
    age_days: int

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "level": self.level, "rule": self.rule,
                "household_id": self.household_id, "township": self.township,
                "village": self.village, "age_days": self.age_days}


@dataclass
class Diff:
    from_run: str | None
    to_run: str | None
    new: list[DiffEntry] = field(default_factory=list)
    resolved: list[DiffEntry] = field(default_factory=list)
    open: list[DiffEntry] = field(default_factory=list)
    reopened: list[DiffEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "exitcheck/diff@1", "from": self.from_run, "to": self.to_run,
                **{name: [e.to_dict() for e in getattr(self, name)] for name in DIFF_LISTS}}


DIFF_LISTS = ("new", "resolved", "open", "reopened")


def _sort_key(entry: DiffEntry) -> tuple[str, str, str, str]:
    return (entry.township or "", entry.village or "", entry.rule, entry.household_id or "")


# ---- the store ----

class History:
    """The history database of one workspace (state/history.sqlite). A file that cannot be
    read or written is a WorkspaceFileError (exit 74) naming it."""

    def __init__(self, state: Path) -> None:
        self.path = Path(state) / DB_NAME
        with workspace_files(self.path, HISTORY):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():  # it names households: readable by its owner only
                self.path.touch(mode=0o600)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # Autocommit mode with explicit BEGIN: a run is written in one transaction or not at all.
        with workspace_files(self.path, HISTORY):
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                db.execute("PRAGMA foreign_keys = ON")
                yield db
            finally:
                db.close()

    def prove_writable(self) -> None:
        """WorkspaceFileError now if the run could not be recorded at its end."""
        with self._connect() as db:
            prove_writable(db)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- writing --

    def new_run_id(self, started: datetime, taken: Iterable[str] = ()) -> str:
        """A sortable id from the start time, made unique if a run already has it."""
        base = started.strftime("%Y%m%d-%H%M%S")
        used = set(taken) | {r for (r,) in self._query("SELECT id FROM runs WHERE id LIKE ?", (base + "%",))}
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}-{n:02d}"
        return candidate

    def has(self, run_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM runs WHERE id = ?", (run_id,)))

    def record(self, run: RunRecord) -> None:
        """Write the run, its counts and (for a good run) its findings in one transaction."""
        good = run.status != "failed"
        findings = run.findings if good else []
        ruleset = run.ruleset or {}
        with self._transaction() as db:
            db.execute(
                "INSERT INTO runs (id, started, ended, day, status, exit_code, inputs, ruleset_name,"
                " ruleset_version, ruleset_sha256, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.id, run.started.isoformat(timespec="seconds"), run.ended.isoformat(timespec="seconds"),
                 run.day.isoformat() if run.day else None, run.status, run.exit_code,
                 json.dumps([{k: mask_text(v) for k, v in i.items()} for i in run.inputs], ensure_ascii=False),
                 *(ruleset.get(k) for k in ("name", "version", "sha256")),
                 mask_text(run.note) if run.note else None),
            )
            db.executemany("INSERT INTO counts VALUES (?, ?, ?, ?, ?)",
                           [(run.id, rule, town, c["fail"], c["unknown"]) for (rule, town), c in counts_of(findings).items()])
            if not good:
                return
            streaks = self._streaks(db, run.id, run.day, [f.fingerprint for f in findings])
            db.executemany(
                "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run.id, f.fingerprint, f.level, f.rule, f.status, f.household_id, f.township, f.village,
                  *streaks[f.fingerprint]) for f in findings],
            )
            db.executemany("INSERT OR IGNORE INTO fingerprints VALUES (?, ?)", [(f.fingerprint, run.id) for f in findings])

    def _streaks(self, db: sqlite3.Connection, run_id: str, day: date | None, prints: Sequence[str]) -> dict[str, tuple[str, str]]:
        """For each fingerprint, the run (and day) that began its open streak: carried over from
        the previous good run when it was open there, else this run."""
        own = (run_id, (day or date.today()).isoformat())
        # the runs in the order they were recorded, not by id: an id is the start by the clock,
        # and a clock set back a day would make tonight's run older than yesterday's
        # (a run not recorded yet, the progress sheet's pending one, comes after every other)
        previous = db.execute("SELECT id FROM runs WHERE status != 'failed' AND pruned = 0 AND rowid < COALESCE("
                              "(SELECT rowid FROM runs WHERE id = ?), (SELECT MAX(rowid) + 1 FROM runs))"
                              " ORDER BY rowid DESC LIMIT 1", (run_id,)).fetchone()
        carried: dict[str, tuple[str, str]] = {}
        if previous:
            carried = {fp: (since, since_day) for fp, since, since_day in db.execute(
                "SELECT fingerprint, open_since, open_since_day FROM findings WHERE run_id = ?", previous)}
        return {fp: carried.get(fp, own) for fp in prints}

    def prune_findings(self, before: datetime, keep: Iterable[str] = ()) -> int:
        """Drop the findings of runs started before `before` (retention: they name households);
        the runs and their counts stay, for the burn-down. Returns how many runs were pruned.

        The latest good run always keeps its findings: the next run carries its streaks on.
        """
        kept = set(keep)
        runs = self.runs(counts=False)
        good = [r for r in runs if r.good]
        if good:
            kept.add(good[-1].id)
        doomed = [r.id for r in runs
                  if not r.pruned and r.id not in kept and datetime.fromisoformat(r.started) < before]
        with self._transaction() as db:
            for run_id in doomed:
                db.execute("DELETE FROM findings WHERE run_id = ?", (run_id,))
                db.execute("UPDATE runs SET pruned = 1 WHERE id = ?", (run_id,))
        return len(doomed)

    # -- reading --

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connect() as db:
            return db.execute(sql, params).fetchall()

    def runs(self, *, counts: bool = True) -> list[Run]:
        """Every recorded run, in the order they were recorded (the clock may have gone back
        between two nights: ids and start times are what it said); without `counts` (a year of
        nights has many) when only the runs themselves are wanted."""
        by_run: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
        rows = self._query("SELECT run_id, rule, township, fail, unknown FROM counts ORDER BY run_id, rule, township") if counts else []
        for run_id, rule, town, fail, unknown in rows:
            by_run.setdefault(run_id, {}).setdefault(rule, {})[town] = {"fail": fail, "unknown": unknown}
        found = self._query("SELECT id, started, ended, day, status, exit_code, inputs, ruleset_name, ruleset_version,"
                            " ruleset_sha256, note, pruned FROM runs ORDER BY rowid")
        return [Run(id=r[0], started=r[1], ended=r[2], day=date.fromisoformat(r[3]) if r[3] else None,
                    status=r[4], exit_code=r[5], inputs=json.loads(r[6]),
                    ruleset={"name": r[7], "version": r[8], "sha256": r[9]}, note=r[10], pruned=bool(r[11]),
                    counts=by_run.get(r[0], {})) for r in found]

    def _recorded_order(self) -> dict[str, int]:
        """Each run's position in the order the runs were recorded: how runs are compared, not
        by their ids, which are the clock's (a clock set back a day gives an earlier id)."""
        return {run.id: position for position, run in enumerate(self.runs(counts=False))}

    def good_runs(self, *, counts: bool = True) -> list[Run]:
        return [r for r in self.runs(counts=counts) if r.good]

    def run(self, run_id: str) -> Run:
        """A run by id (without its counts); UsageError (exit 2) naming the nearest id when there is none."""
        runs = {r.id: r for r in self.runs(counts=False)}
        if run_id in runs:
            return runs[run_id]
        zh_hint, en_hint = did_you_mean(run_id, runs)
        raise UsageError(f"没有这次运行: {run_id}{zh_hint}", f"no such run: {run_id}{en_hint}")

    def _findings(self, run_id: str) -> dict[str, tuple[Any, ...]]:
        rows = self._query("SELECT fingerprint, level, rule, status, household_id, township, village,"
                           " open_since, open_since_day FROM findings WHERE run_id = ?", (run_id,))
        return {row[0]: row for row in rows}

    def _first_runs(self, prints: Iterable[str]) -> dict[str, str]:
        wanted = set(prints)
        return {fp: first for fp, first in self._query("SELECT fingerprint, first_run FROM fingerprints") if fp in wanted}

    def pair(self, run_a: str | None = None, run_b: str | None = None) -> tuple[Run | None, Run | None]:
        """The runs a diff compares: by default the last two good runs; with RUN_A alone, RUN_A
        and the latest good run."""
        chosen = [self._comparable(self.run(r)) for r in (run_a, run_b) if r]
        good = self.good_runs(counts=False)
        if not chosen:
            return (good[-2] if len(good) > 1 else None, good[-1] if good else None)
        if len(chosen) == 1:
            chosen.append(good[-1])
        first, second = chosen
        order = self._recorded_order()
        if order[first.id] > order[second.id]:
            raise UsageError(f"{first.id} 晚于 {second.id}: 先写较早的运行", f"{first.id} is later than {second.id}: give the earlier run first")
        return first, second

    @staticmethod
    def _comparable(run: Run) -> Run:
        if not run.good:
            raise UsageError(f"运行 {run.id} 失败了({run.note or ''}), 不能比较", f"run {run.id} failed ({run.note or ''}); it cannot be compared")
        if run.pruned:
            raise UsageError(f"运行 {run.id} 的明细已按保留期删除, 只剩计数", f"the findings of run {run.id} were pruned by retention; only its counts remain")
        return run

    def diff(self, run_a: str | None = None, run_b: str | None = None) -> Diff:
        """Findings new, resolved, still open (with ages) and reopened between two good runs."""
        first, second = self.pair(run_a, run_b)
        if first is None or second is None:
            return Diff(first.id if first else None, second.id if second else None)
        before, after = self._findings(first.id), self._findings(second.id)
        firsts = self._first_runs(after)
        result = Diff(first.id, second.id)
        to_day = second.day or date.today()

        def entry(row: tuple[Any, ...]) -> DiffEntry:
            # row: fingerprint, level, rule, status, household_id, township, village, since, since_day
            age = max(0, (to_day - date.fromisoformat(row[8])).days)
            return DiffEntry(row[0], row[1], row[2], row[4], row[5], row[6], age)

        order = self._recorded_order()
        for fp, row in after.items():
            since = order.get(row[7], -1)
            if fp in before and since <= order[first.id]:
                result.open.append(entry(row))
            elif fp in before or order.get(firsts.get(fp, row[7]), since) < since:
                # Open at both ends but closed in between, or seen before its current streak.
                result.reopened.append(entry(row))
            else:
                result.new.append(entry(row))
        result.resolved = [entry(row) for fp, row in before.items() if fp not in after]
        for name in DIFF_LISTS:
            getattr(result, name).sort(key=_sort_key)
        return result

    def progress(self, pending: RunRecord | None = None) -> pd.DataFrame:
        """The burn-down: open findings per township for every good run so far (plus `pending`,
        a run not yet recorded), and the age in days of the oldest open finding per township in
        the latest of them.

        Columns: run, day, township, open, oldest_days (on the latest run's rows only). County
        findings count under the township "county" (COUNTY), those of households whose
        township is blank under "no-township" (NO_TOWNSHIP; runs recorded before it counted them
        under "county"); a run with nothing open has one row with township None and open 0, so
        it still shows on the chart.
        """
        series = [(r.id, r.day, r.by_township()) for r in self.good_runs()]
        if pending is not None and pending.status != "failed":
            series.append((pending.id, pending.day, _by_township(counts_of(pending.findings))))
        rows = []
        for run_id, day, towns in series:
            rows.extend((run_id, day, town, n) for town, n in towns.items())
            if not towns:
                rows.append((run_id, day, None, 0))
        frame = pd.DataFrame(rows, columns=["run", "day", "township", "open"])
        frame["oldest_days"] = pd.NA
        if series:
            latest, latest_day, _ = series[-1]
            oldest: dict[str, int] = {}
            for town, since_day in self._open_since(latest, pending):
                age = max(0, ((latest_day or date.today()) - date.fromisoformat(since_day)).days)
                oldest[town] = max(oldest.get(town, 0), age)
            last = frame["run"] == latest
            frame.loc[last, "oldest_days"] = frame.loc[last, "township"].map(oldest)
        at = {run_id: position for position, (run_id, _, _) in enumerate(series)}  # as recorded, not by id
        ordered = frame.assign(_at=frame["run"].map(at)).sort_values(["_at", "township"], na_position="last")
        return ordered.drop(columns="_at").reset_index(drop=True)

    def _open_since(self, run_id: str, pending: RunRecord | None) -> list[tuple[str, str]]:
        """(township_key, day its streak began) of every finding open in a run."""
        if pending is not None and pending.id == run_id:
            with self._connect() as db:
                streaks = self._streaks(db, pending.id, pending.day, [f.fingerprint for f in pending.findings])
            return [(township_key(f.level, f.township), streaks[f.fingerprint][1]) for f in pending.findings]
        return [(township_key(row[1], row[5]), row[8]) for row in self._findings(run_id).values()]


def _by_township(counts: dict[tuple[str, str], dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (_, town), c in counts.items():
        totals[town] = totals.get(town, 0) + c["fail"] + c["unknown"]
    return totals
