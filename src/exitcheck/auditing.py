"""audit(): the main job. Registers in, gaps out: for every household, village, township and
the county, which exit indicator is still not met (fail) or cannot be told (unknown), why, and
which department acts on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from exitcheck import reasons
from exitcheck.errors import InputError
from exitcheck.i18n import join_list
from exitcheck.issues import ISSUES_SHEET, DataIssue
from exitcheck.reasons import Findings
from exitcheck.registers.model import ROW, SOURCE, Registers
from exitcheck.registers.parse import Parsed
from exitcheck.rules import engine, figures
from exitcheck.rules.engine import (
    FAIL,
    UNKNOWN,
    Evaluation,
    Outcome,
    Skipped,
    masked_value,
    plain,
    plain_text,
    rule_notes,
)
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
    #: The message in Chinese, kept when the audit speaks another language and is asked for it:
    #: the nightly run's digest of a township's list hashes it, so that --lang alone is no change.
    message_zh: str | None = field(default=None, repr=False, compare=False)
    #: The values of placeholders that only the rule's English messages name, hashed beside the
    #: Chinese message: a change in them changes the English book, so it is a new list.
    english_only: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def message_for_digest(self) -> str:
        """The message in Chinese, whatever the audit's language (when it was kept)."""
        return self.message if self.message_zh is None else self.message_zh

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

    def county_incidence_why(self) -> tuple[Any, ...] | None:
        """Why the county's incidence is blank for want of data (figures' facts), which the
        terminal and the summary sheet then call 待核实; None when it is known, or when there is
        nothing to compute it from (no village register)."""
        county = self.frames["county"]
        return plain(county[figures.INCIDENCE_WHY].iloc[0]) if figures.INCIDENCE_WHY in county and len(county) else None

    def county_incidence_reasons(self) -> list[str]:
        """Why the county's incidence is unknown, in the result's language, as the county's
        incidence rule words it; empty when it is known."""
        why = self.county_incidence_why()
        if not why:
            return []
        findings = Findings.of(self.registers, self.parsed.issues, self.parsed.zeros_pointers)
        return reasons.figure_unknown(why, "county", findings, self.lang)

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
            # without a 村表, the villages the households name, as the townships without a 乡镇表
            # and each township's book count them (0 here said the county had none)
            "villages": int(len(villages)) if villages is not None
            else int(len(households[["township", "village"]].dropna(subset=["village"]).drop_duplicates())),
            "townships": int(self.frames["township"]["township"].nunique()),
            "registered_households": int(reg.sum()),
            "households_with_gaps": len(failing - {None}),
            "by_rule": by_rule,
            "incidence": incidence,
            "satisfaction_rate": plain(county.get("satisfaction_rate")),
            **rule_notes(self.skipped, self.lang),
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


def build_frames(parsed: Parsed, unread: Sequence[str] = (), unfounded: Collection[str] = ()) -> dict[str, pd.DataFrame]:
    """The unit frames the rules run on; `unread`: input files that could not be read, whose
    households are missing from the county's figures; `unfounded`: the household figures whose
    member column no sheet has (engine.unfounded_figures), unknown rather than zero."""
    tables = parsed.tables
    households = figures.household_frame(tables["households"], tables["members"], parsed.issues, unfounded)
    frames = {"household": households, "member": figures.member_frame(tables["members"], households)}
    villages = uncounted = None
    if "villages" in tables:
        # household rows that may hold poor people but that no village counts: the incidence
        # of every unit they would count in is blank (待核实), never computed without them
        uncounted = figures.uncounted_rows(tables["households"], households, tables["villages"], parsed.zeros_pointers)
        villages = figures.village_frame(tables["villages"], households, uncounted, parsed.place_duplicates.get("villages"))
        frames["village"] = villages
    frames["township"] = figures.township_frame(tables.get("townships"), villages, households, uncounted,
                                                parsed.place_duplicates.get("townships"))
    frames["county"] = figures.county_frame(households, villages, uncounted, unread)
    return frames


