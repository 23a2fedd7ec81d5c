"""push(): send each department its list, once, through the ledger.

For every department asked for: cut its list from the bands, compare the content digest with
the last successful delivery to the same target (equal: "unchanged", nothing sent), read its
secrets from the environment, send, and record the attempt. Departments are independent: a
missing variable, a server that is down, even an unexpected error fails that department alone
and the others still go out. Every list is cut and checked before anything is sent, so a
mistake in exitcheck.yaml stops the run before a half of it is delivered.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from exitcheck.delivery.ledger import (
    DELIVERED,
    FAILED,
    FAILING_RUNS,
    PENDING,
    SKIPPED,
    UNCHANGED,
    Claim,
    Ledger,
    open_ledger,
    receipt_text,
)
from exitcheck.delivery.transports import (
    InvalidSecret,
    MissingSecret,
    Parcel,
    Spec,
    TransportError,
    describe,
    public_texts,
    read_secrets,
    scrub,
    scrubbed,
    send,
)
from exitcheck.errors import ConfigError, UsageError
from exitcheck.i18n import Bilingual, pick
from exitcheck.income_bands import Banded, DepartmentList, band_label, department_lists
from exitcheck.income_bands import bands as band_households

if TYPE_CHECKING:
    from exitcheck.auditing import AuditResult
    from exitcheck.workspace import WorkspaceConfig

DRY_RUN = "dry-run"
#: Each outcome of a list as the console says it, (Chinese, English): one table for the push,
#: the nightly run and `exitcheck deliveries`.
OUTCOME_LABELS = {
    PENDING: ("未完成", "pending"),
    DELIVERED: ("已投递", "delivered"),
    UNCHANGED: ("未变化, 未重复投递", "unchanged, not sent again"),
    FAILED: ("失败", "FAILED"),
    DRY_RUN: ("演练", "dry run"),
    SKIPPED: ("跳过: 另一进程正在投递", "skipped: another process is sending it"),
}


def outcome_label(outcome: str, lang: str) -> str:
    zh, en = OUTCOME_LABELS.get(outcome, (outcome, outcome))
    return pick(lang, zh, en)


def recipient_label(config: WorkspaceConfig, recipient: str, lang: str) -> str:
    """A recipient as a clerk knows it, its name then the id that --department and --push-to
    take: 民政局(civil-affairs). A recipient with no name (a township's `township:<name>`, an id
    no longer in exitcheck.yaml and of no known department) is its id alone."""
    name = _recipient_name(config, recipient, lang)
    if not name or name == recipient:
        return recipient
    return pick(lang, f"{name}({recipient})", f"{name} ({recipient})")


def _recipient_name(config: WorkspaceConfig, recipient: str, lang: str) -> str | None:
    """The name exitcheck.yaml gives the department; in English, or when it gives none, the
    gap workbook's name of a department it knows by its id (exitcheck.yaml's name is the
    county's, most likely Chinese)."""
    from exitcheck.report.gaps_out import DEPARTMENTS, department_label

    spec = config.departments.get(recipient)
    own = spec.name if spec is not None and spec.name else None
    if recipient in DEPARTMENTS and (lang == "en" or own is None):
        return department_label(recipient, lang)
    return own


ALL = "all"


