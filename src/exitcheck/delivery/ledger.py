"""The delivery ledger: every delivery attempt, in SQLite under the workspace's state folder.

It answers two questions for the next run: was this content already delivered to this
department at this target (then it is "unchanged" and not sent again), and which departments
keep failing. An attempt is written as "pending" before anything is sent and completed after,
so that a run killed half-way leaves a trace rather than a silent gap. The ledger holds digests,
counts, receipts and error texts: never the list's content, never a secret, no whole ID number.

Nothing is sent twice, even by two processes at once that do not hold the workspace's lock
(two library callers of push()): `claim` decides, in one SQLite write transaction, whether a
list (recipient, target, content digest) is unchanged, being sent by another process, or this
process's to send, and in the last case writes the pending attempt and a row in `claims` (its
pid and host) in the same transaction; `finish` removes the claim with the outcome. A claim
whose process is gone (its pid no longer runs on this machine: host name and pid namespace;
or it is this process's pid and this process did not make it) or that is older than
CLAIM_EXPIRES is stale: its attempt is marked failed ("interrupted") and the list goes out
again, so a process that died mid-send blocks nothing. A ledger made before claims existed
gains the table when it is opened; its pending attempts hold no claim.

An error is stored in Chinese and English (`error`, `error_en`), since a later
`exitcheck deliveries` may be asked for either language; a ledger made before gains the
`error_en` column when it is opened, and its rows keep showing their one text in both.
A receipt holds no words to translate: the addresses a mail server refused are kept apart from
it (`refused`, a JSON list) and named in the language of whoever shows it; a row of an older
version, whose receipt says them in English, shows it as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from exitcheck.i18n import Bilingual
from exitcheck.idcard import mask_text
from exitcheck.state_files import LEDGER, prove_writable, workspace_files

FILE_NAME = "deliveries.sqlite"
PENDING, DELIVERED, UNCHANGED, FAILED = "pending", "delivered", "unchanged", "failed"
#: Not an attempt, never in the ledger: another process is sending the same list right now.
SKIPPED = "skipped"
#: Consecutive failed runs after which a department is reported as failing.
FAILING_RUNS = 3
#: A claim older than this is stale even when its process cannot be looked at (another host)
#: or its pid now belongs to another process. Longer than any send can take: at most 10 tries
#: of at most 600 s each with waits of at most 60 s (about 2 hours for HTTP, 3 for e-mail's
#: connection and dialogue), so that a live sender is never taken for a dead one.
CLAIM_EXPIRES = timedelta(hours=6)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    attempt_id  TEXT NOT NULL UNIQUE,
    run_id      TEXT,
    department  TEXT NOT NULL,   -- the recipient: a department id
    transport   TEXT NOT NULL,   -- dir, http or email
    target      TEXT NOT NULL,   -- where it went, without any secret
    digest      TEXT NOT NULL,   -- sha256 of the content (bands.content_digest)
    rows        INTEGER NOT NULL,
    as_of       TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    outcome     TEXT NOT NULL,   -- pending, delivered, unchanged, failed
    receipt     TEXT,            -- file path, HTTP status and id, SMTP message id
    error       TEXT,            -- why it failed, in Chinese (an older version's only text, in any language)
    error_en    TEXT,            -- the same in English (NULL in an older version's rows)
    refused     TEXT             -- e-mail addresses the server refused, a JSON list (NULL: none)
);
CREATE INDEX IF NOT EXISTS attempts_by_department ON attempts (department, id);
CREATE TABLE IF NOT EXISTS claims (  -- a list being sent right now, by one process
    department  TEXT NOT NULL,
    target      TEXT NOT NULL,
    digest      TEXT NOT NULL,
    attempt_id  TEXT NOT NULL UNIQUE,  -- its pending attempt
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    claimed_at  TEXT NOT NULL,
    PRIMARY KEY (department, target, digest)
);
"""
#: Columns `attempts` gained after its first version, with their types: a ledger made before
#: gains them when it is opened, as it gains the claims table.
_ADDED_COLUMNS = {"error_en": "TEXT", "refused": "TEXT"}


