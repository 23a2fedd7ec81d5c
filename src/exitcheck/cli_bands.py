"""CLI commands for income bands and deliveries (`exitcheck bands`, `exitcheck deliveries`).

`bands` lists the low-income households by band and township, writes bands.json and
bands.xlsx, and with `--push-to` sends each department its own list through the ledger.
`deliveries` shows the ledger. Both find exitcheck.yaml in the current folder or a parent, or
take `--config FILE`.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from exitcheck.cli import (
    Debug,
    Headers,
    Lang,
    Quiet,
    Scheduler,
    Ui,
    Workers,
    WorkspaceAsOf,
    WorkspaceRules,
    app,
    as_of_date,
    check_out,
    compiled_ruleset,
    guarded,
    load_registers,
    progress,
    read_ruleset,
    reading_ahead,
    reference_date,
    writing_to,
)
from exitcheck.cli_language import bilingual
from exitcheck.errors import ConfigError, ExitCode, UsageError, worst

ConfigOption = Annotated[Path | None, typer.Option("--config", help=bilingual(
    "工作区配置文件(默认: 当前目录或上级目录中的 exitcheck.yaml)。",
    "The workspace file (default: exitcheck.yaml here or in a parent folder)."))]


def workspace(path: Path | None, *, required: bool = False) -> Any:
    """The workspace configuration: --config, else the nearest exitcheck.yaml, else None."""
    from exitcheck.config_path import find_config
    from exitcheck.workspace import load_config

    found = path or find_config(Path.cwd())
    if found is None:
        if required:
            raise ConfigError("找不到工作区配置 exitcheck.yaml(当前目录及上级目录都没有); 请用 --config 指定",
                              "no workspace: exitcheck.yaml is in neither this folder nor a parent; give one with --config")
        return None
    return load_config(found)


@app.command(help=bilingual("按收入分档列出低收入户, 并给各部门投递各自的名单。",
                             "List low-income households by income band and push each department its list."))
@guarded
def bands(
    ui: Ui,
    paths: Annotated[list[Path] | None, typer.Argument(help=bilingual(
        "工作簿或文件夹(默认: exitcheck.yaml 中 registers 所列的登记表)。",
        "Workbooks or folders (default: the registers named in exitcheck.yaml)."))] = None,
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option("--out", help=bilingual(
        "写出 bands.json 和 bands.xlsx 的文件夹(默认: 工作区的 out, 否则 ./out)。",
        "Folder for bands.json and bands.xlsx (default: the workspace's out, else ./out)."))] = None,
    json_out: Annotated[bool, typer.Option("--json", help=bilingual(
        "把 bands.json(exitcheck/bands@1)打印到标准输出。", "Print bands.json (exitcheck/bands@1) on stdout."))] = False,
    push_to: Annotated[list[str] | None, typer.Option("--push-to", help=bilingual(
        "投递给这个部门(可写多次), 或 all(全部部门)。", "Deliver to this department (repeatable), or 'all'."))] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=bilingual(
        "只显示会投递给谁、几户, 不真正发送。", "Show what would go where; send nothing."))] = False,
    force: Annotated[bool, typer.Option("--force", help=bilingual(
        "名单内容未变化也投递。", "Deliver even when the content is unchanged."))] = False,
    rules: WorkspaceRules = None,
    as_of: WorkspaceAsOf = None,
    headers: Headers = None,
    engine: Annotated[str, typer.Option("--engine", help=bilingual(
        "local(默认): 在本进程中分档一份登记表。dask: 每个 PATH(或 registers 中的每一项)是一个县, "
        "各作为一个任务在 Dask 集群上分档。",
        "local (default): one register in this process. dask: each PATH (or each entry of registers:) is a county, "
        "banded as a task on a Dask cluster."))] = "local",
    scheduler: Scheduler = None,
    workers: Workers = None,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    given = as_of_date(as_of)
    check_engine(engine, scheduler, workers)
    settings = workspace(config, required=bool(push_to))
    if (dry_run or force) and not push_to:
        ui.note(ui.t("--dry-run 和 --force 只在 --push-to 时有用", "--dry-run and --force only matter with --push-to"))
    inputs = list(paths or []) or (settings.registers if settings else [])
    if not inputs:
        raise UsageError("请给出登记表路径, 或在 exitcheck.yaml 的 registers 中写明",
                         "give the registers' paths, or name them under registers: in exitcheck.yaml")
    if push_to and not dry_run:
        # The run's lock, before any work: while `exitcheck run` (or another push) is
        # delivering, this push is refused at once and says by whom (exit 75).
        from exitcheck.runner import delivery_lock

        ui.hold(delivery_lock(settings.state, ui.lang, "bands --push-to"))
    rules_file = read_ruleset(rules or (settings.rules if settings else None))
    reference = reference_date(given, settings.as_of if settings else None)
    # --out, else the workspace's out: (a bad one is exitcheck.yaml's to fix), else ./out
    folder = out or (settings.out if settings else Path("out"))
    folder_kind = _out_kind(given=out is not None or settings is None)
    check_out(folder, folder_kind)
    local = engine == "local"
    with reading_ahead(inputs, settings) if local else contextlib.nullcontext() as ahead:
        from exitcheck.delivery import resolve_departments
        from exitcheck.income_bands import bands as band_households
        from exitcheck.income_bands import (
            bands_document,
            department_lists,
            json_default,
            write_bands_xlsx,
        )
        from exitcheck.report.files import DEFAULT_MODE, write_bytes

        chosen = resolve_departments(settings, push_to) if push_to else []
        ruleset = compiled_ruleset(rules_file)
        if local:
            registers = load_registers(ui, inputs, headers=headers, config=settings, ahead=ahead, as_of=reference)
    if local:
        from exitcheck.auditing import audit as run_audit

        failures = registers.failures
        with progress(ui, ui.t("核查中", "Auditing")):
            result = run_audit(registers, ruleset, as_of=reference, lang=ui.lang)
    else:
        id_numbers = any("id_number" in (settings.department(d).columns or ()) for d in chosen)
        result = _counties(ui, inputs, ruleset, reference, headers, settings, scheduler, workers, id_numbers)
        failures = result.failures
    with progress(ui, ui.t("分档中", "Banding")):
        banded = band_households(result, lang=ui.lang)
        lists = department_lists(banded, settings, chosen, ruleset) if chosen else {}
    document = bands_document(banded)
    text = json.dumps(document, ensure_ascii=False, indent=2, default=json_default)
    mode = settings.file_mode if settings else DEFAULT_MODE
    with writing_to(folder, folder_kind):
        written = [write_bytes(folder / "bands.json", text.encode("utf-8"), mode), write_bands_xlsx(folder / "bands.xlsx", banded, mode)]
    if json_out:
        print(text)
    else:
        _print_bands(ui, banded, written)
    unread = int(ExitCode.INPUT) if failures else 0
    if not chosen:
        return unread
    if failures:  # households of the unread file would vanish from the lists
        ui.error(ui.t("有输入文件无法读取, 名单可能不全: 本次不投递", "an input could not be read and the lists may be incomplete: nothing delivered"))
        return unread
    return worst(_push(ui, settings, result, banded, chosen, force=force, dry_run=dry_run, lists=lists, to_stderr=json_out), unread)


def _out_kind(*, given: bool) -> Any:
    """How a message about the output folder says to name another: --out, or exitcheck.yaml's out:."""
    from exitcheck.state_files import OUT_OPTION, OUTPUT

    return OUT_OPTION if given else OUTPUT