def audit(
    registers: Registers,
    ruleset: RuleSet | None = None,
    *,
    as_of: date | None = None,
    lang: str = "zh",
    chinese_messages: bool = False,
) -> AuditResult:
    """Validate the registers, run every rule, and collect the gaps (the default rule set when
    `ruleset` is None). A rule that does not compile is a ConfigError naming its file line.
    `chinese_messages`: in another language than Chinese, keep each gap's Chinese message too
    (Gap.message_zh), for digests that must not change with the language."""
    ruleset = ruleset or load_ruleset()
    as_of = as_of or date.today()
    parsed = prepare(registers, as_of)
    require_a_household(parsed, registers)
    frames = build_frames(parsed, [failure.path for failure in registers.failures],
                          engine.unfounded_figures("household", registers))
    evaluation = engine.evaluate(ruleset, frames, registers)
    findings = Findings.of(registers, parsed.issues, parsed.zeros_pointers)
    gaps = collect_gaps(ruleset, frames, evaluation, lang, findings)
    if chinese_messages and lang != "zh":
        # Collected again rather than rendered twice on the way: only a nightly run in another
        # language pays, and the gaps come out in the same order both times.
        for gap, twin in zip(gaps, collect_gaps(ruleset, frames, evaluation, "zh", findings), strict=True):
            gap.message_zh = twin.message
    digests = [{"path": path, "sha256": digest(path)} for path in registers.inputs if Path(path).is_file()]
    return AuditResult(as_of, ruleset, registers, parsed, frames, evaluation, gaps, lang, digests)


def require_a_household(parsed: Parsed, registers: Registers) -> None:
    """InputError (exit 3) when no row of the households register has a usable household ID: an
    audit of no household passes every household indicator, and a nightly run would send each
    department an empty list in place of the last good one; an empty 户表 is refused likewise."""
    rows = parsed.tables["households"]
    if not len(rows) or rows["household_id"].notna().any():
        return
    raise InputError(
        registers.files_of("households"),
        f"户表 {len(rows)} 行的户编号都为空、无法识别或已丢失位数, 没有一户可以核查; 户编号列若被设成了数值格式, "
        "请改为文本格式后重新填写户编号(exitcheck validate 列出每个单元格)",
        f"none of the {len(rows)} rows of the households register has a usable household ID (blank, unreadable or "
        "with digits lost), so no household can be audited; if the ID column was formatted as numbers, format it as "
        "text and type the IDs again (exitcheck validate lists each cell)",
    )


def collect_gaps(ruleset: RuleSet, frames: dict[str, pd.DataFrame], evaluation: Evaluation, lang: str,
                 findings: Findings | None = None) -> list[Gap]:
    """Every flagged unit's Gap, in the rule set's order. Indicators are collected first, so
    that a risk's reason can name the indicators it rests on."""
    maker = Reasons(ruleset, lang, findings or Findings([], {}, {}))
    collected: dict[str, list[Gap]] = {}
    for rule in sorted(ruleset.rules, key=lambda r: r.kind != "indicator"):
        outcome = evaluation.outcomes.get(rule.id)
        if outcome is not None:
            collected[rule.id] = _gaps_of(rule, outcome, frames, maker)
    return [gap for rule in ruleset.rules for gap in collected.get(rule.id, [])]


