"""Gap lists out: gaps.json (exitcheck/gaps@1), gaps.xlsx for printing, CSV, per-township books.

The same writers serve an audit of several counties together (exitcheck.province): there the
gaps, data issues and unit frames carry a `county` column, every sheet leads with it, and the
workbook gains a 县汇总 sheet. A single county's outputs have no county column at all.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from exitcheck.auditing import AuditResult, Gap
from exitcheck.i18n import chooser, register_column_label
from exitcheck.issues import ISSUES_SHEET, DataIssue
from exitcheck.report.files import (
    DEFAULT_MODE,
    atomic_path,
    file_stem,
    neutralise,
    write_bytes,
    write_json,
)
from exitcheck.report.issues_out import add_issues_sheet
from exitcheck.report.sheets import (
    Block,
    fit_columns,
    formats,
    open_workbook,
    set_up_page,
    write_cells,
    write_list_row,
    write_table,
)
from exitcheck.rules.engine import plain, rule_notes
from exitcheck.rules.figures import INCIDENCE_WHY

DEPARTMENTS = {
    "agriculture-rural": ("农业农村局", "Agriculture and rural affairs"),
    "civil-affairs": ("民政局", "Civil affairs"),
    "human-resources": ("人社局", "Human resources and social security"),
    "education": ("教育局", "Education"),
    "health": ("卫健局", "Health"),
    "housing": ("住建局", "Housing"),
    "water": ("水利局", "Water"),
    "energy": ("供电公司", "Power supply"),
    "culture-tourism": ("文广旅局", "Culture and broadcasting"),
    "transport": ("交通局", "Transport"),
    "economy-it": ("经信局", "Economy and IT"),
    "township": ("乡镇人民政府", "Township government"),
    "poverty-office": ("扶贫开发局", "Poverty-alleviation office"),
}
STATE_LABEL = {"audited": ("已核查", "audited"), "unreadable": ("无法读取", "unreadable")}
#: The line of a gap list with no row, by level.
NONE_AT_LEVEL = {
    "village": ("没有未达标或待核实的村级指标", "No village indicator fails or is unknown"),
    "township": ("没有未达标或待核实的乡镇级指标", "No township indicator fails or is unknown"),
    "county": ("没有未达标或待核实的县级指标", "No county indicator fails or is unknown"),
}
STATUS_LABEL = {"fail": ("未达标", "fail"), "unknown": ("待核实", "unknown")}
LEVEL_LABEL = {"member": ("成员", "member"), "household": ("户", "household"), "village": ("村", "village"),
               "township": ("乡镇", "township"), "county": ("县", "county")}
#: A rule's kind as the workbook names its lists: the indicators, and the 风险清单.
KIND_LABEL = {"indicator": ("指标", "indicator"), "risk": ("风险", "risk")}


def _l(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def level_label(level: str, lang: str) -> str:
    """A rule's level in the users' words (户, 村); a level of no known name as it is."""
    return _l(LEVEL_LABEL.get(level, (level, level)), lang)


def kind_label(kind: str, lang: str) -> str:
    """A rule's kind in the users' words (指标, 风险)."""
    return _l(KIND_LABEL.get(kind, (kind, kind)), lang)


def department_label(dept: str | None, lang: str) -> str:
    if not dept:
        return ""
    return _l(DEPARTMENTS.get(dept, (dept, dept)), lang)


def gaps_document(result: AuditResult) -> dict[str, Any]:
    return {
        "schema": "exitcheck/gaps@1",
        "as_of": result.as_of.isoformat(),
        "inputs": result.input_digests,
        "ruleset": {"name": result.ruleset.name, "version": result.ruleset.version, "sha256": result.ruleset.sha256},
        "summary": result.summary(),
        "gaps": [gap.to_dict() for gap in result.gaps],
        "data_issues": [issue.to_dict(result.lang) for issue in result.data_issues],
    }


def rule_name(result: AuditResult, rule_id: str) -> str:
    rule = result.ruleset.rule(rule_id)
    return rule.name_en if result.lang == "en" and rule.name_en else rule.name


# ---- several counties (exitcheck.province) ----

def multi_county(result: AuditResult) -> bool:
    """Whether the result covers several counties: its unit frames then name the county in a
    `county` column (a single county's register may have a 县 column of its own: not that)."""
    return result.several_counties


def _county_column(result: AuditResult, counties: Sequence[str | None]) -> dict[str, list[str | None]]:
    return {"county": list(counties)} if multi_county(result) else {}


def _county_header(result: AuditResult) -> list[str]:
    return [chooser(result.lang)("县", "County")] if multi_county(result) else []


HouseholdKey = tuple[str | None, str]


def household_key(unit: Gap | DataIssue) -> HouseholdKey:
    """A household is named by its id within its county: the same id in two counties is two
    households (and a data issue), never one."""
    return unit.county, unit.household_id or ""


def household_rows(result: AuditResult, keys: Sequence[HouseholdKey]) -> list[int]:
    """The row position in the household frame of each household named, -1 when absent
    (household ids are unique in the frame: within a county, the first row of a repeated id)."""
    if not keys:
        return []
    households = result.frames["household"]
    if multi_county(result):
        index = pd.MultiIndex.from_arrays([households["county"].astype(object), households["household_id"].astype(object)])
        return index.get_indexer(pd.MultiIndex.from_tuples(list(keys))).tolist()
    return pd.Index(households["household_id"]).get_indexer([hid for _, hid in keys]).tolist()


# ---- frames behind the sheets (shared by xlsx and csv) ----

def household_sheet(result: AuditResult, gaps: Sequence[Gap]) -> tuple[pd.DataFrame, list[str]]:
    """One row per household with a gap, sorted township/village/id: a narrow mark column per
    indicator (✗ fail, ? unknown) and one wrapped column with the reasons, so it prints."""
    lang = result.lang
    indicator_ids = [r.id for r in result.indicator_rules() if r.level in ("household", "member") and r.id in result.evaluation.outcomes]
    flagged = [g for g in gaps if g.level in ("household", "member") and g.kind == "indicator"]
    per_household: dict[HouseholdKey, dict[str, Gap]] = {}
    for gap in flagged:
        per_household.setdefault(household_key(gap), {})[gap.rule] = gap
    found = dict(zip(per_household, household_rows(result, list(per_household)), strict=True))
    keys = [k for k, row in found.items() if row >= 0]
    base = result.frames["household"].iloc[[found[k] for k in keys]].reset_index(drop=True)
    extras = [e for e in result.registers.extra_columns("households") if e in base]
    frame = pd.DataFrame({
        **_county_column(result, [county for county, _ in keys]),
        "township": base["township"], "village": base["village"], **_group_column(result, base),
        "household_id": base["household_id"],
        "head_name": base["head_name"], "category": base["category"], "status": base["status"],
    })
    for rule_id in indicator_ids:
        frame[rule_id] = [_mark(per_household[k].get(rule_id)) for k in keys]
    frame["reasons"] = ["; ".join(f"{rule_name(result, r)}: {g.message}" for r, g in per_household[k].items()) for k in keys]
    frame["department"] = [_departments(result, per_household[k]) for k in keys]
    frame["helper_name"] = base["helper_name"]
    frame["helper_phone"] = base["helper_phone"]
    for extra in extras:
        frame[extra] = base[extra]
    frame = frame.sort_values([*_county_column(result, []), "township", "village", "household_id"], na_position="last")
    t = chooser(lang)
    headers = [*_county_header(result), t("乡镇", "Township"), t("行政村", "Village"), *_group_header(frame, lang),
               t("户编号", "Household ID"), t("户主姓名", "Head"), t("农户类别", "Category"), t("脱贫状态", "Status")]
    headers += [rule_name(result, r) for r in indicator_ids]
    headers += [t("原因(✗未达标 ?待核实)", "Reasons (✗ fail, ? unknown)"), t("责任部门", "Department"),
                t("帮扶责任人", "Helper"), t("联系电话", "Helper's phone")]
    headers += [register_column_label(extra, lang) for extra in extras]
    return frame, headers


#: What the household list shows of a household beside its gaps, and what the risk list shows.
SHOWN_ON_THE_LIST = ("group", "head_name", "category", "status", "helper_name", "helper_phone")
SHOWN_ON_THE_RISKS = ("group", "head_name", "helper_name", "helper_phone")


def household_details(result: AuditResult, gaps: Sequence[Gap]) -> dict[HouseholdKey, dict[str, Any]]:
    """What a gap workbook shows of each of its households beside the gaps, as plain values, by
    household: on the household list, its group, head, category, status, helper and phone and
    the register's own extra columns; a household only on the risk list, what that list shows.
    Blank values are left out, so that a column new to the register (or to another county) is
    no change where it is blank. The nightly run hashes these with a township's gaps: a new
    helper cadre or phone number changes the book the township works from. One call for every
    township's gaps: each call looks the households up in the whole household frame."""
    listed = dict.fromkeys(household_key(g) for g in gaps if g.level in ("household", "member") and g.kind == "indicator")
    at_risk = dict.fromkeys(k for k in (household_key(g) for g in gaps if g.kind == "risk") if k not in listed)
    extras = [e for e in result.registers.extra_columns("households") if e in result.frames["household"]]
    details: dict[HouseholdKey, dict[str, Any]] = {}
    for keys, shown in ((list(listed), [*SHOWN_ON_THE_LIST, *extras]), (list(at_risk), list(SHOWN_ON_THE_RISKS))):
        # a row each: the households on some list, for the nightly digest only (not the audit's path)
        for key, values in zip(keys, _household_fields(result, keys, shown).to_dict("records"), strict=True):
            plain_values = {name: plain(value) for name, value in values.items()}
            details[key] = {"county": key[0], "household_id": key[1], **{n: v for n, v in plain_values.items() if v is not None}}
    return details


def _household_fields(result: AuditResult, keys: Sequence[HouseholdKey], names: Sequence[str]) -> pd.DataFrame:
    """Those of `names` the household frame has, row for row with `keys` (blank for a
    household not in the frame)."""
    households = result.frames["household"]
    columns = [name for name in names if name in households]
    return households[columns].reset_index(drop=True).reindex(household_rows(result, keys)).reset_index(drop=True)


def _group_column(result: AuditResult, base: pd.DataFrame) -> dict[str, list[Any]]:
    """村民小组, when the registers have it: a cadre finds the household by its group."""
    households = result.frames["household"]
    has_group = "group" in base and households["group"].notna().any()
    return {"group": base["group"].tolist()} if has_group else {}


def _group_header(frame: pd.DataFrame, lang: str) -> list[str]:
    return [chooser(lang)("村民小组", "Group")] if "group" in frame else []


def _departments(result: AuditResult, gaps: dict[str, Gap]) -> str:
    """The departments that act on a household's gaps: one alone by name; several each with
    its indicators, e.g. 农业农村局(收入达标)、住建局(住房保障), so each knows its part."""
    indicators: dict[str, list[str]] = {}
    for rule_id, gap in gaps.items():
        if gap.department:
            indicators.setdefault(department_label(gap.department, result.lang), []).append(rule_name(result, rule_id))
    if len(indicators) == 1:
        return next(iter(indicators))
    t = chooser(result.lang)
    return t("、", "; ").join(t(f"{dept}({'、'.join(names)})", f"{dept} ({', '.join(names)})") for dept, names in indicators.items())


def _mark(gap: Gap | None) -> str:
    if gap is None:
        return ""
    return "✗" if gap.status == "fail" else "?"


def unit_sheet(result: AuditResult, gaps: Sequence[Gap], level: str) -> tuple[pd.DataFrame, list[str]]:
    lang = result.lang
    rows = [g for g in gaps if g.level == level]
    frame = pd.DataFrame({
        **_county_column(result, [g.county for g in rows]),
        "township": [g.township for g in rows],
        "village": [g.village for g in rows],
        "rule": [rule_name(result, g.rule) for g in rows],
        "status": [_l(STATUS_LABEL[g.status], lang) for g in rows],
        "message": [g.message for g in rows],
        "department": [department_label(g.department, lang) for g in rows],
    })
    t = chooser(lang)
    headers = [*_county_header(result), t("乡镇", "Township"), t("行政村", "Village"), t("指标", "Indicator"), t("状态", "Status"),
               t("说明", "Reason"), t("责任部门", "Department")]
    dropped = ([] if level == "village" else ["village"]) + (["township"] if level == "county" else [])
    headers = [h for h, column in zip(headers, frame.columns, strict=True) if column not in dropped]
    frame = frame.drop(columns=dropped)
    sort = [c for c in ("county", "township", "village") if c in frame]
    return (frame.sort_values(sort, na_position="last") if sort and len(frame) else frame), headers


def risk_sheet(result: AuditResult, gaps: Sequence[Gap]) -> tuple[pd.DataFrame, list[str]]:
    lang = result.lang
    rows = [g for g in gaps if g.kind == "risk"]
    base = _household_fields(result, [household_key(g) for g in rows], ["group", "head_name", "helper_name", "helper_phone"])
    frame = pd.DataFrame({
        "rule": [rule_name(result, g.rule) for g in rows],
        "priority": [("高" if lang != "en" else "high") if g.priority == "high" else "" for g in rows],
        "status": [_l(STATUS_LABEL[g.status], lang) for g in rows],
        **_county_column(result, [g.county for g in rows]),
        "township": [g.township for g in rows], "village": [g.village for g in rows],
        **_group_column(result, base),
        "household_id": [g.household_id for g in rows], "head_name": base["head_name"].tolist(),
        "message": [g.message for g in rows],
        "department": [department_label(g.department, lang) for g in rows],
        # the cadre who visits the household, so that a risk reaches someone who can act
        "helper_name": base["helper_name"].tolist(), "helper_phone": base["helper_phone"].tolist(),
    })
    t = chooser(lang)
    headers = [t("风险", "Risk"), t("优先级", "Priority"), t("状态", "Status"), *_county_header(result), t("乡镇", "Township"),
               t("行政村", "Village"), *_group_header(frame, lang), t("户编号", "Household ID"), t("户主姓名", "Head"),
               t("说明", "Reason"), t("责任部门", "Department"), t("帮扶责任人", "Helper"), t("联系电话", "Helper's phone")]
    if len(frame):
        places = [c for c in ("county", "township", "village", "household_id") if c in frame]
        frame = frame.sort_values(["rule", "priority", *places], ascending=[True, False, *([True] * len(places))])
    return frame, headers


def by_indicator(result: AuditResult, gaps: Sequence[Gap] | None = None, *, county_rules: bool = True) -> pd.DataFrame:
    """Fails and unknowns of `gaps` (default: all) per rule evaluated. Without the county's own
    rules for a township's book: their findings belong to the county and are never among a
    township's gaps, so there they would read as a false 0."""
    counted = Counter((gap.rule, gap.status) for gap in (result.gaps if gaps is None else gaps))
    rows = []
    for rule in result.ruleset.rules:
        if rule.id in result.evaluation.outcomes and (county_rules or rule.level != "county"):
            rows.append({"rule": rule.id, "name": rule_name(result, rule.id), "level": level_label(rule.level, result.lang),
                         "fail": counted[rule.id, "fail"], "unknown": counted[rule.id, "unknown"],
                         "department": department_label(rule.department, result.lang)})
    return pd.DataFrame(rows, columns=["rule", "name", "level", "fail", "unknown", "department"])


def township_totals(result: AuditResult) -> pd.DataFrame:
    """Per township: households, registered households, living members, villages, the
    satisfied and answered households behind its satisfaction rate, and incidence where the
    villages are known. Indexed by township; by county and township when several counties were
    audited, whose townships each county counted for itself (names like 城关镇 recur)."""
    if multi_county(result):
        return result.frames["township"].set_index(["county", "township"])
    households = result.frames["household"]
    from exitcheck.rules.figures import registered, satisfaction_flags

    satisfied, answered = satisfaction_flags(households)
    base = pd.DataFrame({"township": households["township"], "village": households["village"], "registered": registered(households),
                         "satisfied": satisfied, "answered": answered})
    counts = base.groupby("township", dropna=False).agg(
        households=("registered", "size"), registered=("registered", "sum"), satisfied=("satisfied", "sum"), answered=("answered", "sum"))
    counts["members"] = _per_township(result.frames["member"], counts.index)
    # The village register lists every village, one without households too; else the households' villages.
    villages = result.frames.get("village", base.drop_duplicates(["township", "village"]).dropna(subset=["village"]))
    counts["villages"] = _per_township(villages, counts.index)
    townships = result.frames["township"]
    if "incidence" in townships:
        by_name = townships.set_index("township")
        counts["incidence"] = by_name["incidence"].reindex(counts.index).astype("Float64")
        if INCIDENCE_WHY in by_name:
            counts[INCIDENCE_WHY] = by_name[INCIDENCE_WHY].reindex(counts.index)
    return counts


def _incidence_shown(incidence: Any, why: Any, lang: str) -> Any:
    """An incidence as the summary shows it: the figure; 待核实 when part of its data cannot
    be counted (the gap lists say why); blank when there is nothing to compute it from."""
    value = plain(incidence)
    if value is None and plain(why) is not None:
        return chooser(lang)("待核实", "unknown")
    return value


def _per_township(frame: pd.DataFrame, index: pd.Index) -> pd.Series:
    """Rows of `frame` per township of `index` (0 for a township without any)."""
    return _count_by(frame[["township"]], index)


def _count_by(units: pd.DataFrame, index: pd.Index) -> pd.Series:
    """Rows of `units` per entry of `index`, whose level names are its columns (0 for none).
    A blank unit (households whose township is blank) has its entry in `index` too: blanks are
    matched as one key, whatever form of NA each side holds them in."""
    keys = list(index.names)
    blank_as_key = dict.fromkeys(keys, "")
    filled = index.to_frame(index=False).astype(object).fillna(blank_as_key)
    # one key: a flat index, as groupby gives it (pandas 2 matches no flat label in a 1-level MultiIndex)
    wanted = pd.MultiIndex.from_frame(filled) if len(keys) > 1 else pd.Index(filled[keys[0]])
    found = units[keys].astype(object).fillna(blank_as_key).groupby(keys).size()
    return found.reindex(wanted).fillna(0).astype(int).set_axis(index)


def gap_counts(gaps: Sequence[Gap], index: pd.Index) -> pd.DataFrame:
    """Households with a failing indicator, fails and unknowns per unit of `index`, whose level
    names are the Gap attributes that name the unit (township, or county and township, or county)."""
    keys = list(index.names)

    def tally(units: Sequence[tuple[Any, ...]]) -> pd.Series:
        if not units:
            return pd.Series(0, index=index, dtype=int)
        return _count_by(pd.DataFrame(units, columns=list(keys)), index)

    def unit(gap: Gap) -> tuple[Any, ...]:
        return tuple(getattr(gap, key) for key in keys)

    failing = {(*unit(g), g.household_id) for g in gaps if g.level in ("household", "member") and g.kind == "indicator" and g.status == "fail"}
    indicators = [g for g in gaps if g.kind == "indicator"]
    return pd.DataFrame({
        "households_with_gaps": tally([key[:-1] for key in failing]),
        "fail": tally([unit(g) for g in indicators if g.status == "fail"]),
        "unknown": tally([unit(g) for g in indicators if g.status == "unknown"]),
    }, index=index)


def by_township(result: AuditResult, gaps: Sequence[Gap]) -> pd.DataFrame:
    """township_totals with the counts of `gaps` per township, one row per township; the
    households whose township is blank in a row of their own, labelled so."""
    from exitcheck.history import NO_TOWNSHIP, township_label

    totals = township_totals(result)
    # The county's own findings have no township either: they belong to no township's row.
    below_county = [gap for gap in gaps if gap.level != "county"]
    counts = totals.join(gap_counts(below_county, totals.index))
    if "incidence" in totals:
        counts["incidence"] = totals["incidence"].astype("Float64")
    counts = counts.reset_index()
    counts["township"] = counts["township"].astype(object).where(counts["township"].notna(), township_label(NO_TOWNSHIP, result.lang))
    return counts


def by_county(result: AuditResult, gaps: Sequence[Gap]) -> pd.DataFrame:
    """The 县汇总 table: one row per county (an unreadable one too, with its reason), figures
    from each county's own numerators, then a total line for each prefecture and province and
    for everything audited, each computed from summed numerators and denominators."""
    from exitcheck.province import rollup_rows

    rows = result.county_table(gaps)  # type: ignore[attr-defined]
    lines = rollup_rows(rows, result.lang)
    rows["state"] = [_l(STATE_LABEL[state], result.lang) for state in rows["state"]]
    return pd.concat([rows, lines], ignore_index=True)


# ---- writers ----

def write_gaps_json(path: Path, result: AuditResult, mode: int = DEFAULT_MODE) -> Path:
    return write_json(path, gaps_document(result), mode)


def write_gaps_xlsx(path: Path, result: AuditResult, gaps: Sequence[Gap] | None = None, mode: int = DEFAULT_MODE,
                    progress: pd.DataFrame | None = None, issues: Sequence[DataIssue] | None = None,
                    place: Place | None = None) -> Path:
    """The county's book; with `place`, that township's book, of its `gaps` and `issues`."""
    gaps = result.gaps if gaps is None else gaps
    issues = result.data_issues if issues is None else issues
    unassigned = issues_by_township(result)[1] if place is None else []
    lang = result.lang
    t = chooser(lang)
    with atomic_path(path, mode) as temp:
        workbook = open_workbook(temp)
        _summary_sheet(workbook, result, gaps, place, len(unassigned))
        if multi_county(result) and place is None:  # the whole book, not one township's
            _counties_sheet(workbook, result, gaps)
        frame, headers = household_sheet(result, gaps)
        marks = [frame.columns.get_loc(r.id) for r in result.indicator_rules() if r.id in frame.columns]
        name = t("户清单", "Households")
        write_table(workbook, name, frame, headers, upright=marks, page_header=page_header(result, place, name),
                    none_note=t("没有指标未达标或待核实的户", "No household has a failing or unknown indicator"))
        # A township's book has no county sheet: the county's own findings are never its gaps.
        levels = (("village", t("村清单", "Villages")), ("township", t("乡镇清单", "Townships")), ("county", t("县", "County")))
        for level, name in levels[:2] if place else levels:
            frame, headers = unit_sheet(result, gaps, level)
            write_table(workbook, name, frame, headers, none_note=t(*NONE_AT_LEVEL[level]), page_header=page_header(result, place, name))
        frame, headers = risk_sheet(result, gaps)
        name = t("风险清单", "Risks")
        # a risk list evaluated without some of its indicators says so where it is printed and
        # handed out, not only on the summary sheet
        partly = [item["reason"] for item in result.summary()["partly_evaluated_rules"]]
        write_table(workbook, name, frame, headers, none_note=t("没有风险户", "No household at risk"), page_header=page_header(result, place, name),
                    title=t("注: ", "Note: ") + "; ".join(partly) if partly else None)
        if progress is not None:
            from exitcheck.report.progress_sheet import add_progress_sheet

            add_progress_sheet(workbook, progress, lang)
        name = t(ISSUES_SHEET["zh"], ISSUES_SHEET["en"])
        add_issues_sheet(workbook, issues, lang, name, page_header=page_header(result, place, name))
        if unassigned:
            name = t(*UNASSIGNED_SHEET)
            add_issues_sheet(workbook, unassigned, lang, name, page_header=page_header(result, place, name))
        workbook.close()
    return path


def page_header(result: AuditResult, place: Place | None, name: str) -> str:
    """What the top of each printed page of a list says: the township's name in its own book,
    the list, and the reference date, e.g. 越城镇 户清单 基准日 2020-06-30."""
    where = " ".join(part for part in place if part) if place else ""
    return " ".join(part for part in (where, name, chooser(result.lang)("基准日", "as of"), result.as_of.isoformat()) if part)


def _summary_sheet(workbook: Any, result: AuditResult, gaps: Sequence[Gap], place: Place | None, unassigned: int) -> None:
    """The 汇总 sheet: the county's (with `place`, that township's) figures, then the counts
    per rule and per township (in a township's book, its own row only)."""
    lang = result.lang
    t = chooser(lang)
    fmt = formats(workbook)
    sheet = workbook.add_worksheet(t("汇总", "Summary"))
    when = f"{result.as_of.isoformat()}, {t('规则', 'rules')} {result.ruleset.name} {result.ruleset.version}"
    if place is None:
        title = t(f"脱贫退出指标核查汇总(基准日 {when})", f"Exit indicator audit (as of {when})")
    else:
        name = " ".join(part for part in place if part)
        title = t(f"{name} 脱贫退出核查汇总(基准日 {when})", f"{name}: exit indicator audit (as of {when})")
    write_cells(workbook, sheet, 0, [title], "title")  # a township's name is input: it may start like a formula
    towns = by_township(result, gaps)
    if place is not None:
        towns = _own_rows(result, towns, place)
    facts = _county_facts(result, unassigned) if place is None else _township_facts(result, towns)
    for row, (label, value) in enumerate(facts, start=2):
        sheet.write_string(row, 0, label)
        if isinstance(value, float):
            sheet.write_number(row, 1, value, fmt["pct"])
        elif value is not None:
            sheet.write(row, 1, value)
    top = len(facts) + 3
    indicators = by_indicator(result, gaps, county_rules=place is None)
    headers = [t("规则", "Rule"), t("指标", "Indicator"), t("层级", "Level"), t("未达标", "Fail"), t("待核实", "Unknown"), t("责任部门", "Department")]
    sheet.write_row(top, 0, headers, fmt["header"])
    rows = [[neutralise_cell(v) for v in row] for row in indicators.itertuples(index=False)]  # a dozen indicators
    for offset, row in enumerate(rows, start=1):
        write_list_row(workbook, sheet, top + offset, row)
    blocks: list[Block] = [(None, [], facts), (top, headers, rows)]
    if len(indicators):
        _indicator_chart(workbook, sheet, t, top, len(indicators))
    top2 = top + len(indicators) + 2
    columns = [*(["county"] if multi_county(result) else []), "township", "households", "registered", "households_with_gaps", "fail", "unknown"]
    headers2 = [*_county_header(result), t("乡镇", "Township"), t("户数", "Households"), t("建档立卡户", "Registered"),
                t("有未达标的户", "With gaps"), t("未达标", "Fail"), t("待核实", "Unknown")]
    if "incidence" in towns:
        headers2.append(t("贫困发生率", "Incidence"))
    sheet.write_row(top2, 0, headers2, fmt["header"])
    counted = len(columns)
    rows = [[neutralise_cell(row[c]) for c in columns]
            + ([_incidence_shown(row.get("incidence"), row.get(INCIDENCE_WHY), result.lang)] if "incidence" in towns else [])
            for row in towns.to_dict("records")]  # a few dozen townships
    for offset, values in enumerate(rows, start=1):
        write_list_row(workbook, sheet, top2 + offset, [*values[:counted], *(float(v) if isinstance(v, int | float) else v for v in values[counted:])],
                       pct_columns=[counted])
    blocks.append((top2, headers2, rows))
    # a township's book of several counties' audit: its own county's rules only (a 越西县
    # township was told that 喜德县 has no 村表)
    own = [s for s in result.skipped if place is None or place[0] is None or s.county in (None, place[0])]
    summary = rule_notes(own, result.lang)
    top3 = top2 + len(towns) + 2
    for key, title in (("skipped_rules", t("未评估的规则", "Rules not evaluated")),
                       ("partly_evaluated_rules", t("部分评估的规则", "Rules evaluated in part"))):
        if not summary[key]:
            continue
        sheet.write_string(top3, 0, title, fmt["header"])
        for offset, item in enumerate(summary[key], start=1):
            sheet.write_string(top3 + offset, 0, item["rule"])
            sheet.write_string(top3 + offset, 1, item["reason"])
        blocks.append((None, [title], [[item["rule"]] for item in summary[key]]))
        top3 += len(summary[key]) + 2
    fit_columns(sheet, blocks)
    set_up_page(sheet)


def _indicator_chart(workbook: Any, sheet: Any, t: Any, top: int, count: int) -> None:
    """A bar chart of the fails and unknowns of the `count` rules listed under row `top`."""
    chart = workbook.add_chart({"type": "bar"})
    name = t("汇总", "Summary")
    for col, title, color in ((3, t("未达标", "Fail"), "#C0504D"), (4, t("待核实", "Unknown"), "#F79646")):
        chart.add_series({
            "name": title,
            "categories": [name, top + 1, 1, top + count, 1],
            "values": [name, top + 1, col, top + count, col],
            "fill": {"color": color},
        })
    chart.set_title({"name": t("各指标未达标与待核实数", "Gaps by indicator")})
    chart.set_y_axis({"reverse": True})
    chart.set_size({"width": 620, "height": max(320, 22 * count)})
    sheet.insert_chart(2, 8, chart)


UNASSIGNED_SHEET = ("不属任何乡镇的数据问题", "Issues of no township")


def _county_facts(result: AuditResult, unassigned: int) -> list[tuple[str, Any]]:
    """The county's (or the counties') figures, and how many data issues reach no township."""
    t = chooser(result.lang)
    summary = result.summary()
    facts = [
        (t("户数", "Households"), summary["households"]),
        (t("建档立卡户", "Registered households"), summary["registered_households"]),
        (t("有未达标指标的户", "Households with a failing indicator"), summary["households_with_gaps"]),
        (t("在世成员", "Living members"), summary["members"]),
        (t("村", "Villages"), summary["villages"]),
        (t("乡镇", "Townships"), summary["townships"]),
        (t("全县贫困发生率", "County poverty incidence"), _incidence_shown(summary["incidence"].get("county"), result.county_incidence_why(), result.lang))
        if not multi_county(result)
        else (t("合计贫困发生率(各县贫困人口之和/户籍人口之和)", "Poverty incidence, all counties (summed)"), summary["incidence"].get("all")),
        (t("认可度", "Satisfaction"), summary["satisfaction_rate"]),
    ]
    if unassigned:  # they reach no township's book: say where they are
        facts.append((t(f"{UNASSIGNED_SHEET[0]}(见同名工作表)", f"{UNASSIGNED_SHEET[1]} (see that sheet)"), unassigned))
    return facts


def _township_facts(result: AuditResult, towns: pd.DataFrame) -> list[tuple[str, Any]]:
    """One township's own figures from its row of by_township (none: a township without
    households). Its incidence is that of its villages together (their poor people over their
    population, as the county's is), known only with the village register."""
    t = chooser(result.lang)
    row = towns.iloc[0].to_dict() if len(towns) else {}

    def count(name: str) -> int:
        return int(plain(row.get(name)) or 0)

    answered = count("answered")
    facts: list[tuple[str, Any]] = [
        (t("户数", "Households"), count("households")),
        (t("建档立卡户", "Registered households"), count("registered")),
        (t("有未达标指标的户", "Households with a failing indicator"), count("households_with_gaps")),
        (t("在世成员", "Living members"), count("members")),
        (t("村", "Villages"), count("villages")),
    ]
    if "incidence" in towns:
        facts.append((t("乡镇贫困发生率(各村贫困人口之和/户籍人口之和)", "Township poverty incidence (its villages' poor people / population)"),
                      _incidence_shown(row.get("incidence"), row.get(INCIDENCE_WHY), result.lang)))
    facts.append((t("认可度", "Satisfaction"), count("satisfied") / answered if answered else None))
    return facts


def _own_rows(result: AuditResult, towns: pd.DataFrame, place: Place) -> pd.DataFrame:
    """The rows of by_township's table that are the township `place`."""
    mine = towns["township"] == place[1]
    if multi_county(result):
        mine &= towns["county"] == place[0]
    return towns[mine.fillna(False).astype(bool)]


COUNTY_COLUMNS = (
    ("county", ("县", "County")), ("code", ("县代码", "Code")), ("state", ("状态", "State")),
    ("households", ("户数", "Households")), ("registered_households", ("建档立卡户", "Registered")),
    ("households_with_gaps", ("有未达标的户", "With gaps")), ("fail", ("未达标", "Fail")),
    ("unknown", ("待核实", "Unknown")), ("poor_people", ("贫困人口", "Poor people")),
    ("population", ("户籍人口", "Population")), ("incidence", ("贫困发生率", "Incidence")),
    ("satisfied", ("满意户", "Satisfied")), ("answered", ("作答户", "Answered")),
    ("satisfaction_rate", ("认可度", "Satisfaction")),
)


def _counties_sheet(workbook: Any, result: AuditResult, gaps: Sequence[Gap]) -> None:
    """县汇总: one row per county, then the roll-ups; the numerators beside each ratio so that
    anyone can check that a total is a ratio of sums, not an average of the counties' ratios."""
    table = by_county(result, gaps)
    names = [name for name, _ in COUNTY_COLUMNS]
    frame = table.reindex(columns=names)
    pct = [names.index("incidence"), names.index("satisfaction_rate")]
    write_table(workbook, chooser(result.lang)("县汇总", "Counties"), frame, [_l(label, result.lang) for _, label in COUNTY_COLUMNS],
                pct_columns=pct)


def neutralise_cell(value: Any) -> Any:
    return plain(value)


def write_gaps_csv(folder: Path, result: AuditResult, gaps: Sequence[Gap] | None = None, mode: int = DEFAULT_MODE) -> list[Path]:
    """UTF-8 with a BOM, so Excel and WPS open the Chinese intact; formula-like text neutralised.

    gaps_households.csv is the clerk's (the 户清单 sheet, in the chosen language, long numbers
    kept as text); gaps.csv is for programs (English keys, stable codes, values as they are)."""
    gaps = result.gaps if gaps is None else gaps
    written = []
    frame, headers = household_sheet(result, gaps)
    written.append(_write_csv(folder / "gaps_households.csv", frame, headers, mode, for_spreadsheets=True))
    rows = pd.DataFrame([{**g.to_dict(), "values": None} for g in gaps]).drop(columns=["values"], errors="ignore")
    written.append(_write_csv(folder / "gaps.csv", rows, list(rows.columns), mode))
    return written


#: Digits a spreadsheet opening a CSV would turn into a number and so change: 11 digits and
#: more (a phone number shown as 1.32E+10 in a narrow column, an 18-digit ID as 5.13434E+17
#: and rounded past 15 digits), or a leading zero (dropped).
_MANGLED_DIGITS = re.compile(r"\d{11,}|0\d+")


def _as_text_in_spreadsheets(value: object) -> object:
    """A tab before such digits: Excel, WPS and LibreOffice then read the cell as text (the
    tab does not show), so an 18-digit household ID opens whole."""
    return "\t" + value if isinstance(value, str) and _MANGLED_DIGITS.fullmatch(value) else value


def _write_csv(path: Path, frame: pd.DataFrame, headers: list[str], mode: int, *, for_spreadsheets: bool = False) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    cell = _as_text_in_spreadsheets if for_spreadsheets else (lambda value: value)
    for row in frame.astype(object).itertuples(index=False):  # a writer emits row by row
        writer.writerow(["" if v is None or (isinstance(v, float) and v != v) or v is pd.NA else cell(neutralise(v)) for v in row])
    return write_bytes(path, ("\ufeff" + buffer.getvalue()).encode("utf-8"), mode)


def stale_township_books(out: Path, written: Sequence[Path]) -> list[Path]:
    """Township books in `out`/townships that this run did not write: left by an earlier audit
    with --split-by township into the same folder, they no longer match gaps.xlsx (a township
    renamed, or a run without --split-by), and must not be handed out."""
    folder = out / "townships"
    if not folder.is_dir():
        return []
    fresh = {path.resolve() for path in written}
    return sorted(path for path in folder.rglob("*.xlsx") if path.resolve() not in fresh)


def write_outputs(out: Path, result: AuditResult, formats_: Sequence[str], split_by: str | None = None,
                  mode: int = DEFAULT_MODE, progress: pd.DataFrame | None = None) -> list[Path]:
    written: list[Path] = []
    if "json" in formats_:
        written.append(write_gaps_json(out / "gaps.json", result, mode))
    if "xlsx" in formats_:
        written.append(write_gaps_xlsx(out / "gaps.xlsx", result, mode=mode, progress=progress))
    if "csv" in formats_:
        written.extend(write_gaps_csv(out, result, mode=mode))
    if split_by == "township":
        written.extend(write_township_books(out / "townships", result, mode))
    return written


Place = tuple[str | None, str]  # a township: (its county, None for a single county's audit; its name)


def county_township_gaps(result: AuditResult) -> dict[Place, list[Gap]]:
    """Gaps per (county, township); the county is None for a single county's audit."""
    grouped: dict[tuple[str | None, str], list[Gap]] = {}
    for gap in result.gaps:
        if gap.township:
            grouped.setdefault((gap.county, gap.township), []).append(gap)
    return grouped


def township_gaps(result: AuditResult) -> dict[str, list[Gap]]:
    """Gaps per township of a single county's audit."""
    return {township: gaps for (_, township), gaps in county_township_gaps(result).items()}


def township_places(result: AuditResult) -> list[Place]:
    """Every township of the registers, and any that a gap or data issue names: each gets its
    book, a township that is clear too (so it knows it is done)."""
    if multi_county(result):
        places = {(county, name) for county, names in result.township_names.items() for name in names}  # type: ignore[attr-defined]
    else:
        places = {(None, str(name)) for name in result.frames["township"]["township"].dropna()}
    places |= set(county_township_gaps(result)) | set(issues_by_township(result)[0])
    return sorted(places, key=lambda place: (place[0] or "", place[1]))


def issues_by_township(result: AuditResult) -> tuple[dict[Place, list[DataIssue]], list[DataIssue]]:
    """Each data issue under the township of its household, or of its row of the village or
    township register (a township fixes its own rows), and apart the issues of no known
    township: a member whose household is not in the household sheet (the register format ties
    no township to an id's digits, so its household id tells none), a household whose township
    is blank, a missing column. Those are the county office's to settle; its book lists them on
    a sheet of their own."""
    households = result.frames["household"]
    households = households[households["household_id"].isin({issue.household_id for issue in result.data_issues})]
    counties = households["county"] if multi_county(result) else [None] * len(households)
    towns: dict[HouseholdKey, Any] = {}
    for county, household, township in zip(counties, households["household_id"], households["township"], strict=True):
        towns.setdefault((county, household), township)  # a repeated id: its first row, as everywhere
    rows = _register_row_townships(result)
    grouped: dict[Place, list[DataIssue]] = {}
    unassigned: list[DataIssue] = []
    for issue in result.data_issues:
        if issue.household_id is None:
            township = plain(rows.get((issue.file, issue.sheet, issue.row)))
        else:
            township = plain(towns.get(household_key(issue)))
        if township is None:
            unassigned.append(issue)
        else:
            grouped.setdefault((issue.county, str(township)), []).append(issue)
    return grouped, unassigned


def _register_row_townships(result: AuditResult) -> dict[tuple[str, str, int], Any]:
    """The township of each row of the village and township registers, by (file, sheet, Excel
    row). Several counties' results keep no register rows: there such issues stay apart."""
    if multi_county(result):
        return {}
    sources = result.registers.sources
    rows: dict[tuple[str, str, int], Any] = {}
    for name in ("villages", "townships"):
        table = result.parsed.tables.get(name)
        if table is not None:
            for src, row, township in zip(table["_src"], table["_row"], table["township"], strict=True):
                rows[sources[int(src)].file, sources[int(src)].sheet, int(row)] = township
    return rows


def write_township_books(folder: Path, result: AuditResult, mode: int = DEFAULT_MODE) -> list[Path]:
    """One gap workbook per township, for distribution: its own gaps and data issues only.
    Several counties: one folder per county (township names recur across counties)."""
    gaps, (issues, _) = county_township_gaps(result), issues_by_township(result)
    written = []
    for place in township_places(result):
        county, township = place
        where = folder / file_stem(county, "county") if county is not None else folder
        written.append(write_gaps_xlsx(where / f"{file_stem(township, 'township')}.xlsx", result, gaps.get(place, []), mode,
                                       issues=issues.get(place, []), place=place))
    return written