@dataclass(frozen=True)
class Attempt:
    """One row of the ledger."""

    attempt_id: str
    run_id: str | None
    department: str
    transport: str
    target: str
    digest: str
    rows: int
    as_of: str | None
    started_at: str
    finished_at: str | None
    outcome: str
    receipt: Bilingual | None  # as shown: the proof, then the refused addresses in words
    error: Bilingual | None
    refused: tuple[str, ...] = ()  # the addresses a mail server refused (masked), as data

    def to_dict(self, lang: str = "zh") -> dict[str, Any]:
        """The row for JSON, its receipt and error in `lang`, the refused addresses a list."""
        return {**asdict(self), "receipt": self.receipt.text(lang) if self.receipt else None,
                "error": self.error.text(lang) if self.error else None, "refused": list(self.refused)}


@dataclass(frozen=True)
class Claim:
    """A list being sent: by which attempt, which process (pid on host), since when."""

    attempt_id: str
    pid: int
    host: str
    claimed_at: str

    def stale(self) -> bool:
        """Its process is gone (looked at on this machine only), or it is older than CLAIM_EXPIRES.
        A claim in this process's pid that this process did not make was left by an earlier one
        that had the same pid (a container restarted): it is gone too."""
        if datetime.now(UTC) - datetime.fromisoformat(self.claimed_at) > CLAIM_EXPIRES:
            return True
        if self.host != this_machine():
            return False
        if self.pid == os.getpid():
            return self.attempt_id not in _CLAIMED_HERE
        return not process_alive(self.pid)


#: The attempts this process has claimed and not yet finished.
_CLAIMED_HERE: set[str] = set()


def this_machine() -> str:
    """Where a pid means one process: the host name, and on Linux the pid namespace too, since
    containers that share a host name (host networking) each count their pids from 1."""
    try:
        return f"{socket.gethostname()}:pidns-{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