@dataclass
class Reasons:
    """Makes each gap's message: the rule's template filled in, plus what the template alone
    cannot say (the members concerned, a value that could not be read, the register errors,
    the indicators under a risk, what made a finding high priority)."""

    ruleset: RuleSet
    lang: str
    findings: Findings
    #: (household id, indicator rule id) -> that indicator's reason, for the risks built on it
    indicator_reasons: dict[tuple[str | None, str], str] = field(default_factory=dict)
    _templates: dict[tuple[str, str], set[str]] = field(default_factory=dict, init=False, repr=False)

    def failed(self, rule: Rule, data: dict[str, Any], used: list[str], members: list[dict[str, Any]]) -> str:
        """The rule's message, with the members who fail it and the indicators a risk rests on
        (placed by {members} and {failing}, else added at the end)."""
        template = rule.message_for(self.lang)
        placeholders = self._placeholders(template, rule.id)
        extra = {
            reasons.MEMBERS: reasons.some_of([reasons.member_label(m, self.lang) for m in members], self.lang),
            reasons.FAILING: self._indicators(data, used),
            reasons.ISSUES_SHEET: ISSUES_SHEET["en" if self.lang == "en" else "zh"],
        }
        if reasons.ERROR_LIST in placeholders:
            extra[reasons.ERROR_LIST] = self.findings.error_list(plain_text(data.get("household_id")), self.lang)
        message = render_template(template, {**self.ruleset.spec.params, **_filled(data, placeholders), **extra})
        if rule.level == "member":
            message = reasons.with_detail(message, extra[reasons.MEMBERS], reasons.MEMBERS, placeholders)
        return reasons.with_detail(message, extra[reasons.FAILING], reasons.FAILING, placeholders)

    def _placeholders(self, template: str, rule_id: str) -> set[str]:
        """A template's placeholders, parsed once per rule, not once per gap."""
        if (template, rule_id) not in self._templates:
            self._templates[template, rule_id] = set(check_template(template, rule_id))
        return self._templates[template, rule_id]

    def _indicators(self, data: dict[str, Any], used: list[str]) -> str:
        """The failing indicators a rule over ok_ columns rests on, each with its reason."""
        resting = {name.removeprefix("ok_") for name in used if name.startswith("ok_")}
        if not resting:  # an indicator rule, as most gaps are: it rests on no other
            return ""
        household = plain_text(data.get("household_id"))
        named = []
        for rule in self.ruleset.rules:
            why = self.indicator_reasons.get((household, rule.id)) if rule.id in resting else None
            if why is not None and plain(data.get(f"ok_{rule.id}")) is False:
                named.append(f"{self._name(rule)}: {why}")
        return "; ".join(named)

    def _name(self, rule: Rule) -> str:
        return rule.name_en if self.lang == "en" and rule.name_en else rule.name

    def missing_inputs(self, data: dict[str, Any], inputs: list[str], labels: dict[str, str], level: str = "household") -> list[str]:
        """Why each blank input of the unit is missing: blank, a value not understood (quoted),
        for an ok_ column the indicator that could not be told and why, for a figure whose
        facts say why it is blank (an incidence) those facts."""
        household = plain_text(data.get("household_id"))
        parts: list[str | tuple[list[str], str]] = []
        # Indicators that cannot be told for one reason are named together before it, once:
        # a household whose members all went missing would otherwise repeat it for each.
        sharing: dict[str, tuple[list[str], str]] = {}
        for name in inputs:
            if name not in data or plain(data[name]) is not None:
                continue
            facts = data.get(figures.why_column(name))
            if isinstance(facts, tuple) and facts:
                parts.extend(reasons.figure_unknown(facts, level, self.findings, self.lang))
                continue
            why = self.indicator_reasons.get((household, name.removeprefix("ok_"))) if name.startswith("ok_") else None
            if why is None and (sheet := self.findings.column_lacking(data, name)) is not None:
                parts.append(reasons.lacking_column(labels.get(name, name), sheet, self.lang))
            elif why is None:
                parts.append(reasons.blank_input(labels.get(name, name), self.findings.unreadable_value(data, name), self.lang))
            elif why in sharing:
                sharing[why][0].append(labels.get(name, name))
            else:
                sharing[why] = ([labels.get(name, name)], why)
                parts.append(sharing[why])
        return [part if isinstance(part, str) else self._with_reason(*part) for part in parts]

    def _with_reason(self, indicators: list[str], why: str) -> str:
        if self.lang == "en":  # the parts of a reason are apart by "; "
            return f"{join_list(indicators, 'en')} ({why})"
        # 和 before the last: the parts of a reason are apart by 、 too, and 甲、乙(x) would leave
        # it open whether 甲 waits on x
        named = indicators[0] if len(indicators) == 1 else f"{join_list(indicators[:-1], 'zh')}和{indicators[-1]}"
        return f"{named}({why})"

    def unknown_members(self, data: dict[str, Any], members: list[MemberFinding], inputs: list[str], labels: dict[str, str]) -> list[str]:
        """Why a member rule cannot be told for a household: the unknown members named, each
        with its missing inputs."""
        if not members:
            return [self.findings.no_living_member(plain_text(data.get("household_id")), self.lang)]
        told = [(m.entry, m.missing) for m in members if m.entry["status"] == UNKNOWN and m.missing]
        if not told:  # the household's own inputs (who the rule applies to) are missing
            return self.missing_inputs(data, inputs, labels)
        separator = ": " if self.lang == "en" else ""
        phrases = [f"{reasons.member_label(entry, self.lang)}{separator}{reasons.join_parts(missing, self.lang)}" for entry, missing in told]
        return [reasons.some_of(phrases, self.lang)]

    def high(self, rule: Rule, data: dict[str, Any]) -> str:
        """What made the finding high priority, to add to its message."""
        template = rule.high_message_for(self.lang)
        why = render_template(template, {**self.ruleset.spec.params, **_filled(data, set(check_template(template, rule.id)))}) if template else rule.high_when
        return f"; 高优先级: {why}" if self.lang != "en" else f"; high priority: {why}"

    def remember(self, rule: Rule, gap: Gap, unknown_parts: list[str]) -> None:
        """Keep an indicator's reason for the risks built on it (an unknown one without its
        待核实 prefix: the risk's own message says that)."""
        if rule.kind == "indicator" and gap.household_id is not None:
            why = reasons.join_parts(unknown_parts, self.lang) if gap.status == UNKNOWN and unknown_parts else gap.message
            self.indicator_reasons[(gap.household_id, rule.id)] = why


