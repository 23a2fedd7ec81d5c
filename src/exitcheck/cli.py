"""The command line: a thin layer that parses options, calls the library and maps outcomes to
exit codes. Heavy modules are imported inside the commands so that `--help` is instant.

Exit codes (README): 0 nothing found; 1 findings; 2 usage; 3 unreadable input; 4 rules or
configuration invalid; 5 delivery failed; 70 internal error; 74 the workspace's own files (history,
ledger, output or state folders) cannot be read or written; 75 another run holds the lock.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from exitcheck.cli_language import (
    CLICK_ERROR,
    App,
    asked_language,
    bilingual,
    one_of_languages,
    usage_message,
)
from exitcheck.errors import ExitcheckError, ExitCode, InputError, UsageError, worst
from exitcheck.i18n import did_you_mean

app = App(
    help=bilingual("exitcheck: 脱贫退出验收登记表核查。按退出标准核查本县的登记表。",
                   "exitcheck: 脱贫退出验收 register audit. Check county registers against the exit indicators."),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Checked, so that typer refuses --lang cn itself, as a usage error in the clerk's language.
Lang = Annotated[str, typer.Option("--lang", callback=one_of_languages, help=bilingual(
    "zh(默认)或 en: 提示信息、表头和工作簿的语言。", "zh (default) or en: messages, headers and workbooks."))]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help=bilingual("只显示错误。", "Print nothing but errors."))]
Debug = Annotated[bool, typer.Option("--debug", help=bilingual("内部错误时显示调用栈(traceback)。", "Show a traceback on an internal error."))]
#: True when this process is the `exitcheck` program (launch.main), which ends with its command;
#: False for a command run in-process (tests, other programs), which must leave the process as it was.
whole_process = False

Paths = Annotated[list[Path], typer.Argument(help=bilingual(
    "登记表工作簿(.xlsx .xlsm .xls .csv)或其所在的文件夹。", "Workbooks (.xlsx .xlsm .xls .csv) or folders of them."))]
Headers = Annotated[Path | None, typer.Option("--headers", help=bilingual(
    "表头对照文件(YAML): 本县的表头各对应哪个字段。", "YAML mapping of your own headers to fields."))]
Strict = Annotated[bool, typer.Option("--strict", help=bilingual("遇到第一个无法读取的文件就停止。", "Stop at the first unreadable file."))]
#: How a reference date may be written, before what it defaults to.
_AS_OF_FORMS = ("基准日, 写法同登记表中的日期: 2020-06-30、2020/6/30、20200630、2020年6月30日",
                "Reference date, as a register writes one: 2020-06-30, 2020/6/30, 20200630, 2020年6月30日")


def as_of_option(default_zh: str, default_en: str) -> Any:
    """The --as-of option, its help ending with what the command takes when it is not given."""
    return Annotated[str | None, typer.Option("--as-of", help=bilingual(
        f"{_AS_OF_FORMS[0]}(默认: {default_zh})。", f"{_AS_OF_FORMS[1]} (default: {default_en})."))]


AsOf = as_of_option("今天", "today")
#: For the commands that honour the workspace's as_of:.
WorkspaceAsOf = as_of_option("工作区的 as_of, 否则今天", "the workspace's, else today")
WorkspaceRules = Annotated[Path | None, typer.Option("--rules", help=bilingual(
    "规则集文件(默认: 工作区的规则集, 否则 rules/sichuan-2020.yaml)。",
    "Rule-set file (default: the workspace's, else rules/sichuan-2020.yaml)."))]
RulesFile = Annotated[Path | None, typer.Option("--rules", help=bilingual("规则集文件。", "Rule-set file."))]
Scheduler = Annotated[str | None, typer.Option("--scheduler", help=bilingual(
    "与 --engine dask 同用: 一个已在运行的 Dask 调度器的地址(默认: 在本机启动一个集群)。",
    "With --engine dask: address of a running Dask scheduler (default: start a local cluster)."))]
Workers = Annotated[int | None, typer.Option("--workers", min=1, help=bilingual(
    "与 --engine dask 同用且不用 --scheduler 时: 本机集群的工作进程数(默认: 每个核一个)。",
    "With --engine dask and no --scheduler: workers of the local cluster (default: one per core)."))]


class Ui:
    """Where the CLI talks: stdout for results, stderr for errors, nothing extra when quiet."""

    def __init__(self, lang: str = "zh", quiet: bool = False, debug: bool = False) -> None:
        if lang not in ("zh", "en"):
            raise typer.BadParameter("--lang must be zh or en")
        self.lang, self.quiet, self.debug = lang, quiet, debug
        self.held = contextlib.ExitStack()
        self._out: Any = None
        self._err: Any = None

    @property
    def out(self) -> Any:
        if self._out is None:
            from rich.console import Console

            self._out = Console(highlight=False, quiet=self.quiet, soft_wrap=True)
        return self._out

    @property
    def err(self) -> Any:
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._err

    def t(self, zh: str, en: str) -> str:
        return en if self.lang == "en" else zh

    def hold(self, manager: contextlib.AbstractContextManager[Any]) -> Any:
        """Enter `manager` (a lock) for the rest of the command; `guarded` exits it however the
        command ends."""
        return self.held.enter_context(manager)

    def error(self, text: str) -> None:
        from exitcheck.idcard import mask_text

        self.err.print(f"[bold red]exitcheck:[/] {_escape(mask_text(text))}")

    def note(self, text: str) -> None:
        from exitcheck.idcard import mask_text

        if not self.quiet:
            self.err.print(f"[yellow]{_escape(mask_text(text))}[/]")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def guarded(func: Callable[..., int]) -> Callable[..., None]:
    """Run a command body: map ExitcheckError to its exit code, anything else to 70."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        ui = Ui(kwargs.get("lang", "zh"), kwargs.get("quiet", False), kwargs.get("debug", False))
        try:
            with ui.held:
                code = func(ui, *args, **kwargs)
        except ExitcheckError as error:
            ui.error(error.message(ui.lang))
            code = int(error.exit_code)
        except typer.Exit:
            raise
        except typer.BadParameter as error:  # a value typer could not check by itself
            ui.error(str(error.format_message()))
            code = int(ExitCode.USAGE)
        except KeyboardInterrupt:
            ui.error(ui.t("已中断", "interrupted"))
            code = 130
        except Exception as error:  # the last line of defence: never a bare traceback
            if ui.debug:
                import traceback

                traceback.print_exc()
            ui.error(ui.t(f"内部错误({type(error).__name__}: {error}); 请用 --debug 重试并报告", f"internal error ({type(error).__name__}: {error}); rerun with --debug and report it"))
            code = int(ExitCode.INTERNAL)
        raise typer.Exit(code)

    import inspect

    signature = inspect.signature(func, eval_str=True)
    wrapper.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
    return wrapper