@dataclass(frozen=True)
class Decision:
    """What `Ledger.claim` decided: PENDING, the list is this process's to send (its attempt
    is written and claimed); UNCHANGED, delivered before (`last`); SKIPPED, another process is
    sending it (`holder`)."""

    outcome: str
    last: Attempt | None = None
    holder: Claim | None = None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def process_alive(pid: int) -> bool:
    """Whether `pid` runs on this machine. Where that cannot be asked safely (Windows, where
    os.kill with signal 0 would interrupt the process) the answer is yes: the claim's age decides."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    try:  # Linux: a zombie has ended and only waits for its parent to collect it
        return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError, UnicodeDecodeError):
        return True


class Ledger:
    """The attempts table of one workspace. Opening creates the state folder and the file,
    readable by their owner only (a file made with a wider mode, by an earlier version or a
    copy, is narrowed: it names households). A file that cannot be read or written is a
    WorkspaceFileError (exit 74) naming it."""

    def __init__(self, state: Path) -> None:
        self.path = state / FILE_NAME
        with workspace_files(self.path, LEDGER):
            state.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                self.path.touch(mode=0o600)
            os.chmod(self.path, 0o600)
            self._connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        try:
            with self._file():
                self._connection.executescript(_SCHEMA)
                missing = _missing_columns(self._connection)
            if missing:
                self._add_missing_columns()
        except BaseException:
            self._connection.close()
            raise

    def _add_missing_columns(self) -> None:
        """A ledger made before a column was added gains it. Looked for again in the write
        transaction: another process opening the same old ledger may have added it first."""
        with self._transaction() as db:
            for name in _missing_columns(db):
                db.execute(f"ALTER TABLE attempts ADD COLUMN {name} {_ADDED_COLUMNS[name]}")

    def _file(self) -> contextlib.AbstractContextManager[None]:
        return workspace_files(self.path, LEDGER)

    def prove_writable(self) -> None:
        """WorkspaceFileError now if a delivery could not be written down."""
        with self._file():
            prove_writable(self._connection)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._file():
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def claim(self, *, attempt_id: str, run_id: str | None, department: str, transport: str, target: str,
              digest: str, rows: int, as_of: str | None, force: bool = False) -> Decision:
        """Decide, atomically with any other process, what becomes of this list: SKIPPED while a
        live claim holds it (even with `force`: sending again on purpose is not sending twice
        at once), UNCHANGED when it is the last delivered to this department at this target
        (unless `force`; the decision is recorded), else PENDING: the attempt is recorded and
        claimed for this process until `finish`. Stale claims to this department at this
        target are cleared first, whatever list they held: a send killed before the list
        changed is recorded as interrupted, not left pending for ever. `last` is the last
        delivery there, for the idempotency key."""
        with self._transaction() as db:
            rows_held = db.execute("SELECT attempt_id, pid, host, claimed_at, digest FROM claims WHERE department = ?"
                                   " AND target = ?", (department, target)).fetchall()
            for row in rows_held:
                holder = Claim(row["attempt_id"], int(row["pid"]), row["host"], row["claimed_at"])
                if not holder.stale():
                    if row["digest"] == digest:
                        return Decision(SKIPPED, holder=holder)
                    continue  # another list, live: its process records it
                _close_attempt(db, holder.attempt_id, FAILED, None, Bilingual(
                    f"已中断: {holder.host} 上的进程 {holder.pid} 于 {holder.claimed_at} 认领了此次投递, 但没有记录结果",
                    f"interrupted: pid {holder.pid} on {holder.host} claimed it at {holder.claimed_at} and never recorded the outcome"))
            last = _last_delivered(db, department, target)
            if last is not None and last.digest == digest and not force:
                _insert_attempt(db, attempt_id, run_id, department, transport, target, digest, rows, as_of, UNCHANGED)
                return Decision(UNCHANGED, last=last)
            _insert_attempt(db, attempt_id, run_id, department, transport, target, digest, rows, as_of, PENDING)
            db.execute("INSERT INTO claims (department, target, digest, attempt_id, pid, host, claimed_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)", (department, target, digest, attempt_id, os.getpid(),
                                                         this_machine(), now()))
            _CLAIMED_HERE.add(attempt_id)
        return Decision(PENDING, last=last)

    def finish(self, attempt_id: str, outcome: str, *, receipt: str | None = None, refused: Sequence[str] = (),
               error: Bilingual | None = None) -> None:
        """Complete an attempt and release its claim; ID numbers in the receipt, the refused
        addresses or the error (the receiver's words) are masked."""
        with self._transaction() as db:
            _close_attempt(db, attempt_id, outcome, receipt, error, refused)

    def refuse(self, *, attempt_id: str, run_id: str | None, department: str, transport: str, target: str,
               digest: str, rows: int, as_of: str | None, error: Bilingual) -> None:
        """Record a list that was not sent at all (its filter cannot tell its households): a
        failed attempt, for `exitcheck deliveries` and the warning of a department failing run
        after run; nothing is claimed, as nothing is sent."""
        with self._transaction() as db:
            _insert_attempt(db, attempt_id, run_id, department, transport, target, digest, rows, as_of, FAILED)
            _close_attempt(db, attempt_id, FAILED, None, error)

    def last_delivered(self, department: str, target: str) -> Attempt | None:
        """The last successful delivery of anything to this department at this target."""
        with self._file():
            return _last_delivered(self._connection, department, target)

    def attempts(self, department: str | None = None, limit: int | None = None) -> list[Attempt]:
        """Newest first."""
        sql, params = "SELECT * FROM attempts", list[Any]()
        if department:
            sql += " WHERE department = ?"
            params.append(department)
        sql += " ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._file():
            return [_attempt(row) for row in self._connection.execute(sql, params)]

    def failing(self, threshold: int = FAILING_RUNS) -> dict[str, int]:
        """Departments whose last `threshold` or more attempts all failed (an interrupted,
        still pending attempt counts as failed), with the length of the streak: the failed
        attempts after the department's last good one (delivered or unchanged)."""
        with self._file():
            rows = self._connection.execute(
                """
                SELECT a.department, COUNT(*) AS streak FROM attempts a
                WHERE a.outcome IN (?, ?) AND a.id > COALESCE(
                    (SELECT MAX(b.id) FROM attempts b WHERE b.department = a.department AND b.outcome NOT IN (?, ?)), 0)
                GROUP BY a.department HAVING COUNT(*) >= ? ORDER BY a.department
                """,
                (FAILED, PENDING, FAILED, PENDING, threshold),
            ).fetchall()
        return {row["department"]: int(row["streak"]) for row in rows}


def _insert_attempt(db: sqlite3.Connection, attempt_id: str, run_id: str | None, department: str, transport: str,
                    target: str, digest: str, rows: int, as_of: str | None, outcome: str) -> None:
    db.execute(
        "INSERT INTO attempts (attempt_id, run_id, department, transport, target, digest, rows, as_of,"
        " started_at, finished_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (attempt_id, run_id, department, transport, target, digest, rows, as_of, now(),
         None if outcome == PENDING else now(), outcome),
    )