@dataclass
class DeliveryOutcome:
    """What happened to one department's list in this run."""

    department: str
    name: str
    transport: str
    target: str
    outcome: str  # delivered, unchanged, failed, skipped (another process is sending it), dry-run
    digest: str
    rows: int
    counts: dict[str, int] = field(default_factory=dict)
    # Both in both languages: the push shows its --lang, the nightly run's step line has both
    # and its log speaks English, whichever language the run was asked for.
    receipt: Bilingual | None = None
    error: Bilingual | None = None
    attempt_id: str | None = None
    would: str | None = None  # for a dry run: "deliver" or "unchanged"

    @property
    def failed(self) -> bool:
        return self.outcome == FAILED

    def reason(self, lang: str) -> str:
        """Why it failed (or, in a dry run, would fail), in `lang`; empty when nothing went wrong."""
        return self.error.text(lang) if self.error else ""

    def proof(self, lang: str) -> str:
        """The receipt (or, skipped, who is sending it instead), in `lang`; empty when there is none."""
        return self.receipt.text(lang) if self.receipt else ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_departments(config: WorkspaceConfig, names: Sequence[str]) -> list[str]:
    """The departments asked for, `all` meaning every one with a `deliver`. An unknown name is a
    UsageError (exit 2) with the nearest known one; one with nowhere to go is a ConfigError."""
    if ALL in names:
        chosen = [d for d, spec in config.departments.items() if spec.deliver is not None]
        if not chosen:
            raise ConfigError(f"{config.position('departments')}: 没有配置 deliver 的部门",
                              f"{config.position('departments')}: no department has a deliver: section")
        return chosen
    known = list(config.departments)
    out: list[str] = []
    for name in dict.fromkeys(department_id(config, name) for name in names):
        if name not in config.departments:
            near = _nearest(name, config)
            raise UsageError(
                f"没有这个部门: {name}" + (f"; 是否指 {near[0]}?" if near else f"(已配置: {', '.join(known) or '无'})"),
                f"no such department: {name}" + (f"; did you mean {near[0]}?" if near else f" (configured: {', '.join(known) or 'none'})"),
            )
        if config.departments[name].deliver is None:
            where = config.position("departments", name)
            raise ConfigError(f"{where}: 部门 {name} 没有 deliver 设置, 无处投递", f"{where}: department {name} has no deliver: section")
        out.append(name)
    return out


def department_id(config: WorkspaceConfig, name: str) -> str:
    """The id of the department a clerk named: its id, or the name the workspace gives it
    (--push-to 民政局) when exactly one department has that name; otherwise `name` unchanged."""
    if name in config.departments:
        return name
    named = [d for d, spec in config.departments.items() if spec.name and spec.name == name]
    return named[0] if len(named) == 1 else name


def _nearest(name: str, config: WorkspaceConfig) -> list[str]:
    """The closest id to a name that is neither an id nor a department's own name."""
    return difflib.get_close_matches(name, list(config.departments), n=1, cutoff=0.4)


def parcel_of(department_list: DepartmentList) -> Parcel:
    """The list rendered for the transports: JSON, workbook, subject and body."""
    lang = department_list.lang
    title = department_list.name or department_list.department
    as_of = department_list.as_of.isoformat()
    subject = pick(lang, f"{title} 低收入户名单 {as_of}: {department_list.summary()}",
                   f"{title}: low-income households {as_of}: {department_list.summary()}")
    lines = [pick(lang, f"{title}:", f"{title}:"), "",
             pick(lang, f"附件为基准日 {as_of} 的低收入户分档名单:", f"Attached: the low-income households by income band as of {as_of}:")]
    counts = department_list.counts()
    lines += [f"  {band_label(band, lang)}: {counts[band.id]}" for band in department_list.bands]
    if department_list.unknown:  # left out for a blank input of its filter: the department should know
        lines += ["", pick(lang, f"另有 {department_list.unknown} 户因筛选所需的数据为空, 无法判断是否属于本名单, 未列入; 县里正在核实。",
                           f"{department_list.unknown} more households could not be told for want of the data the "
                           "selection needs, and are not listed; the county is checking them.")]
    lines += ["", pick(lang, "名单含个人信息, 请妥善保管, 仅用于本部门工作。", "The list holds personal data: keep it safe and use it for your department's work only."),
              "", f"sha256: {department_list.digest}", "-- exitcheck"]
    return Parcel(
        recipient=department_list.department, stem=department_list.stem, digest=department_list.digest,
        rows=department_list.rows, json_bytes=department_list.json_bytes(), xlsx_bytes=department_list.xlsx_bytes(),
        subject=subject, body="\n".join(lines),
    )


