"""What the terminal shows: rich summaries. ID numbers are masked on the way out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from exitcheck.i18n import chooser, join_list
from exitcheck.idcard import mask_text
from exitcheck.issues import CATALOGUE, DataIssue, severity_label

FIRST_ISSUES = 20


def make_table(title: str, *columns: str, text: int = 1, whole: Sequence[int] = ()) -> Any:
    """A table whose first `text` columns are text (left-justified), the others figures; the
    columns in `whole` are never wrapped (an ID number cut in two cannot be searched for)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < text else "right", overflow="fold", no_wrap=index in whole)
    return table


#: Below this many columns a delivery table is printed an entry a paragraph (print_entries).
WIDE_TABLE = 120


def print_entries(console: Any, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *,
                  text: int, whole: Sequence[int] = ()) -> None:
    """Rows whose last column is a long text (a receipt, a reason): a table on a wide console;
    below WIDE_TABLE columns (cron's mail, a terminal, `| less`), where the columns that must not
    wrap left the outcome and the reason a character a line, each row a line of its other
    cells and its last cell whole beneath it."""
    if console.width >= WIDE_TABLE:
        table = make_table(title, *columns, text=text, whole=whole)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    console.print(title, markup=False, highlight=False)
    for *facts, detail in rows:
        console.print("  ".join(fact for fact in facts if fact), markup=False, highlight=False)
        if detail:
            console.print(f"    {detail}", markup=False, highlight=False)


def print_validation(ui: Any, registers: Any, issues: Sequence[DataIssue], *, written: bool = False) -> None:
    """What validate prints: counts by code and by sheet, the first FIRST_ISSUES issues, and,
    when there are more and they are not being `written` to a file, how to get them all."""
    if ui.quiet:  # -q prints nothing: summarising costs a tenth of a second at county scale
        return
    counts = registers.counts()
    t = ui.t
    ui.out.print(t(
        f"已读取: 户 {counts.get('households', 0)} 行, 成员 {counts.get('members', 0)} 行, 村 {counts.get('villages', 0)} 行, 乡镇 {counts.get('townships', 0)} 行",
        f"Read: {counts.get('households', 0)} household rows, {counts.get('members', 0)} member rows, {counts.get('villages', 0)} villages, {counts.get('townships', 0)} townships",
    ))
    if not issues:
        ui.out.print(t("[green]未发现数据问题[/]", "[green]No data issues found[/]"))
        return
    key = "en" if ui.lang == "en" else "zh"
    by_code = Counter(issue.code for issue in issues)
    table = make_table(t("按问题", "By code"), t("问题代码", "Code"), t("问题", "Title"), t("级别", "Severity"), t("数量", "Count"), text=3)
    for code, count in by_code.most_common():
        entry = CATALOGUE[code]
        table.add_row(code, entry.title[key], severity_label(entry.severity, ui.lang), str(count))
    ui.out.print(table)
    by_sheet = Counter((issue.file, issue.sheet) for issue in issues)
    table = make_table(t("按工作表", "By sheet"), t("文件", "File"), t("工作表", "Sheet"), t("数量", "Count"))
    for (file, sheet), count in by_sheet.most_common():
        table.add_row(str(file), str(sheet), str(count))
    ui.out.print(table)
    table = make_table(t(f"前 {min(FIRST_ISSUES, len(issues))} 条(共 {len(issues)} 条)", f"First {min(FIRST_ISSUES, len(issues))} of {len(issues)}"),
                   t("位置", "Where"), t("户编号", "Household"), t("问题代码", "Code"), t("说明", "Message"), text=4, whole=(1,))
    several = len(registers.inputs) > 1  # the cell alone would not say which workbook
    for issue in issues[:FIRST_ISSUES]:
        where = f"{issue.sheet}!{issue.column or ''}{issue.row or ''}"
        if several and issue.file:
            where = f"{Path(issue.file).name}: {where}"
        data = issue.to_dict(ui.lang)
        table.add_row(where, issue.household_id or "", issue.code, mask_text(str(data["message"])))
    ui.out.print(table)
    errors = sum(1 for issue in issues if issue.severity == "error")
    ui.out.print(t(f"共 {len(issues)} 个数据问题, 其中错误 {errors} 个; 用 exitcheck explain 代码 查看说明",
                   f"{len(issues)} data issues, {errors} errors; `exitcheck explain CODE` explains a code"))
    if len(issues) > FIRST_ISSUES and not written:
        ui.out.print(t("全部问题及其位置: 加 --out 文件夹, 写出 issues.xlsx", "every issue and its cell: add --out FOLDER to write issues.xlsx"))