def load_registers(
    ui: Ui, paths: list[Path], *, headers: Path | None = None, strict: bool = False, config: Any = None, ahead: Any = None,
    as_of: Any = None,
) -> Any:
    """The registers of `paths`, read by `ahead` (a ReadAhead of reading_ahead) if given. With
    `ahead` and `as_of`, the sheets it has read are loaded, and parsed for `as_of`, while it
    reads the others."""
    from exitcheck.registers.load import load

    if config is None:
        config = workspace_nearby()
    header_map = read_header_mapping(headers) if headers else (config.headers if config else None)
    limits = config.limits if config else None
    with _collector_paused(), progress(ui, ui.t("读取登记表", "Reading registers")):
        registers = load(paths, headers=header_map, strict=strict, limits=limits, reader=ahead.read if ahead else None,
                         parse_ahead=as_of if ahead else None)
    if whole_process:
        # What is alive now (modules, the registers) lives to the end of the process: out of
        # the collector's sight, a full collection during the audit (~30 ms each) and the one
        # at exit no longer walk it. Never undone, so only when the process ends with the command.
        gc.freeze()
    for failure in registers.failures:
        ui.error(failure.message(ui.lang))
    for zh, en in registers.notes:
        ui.note(ui.t(zh, en))
    return registers


@contextlib.contextmanager
def reading_ahead(paths: list[Path], config: Any) -> Iterator[Any]:
    """Start reading `paths` now, before the command imports pandas and the rest, and wait
    until calamine parses: the imports then run beside it (registers/ahead.py). Leaving the
    block stops a reading still under way."""
    from exitcheck.registers.ahead import ReadAhead, take_started

    limits = config.limits if config else None
    with _collector_paused():
        ahead = take_started(paths, limits) or ReadAhead(paths, limits)
        try:
            ahead.wait_until_parsing()
            yield ahead
        except BaseException:
            # The program ends on this error: it need not wait for calamine to finish a sheet
            # no one will use. Run in-process (tests, other programs), it waits as ever.
            ahead.close(wait=not whole_process)
            raise
        ahead.close()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while the registers are read: reading makes millions of cell
    objects and no garbage, and each full collection walks them all (0.1 s of a county read)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def workspace_nearby() -> Any:
    """The workspace of the current folder, if any: its header mapping and input limits apply
    to every command, also when input paths are given (a command needs none, though)."""
    from exitcheck.config_path import nearby_config

    return nearby_config()


