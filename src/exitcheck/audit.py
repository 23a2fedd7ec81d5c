"""audit(): the main job. Registers in, gaps out: for every household, village, township and
the county, which exit indicator is still not met (fail) or cannot be told (unknown), why, and
which department acts on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from exitcheck.issues import DataIssue
from exitcheck.registers.model import Registers
from exitcheck.registers.parse import Parsed
from exitcheck.rules import engine, figures
from exitcheck.rules.engine import FAIL, UNKNOWN, Evaluation, Outcome, Skipped, masked_value, plain
from exitcheck.rules.model import Rule, RuleSet, check_template, load_ruleset, render_template
from exitcheck.validation import prepare

HOUSEHOLD_LEVELS = ("household", "member")
MEMBER_VALUE_FIELDS = ("name", "id_number", "age", "relation")


@dataclass
class Gap:
    """One failing or unknown (rule, unit)."""

    level: str
    rule: str
    status: str
    household_id: str | None
    township: str | None
    village: str | None
    message: str
    department: str | None
    values: dict[str, Any]
    kind: str = "indicator"
    priority: str | None = None
    county: str | None = None  # set only when several counties are audited together

    def to_dict(self) -> dict[str, Any]:
        data = {
            "level": self.level, "rule": self.rule, "status": self.status,
            "household_id": self.household_id, "township": self.township, "village": self.village,
            "message": self.message, "department": self.department, "values": self.values,
        }
        if self.priority:
            data["priority"] = self.priority
        if self.county is not None:
            data["county"] = self.county
        return data


@dataclass
class AuditResult:
    as_of: date
    ruleset: RuleSet
    registers: Registers
    parsed: Parsed
    frames: dict[str, pd.DataFrame]
    evaluation: Evaluation
    gaps: list[Gap]
    lang: str = "zh"
    input_digests: list[dict[str, str]] = field(default_factory=list)
    #: One county's audit; exitcheck.province.ProvinceResult, read by the same writers, says True.
    several_counties: ClassVar[bool] = False

    @property
    def data_issues(self) -> list[DataIssue]:
        return self.parsed.issues

    @property
    def skipped(self) -> list[Skipped]:
        return self.evaluation.skipped

    def indicator_rules(self) -> list[Rule]:
        return [r for r in self.ruleset.rules if r.kind == "indicator"]

    def summary(self) -> dict[str, Any]:
        households = self.frames["household"]
        reg = figures.registered(households)
        by_rule: dict[str, dict[str, int]] = {}
        for rule in self.ruleset.rules:
            if rule.id in self.evaluation.outcomes:
                by_rule[rule.id] = {"fail": 0, "unknown": 0}
        for gap in self.gaps:
            by_rule[gap.rule][gap.status] += 1
        failing = {g.household_id for g in self.gaps
                   if g.level in HOUSEHOLD_LEVELS and g.kind == "indicator" and g.status == FAIL}
        villages = self.frames.get("village")
        county = self.frames["county"].iloc[0]
        incidence: dict[str, Any] = {"county": plain(county.get("incidence"))}
        if villages is not None:
            incidence["villages"] = {
                f"{t}/{v}": plain(x) for t, v, x in zip(villages["township"], villages["village"], villages["incidence"], strict=True)
            }
        return {
            "households": int(len(households)),
            "members": int(len(self.frames["member"])),
            "villages": int(len(villages)) if villages is not None else 0,
            "townships": int(self.frames["township"]["township"].nunique()),
            "registered_households": int(reg.sum()),
            "households_with_gaps": len(failing - {None}),
            "by_rule": by_rule,
            "incidence": incidence,
            "satisfaction_rate": plain(county.get("satisfaction_rate")),
            "skipped_rules": [{"rule": s.rule, "reason": s.en if self.lang == "en" else s.zh} for s in self.skipped],
            "input_failures": [f.message(self.lang) for f in self.registers.failures],
        }

    def exit_code(self) -> int:
        return 1 if self.gaps else 0


def digest(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def build_frames(parsed: Parsed) -> dict[str, pd.DataFrame]:
    tables = parsed.tables
    households = figures.household_frame(tables["households"], tables["members"], parsed.issues)
    frames = {"household": households, "member": figures.member_frame(tables["members"], households)}
    villages = None
    if "villages" in tables:
        villages = figures.village_frame(tables["villages"], households)
        frames["village"] = villages
    frames["township"] = figures.township_frame(tables.get("townships"), villages, households)
    frames["county"] = figures.county_frame(households, villages)
    return frames


def audit(
    registers: Registers,
    ruleset: RuleSet | None = None,
    *,
    as_of: date | None = None,
    lang: str = "zh",
) -> AuditResult:
    """Validate the registers, run every rule, and collect the gaps."""
    ruleset = ruleset or load_ruleset()
    as_of = as_of or date.today()
    parsed = prepare(registers, as_of)
    frames = build_frames(parsed)
    evaluation = engine.evaluate(ruleset, frames, registers)
    gaps = collect_gaps(ruleset, frames, evaluation, lang)
    digests = [{"path": path, "sha256": digest(path)} for path in registers.inputs if Path(path).is_file()]
    return AuditResult(as_of, ruleset, registers, parsed, frames, evaluation, gaps, lang, digests)


def collect_gaps(ruleset: RuleSet, frames: dict[str, pd.DataFrame], evaluation: Evaluation, lang: str) -> list[Gap]:
    gaps: list[Gap] = []
    for rule in ruleset.rules:
        outcome = evaluation.outcomes.get(rule.id)
        if outcome is not None:
            gaps.extend(_gaps_of(rule, outcome, frames, ruleset, lang))
    return gaps


def _gaps_of(rule: Rule, outcome: Outcome, frames: dict[str, pd.DataFrame], ruleset: RuleSet, lang: str) -> list[Gap]:
    level = "household" if rule.level == "member" else rule.level
    frame = frames[level]
    flagged = outcome.status.isin([FAIL, UNKNOWN])
    if not flagged.any():
        return []
    check = outcome.exprs.get("check")  # compiled once, by the evaluation
    used = sorted(check.fields) if check is not None else []
    _, _, labels = engine.names_for(rule.level, ruleset, engine.ok_columns(ruleset))
    template = rule.message_en if lang == "en" and rule.message_en else rule.message
    placeholders = set(check_template(template, rule.id))
    wanted = [c for c in dict.fromkeys(["household_id", "township", "village", *used, *placeholders]) if c in frame.columns]
    rows = frame.loc[flagged[flagged].index, wanted]
    statuses = outcome.status[flagged].astype(str).tolist()
    members = _member_values(rule, outcome, frames, used) if rule.level == "member" else {}
    params = ruleset.spec.params
    out = []
    high = outcome.high[flagged].tolist() if outcome.high is not None else None
    # One Gap object per flagged unit (not per row of the register): the output needs them.
    for position, data in enumerate(rows.to_dict("records")):
        status = statuses[position]
        values = {name: masked_value(name, data.get(name)) for name in used if name in data}
        if rule.level == "member":
            concerned = members.get(data.get("household_id"), [])
            if status == FAIL:
                concerned = [m for m in concerned if m["status"] == FAIL]
            values = {"members": concerned}
        if status == FAIL:
            message = render_template(template, {**params, **{k: plain(data[k]) for k in placeholders if k in data}})
        else:
            message = _unknown_message(rule, data, used, labels, lang, members.get(data.get("household_id")))
        out.append(Gap(
            level=rule.level, rule=rule.id, status=str(status),
            household_id=_text(data.get("household_id")) if level == "household" else None,
            township=_text(data.get("township")) if level != "county" else None,
            village=_text(data.get("village")) if level in ("household", "village") else None,
            message=message, department=rule.department, values=values, kind=rule.kind,
            priority="high" if high is not None and bool(high[position]) else None,
        ))
    return out


def _text(value: Any) -> str | None:
    value = plain(value)
    return None if value is None else str(value)


def _unknown_message(rule: Rule, data: dict[str, Any], used: list[str], labels: dict[str, str], lang: str, members: list[dict[str, Any]] | None) -> str:
    if rule.level == "member":
        if not members:
            return "该户没有在世成员, 无法判断" if lang != "en" else "no living member: cannot be told"
        return "有成员信息待核实" if lang != "en" else "a member's entry must be checked"
    blanks = [labels.get(name, name) for name in used if plain(data.get(name)) is None]
    if lang == "en":
        return f"unknown: {', '.join(blanks)} blank" if blanks else "unknown: the rule's inputs are blank"
    return f"待核实: {'、'.join(blanks)}为空" if blanks else "待核实: 判断所需信息为空"


def _member_values(rule: Rule, outcome: Outcome, frames: dict[str, pd.DataFrame], used: list[str]) -> dict[str, list[dict[str, Any]]]:
    """For member rules: the members concerned (failing, or unknown), ID numbers masked."""
    assert outcome.member_status is not None
    members = frames["member"]
    concerned = outcome.member_status.isin([FAIL, UNKNOWN])
    fails = set(outcome.member_status[outcome.member_status == FAIL].index)
    columns = [c for c in dict.fromkeys([*MEMBER_VALUE_FIELDS, *used]) if c in members.columns]
    picked = members.loc[concerned[concerned].index, ["household_id", *columns]]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for index, row in zip(picked.index, picked.to_dict("records"), strict=True):
        entry = {name: masked_value(name, row[name]) for name in columns}
        entry["status"] = FAIL if index in fails else UNKNOWN
        grouped.setdefault(row["household_id"], []).append(entry)
    return grouped
