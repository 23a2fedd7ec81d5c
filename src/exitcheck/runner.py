"""The nightly job (`exitcheck run`) as a library function: audit, bands and deliveries under a
lock, outputs in out/<run-id>/, a JSON-lines log, the run recorded in the history, old run
folders and logs pruned.

The job is a sequence of steps, each ending with an exit code and a one-line summary (handed
to `on_step` as it happens, so the CLI prints it at once); the run's exit code is the worst of
them. Gaps (exit 1) do not stop deliveries. An unreadable input (exit 3) does: households of
the unread file would vanish from the lists and the departments would drop them; such a run is
"failed" in the history and left out of the diff and the burn-down for the same reason.

With `engine: dask` each entry of `registers` is a county, audited as one task on a Dask
cluster (exitcheck.province); the county bands its own households on its worker, so the bands
and department lists come out as the local engine's over the same registers. Township books and
deliveries are then per county and township, named "<county>-<township>" (township names recur
across counties). A county that cannot be read counts as an unreadable input.

Before it reads anything the run proves that it can write what it must (the history, the
delivery ledger, the output and log folders): a run that could not record what it delivered
stops at once with exit 74 and the file to fix. An old run folder that retention cannot delete
is a warning, never a failed night.

The lock is filelock's OS lock on state/run.lock: the kernel drops it when the holder dies, so
a run killed with SIGKILL never blocks the next one. Who holds it (run id, pid, start time) is
kept in state/run.lock.json for the message a second run prints; the next run that finds that
file left behind records the killed run as failed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from exitcheck.errors import ConfigError, ExitcheckError, ExitCode, InputError, LockedError, worst
from exitcheck.history import History, RunRecord, Status, findings_from_gaps
from exitcheck.i18n import did_you_mean, join_list, pick
from exitcheck.idcard import mask_text
from exitcheck.report.files import file_stem, write_json
from exitcheck.state_files import LOGS, OUTPUT, STATE, check_folder, workspace_files

if TYPE_CHECKING:
    from exitcheck.auditing import AuditResult, Gap
    from exitcheck.delivery.push import DeliveryOutcome
    from exitcheck.issues import DataIssue
    from exitcheck.province import ProvinceResult
    from exitcheck.rules.model import RuleSet
    from exitcheck.workspace import WorkspaceConfig

T = TypeVar("T")

LOCK_NAME = "run.lock"
HOLDER_NAME = "run.lock.json"
LOG_DIR = "logs"
RUN_ID = re.compile(r"^(\d{8}-\d{6})(-\d{2,})?$")
TOWNSHIP_PREFIX = "township:"
#: Checks, 50 ms apart, for the details of a run that has only just taken the lock.
HOLDER_WAITS = 40


@dataclass(frozen=True)
class Step:
    """One step of a run: what it was, how it ended, one line for the morning reader."""

    name: str
    code: int
    zh: str
    en: str

    def text(self, lang: str) -> str:
        return pick(lang, self.zh, self.en)

    @property
    def failed(self) -> bool:
        return self.code not in (ExitCode.OK, ExitCode.FINDINGS)


@dataclass
class RunReport:
    run_id: str
    folder: Path | None
    status: Status = "failed"
    steps: list[Step] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return worst(*(step.code for step in self.steps))

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "exitcheck/run@1", "run": self.run_id, "status": self.status, "exit_code": self.exit_code,
                "steps": [{"step": s.name, "code": s.code, "message": s.en} for s in self.steps]}


def _files_named(inputs: list[str], shown: int = 3) -> tuple[str, str]:
    """The files a run read, a few named: a clerk who put the county's file beside the sample
    must see which one was read."""
    names = [Path(name).name for name in inputs[:shown]]
    more = len(inputs) - len(names)
    return (join_list(names, "zh") + (f" 等 {len(inputs)} 个" if more > 0 else ""),
            join_list(names, "en") + (f" and {more} more" if more > 0 else ""))


def _spreadsheets_beside(registers: list[Path]) -> list[str]:
    """Spreadsheets in the folder of a registers file that `registers` does not name: the
    county's own workbook copied next to the sample init wrote, say, which the run does not
    read (exitcheck's outputs, lock files and hidden files are none)."""
    from exitcheck.registers.read import expand_paths

    named = {Path(os.path.abspath(path)) for path in registers}
    folders = {path.parent for path in named if path.is_file()}
    # what the folder itself would give as registers (expand_paths leaves exitcheck's outputs out)
    return sorted(child.name for child, _ in expand_paths(folders) if Path(os.path.abspath(child)) not in named)


class _Stop(Exception):
    """A step decided that nothing after it can run (its Step is already reported)."""


# ---- the lock ----

def _holder_text(state: Path, lang: str) -> str:
    # The holder writes its details just after taking the lock: a run refused in that instant
    # waits a moment for them rather than printing a message that names nobody.
    holder = None
    for _ in range(HOLDER_WAITS):
        try:
            holder = json.loads((state / HOLDER_NAME).read_text(encoding="utf-8"))
            break
        except (OSError, ValueError):
            time.sleep(0.05)
    if holder is None:
        return pick(lang, "(它还没有写下自己的信息)", "(it has not written its details yet)")
    who_zh, who_en = (f"运行 {holder['run']}", f"run {holder['run']}") if holder.get("run") else (f"exitcheck {holder.get('command')}",) * 2
    return pick(lang, f"{who_zh}, pid {holder.get('pid')}, 开始于 {holder.get('started')}",
                f"{who_en}, pid {holder.get('pid')}, started {holder.get('started')}")


def _acquire(state: Path, lang: str) -> Any:
    from filelock import FileLock, Timeout

    lock = FileLock(str(state / LOCK_NAME), timeout=0, mode=0o600)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        text = _holder_text(state, lang)
        raise LockedError(f"另一次运行正在进行, 本次不运行: {text}; 锁 {state / LOCK_NAME}",
                          f"another run holds the lock, not starting: {text}; lock {state / LOCK_NAME}") from None
    return lock


@contextlib.contextmanager
def workspace_lock(state: Path, lang: str, holder: Callable[[], dict[str, Any]], *,
                     check: Callable[[], None] | None = None, leave_trace: bool = False) -> Iterator[str | None]:
    """The workspace's lock, for everything that delivers (`exitcheck run`, `bands --push-to`):
    the state folder made, the lock taken (LockedError, exit 75, at once if held, the holder
    named), `check` run, a run killed earlier recorded as failed, and who holds the lock written
    to run.lock.json (`holder()`'s details, with pid, host and start time). Yields the killed
    run's id, if a run was killed. A state folder that cannot be made or written is a
    WorkspaceFileError (exit 74) naming it.

    The details are removed when the block ends. With `leave_trace` (a run) they stay behind
    when it does not reach its end (Ctrl-C, an error), so that the next run records this one as
    interrupted, as it does a killed one; a push is not in the history, so it leaves none."""
    with workspace_files(state, STATE):
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = _acquire(state, lang)
    try:
        if check is not None:
            check()
        now = datetime.now().astimezone()
        killed = recover_killed_run(state, History(state), now, lang) if (state / HOLDER_NAME).exists() else None
        details = {"pid": os.getpid(), "host": socket.gethostname(), "started": now.isoformat(timespec="seconds"), **holder()}
        with workspace_files(state / HOLDER_NAME, STATE):
            write_json(state / HOLDER_NAME, details)
        finished = False
        try:
            yield killed
            finished = True
        finally:
            if finished or not leave_trace:
                (state / HOLDER_NAME).unlink(missing_ok=True)
    finally:
        lock.release()


def delivery_lock(state: Path, lang: str, command: str) -> contextlib.AbstractContextManager[str | None]:
    """The run's lock for another command that delivers (`bands --push-to`): one delivering
    command at a time, the second refused at once (exit 75) with the holder named, rather than
    left to skip, list by list, what the first has claimed in the ledger (Ledger.claim)."""
    return workspace_lock(state, lang, lambda: {"command": command})


# ---- the log ----

class RunLog:
    """state/logs/<run-id>.jsonl: one JSON object a line, ID numbers masked, owner-readable."""

    def __init__(self, path: Path, run_id: str, mode: int) -> None:
        self.path, self.run_id = path, run_id
        with workspace_files(path, LOGS):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)

    def event(self, event: str, **fields: Any) -> None:
        record = {"time": datetime.now().astimezone().isoformat(timespec="seconds"), "run": self.run_id, "event": event, **fields}
        line = mask_text(json.dumps(record, ensure_ascii=False, default=str)) + "\n"
        os.write(self._fd, line.encode("utf-8"))  # one write a line: a killed run leaves whole lines

    def close(self) -> None:
        os.close(self._fd)