def read_header_mapping(path: Path) -> dict[str, dict[str, str]]:
    from exitcheck.workspace import read_header_map

    return read_header_map(path)


def progress(ui: Ui, label: str) -> Any:
    """A spinner on a terminal for work that may take a while; nothing when quiet or piped."""
    if ui.quiet or not sys.stderr.isatty():
        return contextlib.nullcontext()
    return ui.err.status(label)


def check_out(out: Path, kind: Any = None) -> None:
    """Before any work: --out (or `kind`'s path) can be a folder this user may write in, else
    WorkspaceFileError (exit 74) naming the path and how to fix it. Nothing is made yet: a run
    that cannot read its input leaves no folder behind."""
    from exitcheck.state_files import OUT_OPTION, check_target

    check_target(out, kind or OUT_OPTION)


@contextlib.contextmanager
def writing_to(out: Path, kind: Any = None) -> Iterator[None]:
    """Writing the outputs in `out`: what fails there (a full disk, a file put in the way since
    the check) is WorkspaceFileError (exit 74) with the path and how to fix it, not a bug."""
    import os

    from exitcheck.state_files import OUT_OPTION, workspace_files

    with workspace_files(Path(os.path.abspath(out)), kind or OUT_OPTION):
        yield


def _failures_code(registers: Any) -> int:
    return int(ExitCode.INPUT) if registers.failures else 0


@app.command(help=bilingual("按登记表格式检查登记表, 列出每一个数据问题。",
                             "Check the registers against the register format and list every data issue."))