def check_engine(engine: str, scheduler: str | None, workers: int | None) -> None:
    """--engine, --scheduler and --workers that go together, else a UsageError (exit 2)."""
    if engine not in ("local", "dask"):
        raise UsageError("--engine 只能是 local 或 dask", "--engine takes local or dask")
    if engine == "local" and (scheduler or workers):
        raise UsageError("--scheduler 和 --workers 需与 --engine dask 同用", "--scheduler and --workers go with --engine dask")
    if scheduler and workers:
        raise UsageError("--workers 设定本机集群的规模; 用 --scheduler 时由该集群决定", "--workers sizes a local cluster; with --scheduler the cluster has its own")


def _counties(ui: Ui, paths: list[Path], ruleset: Any, as_of: Any, headers: Path | None, settings: Any,
              scheduler: str | None, workers: int | None, id_numbers: bool) -> Any:
    """--engine dask: each path a county, audited and banded on its worker; the unreadable
    ones reported. Kept here so that the local engine never imports Dask."""
    from exitcheck.cli import read_header_mapping
    from exitcheck.province import CountyFailure, audit_counties, import_distributed

    import_distributed()  # before any work: without Dask, say how to install it (exit 4)
    header_map = read_header_mapping(headers) if headers else (settings.headers if settings else None)

    def came_back(outcome: Any, done: int, total: int) -> None:
        for failure in [outcome] if isinstance(outcome, CountyFailure) else outcome.failures:
            ui.error(failure.message(ui.lang))

    with progress(ui, ui.t("各县核查中", "Auditing the counties")):
        result = audit_counties([[path] for path in paths], ruleset, as_of=as_of, lang=ui.lang, scheduler=scheduler,
                                workers=workers, headers=header_map, limits=settings.limits if settings else None,
                                on_county=came_back, bands=True, id_numbers=id_numbers)
    for zh, en in result.notes:
        ui.note(ui.t(zh, en))
    return result