def push(
    config: WorkspaceConfig,
    result: AuditResult,
    departments: Sequence[str],
    *,
    force: bool = False,
    dry_run: bool = False,
    lang: str | None = None,
    run_id: str | None = None,
    banded: Banded | None = None,
    environ: Mapping[str, str] | None = None,
    lists: Mapping[str, DepartmentList] | None = None,
) -> list[DeliveryOutcome]:
    """Deliver each department's list (names as given, or `all`); one outcome per department.

    `force` delivers even unchanged content, under a new idempotency key (the key + attempt id).
    `dry_run` sends nothing and records nothing: the outcomes say what would go where.
    ConfigError (a bad band or `where`) is raised before anything is sent. `banded` and `lists`
    save the work when the caller has them already (the CLI cuts the lists early to fail fast).
    Each list is claimed in the ledger before it is sent (Ledger.claim), so two processes
    pushing at once send it once: the other one's outcome is "skipped". The CLI and the nightly
    run hold the workspace's lock besides (exitcheck.runner.workspace_lock), so that a push and
    a run do not work over each other at all.
    """
    chosen = resolve_departments(config, departments)
    if lists is None or not set(chosen) <= set(lists):
        banded = banded or band_households(result, lang=lang)
        lists = department_lists(banded, config, chosen, result.ruleset)
    ledger = open_ledger(config.state)
    try:
        return [
            _deliver(config, ledger, lists[d], force=force, dry_run=dry_run, run_id=run_id, environ=environ)
            for d in chosen
        ]
    finally:
        ledger.close()


def _deliver(config: WorkspaceConfig, ledger: Ledger, department_list: DepartmentList, *, force: bool,
             dry_run: bool, run_id: str | None, environ: Mapping[str, str] | None) -> DeliveryOutcome:
    department = department_list.department
    spec = config.department(department).deliver
    assert spec is not None  # resolve_departments saw to it
    return deliver_parcel(
        config, ledger, spec, recipient=department, name=department_list.name, digest=department_list.digest,
        rows=department_list.rows, counts=department_list.counts(), as_of=department_list.as_of.isoformat(),
        setting=f"departments.{department}.deliver",
        render=lambda: parcel_of(department_list), force=force, dry_run=dry_run, run_id=run_id, environ=environ,
        refused=department_list.refused,
    )


def deliver_parcel(config: WorkspaceConfig, ledger: Ledger, spec: Spec, *, recipient: str, name: str, digest: str,
                   rows: int, as_of: str, setting: str, render: Callable[[], Parcel],
                   counts: dict[str, int] | None = None, force: bool = False, dry_run: bool = False,
                   run_id: str | None = None, environ: Mapping[str, str] | None = None,
                   refused: Bilingual | None = None) -> DeliveryOutcome:
    """Deliver one list to one recipient through the ledger: unchanged content is not sent
    again, a list another process is sending is skipped, a missing secret or a transport error
    fails this recipient alone. Departments' band lists and the nightly run's township gap
    lists (recipient `township:<name>`) both go here. `render` makes the parcel only when it is
    sent; `setting` names the config key for messages. A `refused` list fails without a word
    to the recipient, whatever was sent before (an empty list once delivered is no excuse).
    """
    target = describe(spec)
    outcome = DeliveryOutcome(
        department=recipient, name=name, transport=spec.type, target=target, outcome=FAILED,
        digest=digest, rows=rows, counts=counts or {},
    )
    attempt_id = uuid.uuid4().hex[:16]
    if refused is not None:
        outcome.error = refused
        if not dry_run:
            outcome.attempt_id = attempt_id
            ledger.refuse(attempt_id=attempt_id, run_id=run_id, department=recipient, transport=spec.type,
                          target=target, digest=digest, rows=rows, as_of=as_of, error=refused)
        return outcome
    secrets: dict[str, str] = {}
    missing: Bilingual | None = None
    try:
        secrets = read_secrets(spec, environ)
    except MissingSecret as error:
        missing = _secret_message(error, setting, config)
    if dry_run:
        last = ledger.last_delivered(recipient, target)
        unchanged = last is not None and last.digest == digest and not force
        outcome.outcome, outcome.would, outcome.error = DRY_RUN, UNCHANGED if unchanged else "deliver", missing
        return outcome
    decision = ledger.claim(attempt_id=attempt_id, run_id=run_id, department=recipient, transport=spec.type,
                            target=target, digest=digest, rows=rows, as_of=as_of, force=force)
    if decision.outcome == SKIPPED:  # not an attempt: nothing recorded, the sender records its own
        assert decision.holder is not None
        outcome.outcome, outcome.receipt = SKIPPED, _sent_elsewhere(decision.holder)
        return outcome
    outcome.attempt_id = attempt_id
    if decision.outcome == UNCHANGED:
        outcome.outcome, outcome.receipt = UNCHANGED, decision.last.receipt if decision.last else None
        return outcome
    if missing:
        outcome.error = missing
        ledger.finish(attempt_id, FAILED, error=missing)
        return outcome
    key = idempotency_key(recipient, target, digest, decision.last.attempt_id if decision.last else "")
    if force:  # sent again on purpose: a key the receiver has not seen
        key += f"-{attempt_id}"
    shown = public_texts(spec)
    try:
        receipt = send(spec, render(), key=key, secrets=secrets, file_mode=config.file_mode)
    except TransportError as error:
        outcome.error = scrubbed(error.text, secrets.values(), shown)
    except Exception as error:  # one recipient's surprise must not stop the others
        outcome.error = scrubbed(Bilingual(f"意外错误({type(error).__name__}): {error}", f"unexpected {type(error).__name__}: {error}"),
                                 secrets.values(), shown)
    except BaseException:  # Ctrl-C mid-send: the claim must not outlive the attempt in a process that goes on
        with contextlib.suppress(Exception):
            ledger.finish(attempt_id, FAILED, error=Bilingual("在得知结果之前被中断", "interrupted before the outcome was known"))
        raise
    else:
        proof = scrub(receipt.text, secrets.values(), shown)  # the receiver's id: its words
        refused = [scrub(address, secrets.values(), shown) for address in receipt.refused]
        outcome.outcome, outcome.receipt = DELIVERED, receipt_text(proof, refused)
        ledger.finish(attempt_id, DELIVERED, receipt=proof, refused=refused)
        return outcome
    ledger.finish(attempt_id, FAILED, error=outcome.error)
    return outcome