@dataclass
class MemberFinding:
    """A member concerned by a member rule: what gaps.json shows of them, and why an unknown
    member cannot be told."""

    entry: dict[str, Any]
    missing: list[str]


def _filled(data: dict[str, Any], names: set[str]) -> dict[str, Any]:
    return {name: plain(data[name]) for name in names if name in data}


def _inputs(outcome: Outcome) -> list[str]:
    """The fields a blank of which makes the rule unknown: check's and applies_to's."""
    names: set[str] = set()
    for part in ("applies_to", "check"):
        expr = outcome.exprs.get(part)
        if expr is not None:
            names |= set(expr.fields)
    return sorted(names)


def _placeholders(rule: Rule, *templates: str) -> set[str]:
    return {name for template in templates for name in check_template(template, rule.id)}


class _EnglishOnly:
    """The placeholders a gap's English message names and its Chinese one does not. Which
    templates a message is made of depends on the gap: `message` when it fails (an unknown
    gap says why instead), `high_message` added when it is high priority."""

    def __init__(self, rule: Rule) -> None:
        self._message = (_placeholders(rule, rule.message_for("en")), _placeholders(rule, rule.message))
        self._high = (_placeholders(rule, rule.high_message_for("en")), _placeholders(rule, rule.high_message))
        #: the fields a gap of the rule may need for it (none for most rules)
        self.candidates = sorted(self.of(True, False) | self.of(False, True) | self.of(True, True))

    def of(self, failed: bool, high: bool) -> set[str]:
        english: set[str] = set()
        chinese: set[str] = set()
        for (en, zh), used in ((self._message, failed), (self._high, high)):
            if used:
                english |= en
                chinese |= zh
        return english - chinese