def _print_bands(ui: Ui, banded: Any, written: list[Path]) -> None:
    if ui.quiet:  # -q prints nothing, so nothing is counted for the table
        return
    from exitcheck.income_bands import count_table, stands_out
    from exitcheck.report.console import make_table

    table_frame = count_table(banded.frame, banded.bands, ui.lang, by_county=banded.several_counties)
    table = make_table(ui.t(f"低收入户分档(基准日 {banded.as_of.isoformat()})", f"Low-income households by band (as of {banded.as_of.isoformat()})"),
                   *[str(c) for c in table_frame.columns])
    for row in table_frame.itertuples(index=False):  # townships, a few dozen at most
        table.add_row(*[str(v) for v in row])
    ui.out.print(table)
    specials = banded.frame["special"].str.len().gt(0).sum() if len(banded.frame) else 0
    marked = sum(stands_out(banded.frame["special"])) if len(banded.frame) else 0
    ui.out.print(ui.t(f"其中有特殊群体(五保/特困、低保、残疾、有劳动力未务工)的户: {specials}; "
                      f"须突出的(五保/特困、残疾, 名单中加底色)户: {marked}",
                      f"of which households in a special group (five guarantees, dibao, disability, able to work without work): {specials}; "
                      f"that must stand out (five guarantees, disability; shaded in the lists): {marked}"))
    for note in banded.notes():
        ui.note(note.text(ui.lang))
    if banded.blank_income:
        ui.note(ui.t(f"{banded.blank_income} 户人均纯收入为空或无法识别, 未能分档(见 exitcheck validate)",
                     f"{banded.blank_income} households have a blank or unreadable income and are in no band (see exitcheck validate)"))
    if banded.no_household_id:
        ui.note(ui.t(f"户表中 {banded.no_household_id} 行的户编号为空或已丢失位数, 未计入任何一档(见 exitcheck validate)",
                     f"{banded.no_household_id} rows of the households sheet have a blank household ID or one that lost "
                     "its digits, and are in no band (see exitcheck validate)"))
    for path in written:
        ui.out.print(ui.t(f"已写入 {path}", f"written: {path}"))


