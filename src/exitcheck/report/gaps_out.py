"""Gap lists out: gaps.json (exitcheck/gaps@1), gaps.xlsx for printing, CSV, per-township books."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from exitcheck.audit import AuditResult, Gap
from exitcheck.i18n import chooser
from exitcheck.issues import DataIssue
from exitcheck.report.files import DEFAULT_MODE, atomic_path, neutralise, write_bytes, write_json
from exitcheck.report.issues_out import add_issues_sheet
from exitcheck.report.sheets import formats, open_workbook, write_cells, write_table

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
STATUS_LABEL = {"fail": ("未达标", "fail"), "unknown": ("待核实", "unknown")}
LEVEL_LABEL = {"member": ("成员", "member"), "household": ("户", "household"), "village": ("村", "village"),
               "township": ("乡镇", "township"), "county": ("县", "county")}


def _l(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


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


# ---- frames behind the sheets (shared by xlsx and csv) ----

def household_sheet(result: AuditResult, gaps: Sequence[Gap]) -> tuple[pd.DataFrame, list[str]]:
    """One row per household with a gap, sorted township/village/id: a narrow mark column per
    indicator (✗ fail, ? unknown) and one wrapped column with the reasons, so it prints."""
    lang = result.lang
    indicator_ids = [r.id for r in result.indicator_rules() if r.level in ("household", "member") and r.id in result.evaluation.outcomes]
    flagged = [g for g in gaps if g.level in ("household", "member") and g.kind == "indicator"]
    per_household: dict[str, dict[str, Gap]] = {}
    for gap in flagged:
        per_household.setdefault(gap.household_id or "", {})[gap.rule] = gap
    households = result.frames["household"].set_index("household_id", drop=False)
    ids = [h for h in per_household if h in households.index]
    base = households.loc[ids].reset_index(drop=True)
    extras = [e for e in result.registers.extra_columns("households") if e in base]
    frame = pd.DataFrame({
        "township": base["township"], "village": base["village"], "household_id": base["household_id"],
        "head_name": base["head_name"], "category": base["category"], "status": base["status"],
    })
    for rule_id in indicator_ids:
        frame[rule_id] = [_mark(per_household[h].get(rule_id)) for h in ids]
    frame["reasons"] = ["; ".join(f"{rule_name(result, r)}: {g.message}" for r, g in per_household[h].items()) for h in ids]
    frame["helper_name"] = base["helper_name"]
    frame["helper_phone"] = base["helper_phone"]
    for extra in extras:
        frame[extra] = base[extra]
    frame = frame.sort_values(["township", "village", "household_id"], na_position="last")
    t = chooser(lang)
    headers = [t("乡镇", "Township"), t("行政村", "Village"), t("户编号", "Household ID"), t("户主姓名", "Head"),
               t("农户类别", "Category"), t("脱贫状态", "Status")]
    headers += [rule_name(result, r) for r in indicator_ids]
    headers += [t("原因(✗未达标 ?待核实)", "Reasons (✗ fail, ? unknown)"), t("帮扶责任人", "Helper"), t("联系电话", "Helper's phone")] + extras
    return frame, headers


def _mark(gap: Gap | None) -> str:
    if gap is None:
        return ""
    return "✗" if gap.status == "fail" else "?"


HOUSEHOLD_WIDTHS = (8, 8, None, 8, 10, 7)  # None: as wide as the household ids


def unit_sheet(result: AuditResult, gaps: Sequence[Gap], level: str) -> tuple[pd.DataFrame, list[str]]:
    lang = result.lang
    rows = [g for g in gaps if g.level == level]
    frame = pd.DataFrame({
        "township": [g.township for g in rows],
        "village": [g.village for g in rows],
        "rule": [rule_name(result, g.rule) for g in rows],
        "status": [_l(STATUS_LABEL[g.status], lang) for g in rows],
        "message": [g.message for g in rows],
        "department": [department_label(g.department, lang) for g in rows],
    })
    t = chooser(lang)
    headers = [t("乡镇", "Township"), t("行政村", "Village"), t("指标", "Indicator"), t("状态", "Status"), t("说明", "Reason"), t("责任部门", "Department")]
    if level != "village":
        frame = frame.drop(columns=["village"])
        headers.pop(1)
    if level == "county":
        frame = frame.drop(columns=["township"])
        headers.pop(0)
    sort = [c for c in ("township", "village") if c in frame]
    return (frame.sort_values(sort, na_position="last") if sort and len(frame) else frame), headers


def risk_sheet(result: AuditResult, gaps: Sequence[Gap]) -> tuple[pd.DataFrame, list[str]]:
    lang = result.lang
    rows = [g for g in gaps if g.kind == "risk"]
    households = result.frames["household"].set_index("household_id", drop=False)
    heads = [households["head_name"].get(g.household_id) if g.household_id in households.index else None for g in rows]
    frame = pd.DataFrame({
        "rule": [rule_name(result, g.rule) for g in rows],
        "priority": [("高" if lang != "en" else "high") if g.priority == "high" else "" for g in rows],
        "status": [_l(STATUS_LABEL[g.status], lang) for g in rows],
        "township": [g.township for g in rows], "village": [g.village for g in rows],
        "household_id": [g.household_id for g in rows], "head_name": heads,
        "message": [g.message for g in rows],
        "department": [department_label(g.department, lang) for g in rows],
    })
    t = chooser(lang)
    headers = [t("风险", "Risk"), t("优先级", "Priority"), t("状态", "Status"), t("乡镇", "Township"), t("行政村", "Village"),
               t("户编号", "Household ID"), t("户主姓名", "Head"), t("说明", "Reason"), t("责任部门", "Department")]
    if len(frame):
        frame = frame.sort_values(["rule", "priority", "township", "village", "household_id"], ascending=[True, False, True, True, True])
    return frame, headers


def by_indicator(result: AuditResult) -> pd.DataFrame:
    summary = result.summary()["by_rule"]
    rows = []
    for rule in result.ruleset.rules:
        if rule.id in summary:
            rows.append({"rule": rule.id, "name": rule_name(result, rule.id), "level": _l(LEVEL_LABEL[rule.level], result.lang),
                         "fail": summary[rule.id]["fail"], "unknown": summary[rule.id]["unknown"],
                         "department": department_label(rule.department, result.lang)})
    return pd.DataFrame(rows, columns=["rule", "name", "level", "fail", "unknown", "department"])


def by_township(result: AuditResult, gaps: Sequence[Gap]) -> pd.DataFrame:
    households = result.frames["household"]
    from exitcheck.rules.figures import registered

    reg = registered(households)
    base = pd.DataFrame({"township": households["township"], "registered": reg})
    counts = base.groupby("township", dropna=False).agg(households=("registered", "size"), registered=("registered", "sum"))
    hh_fail = pd.DataFrame([(g.township, g.household_id) for g in gaps if g.level in ("household", "member") and g.kind == "indicator" and g.status == "fail"],
                           columns=["township", "household_id"]).drop_duplicates()
    fails = pd.DataFrame([(g.township, g.status) for g in gaps if g.kind == "indicator"], columns=["township", "status"])
    counts["households_with_gaps"] = hh_fail.groupby("township").size().reindex(counts.index).fillna(0).astype(int) if len(hh_fail) else 0
    counts["fail"] = fails[fails["status"] == "fail"].groupby("township").size().reindex(counts.index).fillna(0).astype(int) if len(fails) else 0
    counts["unknown"] = fails[fails["status"] == "unknown"].groupby("township").size().reindex(counts.index).fillna(0).astype(int) if len(fails) else 0
    townships = result.frames["township"]
    if "incidence" in townships:
        counts["incidence"] = townships.set_index("township")["incidence"].reindex(counts.index).astype("Float64")
    return counts.reset_index()


# ---- writers ----

def write_gaps_json(path: Path, result: AuditResult, mode: int = DEFAULT_MODE) -> Path:
    return write_json(path, gaps_document(result), mode)


def write_gaps_xlsx(path: Path, result: AuditResult, gaps: Sequence[Gap] | None = None, mode: int = DEFAULT_MODE,
                    progress: pd.DataFrame | None = None, issues: Sequence[DataIssue] | None = None) -> Path:
    gaps = result.gaps if gaps is None else gaps
    issues = result.data_issues if issues is None else issues
    lang = result.lang
    t = chooser(lang)
    with atomic_path(path, mode) as temp:
        workbook = open_workbook(temp)
        _summary_sheet(workbook, result, gaps)
        frame, headers = household_sheet(result, gaps)
        marks = sum(1 for column in frame.columns if column in result.evaluation.outcomes)
        widths = [*HOUSEHOLD_WIDTHS, *([5] * marks), 48, 8, 12]
        write_table(workbook, t("户清单", "Households"), frame, headers, widths=widths,
                    wrap_columns=[len(HOUSEHOLD_WIDTHS) + marks])
        for level, name in (("village", t("村清单", "Villages")), ("township", t("乡镇清单", "Townships")), ("county", t("县", "County"))):
            frame, headers = unit_sheet(result, gaps, level)
            write_table(workbook, name, frame, headers)
        frame, headers = risk_sheet(result, gaps)
        write_table(workbook, t("风险清单", "Risks"), frame, headers, widths=[12, 8, 8, 10, 10, 22, 10, 40, 14])
        if progress is not None:
            from exitcheck.report.progress_sheet import add_progress_sheet

            add_progress_sheet(workbook, progress, lang)
        add_issues_sheet(workbook, issues, lang, t("数据问题", "Data issues"))
        workbook.close()
    return path


def _summary_sheet(workbook: Any, result: AuditResult, gaps: Sequence[Gap]) -> None:
    lang = result.lang
    t = chooser(lang)
    summary = result.summary()
    fmt = formats(workbook)
    sheet = workbook.add_worksheet(t("汇总", "Summary"))
    sheet.write_string(0, 0, t(f"脱贫退出指标核查汇总(基准日 {result.as_of.isoformat()}, 规则 {result.ruleset.name} {result.ruleset.version})",
                               f"Exit indicator audit (as of {result.as_of.isoformat()}, rules {result.ruleset.name} {result.ruleset.version})"), fmt["title"])
    facts = [
        (t("户数", "Households"), summary["households"]),
        (t("建档立卡户", "Registered households"), summary["registered_households"]),
        (t("有未达标指标的户", "Households with a failing indicator"), summary["households_with_gaps"]),
        (t("在世成员", "Living members"), summary["members"]),
        (t("村", "Villages"), summary["villages"]),
        (t("乡镇", "Townships"), summary["townships"]),
        (t("全县贫困发生率", "County poverty incidence"), summary["incidence"].get("county")),
        (t("认可度", "Satisfaction"), summary["satisfaction_rate"]),
    ]
    for row, (label, value) in enumerate(facts, start=2):
        sheet.write_string(row, 0, label)
        if isinstance(value, float):
            sheet.write_number(row, 1, value, fmt["pct"])
        elif value is not None:
            sheet.write(row, 1, value)
    top = len(facts) + 3
    indicators = by_indicator(result)
    headers = [t("规则", "Rule"), t("指标", "Indicator"), t("层级", "Level"), t("未达标", "Fail"), t("待核实", "Unknown"), t("责任部门", "Department")]
    sheet.write_row(top, 0, headers, fmt["header"])
    for offset, row in enumerate(indicators.itertuples(index=False), start=1):
        write_cells(workbook, sheet, top + offset, [neutralise_cell(v) for v in row])
    if len(indicators):
        chart = workbook.add_chart({"type": "bar"})
        name = t("汇总", "Summary")
        for col, title, color in ((3, t("未达标", "Fail"), "#C0504D"), (4, t("待核实", "Unknown"), "#F79646")):
            chart.add_series({
                "name": title,
                "categories": [name, top + 1, 1, top + len(indicators), 1],
                "values": [name, top + 1, col, top + len(indicators), col],
                "fill": {"color": color},
            })
        chart.set_title({"name": t("各指标未达标与待核实数", "Gaps by indicator")})
        chart.set_y_axis({"reverse": True})
        chart.set_size({"width": 620, "height": max(320, 22 * len(indicators))})
        sheet.insert_chart(2, 8, chart)
    top2 = top + len(indicators) + 2
    towns = by_township(result, gaps)
    headers2 = [t("乡镇", "Township"), t("户数", "Households"), t("建档立卡户", "Registered"), t("有未达标的户", "With gaps"), t("未达标", "Fail"), t("待核实", "Unknown")]
    if "incidence" in towns:
        headers2.append(t("贫困发生率", "Incidence"))
    sheet.write_row(top2, 0, headers2, fmt["header"])
    for offset, row in enumerate(towns.itertuples(index=False), start=1):
        values = [neutralise_cell(v) for v in row]
        write_cells(workbook, sheet, top2 + offset, values[:6])
        if len(values) > 6 and values[6] is not None:
            sheet.write_number(top2 + offset, 6, float(values[6]), fmt["pct"])
    skipped = summary["skipped_rules"]
    if skipped:
        top3 = top2 + len(towns) + 2
        sheet.write_string(top3, 0, t("未评估的规则", "Rules not evaluated"), fmt["header"])
        for offset, item in enumerate(skipped, start=1):
            sheet.write_string(top3 + offset, 0, item["rule"])
            sheet.write_string(top3 + offset, 1, item["reason"])
    sheet.set_column(0, 0, 24)
    sheet.set_column(1, 1, 16)
    sheet.set_column(2, 6, 10)
    sheet.set_landscape()
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)


def neutralise_cell(value: Any) -> Any:
    from exitcheck.rules.engine import plain

    return plain(value)


def write_gaps_csv(folder: Path, result: AuditResult, gaps: Sequence[Gap] | None = None, mode: int = DEFAULT_MODE) -> list[Path]:
    """UTF-8 with a BOM, so Excel and WPS open the Chinese intact; formula-like text neutralised."""
    gaps = result.gaps if gaps is None else gaps
    written = []
    frame, headers = household_sheet(result, gaps)
    written.append(_write_csv(folder / "gaps_households.csv", frame, headers, mode))
    rows = pd.DataFrame([{**g.to_dict(), "values": None} for g in gaps]).drop(columns=["values"], errors="ignore")
    written.append(_write_csv(folder / "gaps.csv", rows, list(rows.columns), mode))
    return written


def _write_csv(path: Path, frame: pd.DataFrame, headers: list[str], mode: int) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    for row in frame.astype(object).itertuples(index=False):
        writer.writerow(["" if v is None or (isinstance(v, float) and v != v) or v is pd.NA else neutralise(v) for v in row])
    return write_bytes(path, ("\ufeff" + buffer.getvalue()).encode("utf-8"), mode)


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


def township_gaps(result: AuditResult) -> dict[str, list[Gap]]:
    grouped: dict[str, list[Gap]] = {}
    for gap in result.gaps:
        if gap.township:
            grouped.setdefault(gap.township, []).append(gap)
    return grouped


def township_issues(result: AuditResult, township: str) -> list[DataIssue]:
    """The data issues of one township's households (a township fixes its own rows)."""
    households = result.frames["household"]
    ids = set(households.loc[households["township"] == township, "household_id"].dropna())
    return [issue for issue in result.data_issues if issue.household_id in ids]


def write_township_books(folder: Path, result: AuditResult, mode: int = DEFAULT_MODE) -> list[Path]:
    """One gap workbook per township, for distribution: its own gaps and data issues only."""
    written = []
    for township, gaps in sorted(township_gaps(result).items()):
        safe = "".join(ch for ch in township if ch not in '\\/:*?"<>|').strip() or "township"
        written.append(write_gaps_xlsx(folder / f"{safe}.xlsx", result, gaps, mode, issues=township_issues(result, township)))
    return written
