"""CLI commands for nightly operation: `exitcheck init`, `run`, `history` and `diff`.

They are thin: the workspace is made by exitcheck.workspace_init, the run is exitcheck.runner,
the history and the diff are exitcheck.history. Here only options, printing and exit codes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from exitcheck.cli import Debug, Lang, Quiet, Ui, WorkspaceAsOf, app, as_of_date, guarded
from exitcheck.cli_bands import ConfigOption, workspace
from exitcheck.cli_language import bilingual

JsonOption = Annotated[bool, typer.Option("--json", help=bilingual("以 JSON 打印到标准输出。", "Print JSON on stdout."))]
#: How many runs the history table shows side by side.
HISTORY_COLUMNS = 8
#: How many new or reopened findings `diff` lists one by one.
LISTED = 30


@app.command(help=bilingual("建一个可直接使用的工作区: exitcheck.yaml、规则、样例登记表、每晚定时运行的命令。",
                             "Create a ready workspace: exitcheck.yaml, the rules, a sample register, the nightly schedule line."))
@guarded
def init(
    ui: Ui,
    folder: Annotated[Path, typer.Argument(help=bilingual(
        "要建立(或补全)的工作区文件夹。", "The workspace folder to create (or complete)."))],
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    from exitcheck.cli import check_out, writing_to
    from exitcheck.state_files import NEW_WORKSPACE
    from exitcheck.workspace_init import init_workspace, nightly_line

    check_out(folder, NEW_WORKSPACE)
    with writing_to(folder, NEW_WORKSPACE):
        steps = init_workspace(folder)
    for step in steps:
        if step.action == "created":
            ui.out.print(ui.t(f"已创建 {step.path}", f"created {step.path}"), markup=False)
        else:
            ui.out.print(ui.t(f"已存在, 保留不动 {step.path}", f"exists, left as it is: {step.path}"), markup=False)
    ui.out.print(ui.t("下一步: 用本县登记表替换 data/registers.xlsx(文件名不变), 或把 exitcheck.yaml 的 registers: 改成本县登记表的路径, 然后运行:",
                      "Next: replace data/registers.xlsx with the county's registers (same name), or point registers: in "
                      "exitcheck.yaml at them, then run:"))
    ui.out.print(f"  cd {folder} && exitcheck run", markup=False)
    how_zh, how_en, line = nightly_line(folder.resolve())
    ui.out.print(ui.t(f"每晚运行({how_zh}):", f"Every night ({how_en}):"))
    ui.out.print(f"  {line}", markup=False)
    return 0


@app.command("run", help=bilingual("每晚的任务: 核查、分档和投递, 结果写到 out/<运行编号>/, 并记入历史。",
                                    "The nightly job: audit, bands and deliveries, outputs in out/<run-id>/, recorded in the history."))
@guarded
def run_(
    ui: Ui,
    config: ConfigOption = None,
    as_of: WorkspaceAsOf = None,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    from exitcheck.runner import Step, run

    given = as_of_date(as_of)
    settings = workspace(config, required=True)

    def show(step: Step) -> None:
        # Every step's line on stdout (the morning summary); a failing step also on stderr,
        # which is all that --quiet leaves, so that cron mails exactly the problems.
        ui.out.print(step.text(ui.lang), markup=False)
        if step.failed:
            ui.error(step.text(ui.lang))

    report = run(settings, as_of=given, lang=ui.lang, on_step=show)
    ui.out.print(ui.t(f"运行 {report.run_id} 结束: 退出码 {report.exit_code}", f"run {report.run_id} done: exit {report.exit_code}"), markup=False)
    return report.exit_code


@app.command(help=bilingual("历次运行, 以及各规则未解决问题数的变化。", "The runs so far, with the gaps by rule over time."))
@guarded
def history(
    ui: Ui,
    config: ConfigOption = None,
    json_out: JsonOption = False,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    from exitcheck.history import History
    from exitcheck.report.console import make_table

    settings = workspace(config, required=True)
    runs = History(settings.state).runs()
    if json_out:
        print(json.dumps({"schema": "exitcheck/history@1", "runs": [r.to_dict() for r in runs]}, ensure_ascii=False, indent=2))
        return 0
    if not runs:
        ui.out.print(ui.t("还没有运行记录; 先运行 exitcheck run", "no runs yet; start with exitcheck run"))
        return 0
    table = make_table(ui.t("运行记录", "Runs"), ui.t("运行", "Run"), ui.t("基准日", "As of"), ui.t("状态", "Status"),
                   ui.t("退出码", "Exit"), ui.t("未解决", "Open"), ui.t("说明", "Note"))
    status = {"ok": ui.t("无问题", "ok"), "findings": ui.t("有问题", "findings"), "failed": ui.t("失败", "failed")}
    for r in runs:
        table.add_row(r.id, r.day.isoformat() if r.day else "", status[r.status], str(r.exit_code),
                      str(r.total) if r.good else "", r.note or "")
    ui.out.print(table)
    good = [r for r in runs if r.good][-HISTORY_COLUMNS:]
    rules = sorted({rule for r in good for rule in r.counts})
    if rules:
        table = make_table(ui.t("各规则未解决数(按运行)", "Open gaps by rule, run by run"), ui.t("规则", "Rule"),
                       *[r.id[4:] for r in good])
        for rule in rules:
            table.add_row(rule, *[str(r.by_rule().get(rule, 0)) for r in good])
        ui.out.print(table)
    return 0


@app.command(help=bilingual("两次运行之间新增、已解决、仍未解决(及已存在几天)和复发的问题。",
                             "Findings new, resolved, still open (with their age) and reopened between two runs."))
@guarded
def diff(
    ui: Ui,
    run_a: Annotated[str | None, typer.Argument(help=bilingual(
        "较早的一次运行(默认: 最后一次的前一次)。", "The earlier run (default: the one before the last)."))] = None,
    run_b: Annotated[str | None, typer.Argument(help=bilingual("较晚的一次运行(默认: 最后一次)。", "The later run (default: the last)."))] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    from exitcheck.history import History

    settings = workspace(config, required=True)
    result = History(settings.state).diff(run_a, run_b)
    if json_out:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return 0
    if result.from_run is None or result.to_run is None:
        ui.out.print(ui.t("可比较的运行不足两次; 每晚运行 exitcheck run 之后再看", "fewer than two runs to compare; run exitcheck run night after night"))
        return 0
    _print_diff(ui, result)
    return 0


def _print_diff(ui: Ui, result: Any) -> None:
    from exitcheck.history import township_key, township_label
    from exitcheck.report.console import make_table

    oldest = max((e.age_days for e in result.open), default=0)
    ui.out.print(ui.t(
        f"从 {result.from_run} 到 {result.to_run}: 新增 {len(result.new)}, 已解决 {len(result.resolved)}, "
        f"仍未解决 {len(result.open)}(最久 {oldest} 天), 复发 {len(result.reopened)}",
        f"from {result.from_run} to {result.to_run}: {len(result.new)} new, {len(result.resolved)} resolved, "
        f"{len(result.open)} still open (oldest {oldest} days), {len(result.reopened)} reopened"), markup=False)
    lists = ("new", "resolved", "open", "reopened")
    counts: dict[tuple[str, str], Counter[str]] = {}
    ages: dict[tuple[str, str], int] = {}
    for name in lists:
        for entry in getattr(result, name):
            key = (township_label(township_key(entry.level, entry.township), ui.lang), entry.rule)
            counts.setdefault(key, Counter())[name] += 1
            if name == "open":
                ages[key] = max(ages.get(key, 0), entry.age_days)
    table = make_table(ui.t("按乡镇和规则", "By township and rule"), ui.t("乡镇", "Township"), ui.t("规则", "Rule"),
                   ui.t("新增", "New"), ui.t("已解决", "Resolved"), ui.t("仍未解决", "Open"), ui.t("复发", "Reopened"),
                   ui.t("最久(天)", "Oldest (days)"), text=2)
    for key in sorted(counts):
        table.add_row(*key, *[str(counts[key][name]) for name in lists], str(ages.get(key, "")))
    ui.out.print(table)
    for name, title in (("new", ui.t("新增", "New")), ("reopened", ui.t("复发", "Reopened"))):
        entries = getattr(result, name)
        if not entries:
            continue
        table = make_table(title, ui.t("乡镇", "Township"), ui.t("行政村", "Village"), ui.t("户编号", "Household ID"), ui.t("规则", "Rule"),
                       text=4, whole=(2,))
        for entry in entries[:LISTED]:
            table.add_row(entry.township or "", entry.village or "", entry.household_id or "", entry.rule)
        ui.out.print(table)
        if len(entries) > LISTED:
            ui.out.print(ui.t(f"……另有 {len(entries) - LISTED} 项, 用 --json 查看全部", f"... and {len(entries) - LISTED} more; --json lists them all"))