def _push(ui: Ui, settings: Any, result: Any, banded: Any, chosen: list[str], *, force: bool, dry_run: bool,
          lists: dict[str, Any], to_stderr: bool) -> int:
    from exitcheck.delivery import failing_departments, push
    from exitcheck.delivery.push import outcome_label, recipient_label
    from exitcheck.report.console import print_entries

    outcomes = push(settings, result, chosen, force=force, dry_run=dry_run, lang=ui.lang, banded=banded, lists=lists)
    console = ui.err if to_stderr else ui.out
    rows = []
    for outcome in outcomes:
        result_text = outcome_label(outcome.outcome, ui.lang)
        if outcome.would:
            result_text += ": " + (ui.t("将投递", "would deliver") if outcome.would == "deliver" else outcome_label("unchanged", ui.lang))
        detail = outcome.reason(ui.lang) if outcome.failed else (outcome.proof(ui.lang) or outcome.reason(ui.lang))
        rows.append((recipient_label(settings, outcome.department, ui.lang), outcome.target, f"{outcome.rows}{ui.t(' 户', ' households')}",
                     result_text, detail))
    if not ui.quiet:
        print_entries(console, ui.t("投递", "Deliveries"), (ui.t("部门", "Department"), ui.t("去向", "Target"), ui.t("户数", "Households"),
                      ui.t("结果", "Outcome"), ui.t("回执 / 原因", "Receipt / reason")), rows, text=5, whole=(0,))
    for outcome in outcomes:
        reason = outcome.reason(ui.lang)
        named = recipient_label(settings, outcome.department, ui.lang)
        if outcome.failed:
            ui.error(ui.t(f"{named}: 投递失败: {reason}", f"{named}: delivery failed: {reason}"))
        elif reason:  # a dry run that would fail
            ui.note(f"{named}: {reason}")
    _warn_failing(ui, settings, failing_departments(settings), only=set(chosen))
    return int(ExitCode.DELIVERY) if any(o.failed for o in outcomes) else 0


def _local_time(stamp: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _warn_failing(ui: Ui, settings: Any, failing: dict[str, int], only: set[str] | None = None) -> None:
    from exitcheck.delivery.push import recipient_label

    for department, runs in sorted(failing.items()):
        if only is None or department in only:
            named = recipient_label(settings, department, ui.lang)
            ui.error(ui.t(f"部门 {named} 已连续 {runs} 次投递失败, 请检查其配置和服务器",
                          f"department {named} has failed {runs} deliveries in a row; check its configuration and server"))


@app.command(help=bilingual("列出投递记录, 并提醒连续投递失败的部门。",
                             "List the delivery ledger and warn about departments failing run after run."))
@guarded
def deliveries(
    ui: Ui,
    config: ConfigOption = None,
    json_out: Annotated[bool, typer.Option("--json", help=bilingual(
        "把投递记录以 JSON(exitcheck/deliveries@1)打印出来。", "Print the ledger as JSON (exitcheck/deliveries@1)."))] = False,
    department: Annotated[str | None, typer.Option("--department", help=bilingual(
        "只看这个部门(编号或名称, 如 civil-affairs 或 民政局)。", "Only this department (its id or its name, as civil-affairs or 民政局)."))] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help=bilingual("显示最近几次投递。", "Newest attempts shown."))] = 50,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    from exitcheck.delivery.ledger import open_ledger
    from exitcheck.delivery.push import department_id, outcome_label, recipient_label
    from exitcheck.report.console import print_entries

    settings = workspace(config, required=True)
    department = department_id(settings, department) if department else None
    with open_ledger(settings.state) as ledger:
        attempts = ledger.attempts(department, limit)
        failing = ledger.failing()
    if json_out:
        print(json.dumps({
            "schema": "exitcheck/deliveries@1",
            "attempts": [attempt.to_dict(ui.lang) for attempt in attempts],
            "failing": [{"department": d, "failed_runs": n} for d, n in sorted(failing.items())],
        }, ensure_ascii=False, indent=2))
    else:
        rows = []
        for attempt in attempts:
            detail = attempt.error or attempt.receipt
            rows.append((_local_time(attempt.started_at), recipient_label(settings, attempt.department, ui.lang), attempt.transport,
                         f"{attempt.rows}{ui.t(' 户', ' households')}", outcome_label(attempt.outcome, ui.lang), attempt.digest[:12],
                         detail.text(ui.lang) if detail else ""))
        print_entries(ui.out, ui.t("投递记录(最新在前)", "Deliveries (newest first)"),
                      (ui.t("时间", "Time"), ui.t("部门", "Department"), ui.t("方式", "Transport"), ui.t("户数", "Households"),
                       ui.t("结果", "Outcome"), "sha256", ui.t("回执 / 原因", "Receipt / reason")), rows, text=7, whole=(0, 1, 5))
    if not json_out and not attempts:
        ui.out.print(ui.t("尚无投递记录", "no deliveries yet"))
    _warn_failing(ui, settings, failing, {department} if department else None)
    return 0