def idempotency_key(recipient: str, target: str, digest: str, after: str = "") -> str:
    """sha256 of recipient, target, content digest and `after` (the attempt id of the last list
    delivered to this recipient at this target; left out for the first), one a line: the same for
    every retry of one list (so the receiver drops a repeat), different for a different
    recipient even with the same content (two departments with the same cut, the townships
    with nothing to fix, all posting to one URL), and different when a list comes back to
    content sent before (A, then B, then A again): a receiver that honours the key would drop
    that third list as a repeat of the first and keep B."""
    parts = (recipient, target, digest, after) if after else (recipient, target, digest)  # a first delivery: the key it always had
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def _sent_elsewhere(holder: Claim) -> Bilingual:
    """Who is sending the list instead: it records the outcome in the ledger."""
    return Bilingual(f"另一进程正在投递同一名单(pid {holder.pid}, {holder.host}, 始于 {holder.claimed_at}), 结果见 exitcheck deliveries",
                     f"the same list is being sent by another process (pid {holder.pid} on {holder.host}, since "
                     f"{holder.claimed_at}); exitcheck deliveries shows its outcome")


def _secret_message(error: MissingSecret, setting: str, config: WorkspaceConfig) -> Bilingual:
    """What is wrong with the variable, named; never its value."""
    where, variable = config.path or "exitcheck.yaml", error.variable
    if isinstance(error, InvalidSecret):
        return Bilingual(f"环境变量 {variable} 的值不能用作 HTTP 头: 含换行等控制字符、首尾空格或非 ASCII 字符;"
                         f" 请去掉后重新设置({where} 中 {setting} 需要它)",
                         f"environment variable {variable} holds a value that cannot go in an HTTP header: a control character"
                         f" such as a trailing newline, a space at either end or a non-ASCII character; set it again without it"
                         f" (needed by {setting} in {where})")
    return Bilingual(f"环境变量 {variable} 未设置({where} 中 {setting} 需要它)",
                     f"environment variable {variable} is not set (needed by {setting} in {where})")


def failing_departments(config: WorkspaceConfig, threshold: int = FAILING_RUNS) -> dict[str, int]:
    """Departments whose last `threshold` or more deliveries failed in a row."""
    ledger = open_ledger(config.state)
    try:
        return ledger.failing(threshold)
    finally:
        ledger.close()
