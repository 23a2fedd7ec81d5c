"""The workspace's own files: the run history, the delivery ledger, the output, state and log
folders. When one of them cannot be read or written the clerk must fix the file, not report a
bug: such failures become WorkspaceFileError (exit 74), naming the full path and saying how.

`workspace_files` turns an OSError or an SQLite error about the file into that error (an SQLite
error that is a programming mistake stays what it is: a bug). `prove_writable` and
`check_folder` find the problem before a run reads or sends anything, so that a run never
delivers and then fails to record that it did.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from exitcheck.errors import WorkspaceFileError


@dataclass(frozen=True)
class Kind:
    """What a workspace file is, as the messages name it."""

    zh: str
    en: str
    #: For a database: what starting a new one (the damaged one moved aside) means.
    anew_zh: str = ""
    anew_en: str = ""


HISTORY = Kind("运行历史", "the run history", "以前的运行留在移走的文件里, 比较和进度从新的运行开始",
               "earlier runs stay in the moved file; comparisons and the burn-down start again")
LEDGER = Kind("投递台账", "the delivery ledger", "新台账不知道以前投递过什么, 各收件方会再收到一次当前名单",
              "the new ledger does not know what was sent before, so every recipient gets its current list once more")
OUTPUT = Kind("输出目录", "the output folder")
STATE = Kind("状态目录", "the state folder")
LOGS = Kind("运行日志", "the run log")

#: SQLite errors that say something about the file; the others (IntegrityError,
#: ProgrammingError, InterfaceError, NotSupportedError) are exitcheck's own mistakes.
_FILE_ERRORS = (sqlite3.OperationalError, sqlite3.DataError)


def _about_the_file(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return True
    return isinstance(error, _FILE_ERRORS) or type(error) is sqlite3.DatabaseError  # "file is not a database"


def _nearest_existing(folder: Path) -> Path:
    """`folder`, or the folder it would be made in when it does not exist yet: the one whose
    write access is missing."""
    while not os.path.exists(folder) and folder.parent != folder:  # False, not an error, where search is denied
        folder = folder.parent
    return folder


def workspace_file_error(path: Path, kind: Kind, error: BaseException) -> WorkspaceFileError:
    """The bilingual message for `error` on `path`: what is wrong and what to do."""
    detail = _detail(path, error)
    if type(error) is sqlite3.DatabaseError:  # not a database, malformed, encrypted
        aside = f"{path}.broken"
        return WorkspaceFileError(
            path,
            f"{kind.zh} {path} 已损坏, 不是可读的 SQLite 数据库({detail}): 请把它移走(mv {path} {aside}), 下次运行会新建一个; {kind.anew_zh}",
            f"{kind.en} {path} is damaged, not a readable SQLite database ({detail}): move it aside (mv {path} {aside}) "
            f"and the next run makes a new one; {kind.anew_en}",
        )
    text = str(error).lower()
    if isinstance(error, PermissionError) or "readonly" in text or "unable to open" in text:
        folder = _nearest_existing(path if kind in (OUTPUT, STATE) else path.parent)
        return WorkspaceFileError(
            path,
            f"无法写入{kind.zh} {path}({detail}): 请让运行 exitcheck 的用户对它和目录 {folder} 有写权限(用 ls -l 和 lsattr 查看)",
            f"cannot write {kind.en} {path} ({detail}): give the user that runs exitcheck write access to it and to the folder "
            f"{folder} (ls -l and lsattr show what stops it)",
        )
    if isinstance(error, NotADirectoryError | FileExistsError):
        return WorkspaceFileError(
            path,
            f"{kind.zh} {path} 无法成为目录: 路径上有一个文件({detail}); 请在 exitcheck.yaml 中把它指向一个目录, 或移走那个文件",
            f"{kind.en} {path} cannot be a folder: a file stands in its way ({detail}); point it at a folder in exitcheck.yaml, "
            f"or move the file",
        )
    return WorkspaceFileError(
        path,
        f"无法读写{kind.zh} {path}({detail}); 请检查该路径是否存在、磁盘空间和权限",
        f"cannot read or write {kind.en} {path} ({detail}); check that the path exists, the free disk space and the permissions",
    )


def _detail(path: Path, error: BaseException) -> str:
    """The system's own words, with the file it was about when that is not `path` itself."""
    if isinstance(error, OSError):
        text = error.strerror or str(error)
        named = error.filename
        return f"{text}: {named}" if named and Path(os.fsdecode(named)) != path else text
    return str(error)


@contextlib.contextmanager
def workspace_files(path: Path, kind: Kind) -> Iterator[None]:
    """Raise WorkspaceFileError for a failure of `path` in the block (bugs pass through)."""
    try:
        yield
    except (OSError, sqlite3.Error) as error:
        if not _about_the_file(error):
            raise
        raise workspace_file_error(path, kind, error) from error


def prove_writable(db: sqlite3.Connection) -> None:
    """Write to the database and take it back: fails now, as it would when the run records
    what it did, on a read-only file, a folder that refuses the journal, or a damaged file.
    `db` must be in autocommit mode (isolation_level=None)."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(f"PRAGMA user_version = {int(version)}")
    finally:
        db.execute("ROLLBACK")


def check_folder(path: Path, kind: Kind) -> None:
    """Make the folder (owner-only) if needed and prove that a file can be written in it."""
    with workspace_files(path, kind):
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.is_dir():
            raise NotADirectoryError(20, os.strerror(20), str(path))
        descriptor, probe = tempfile.mkstemp(dir=path, prefix=".exitcheck-probe-")
        os.close(descriptor)
        os.unlink(probe)