@guarded
def validate(
    ui: Ui,
    paths: Paths,
    json_out: Annotated[bool, typer.Option("--json", help=bilingual(
        "把数据问题以 JSON(exitcheck/issues@1)打印到标准输出。", "Print the issues as JSON (exitcheck/issues@1) on stdout."))] = False,
    out: Annotated[Path | None, typer.Option("--out", help=bilingual(
        "写出 issues.xlsx(和 issues.json)的文件夹。", "Folder for issues.xlsx (and issues.json)."))] = None,
    headers: Headers = None,
    as_of: AsOf = None,
    strict: Strict = False,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    reference = reference_date(as_of_date(as_of))
    if out:
        check_out(out)
    config = workspace_nearby()
    with reading_ahead(paths, config) as ahead:
        from exitcheck.report import console
        from exitcheck.report.issues_out import issues_document
        from exitcheck.validation import validate as run_validate

        try:
            registers = load_registers(ui, paths, headers=headers, strict=strict, config=config, ahead=ahead, as_of=reference)
        except InputError as error:
            # A refused sheet (a required column missing) is a data issue too: listed as on any
            # other day, on stdout and in --out, before the exit 3 of the unread input.
            if error.issues:
                document = issues_document(error.issues, ui.lang)
                if json_out:
                    print(json.dumps(document, ensure_ascii=False, indent=2))
                if out:
                    _write_issues(ui, out, error.issues, document, quiet=json_out)
            raise
    with progress(ui, ui.t("校验数据", "Validating")):
        issues = run_validate(registers, reference)
    document = issues_document(issues, ui.lang, registers.counts()) if json_out or out else None
    if json_out:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        console.print_validation(ui, registers, issues, written=out is not None)
    if out:
        _write_issues(ui, out, issues, document, quiet=json_out)
    found = int(ExitCode.FINDINGS) if any(i.severity == "error" for i in issues) else 0
    return worst(found, _failures_code(registers))


def _write_issues(ui: Ui, out: Path, issues: list[Any], document: Any, *, quiet: bool) -> None:
    """issues.xlsx and issues.json (what --json prints) in `out`; said on stdout unless the
    JSON is printed there."""
    from exitcheck.report.files import write_json
    from exitcheck.report.issues_out import write_issues_xlsx

    with writing_to(out):
        path = write_issues_xlsx(out / "issues.xlsx", issues, ui.lang)
        write_json(out / "issues.json", document)
    if not quiet:
        ui.out.print(ui.t(f"问题清单已写入 {path} 和 issues.json", f"issues written to {path} and issues.json"))


def reference_date(given: Any, configured: Any = None) -> Any:
    """The day a command judges the registers by: `given` (--as-of, as `as_of_date` read it), else
    `configured` (the workspace's as_of, for the commands that honour it), else today. Fixed
    once, so that a run crossing midnight (and the sheets parsed while it still reads) judges
    every register by one day."""
    from datetime import date

    return given or configured or date.today()


def as_of_date(text: str | None) -> Any:
    """--as-of read as a register's date cell is (exitcheck.days), or None when not given; a
    UsageError (exit 2) saying which forms are accepted when it names no day. Each command reads
    it first, before any other work, so that a mistyped date costs nothing."""
    from exitcheck.days import day_problem, parse_day

    if not text:
        return None
    day = parse_day(text)
    if day is None:
        zh, en = day_problem(text)
        raise UsageError(f"--as-of: {zh}", f"--as-of: {en}")
    return day


@app.command(help=bilingual("解释一个数据问题代码: 它的含义和改法。", "Explain a data issue code: what it means and how to fix it."))
@guarded
def explain(
    ui: Ui,
    code: Annotated[str, typer.Argument(help=bilingual("数据问题代码, 如 id_checksum。", "A data issue code, e.g. id_checksum."))],
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    from exitcheck.issues import CATALOGUE, code_named
    from exitcheck.issues import explain as explain_code

    found = code_named(code)
    if found is None:
        codes = sorted(CATALOGUE)
        if (rule := _rule_named(code)) is not None:  # a rule's id, as the audit's table shows it
            hint = ui.t(f"; 「{rule}」是规则代码, 请用 exitcheck rules explain {rule}", f"; '{rule}' is a rule id: use exitcheck rules explain {rule}")
        else:
            hint = ui.t(*did_you_mean(code, codes)) or ui.t(f"; 问题代码有: {'、'.join(codes)}", f"; the codes are: {', '.join(codes)}")
        ui.error(ui.t(f"没有这个问题代码: {code}{hint}", f"no such issue code: {code}{hint}"))
        return int(ExitCode.USAGE)
    print(explain_code(found, ui.lang))
    return 0


def _rule_named(text: str) -> str | None:
    """The id of a rule of the workspace's (or the default) rule set that `text` names, in any
    letter case; None when none does, or the rule set cannot be read (explain says no more)."""
    try:
        config = workspace_nearby()
        ruleset = read_ruleset(config.rules if config else None)
    except Exception:  # noqa: BLE001 - a hint only: a bad workspace is reported by the commands that use it
        return None
    return next((rule.id for rule in ruleset.rules if rule.id.casefold() == text.strip().casefold()), None)


@app.command(help=bilingual("显示每张工作表的每个表头被读成哪个字段。", "Show how each header of each sheet was understood."))
@guarded
def columns(
    ui: Ui,
    paths: Paths,
    headers: Headers = None,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    from exitcheck.registers.load import read_headers
    from exitcheck.report import console

    # Headers only, not the registers: a sheet that lacks a required column (a header misspelt
    # or blanked) is the case this command is for, and is shown with what it lacks (then exit 3).
    config = workspace_nearby()
    header_map = read_header_mapping(headers) if headers else (config.headers if config else None)
    found = read_headers(paths, headers=header_map, limits=config.limits if config else None)
    console.print_columns(ui, found.sheets)
    for zh, en in found.notes:
        ui.note(ui.t(zh, en))
    for failure in found.failures:
        ui.error(failure.message(ui.lang))
    return int(ExitCode.INPUT) if found.failures else 0


@app.command(help=bilingual("写出一份虚构的样例县登记表(每次相同)。", "Write a realistic sample county register (deterministic)."))
@guarded
def sample(
    ui: Ui,
    out: Annotated[Path, typer.Argument(help=bilingual("要写出的工作簿, 如 registers.xlsx。", "The workbook to write, e.g. registers.xlsx."))],
    households: Annotated[int, typer.Option("--households", min=1, help=bilingual("户数。", "Number of households."))] = 300,
    seed: Annotated[int, typer.Option("--seed", help=bilingual(
        "随机种子(种子相同, 工作簿也相同)。", "Random seed (same seed, same workbook)."))] = 2020,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    import os

    from xlsxwriter.exceptions import FileCreateError

    from exitcheck.report.files import DEFAULT_MODE, atomic_path
    from exitcheck.sample import write_sample
    from exitcheck.state_files import SAMPLE_FILE, workspace_file_error

    check_out(out, SAMPLE_FILE)
    try:
        # like every output: whole or not at all, and not readable by other users (its people
        # are made up, but a clerk copies the file and fills it with real ones)
        with writing_to(out, SAMPLE_FILE), atomic_path(out, DEFAULT_MODE) as temp:
            write_sample(temp, households=households, seed=seed)
    except FileCreateError as error:  # xlsxwriter's wrapper of the OSError of creating the file
        cause = error.args[0] if error.args and isinstance(error.args[0], OSError) else OSError(str(error))
        raise workspace_file_error(Path(os.path.abspath(out)), SAMPLE_FILE, cause) from error
    ui.out.print(ui.t(f"样例登记表已写入 {out}({households} 户)", f"sample register written to {out} ({households} households)"))
    return 0


@app.command(help=bilingual("按退出标准核查登记表, 写出问题清单。", "Audit the registers against the exit indicators and write the gap lists."))
@guarded
def audit(
    ui: Ui,
    paths: Paths,
    rules: WorkspaceRules = None,
    as_of: AsOf = None,
    out: Annotated[Path, typer.Option("--out", help=bilingual("结果写到哪个文件夹。", "Folder for the outputs."))] = Path("out"),
    format_: Annotated[str, typer.Option("--format", help=bilingual("逗号分隔: xlsx、json、csv。", "Comma-separated: xlsx, json, csv."))] = "xlsx,json",
    split_by: Annotated[str | None, typer.Option("--split-by", help=bilingual(
        "township: 另给每个乡镇写一本工作簿。", "township: one workbook per township too."))] = None,
    headers: Headers = None,
    strict: Strict = False,
    engine: Annotated[str, typer.Option("--engine", help=bilingual(
        "local(默认): 在本进程中核查一份登记表。dask: 每个 PATH 是一个县, 各作为一个任务在 Dask 集群上核查。",
        "local (default): one register in this process. dask: each PATH is a county, audited as a task on a Dask cluster."))] = "local",
    scheduler: Scheduler = None,
    workers: Workers = None,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    given = as_of_date(as_of)
    formats = [f.strip() for f in format_.split(",") if f.strip()]
    unknown = [f for f in formats if f not in ("xlsx", "json", "csv")]
    if unknown:
        raise UsageError(f"--format: 没有这种格式: {'、'.join(unknown)}(可选 xlsx、json、csv)",
                         f"--format: unknown {', '.join(unknown)} (xlsx, json, csv)")
    if split_by not in (None, "township"):
        raise UsageError("--split-by 只能是 township", "--split-by takes only 'township'")
    from exitcheck.cli_bands import check_engine

    check_engine(engine, scheduler, workers)
    check_out(out)
    config = workspace_nearby()
    rules = rules or (config.rules if config else None)  # in a workspace, the rules `exitcheck run` uses
    if engine == "dask":  # in its own module, so that the local engine never imports Dask
        from exitcheck.cli_province import audit_on_dask

        return audit_on_dask(ui, paths, rules=rules, as_of=given, out=out, formats=formats, split_by=split_by,
                             headers=headers, strict=strict, scheduler=scheduler, workers=workers)
    reference = reference_date(given)
    rules_file = read_ruleset(rules)
    with reading_ahead(paths, config) as ahead:
        from exitcheck.auditing import audit as run_audit
        from exitcheck.report import console
        from exitcheck.report.gaps_out import write_outputs
        from exitcheck.validation import prepare

        ruleset = compiled_ruleset(rules_file)
        registers = load_registers(ui, paths, headers=headers, strict=strict, config=config, ahead=ahead, as_of=reference)
    with progress(ui, ui.t("校验数据", "Validating")):
        prepare(registers, reference)
    with progress(ui, ui.t("评估指标", "Evaluating the indicators")):
        result = run_audit(registers, ruleset, as_of=reference, lang=ui.lang)
    with progress(ui, ui.t("写出清单", "Writing the lists")), writing_to(out):
        written = write_outputs(out, result, formats, split_by)
    console.print_audit(ui, result, written)
    _warn_of_stale_books(ui, out, written)
    return worst(result.exit_code(), _failures_code(registers))


def _warn_of_stale_books(ui: Ui, out: Path, written: list[Path]) -> None:
    """Township books an earlier audit left in `out`: a clerk must not hand them out as this run's."""
    from exitcheck.report.gaps_out import stale_township_books

    stale = stale_township_books(out, written)
    if stale:
        names = "、".join(path.name for path in stale[:5]) + ("…" if len(stale) > 5 else "")
        folder = out / "townships"
        ui.note(ui.t(f"{folder} 中有 {len(stale)} 个乡镇工作簿不是这次写的, 是之前的运行留下的, 已过时({names}): "
                     f"请删除它们, 或加 --split-by township 重新生成",
                     f"{len(stale)} township book(s) in {folder} were not written by this run but left by an earlier one, "
                     f"and are out of date ({names}): delete them, or add --split-by township to write them anew"))


def ruleset_at(path: Path | None) -> Any:
    """The rule set at `path` (the default one when None), read, validated and compiled."""
    return compiled_ruleset(read_ruleset(path))


def read_ruleset(path: Path | None) -> Any:
    """The rule set read and validated, not compiled: this needs no pandas, so a command checks
    it before it starts reading the registers."""
    from exitcheck.rules.model import load_ruleset

    return load_ruleset(path)


def compiled_ruleset(ruleset: Any) -> Any:
    """`ruleset` with every rule's expressions compiled once (ConfigError for a bad one)."""
    from exitcheck.rules.engine import compile_ruleset

    return compile_ruleset(ruleset)


rules_app = App(help=bilingual("列出、解释和检查规则集。", "List, explain and check rule sets."), no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@app.callback()
@rules_app.callback()
def _group_language(ctx: typer.Context, lang: Lang = "zh") -> None:
    # --lang before the command (`exitcheck --lang en audit ...`) is the command's --lang too; and
    # `exitcheck --help --lang en` needs the option to exist at this level to show English help.
    if lang != "zh":
        ctx.default_map = {name: {"lang": lang} for name in ctx.command.commands}


@rules_app.command("list", help=bilingual("列出规则集中的规则: 编号、层级、名称、类别、责任部门。",
                                          "List the rules of a rule set: id, level, name, kind, department."))
@guarded
def rules_list(
    ui: Ui,
    rules: RulesFile = None,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    from exitcheck.report import console
    from exitcheck.report.gaps_out import department_label, kind_label, level_label

    ruleset = ruleset_at(rules)
    # The id stays a code (it is what `rules explain` and a rule file take); the rest is in
    # the words of the gap workbook.
    table = console.make_table(f"{ruleset.name} {ruleset.version}: {ruleset.spec.title}", "id", ui.t("层级", "level"), ui.t("名称", "name"),
                           ui.t("类别", "kind"), ui.t("责任部门", "department"), text=5)
    for rule in ruleset.rules:
        table.add_row(rule.id, level_label(rule.level, ui.lang), rule.name_en if ui.lang == "en" and rule.name_en else rule.name,
                      kind_label(rule.kind, ui.lang), department_label(rule.department, ui.lang))
    ui.out.print(table)
    return 0


@rules_app.command("explain", help=bilingual("解释一条规则: 名称、含义、依据和判定方法。", "Explain a rule: its name, meaning, basis and check."))
@guarded
def rules_explain(
    ui: Ui,
    rule_id: Annotated[str, typer.Argument(help=bilingual("规则编号, 如 income。", "A rule id, e.g. income."))],
    rules: RulesFile = None,
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    ruleset = ruleset_at(rules)
    try:
        rule = ruleset.rule(rule_id)
    except KeyError:
        hint = ui.t(*did_you_mean(rule_id, [r.id for r in ruleset.rules])) or ui.t(
            "; 用 exitcheck rules list 查看全部规则", "; exitcheck rules list shows them all")
        ui.error(ui.t(f"没有这条规则: {rule_id}{hint}", f"no such rule: {rule_id}{hint}"))
        return int(ExitCode.USAGE)
    from exitcheck.report.gaps_out import department_label, kind_label, level_label

    en = ui.lang == "en"
    lines = [
        f"{rule.id} — {rule.name_en if en and rule.name_en else rule.name}",
        f"{'level' if en else '层级'}: {level_label(rule.level, ui.lang)}   {'kind' if en else '类别'}: {kind_label(rule.kind, ui.lang)}   "
        f"{'department' if en else '责任部门'}: {department_label(rule.department, ui.lang)}",
        "",
        (rule.description_en if en and rule.description_en else rule.description) or "",
        "",
        f"{'applies to' if en else '适用'}: {rule.applies_to or ('all' if en else '全部')}",
        f"{'check' if en else '判定'}: {rule.check}",
    ]
    if rule.high_when:
        lines.append(f"{'high priority when' if en else '高风险条件'}: {rule.high_when}")
    lines.append(f"{'basis' if en else '依据'}: {rule.basis}")
    print("\n".join(lines))
    return 0


@rules_app.command("check", help=bilingual("检查规则集文件: YAML、字段、表达式(有错时退出码为 4)。",
                                           "Check a rule-set file: YAML, fields, expressions (exit 4 on error)."))
@guarded
def rules_check(
    ui: Ui,
    file: Annotated[Path, typer.Argument(help=bilingual("规则集 YAML 文件。", "A rule-set YAML file."))],
    lang: Lang = "zh",
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    ruleset = ruleset_at(file)
    ui.out.print(ui.t(f"{file}: {len(ruleset.rules)} 条规则, 检查通过", f"{file}: {len(ruleset.rules)} rules, all valid"))
    return 0


def main() -> None:
    """Run the command line; typer's usage errors are said here, in the clerk's language."""
    try:
        code = app(standalone_mode=False)
    except CLICK_ERROR as error:
        code = _usage_error(error)
    raise SystemExit(code or 0)


def _usage_error(error: Any) -> int:
    """Say a usage error typer found (exit 2) in the language the command line asks for; any
    other error of typer's (help for a bare group, say) as typer says it."""
    lang = asked_language(sys.argv[1:])
    message = usage_message(error, lang)
    if message is None:
        error.show()
        return int(error.exit_code)
    Ui(lang).error(message)
    return int(ExitCode.USAGE)


# Commands that live in their own modules register themselves on `app` when imported.
from exitcheck import cli_bands, cli_run  # noqa: E402,F401