def print_columns(ui: Any, sheets: Sequence[Any]) -> None:
    """Each sheet's columns and the field each was read as (registers.load.SheetHeader); a
    sheet refused for a missing required column says so, and lists what it lacks."""
    from exitcheck.registers.schema import REGISTER_LABELS

    t = ui.t
    for sheet in sheets:
        source = sheet.source
        label = REGISTER_LABELS[source.register][1 if ui.lang == "en" else 0]
        refused = t("; 缺少必填列, 整张表未读取", "; a required column is missing: the sheet is not read") if sheet.missing else ""
        table = make_table(
            t(f"{source.file} 工作表「{source.sheet}」→ {label}(表头在第 {source.header_row} 行{refused})",
              f"{source.file} sheet '{source.sheet}' -> {label} (header on row {source.header_row}{refused})"),
            t("列", "Column"), t("表头", "Header"), t("读作字段", "Read as"), text=3,
        )
        for column in source.columns:
            if column.field:
                read_as = column.field
            elif column.header:
                read_as = t("(未知列, 原样保留)", "(unknown, carried through)")
            else:
                read_as = t("(表头为空, 原样保留)", "(blank header, carried through)")
            table.add_row(column.letter, column.header, read_as)
        for issue in sheet.missing:
            table.add_row("-", issue.header or "", t(f"{issue.field}: 缺少(必填列)", f"{issue.field}: missing (required)"))
        ui.out.print(table)


#: Reasons for an unknown county incidence the terminal shows before "and N more".
SHOWN_REASONS = 2


def print_audit(ui: Any, result: Any, written: Sequence[Any]) -> None:
    """Households, gaps by indicator and township, incidence, the worst villages, the outputs."""
    if ui.quiet:  # -q prints nothing: summarising costs a tenth of a second at county scale
        return
    from exitcheck.report.gaps_out import by_indicator, by_township

    t = ui.t
    summary = result.summary()
    incidence = summary["incidence"].get("county")
    ui.out.print(t(
        f"户 {summary['households']}(建档立卡 {summary['registered_households']}), 在世成员 {summary['members']}, 村 {summary['villages']}, 乡镇 {summary['townships']}",
        f"{summary['households']} households ({summary['registered_households']} registered), {summary['members']} living members, {summary['villages']} villages, {summary['townships']} townships",
    ))
    if incidence is not None:
        ui.out.print(t(f"全县贫困发生率 {incidence:.2%}", f"County poverty incidence {incidence:.2%}"))
    elif not result.several_counties and result.county_incidence_why() is not None:  # a part would mislead
        why = result.county_incidence_reasons()
        shown = t("、", "; ").join(why[:SHOWN_REASONS]) + (t(f" 等 {len(why)} 项", f" and {len(why) - SHOWN_REASONS} more")
                                                            if len(why) > SHOWN_REASONS else "")
        ui.out.print(t(f"全县贫困发生率 待核实: {shown}", f"County poverty incidence unknown: {shown}"), markup=False)
    if result.several_counties:
        print_counties(ui, result)
    ui.out.print(t(f"有未达标指标的建档立卡户: {summary['households_with_gaps']}", f"Registered households with a failing indicator: {summary['households_with_gaps']}"))
    table = make_table(t("按指标", "By indicator"), t("指标", "Indicator"), t("未达标", "Fail"), t("待核实", "Unknown"))
    for row in by_indicator(result).itertuples(index=False):  # a dozen indicators, for the screen
        if row.fail or row.unknown:
            table.add_row(f"{row.rule} {row.name}", str(row.fail), str(row.unknown))
    ui.out.print(table)
    table = make_table(t("按乡镇", "By township"), t("乡镇", "Township"), t("有未达标的户", "Households with gaps"), t("未达标", "Fail"), t("待核实", "Unknown"))
    for row in by_township(result, result.gaps).itertuples(index=False):  # a few dozen townships, for the screen
        table.add_row(_place(result, row, row.township), str(row.households_with_gaps), str(row.fail), str(row.unknown))
    ui.out.print(table)
    villages = result.frames.get("village")
    if villages is not None and len(villages):
        worst = villages.dropna(subset=["incidence"]).sort_values("incidence", ascending=False).head(5)
        table = make_table(t("贫困发生率最高的村", "Villages with the highest incidence"), t("村", "Village"), t("贫困村", "Poor village"), t("发生率", "Incidence"))
        for row in worst.itertuples(index=False):
            poor = t("是", "yes") if bool(row.poverty_village is not pd.NA and row.poverty_village) else ""
            table.add_row(_place(result, row, f"{row.township}/{row.village}"), poor, f"{row.incidence:.2%}")
        ui.out.print(table)
    for line in skipped_lines(result):
        ui.note(line)
    issues = result.data_issues
    if issues:
        errors = sum(1 for issue in issues if issue.severity == "error")
        ui.out.print(t(f"数据问题 {len(issues)} 个(错误 {errors} 个), 详见输出中的数据问题表", f"{len(issues)} data issues ({errors} errors); see the data issues sheet"))
    for path in written:
        ui.out.print(t(f"已写入 {path}", f"written: {path}"))