# ---- the run ----

def run(
    config: WorkspaceConfig,
    *,
    as_of: date | None = None,
    lang: str = "zh",
    on_step: Callable[[Step], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunReport:
    """The nightly job. LockedError (exit 75) at once if another run holds the lock;
    WorkspaceFileError (exit 74) before anything is read or sent if the workspace's own files
    cannot be written."""
    night = _Night(config, as_of, lang, on_step, environ)
    with workspace_lock(config.state, lang, night.take_run_id, check=lambda: check_workspace(config),
                          leave_trace=True) as killed:
        return night.run(killed)


def check_workspace(config: WorkspaceConfig) -> None:
    """The history and the delivery ledger written to (and taken back), the output and log
    folders made and written to: a run that could not record what it did must find out before
    it audits and delivers, not after. WorkspaceFileError (exit 74) names the file."""
    from exitcheck.delivery.ledger import open_ledger

    History(config.state).prove_writable()
    delivers = any(spec.deliver is not None for spec in config.departments.values()) or (
        config.townships is not None and bool(config.townships.targets()))
    if delivers:
        with open_ledger(config.state) as ledger:
            ledger.prove_writable()
    check_folder(config.out, OUTPUT)
    check_folder(config.state / LOG_DIR, LOGS)


class _Night:
    """One run's working state; the steps share the registers, the result and the folder."""

    def __init__(self, config: WorkspaceConfig, as_of: date | None, lang: str,
                 on_step: Callable[[Step], None] | None, environ: Mapping[str, str] | None) -> None:
        self.config, self.lang, self.on_step, self.environ = config, lang, on_step, environ
        self.as_of = as_of or config.as_of
        self.started = datetime.now().astimezone()
        self.result: AuditResult | ProvinceResult | None = None
        self.banded: Any = None
        self.complete = False  # the audit read every input and its outputs are written
        self.inputs_failed = False

    # -- framing --

    @functools.cached_property
    def history(self) -> History:
        # Opened under the lock: before it, a state folder that cannot be made would be named
        # as the history rather than as itself.
        return History(self.config.state)

    def take_run_id(self) -> dict[str, Any]:
        """This run's id, unique (called under the lock, once a killed run is recorded), and
        what run.lock.json says of it."""
        self.run_id = self.history.new_run_id(self.started, taken=self._names_in_use())
        return {"run": self.run_id, "started": self.started.isoformat(timespec="seconds")}

    def run(self, interrupted: str | None) -> RunReport:
        """The steps, the history and run.json; `interrupted` names a run found killed."""
        self.folder = self.config.out / self.run_id
        self.report = RunReport(self.run_id, None)
        self.log = RunLog(self.config.state / LOG_DIR / f"{self.run_id}.jsonl", self.run_id, self.config.file_mode)
        try:
            self.log.event("start", pid=os.getpid(), config=str(self.config.path), as_of=self.as_of)
            if interrupted:
                self.log.event("recovered", killed_run=interrupted)
            self._steps()
            self._finish()
        finally:
            self.log.event("end", exit_code=self.report.exit_code, status=self.report.status)
            self.log.close()
        return self.report

    def step(self, name: str, code: int, zh: str, en: str, **fields: Any) -> Step:
        done = Step(name, int(code), mask_text(zh), mask_text(en))
        self.report.steps.append(done)
        self.log.event("step", step=name, code=int(code), message=en, **fields)
        if self.on_step:
            self.on_step(done)
        return done

    def _steps(self) -> None:
        try:
            self._load_and_audit()
            with workspace_files(self.folder, OUTPUT):
                self._outputs()
                self.complete = not self.inputs_failed
                self._bands()
            self._departments()
            self._townships()
        except _Stop:
            pass
        except ExitcheckError as error:
            self.step("error", error.exit_code, error.zh, error.en)
        except Exception as error:  # a bug: recorded as a failed run, never a half-written one
            self.log.event("traceback", text=traceback.format_exc())
            self.step("error", ExitCode.INTERNAL, f"内部错误({type(error).__name__}: {error}); 详见 {self.log.path}",
                      f"internal error ({type(error).__name__}: {error}); see {self.log.path}")

    def _finish(self) -> None:
        """Retention, the history and run.json, each attempted even when an earlier one failed.
        The history comes after every other step, so that it records the exit code the run
        returns (only a failure to record comes later, and then nothing is recorded)."""
        for action in (self._retention, self._record):
            try:
                action()
            except ExitcheckError as error:  # the history cannot be written (exit 74)
                zh, en = error.zh, error.en
                if action == self._record:  # the ledger, written as each delivery went, still says what was sent
                    zh += "; 本次运行未能记入历史, 投递情况见 exitcheck deliveries"
                    en += "; this run is not in the history; its deliveries are in exitcheck deliveries"
                self.step(action.__name__.strip("_"), error.exit_code, zh, en)
            except Exception as error:
                self.log.event("traceback", text=traceback.format_exc())
                self.step(action.__name__.strip("_"), ExitCode.INTERNAL, f"内部错误({type(error).__name__}: {error})",
                          f"internal error ({type(error).__name__}: {error})")
        if self.folder.is_dir():
            try:
                write_json(self.folder / "run.json", self.report.to_dict(), self.config.file_mode)
            except OSError as error:  # the outputs are written and the run recorded: the log says it
                self.log.event("warning", path=str(self.folder / "run.json"), message=f"run.json not written: {error}")

    def _status(self) -> Status:
        if not self.complete or self.report.exit_code == ExitCode.INTERNAL:
            return "failed"
        return "findings" if self.result and self.result.gaps else "ok"

    # -- steps --

    def _load_and_audit(self) -> None:
        from exitcheck.auditing import audit
        from exitcheck.registers.load import load
        from exitcheck.rules.engine import compile_ruleset
        from exitcheck.rules.model import load_ruleset

        if not self.config.registers:
            where = self.config.position("registers")
            raise ConfigError(f"{where}: 没有写明登记表(registers)", f"{where}: no registers: named")
        ruleset = compile_ruleset(load_ruleset(self.config.rules))  # a rule that does not compile: before the reading
        if self.config.engine == "dask":
            self.result = self._audit_counties(ruleset)
            self._audited()
            return
        try:
            registers = load(self.config.registers, headers=self.config.headers, limits=self.config.limits)
        except InputError as error:
            self.inputs_failed = True
            self.step("load", ExitCode.INPUT, f"读取登记表失败: {error.zh}", f"reading the registers failed: {error.en}")
            raise _Stop from None
        counts = registers.counts()
        # rows as read: the audit's line counts households (a repeated one once) and living members
        files_zh, files_en = _files_named(registers.inputs)
        zh = f"读取登记表: 户表 {counts.get('households', 0)} 行, 成员表 {counts.get('members', 0)} 行, {len(registers.inputs)} 个文件({files_zh})"
        en = (f"registers read: {counts.get('households', 0)} household rows, {counts.get('members', 0)} member rows, "
              f"{len(registers.inputs)} file{'s' if len(registers.inputs) != 1 else ''} ({files_en})")
        beside = _spreadsheets_beside(self.config.registers)
        if beside:
            zh += f"; 旁边的 {join_list(beside, 'zh')} 未读取(exitcheck.yaml 的 registers: 没有指向它)"
            en += f"; {join_list(beside, 'en')} beside it {'was' if len(beside) == 1 else 'were'} not read (registers: in exitcheck.yaml does not name it)"
        if registers.failures:
            self.inputs_failed = True
            zh += "; 无法读取: " + "; ".join(f.zh for f in registers.failures)
            en += "; unreadable: " + "; ".join(f.en for f in registers.failures)
        self.step("load", ExitCode.INPUT if registers.failures else ExitCode.OK, zh, en, counts=counts)
        self.result = audit(registers, ruleset, as_of=self.as_of, lang=self.lang, chinese_messages=True)
        self._audited()

    def _audit_counties(self, ruleset: RuleSet) -> ProvinceResult:
        """engine: dask. Each entry of `registers` a county, one task each; its step "load"
        says what was read, as the local engine's does."""
        from exitcheck.province import (
            ClusterError,
            CountyAudit,
            CountyError,
            audit_counties,
            import_distributed,
        )

        import_distributed(f"{self.config.position('engine')}: engine: dask")  # without Dask: exit 4 with the install line
        # The heads' ID numbers leave the workers only when a department asks for them.
        id_numbers = any(spec.deliver is not None and "id_number" in (spec.columns or ())
                         for spec in self.config.departments.values())

        def came_back(outcome: Any, done: int, total: int) -> None:
            if isinstance(outcome, CountyAudit):
                self.log.event("county", county=outcome.name, state="audited", done=done, total=total)
            else:
                self.log.event("county", county=outcome.county, state="unreadable", done=done, total=total, message=outcome.en)

        try:
            result = audit_counties([[path] for path in self.config.registers], ruleset, as_of=self.as_of, lang=self.lang,
                                    scheduler=self.config.scheduler, workers=self.config.workers, headers=self.config.headers,
                                    limits=self.config.limits, on_county=came_back, bands=True, id_numbers=id_numbers,
                                    chinese_messages=True)
        except CountyError as error:  # not one county could be read
            self.inputs_failed = True
            self.step("load", error.exit_code, f"读取登记表失败: {error.zh}", f"reading the registers failed: {error.en}")
            raise _Stop from None
        except ClusterError as error:  # a county's task never came back: nothing is written
            self.step("audit", error.exit_code, error.zh, error.en)
            raise _Stop from None
        summary = result.summary()
        counties, read = len(result.counties), sum(row["state"] == "audited" for row in summary["counties"])
        of_zh, of_en = (f"{read}/{counties}", f"{read} of {counties}") if read != counties else (str(read), str(read))
        zh = f"读取登记表: {of_zh} 个县, {summary['households']} 户, {summary['members']} 名成员"
        en = f"registers read: {of_en} count{'ies' if counties != 1 else 'y'}, {summary['households']} households, {summary['members']} members"
        if result.failures:
            self.inputs_failed = True
            zh += "; 无法读取: " + "; ".join(f.message("zh") for f in result.failures)
            en += "; unreadable: " + "; ".join(f.message("en") for f in result.failures)
        self.step("load", ExitCode.INPUT if result.failures else ExitCode.OK, zh, en,
                  counts={"counties": counties, "read": read, "households": summary["households"], "members": summary["members"]})
        return result

    def _audited(self) -> None:
        """The step "audit": what the audit found, whichever engine ran it."""
        result = self.result
        assert result is not None
        summary = result.summary()
        fails = sum(1 for g in result.gaps if g.status == "fail")
        unknown = len(result.gaps) - fails
        self.step("audit", result.exit_code(),
                  f"核查(基准日 {result.as_of}): 未达标 {fails} 项, 待核实 {unknown} 项, 有未达标指标的户 {summary['households_with_gaps']}",
                  f"audit (as of {result.as_of}): {fails} failing, {unknown} unknown, {summary['households_with_gaps']} households with a failing indicator",
                  by_rule=summary["by_rule"])

    def _outputs(self) -> None:
        from exitcheck.report.gaps_out import write_gaps_xlsx, write_outputs
        from exitcheck.report.progress_sheet import township_progress

        assert self.result is not None
        self.pending = self._record_of(self.result)
        progress = self.history.progress(self.pending)
        written = write_outputs(self.folder, self.result, ["xlsx", "json"], mode=self.config.file_mode, progress=progress)
        self.books: dict[str, Path] = {}
        for township, gaps in self.township_lists.items():
            path = self.folder / "townships" / f"{_file_safe(township)}.xlsx"
            self.books[township] = write_gaps_xlsx(path, self.result, gaps, self.config.file_mode, township_progress(progress, township),
                                                   issues=self.township_issues[township], place=self.township_places[township])
        self.report.folder = self.folder
        self.step("outputs", ExitCode.OK,
                  f"输出: {self.folder}({', '.join(p.name for p in written)}, 乡镇工作簿 {len(self.books)} 个)",
                  f"outputs: {self.folder} ({', '.join(p.name for p in written)}, {len(self.books)} township workbooks)")

    def _bands(self) -> None:
        from exitcheck.income_bands import (
            band_label,
            bands,
            bands_document,
            json_default,
            write_bands_xlsx,
        )
        from exitcheck.report.files import write_bytes

        assert self.result is not None
        self.banded = banded = bands(self.result, lang=self.lang)
        text = json.dumps(bands_document(banded), ensure_ascii=False, indent=2, default=json_default)
        write_bytes(self.folder / "bands.json", text.encode("utf-8"), self.config.file_mode)
        write_bands_xlsx(self.folder / "bands.xlsx", banded, self.config.file_mode)
        counts = banded.counts()
        labels = {band.id: band for band in banded.bands}
        zh = "分档: " + ", ".join(f"{band_label(labels[b], 'zh')} {n} 户" for b, n in counts.items())
        en = "bands: " + ", ".join(f"{band_label(labels[b], 'en')} {n}" for b, n in counts.items())
        for note in banded.notes():  # a special group no column tells: in the night's log too
            zh, en = f"{zh}; {note.zh}", f"{en}; {note.en}"
        self.step("bands", ExitCode.OK, zh, en, counts=counts)

    def _skip_unread(self, name: str, zh: str, en: str) -> bool:
        """Deliveries stop when an input was unreadable: its households would vanish."""
        if self.inputs_failed:
            self.step(name, ExitCode.INPUT, f"{zh}: 未投递, 因为有输入文件无法读取(名单会缺户)",
                      f"{en}: nothing delivered, an input is unreadable (households would be missing)")
        return self.inputs_failed

    def _departments(self) -> None:
        from exitcheck.delivery.push import push

        chosen = [d for d, spec in self.config.departments.items() if spec.deliver is not None]
        if self._skip_unread("departments", "部门名单", "department lists"):
            return
        if not chosen:
            self.step("departments", ExitCode.OK, "部门名单: 未配置投递", "department lists: no deliveries configured")
            return
        assert self.result is not None
        try:
            outcomes = push(self.config, self.result, chosen, lang=self.lang, run_id=self.run_id,
                            banded=self.banded, environ=self.environ)
        except ExitcheckError as error:  # a list that cannot be cut: nothing was sent
            self.step("departments", error.exit_code, f"部门名单: {error.zh}", f"department lists: {error.en}")
            return
        self._delivered("departments", "部门名单", "department lists", outcomes)

    def _townships(self) -> None:
        from exitcheck.delivery.ledger import open_ledger
        from exitcheck.delivery.push import deliver_parcel

        settings = self.config.townships
        if settings is None or not settings.targets():
            return
        if self._skip_unread("townships", "乡镇问题清单", "township gap lists"):
            return
        assert self.result is not None
        wanted = settings.only or sorted(self.books)
        # a township named in `only` or `each` that the registers do not have: most often a
        # typo (越城 for 越城镇), which would stop that township's lists without a word
        unknown = [t for t in dict.fromkeys([*wanted, *settings.each]) if t not in self.books]
        outcomes: list[DeliveryOutcome] = []
        with open_ledger(self.config.state) as ledger:
            for township in (t for t in wanted if t in self.books):
                spec = self._township_target(township)
                if spec is None:
                    continue
                gaps, issues = self.township_lists[township], self.township_issues[township]
                households = self._households_on(gaps)
                digest = township_digest(gaps, issues, households)
                outcomes.append(deliver_parcel(
                    self.config, ledger, spec, recipient=TOWNSHIP_PREFIX + township, name=township, digest=digest,
                    rows=len(gaps), as_of=self.result.as_of.isoformat(),
                    setting=f"townships.each.{township}" if township in settings.each else "townships.deliver",
                    render=lambda t=township, g=gaps, i=issues, h=households, d=digest: self._township_parcel(t, g, i, h, d),
                    run_id=self.run_id, environ=self.environ,
                ))
        self._delivered("townships", "乡镇问题清单", "township gap lists", outcomes, unknown)

    def _township_target(self, township: str) -> Any:
        """The township's own target, else the common one (a folder gets a sub-folder each)."""
        from exitcheck.workspace import DirDelivery

        settings = self.config.townships
        assert settings is not None
        if township in settings.each:
            return settings.each[township]
        common = settings.deliver
        if isinstance(common, DirDelivery):
            return common.model_copy(update={"path": common.path / _file_safe(township)})
        return common

    def _township_parcel(self, township: str, gaps: list[Gap], issues: list[DataIssue], households: list[dict[str, Any]],
                         digest: str) -> Any:
        from exitcheck.delivery.transports import Parcel
        from exitcheck.income_bands import json_default

        assert self.result is not None
        as_of = self.result.as_of.isoformat()
        county, name = self.township_places[township]
        document = {"schema": "exitcheck/township-gaps@1", "as_of": as_of, "township": township, "digest": digest,
                    "ruleset": {"name": self.result.ruleset.name, "version": self.result.ruleset.version},
                    "gaps": [gap.to_dict() for gap in gaps], "issues": [issue.to_dict(self.lang) for issue in issues],
                    "households": households}
        if county is not None:  # several counties: the label names the county, these say which is which
            document.update(county=county, township=name, label=township)
        fails = sum(1 for g in gaps if g.status == "fail")
        return Parcel(
            recipient=TOWNSHIP_PREFIX + township, stem=f"{_file_safe(township)}-{as_of}-{digest[:12]}", digest=digest,
            rows=len(gaps), json_bytes=json.dumps(document, ensure_ascii=False, indent=2, default=json_default).encode("utf-8"),
            xlsx_bytes=self.books[township].read_bytes(),
            subject=pick(self.lang, f"{township} 脱贫退出问题清单 {as_of}: 未达标 {fails} 项, 待核实 {len(gaps) - fails} 项",
                         f"{township}: exit indicator gaps {as_of}: {fails} failing, {len(gaps) - fails} unknown"),
            body=pick(self.lang, f"{township}:\n\n附件为基准日 {as_of} 的问题清单, 请逐户整改。名单含个人信息, 请妥善保管。\n\nsha256: {digest}\n-- exitcheck",
                      f"{township}:\n\nAttached: the gap list as of {as_of}, household by household. It holds personal data: keep it safe.\n\nsha256: {digest}\n-- exitcheck"),
        )

    def _delivered(self, name: str, zh: str, en: str, outcomes: list[DeliveryOutcome], unknown: list[str] | None = None) -> None:
        from exitcheck.delivery.push import outcome_label

        tally: dict[str, int] = {}
        for outcome in outcomes:
            tally[outcome.outcome] = tally.get(outcome.outcome, 0) + 1
        parts_zh = [f"{outcome_label(k, 'zh')} {n}" for k, n in sorted(tally.items())]
        parts_en = [f"{n} {outcome_label(k, 'en')}" for k, n in sorted(tally.items())]
        failed = [o for o in outcomes if o.failed]
        line_zh = f"{zh}: {len(outcomes)} 个收件方, {', '.join(parts_zh) or '无'}"
        line_en = f"{en}: {len(outcomes)} recipients, {', '.join(parts_en) or 'none'}"
        if failed:
            line_zh += "; " + "; ".join(f"{o.department}: {o.reason('zh')}" for o in failed)
            line_en += "; " + "; ".join(f"{o.department}: {o.reason('en')}" for o in failed)
        code = ExitCode.DELIVERY if failed else ExitCode.OK
        if unknown:
            hints = [[f"({hint.removeprefix('; ')})" if hint else "" for hint in did_you_mean(t, self.books)] for t in unknown]
            line_zh += "; exitcheck.yaml 的 townships 中有登记表没有的乡镇, 其清单无法投递, 请改正: " + ", ".join(
                f"{t}{hint_zh}" for t, (hint_zh, _) in zip(unknown, hints, strict=True))
            line_en += "; townships in exitcheck.yaml that the registers do not have, whose lists cannot go out: " + ", ".join(
                f"{t} {hint_en}".rstrip() for t, (_, hint_en) in zip(unknown, hints, strict=True))
            code = ExitCode(worst(code, ExitCode.CONFIG))
        self.step(name, code, line_zh, line_en,
                  outcomes=[{"recipient": o.department, "outcome": o.outcome, "target": o.target, "rows": o.rows,
                             "receipt": o.proof("en") or None, "error": o.reason("en") or None}
                            for o in outcomes])  # the log speaks English

    def _record(self) -> None:
        self.report.status = self._status()
        record = self.pending if self.complete and self.report.status != "failed" else self._record_of(None)
        record.status, record.exit_code = self.report.status, self.report.exit_code
        record.ended = datetime.now().astimezone()
        if record.status == "failed":
            # In the run's language, as its lines were printed: `history` shows it as it is.
            record.note = "; ".join(s.text(self.lang) for s in self.report.steps if s.failed)[:500] or pick(self.lang, "失败", "failed")
        self.history.record(record)
        if record.status == "failed":
            self.step("history", ExitCode.OK, "历史: 本次运行失败, 已记录, 不计入比较和进度",
                      "history: this run failed; recorded, left out of the diff and the burn-down")
            return
        diff = self.history.diff()
        if diff.from_run is None:
            self.step("history", ExitCode.OK, "历史: 第一次运行, 之后每次与上次比较", "history: the first run; later runs compare with the one before")
            return
        self.step("history", ExitCode.OK,
                  f"与上次({diff.from_run})相比: 新增 {len(diff.new)}, 已解决 {len(diff.resolved)}, 仍未解决 {len(diff.open)}, 复发 {len(diff.reopened)}",
                  f"since {diff.from_run}: {len(diff.new)} new, {len(diff.resolved)} resolved, {len(diff.open)} still open, {len(diff.reopened)} reopened")

    def _record_of(self, result: AuditResult | None) -> RunRecord:
        """The history's record of this run (status and end time are set when it is written)."""
        record = RunRecord(self.run_id, self.started, self.started, "failed", 0, day=self.as_of)
        if result is not None:
            record.day = result.as_of
            record.inputs = result.input_digests
            record.ruleset = {"name": result.ruleset.name, "version": result.ruleset.version, "sha256": result.ruleset.sha256}
            record.findings = findings_from_gaps(result.gaps, {issue.household_id for issue in result.data_issues
                                                               if issue.code == "duplicate_household_across_counties"})
            record.status = "findings" if result.gaps else "ok"
        return record

    def _retention(self) -> None:
        """Old run folders, logs and findings deleted. What cannot be deleted is a warning in the
        log and the step's line, never a failed night: the rest is still deleted, and the next
        night tries again."""
        days = self.config.retention_days
        recorded = [run for run in self.history.runs(counts=False) if run.id != self.run_id]
        now = datetime.now().astimezone()
        latest = max((datetime.fromisoformat(run.started).astimezone() for run in recorded), default=now)
        # counted from the latest earlier run when it is sooner than now: a clock that jumped ahead
        # (a dead battery, a wrong NTP answer) makes every earlier run look old enough to delete;
        # and the newest recorded runs' folders and logs are kept whatever the clock says, for a
        # clock that stays wrong
        cutoff = min(now, latest) - timedelta(days=days)
        keep = {self.run_id, *(run.id for run in recorded[-KEEP_NEWEST_RUNS:])}
        stuck: list[str] = []
        folders = _prune(self.config.out, cutoff, keep=keep, suffix="", stuck=stuck)
        logs = _prune(self.config.state / LOG_DIR, cutoff, keep=keep, suffix=".jsonl", stuck=stuck)
        for problem in stuck:
            self.log.event("warning", step="retention", message=f"cannot delete {problem}")
        pruned = self.history.prune_findings(cutoff, keep=[self.run_id])  # it keeps the latest good run's itself
        zh = f"保留 {days} 天: 删除旧运行目录 {folders} 个, 日志 {logs} 个, 历史中 {pruned} 次运行只保留计数"
        en = f"retention {days} days: {folders} old run folders and {logs} logs deleted, {pruned} runs reduced to counts in the history"
        if now - latest > timedelta(days=CLOCK_JUMP_DAYS):
            gap = round((now - latest) / timedelta(days=1))
            zh += (f"; 注意: 距上次运行已 {gap} 天, 若本机时钟有误请校正; 保留期从上次运行算起, "
                   f"最近 {KEEP_NEWEST_RUNS} 次运行的结果总是保留")
            en += (f"; note: {gap} days since the last run: if this machine's clock is wrong, set it right; retention "
                   f"counts from the last run, and the newest {KEEP_NEWEST_RUNS} runs are always kept")
            self.log.event("warning", step="retention", message=f"{gap} days since the last run")
        if stuck:
            zh += f"; 警告: {len(stuck)} 处无法删除, 请检查权限(首个: {stuck[0]}; 全部见 {self.log.path})"
            en += f"; warning: {len(stuck)} could not be deleted, check the permissions (first: {stuck[0]}; all in {self.log.path})"
        self.step("retention", ExitCode.OK, zh, en)

    # -- helpers --

    @functools.cached_property
    def township_places(self) -> dict[str, tuple[str | None, str]]:
        """Every township of the registers by its label (its name; "<county>-<township>" when
        several counties were audited together), with its county (None for one county) and name."""
        from exitcheck.report.gaps_out import township_places

        assert self.result is not None
        return {township_label(county, name): (county, name) for county, name in township_places(self.result)}

    @functools.cached_property
    def township_lists(self) -> dict[str, list[Gap]]:
        """Every township of the registers with its gaps (none for a township that is clear:
        it still gets its list, now empty, so it knows it is done), by its label."""
        from exitcheck.report.gaps_out import county_township_gaps

        assert self.result is not None
        return self._by_label(county_township_gaps(self.result))

    @functools.cached_property
    def household_details(self) -> dict[tuple[str | None, str], dict[str, Any]]:
        """What the township books show of each household on them, looked up once for all."""
        from exitcheck.report.gaps_out import household_details

        assert self.result is not None
        return household_details(self.result, [gap for gaps in self.township_lists.values() for gap in gaps])

    def _households_on(self, gaps: list[Gap]) -> list[dict[str, Any]]:
        """household_details of the households with these gaps, each once."""
        from exitcheck.report.gaps_out import household_key

        shown = self.household_details
        return [shown[key] for key in dict.fromkeys(map(household_key, gaps)) if key in shown]

    @functools.cached_property
    def township_issues(self) -> dict[str, list[DataIssue]]:
        """Every township of the registers with the data issues its book lists, by its label."""
        from exitcheck.report.gaps_out import issues_by_township

        assert self.result is not None
        return self._by_label(issues_by_township(self.result)[0])

    def _by_label(self, grouped: Mapping[tuple[str | None, str], list[T]]) -> dict[str, list[T]]:
        return {label: grouped.get(place, []) for label, place in self.township_places.items()}

    def _names_in_use(self) -> set[str]:
        """Run ids already taken by a folder or a log (a run killed before it was recorded)."""
        names = {p.name for p in self.config.out.iterdir()} if self.config.out.is_dir() else set()
        logs = self.config.state / LOG_DIR
        if logs.is_dir():
            names |= {p.stem for p in logs.iterdir()}
        return names


def recover_killed_run(state: Path, history: History, now: datetime, lang: str = "zh") -> str | None:
    """A holder file left behind means its run was killed: record that run as failed, its note
    in `lang` (the language of the command that found it; the lock is held by the caller).
    Returns the killed run's id, if a run was killed."""
    path = state / HOLDER_NAME
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    killed = str(holder.get("run") or "")
    if RUN_ID.match(killed) and not history.has(killed):
        started = datetime.fromisoformat(holder["started"]) if holder.get("started") else now
        pid = holder.get("pid")
        note = pick(lang, f"已中断: 进程 {pid} 没有运行完(被终止?)", f"interrupted: pid {pid} ended without finishing (killed?)")
        history.record(RunRecord(killed, started, now, "failed", int(ExitCode.INTERNAL), note=note))
    path.unlink(missing_ok=True)
    return killed or None


def township_label(county: str | None, township: str) -> str:
    """How the nightly run names a township: its name, or "<county>-<township>" when several
    counties are audited together (the same name recurs across counties). The history labels
    its findings the same way (exitcheck.history.place_label)."""
    return township if county is None else f"{county}-{township}"


def _file_safe(township: str) -> str:
    """A township's label as a file or folder name, distinct for distinct townships."""
    return file_stem(township, "township")


def township_digest(gaps: list[Gap], issues: list[DataIssue], households: list[dict[str, Any]]) -> str:
    """sha256 of what a township's book asks of it and of whom: its gaps, its data issues and
    what the book shows of each household on its lists (`household_details`: head, helper
    cadre, phone...), sorted. A new night alone is not a new list, nor a run in another
    language (the gaps' messages are hashed in Chinese, as Gap.message_zh keeps them, with the
    values only a gap's English message names), nor rows moved in the register (an issue is
    hashed by DataIssue.identity, without where its cells are). The 汇总 sheet's figures are
    not hashed: counts of households and members change a list only through its gaps."""
    from exitcheck.income_bands import canonical_json

    rows = sorted(({**gap.to_dict(), "message": gap.message_for_digest, "english_only": gap.english_only} for gap in gaps),
                  key=lambda g: (g["rule"], g["household_id"] or "", g["village"] or ""))
    payload = {
        "gaps": rows,
        "issues": sorted((issue.identity() for issue in issues), key=canonical_json),
        "households": sorted(households, key=lambda h: (h["county"] or "", h["household_id"])),
    }
    return hashlib.sha256(canonical_json(payload)).hexdigest()


#: The newest recorded runs whose folders and logs retention never deletes: a clock
#: that jumped ahead and stays so would otherwise have every earlier run deleted the next night.
KEEP_NEWEST_RUNS = 7
#: Days between two runs beyond which the retention line says the clock may be wrong.
CLOCK_JUMP_DAYS = 7


def _prune(folder: Path, cutoff: datetime, *, keep: Collection[str], suffix: str, stuck: list[str]) -> int:
    """Delete run folders (suffix "") or logs (".jsonl") named by a run id older than `cutoff`.
    Only names that are run ids: nothing else a user keeps in out/ is ever touched. What cannot
    be deleted is added to `stuck` ("<full path> (<reason>)") and the others are still deleted."""
    if not folder.is_dir():
        return 0
    limit = cutoff.replace(tzinfo=None)  # run ids are local times
    removed = 0
    for path in sorted(folder.iterdir()):
        stem = path.name.removesuffix(suffix) if suffix else path.name
        match = RUN_ID.match(stem)
        if not match or stem in keep or (suffix and not path.name.endswith(suffix)) or path.is_symlink():
            continue
        if datetime.strptime(match.group(1), "%Y%m%d-%H%M%S") >= limit:
            continue
        before = len(stuck)
        _delete(path, stuck)
        removed += len(stuck) == before
    return removed


def _delete(path: Path, stuck: list[str]) -> None:
    """Delete a file or a whole folder, noting each entry that refuses by its full path."""

    def refused(_function: Any, name: str | Path, error: Any) -> None:
        name = os.fspath(name)
        error = error[1] if isinstance(error, tuple) else error  # onerror (3.11) gives exc_info
        if any(problem.startswith(name + os.sep) for problem in stuck):
            return  # a folder left non-empty by an entry already noted
        stuck.append(f"{name} ({getattr(error, 'strerror', None) or error})")

    try:
        if path.is_dir():
            # The rest of the folder is deleted around an entry that refuses.
            shutil.rmtree(path, **({"onexc": refused} if sys.version_info >= (3, 12) else {"onerror": refused}))
        else:
            path.unlink()
    except OSError as error:
        refused(None, str(path), error)