def _missing_columns(db: sqlite3.Connection) -> list[str]:
    present = {row["name"] for row in db.execute("PRAGMA table_info(attempts)")}
    return [name for name in _ADDED_COLUMNS if name not in present]


def _close_attempt(db: sqlite3.Connection, attempt_id: str, outcome: str, receipt: str | None,
                   error: Bilingual | None, refused: Sequence[str] = ()) -> None:
    """The attempt's outcome written and its claim released, in the caller's transaction."""
    zh, en = (mask_text(error.zh), mask_text(error.en)) if error else (None, None)
    addresses = json.dumps([mask_text(a) for a in refused], ensure_ascii=False) if refused else None
    db.execute("UPDATE attempts SET outcome = ?, receipt = ?, refused = ?, error = ?, error_en = ?, finished_at = ?"
               " WHERE attempt_id = ?", (outcome, _masked(receipt), addresses, zh, en, now(), attempt_id))
    db.execute("DELETE FROM claims WHERE attempt_id = ?", (attempt_id,))
    _CLAIMED_HERE.discard(attempt_id)


def _last_delivered(db: sqlite3.Connection, department: str, target: str) -> Attempt | None:
    row = db.execute(
        "SELECT * FROM attempts WHERE department = ? AND target = ? AND outcome = ? ORDER BY id DESC LIMIT 1",
        (department, target, DELIVERED),
    ).fetchone()
    return _attempt(row) if row else None


def _attempt(row: sqlite3.Row) -> Attempt:
    # Masked again as read (in _receipt and _error): rows written by a version that stored them unmasked.
    fields = {key: row[key] for key in Attempt.__dataclass_fields__ if key not in ("receipt", "error", "refused")}
    refused = tuple(mask_text(address) for address in json.loads(row["refused"] or "[]"))
    return Attempt(**fields, receipt=_receipt(row["receipt"], refused), error=_error(row), refused=refused)


def _receipt(proof: str | None, refused: tuple[str, ...]) -> Bilingual | None:
    """The receipt in both languages, masked, naming the addresses refused."""
    return None if proof is None else receipt_text(mask_text(proof), refused)


def _error(row: sqlite3.Row) -> Bilingual | None:
    """The error in both languages, masked; a row of an older version has one text, shown in both."""
    if row["error"] is None:
        return None
    text = Bilingual.same(row["error"]) if row["error_en"] is None else Bilingual(row["error"], row["error_en"])
    return text.map(mask_text)


def receipt_text(proof: str, refused: Sequence[str] = ()) -> Bilingual:
    """A receipt as shown: its proof as it is (a path, an HTTP status, a message id), then the
    addresses a mail server refused, if any, in Chinese or English."""
    if not refused:
        return Bilingual.same(proof)
    addresses = ", ".join(refused)
    return Bilingual(f"{proof} (被拒收: {addresses})", f"{proof} (refused: {addresses})")


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_text(text)


def open_ledger(state: Path) -> Ledger:
    """The ledger of a workspace's state folder, created on first use."""
    return Ledger(state)