def skipped_lines(result: Any) -> list[str]:
    """The rules not evaluated, for the terminal, in the result's language: one line per absent
    register (per county) naming its rules, else a 村表 missing says the same thing ten times
    over; a rule skipped for a column of its own keeps its line. gaps.json and the summary sheet
    keep each rule's reason."""
    from exitcheck.report.gaps_out import rule_name
    from exitcheck.rules.engine import registers_named

    groups: dict[tuple[Any, ...], list[Any]] = {}
    for skipped in result.skipped:
        key = (skipped.county, skipped.registers) if skipped.registers else (skipped.county, skipped.rule)
        groups.setdefault(key, []).append(skipped)
    t = chooser(result.lang)
    lines = []
    for group in groups.values():
        first = group[0]
        if len(group) == 1 or not first.registers:
            lines.append(t(first.zh, first.en))
            continue
        registers_zh, registers_en = registers_named(first.registers, result.registers)
        names = join_list([rule_name(result, s.rule) for s in group], result.lang)
        where = f"{first.county}: " if first.county else ""
        lines.append(t(f"{where}没有{registers_zh}, {len(group)} 条规则未评估: {names}",
                       f"{where}there is no {registers_en}, so {len(group)} rules were not evaluated: {names}"))
    return lines


def _place(result: Any, row: Any, name: Any) -> str:
    """A township or village, after its county when several counties were audited."""
    return f"{row.county} {name}" if result.several_counties else str(name)


def _pct(value: Any) -> str:
    return "" if value is None or value is pd.NA or value != value else f"{value:.2%}"


def print_counties(ui: Any, result: Any) -> None:
    """The 县汇总 table: each county, then the roll-ups (ratios of summed counts)."""
    from exitcheck.report.gaps_out import by_county

    t = ui.t
    table = make_table(t("县汇总", "Counties"), t("县", "County"), t("户数", "Households"), t("有未达标的户", "With gaps"),
                   t("未达标", "Fail"), t("待核实", "Unknown"), t("贫困发生率", "Incidence"), t("认可度", "Satisfaction"))
    for row in by_county(result, result.gaps).to_dict("records"):
        counts = [row.get(name) for name in ("households", "households_with_gaps", "fail", "unknown")]
        table.add_row(str(row["county"]), *("" if c is None or c is pd.NA else str(c) for c in counts),
                      _pct(row.get("incidence")), _pct(row.get("satisfaction_rate")))
    ui.out.print(table)