def _gaps_of(rule: Rule, outcome: Outcome, frames: dict[str, pd.DataFrame], maker: Reasons) -> list[Gap]:
    level = "household" if rule.level == "member" else rule.level
    frame = frames[level]
    flagged = outcome.status.isin([FAIL, UNKNOWN])
    if not flagged.any():
        return []
    check = outcome.exprs.get("check")  # compiled once, by the evaluation
    used = sorted(check.fields) if check is not None else []
    inputs = _inputs(outcome)
    _, _, labels = engine.names_for(rule.level, maker.ruleset, engine.ok_columns(maker.ruleset), maker.lang)
    placeholders = _placeholders(rule, rule.message_for(maker.lang), rule.high_message_for(maker.lang))
    english_only = _EnglishOnly(rule)
    whys = [figures.why_column(name) for name in inputs]
    wanted = [c for c in dict.fromkeys(["household_id", "township", "village", SOURCE, ROW, *used, *inputs, *whys, *placeholders,
                                         *english_only.candidates])
              if c in frame.columns]
    rows = frame.loc[flagged[flagged].index, wanted]
    statuses = outcome.status[flagged].astype(str).tolist()
    members = _member_values(rule, outcome, frames, inputs, labels, maker) if rule.level == "member" else {}
    out = []
    high = outcome.high[flagged].tolist() if outcome.high is not None else None
    # One Gap object per flagged unit (not per row of the register): the output needs them.
    for position, data in enumerate(rows.to_dict("records")):
        status = statuses[position]
        values = {name: masked_value(name, data.get(name)) for name in used if name in data}
        concerned = members.get(data.get("household_id"), [])
        if rule.level == "member":
            if status == FAIL:
                concerned = [m for m in concerned if m.entry["status"] == FAIL]
            values = {"members": [m.entry for m in concerned]}
        unknown_parts: list[str] = []
        if status == FAIL:
            message = maker.failed(rule, data, used, [m.entry for m in concerned])
        else:
            if rule.level == "member":
                unknown_parts = maker.unknown_members(data, concerned, inputs, labels)
            else:
                unknown_parts = maker.missing_inputs(data, inputs, labels, rule.level)
            message = reasons.unknown_reason(unknown_parts, maker.lang)
        is_high = high is not None and bool(high[position])
        if is_high:
            message += maker.high(rule, data)
        gap = Gap(
            level=rule.level, rule=rule.id, status=str(status),
            household_id=plain_text(data.get("household_id")) if level == "household" else None,
            township=plain_text(data.get("township")) if level != "county" else None,
            village=plain_text(data.get("village")) if level in ("household", "village") else None,
            message=message, department=rule.department, values=values, kind=rule.kind,
            priority="high" if is_high else None,
            english_only={name: masked_value(name, data[name]) for name in sorted(english_only.of(status == FAIL, is_high))
                          if name in data},
        )
        maker.remember(rule, gap, unknown_parts)
        out.append(gap)
    return out


def _member_values(rule: Rule, outcome: Outcome, frames: dict[str, pd.DataFrame], inputs: list[str],
                   labels: dict[str, str], maker: Reasons) -> dict[str, list[MemberFinding]]:
    """For member rules: the members concerned (failing, or unknown and why), ID numbers masked."""
    assert outcome.member_status is not None
    members = frames["member"]
    concerned = outcome.member_status.isin([FAIL, UNKNOWN])
    fails = set(outcome.member_status[outcome.member_status == FAIL].index)
    columns = [c for c in dict.fromkeys([*MEMBER_VALUE_FIELDS, *inputs]) if c in members.columns]
    picked = members.loc[concerned[concerned].index, ["household_id", SOURCE, ROW, *columns]]
    grouped: dict[str, list[MemberFinding]] = {}
    for index, row in zip(picked.index, picked.to_dict("records"), strict=True):
        entry = {name: masked_value(name, row[name]) for name in columns}
        entry["status"] = FAIL if index in fails else UNKNOWN
        missing = [] if index in fails else maker.missing_inputs(row, inputs, labels)
        grouped.setdefault(row["household_id"], []).append(MemberFinding(entry, missing))
    return grouped
