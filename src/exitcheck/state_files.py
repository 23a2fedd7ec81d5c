"""The workspace's own files: the run history, the delivery ledger, the output, state and log
folders. When one of them cannot be read or written the clerk must fix the file, not report a
bug: such failures become WorkspaceFileError (exit 74), naming the full path and saying how.

A command's own outputs named on its command line (--out, `sample OUT.xlsx`, `init DIR`) are
treated alike (OUT_OPTION, SAMPLE_FILE, NEW_WORKSPACE): their messages say to give another
path there, not in exitcheck.yaml, and `check_target` finds a bad one before any work.

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
    #: A folder (the write access it needs is its own), not a file in a folder.
    folder: bool = False
    #: How to name another path instead: where this one was given (exitcheck.yaml, or the
    #: command line).
    elsewhere_zh: str = "请在 exitcheck.yaml 中把它指向一个目录"
    elsewhere_en: str = "point it at a folder in exitcheck.yaml"


HISTORY = Kind("运行历史", "the run history", "以前的运行留在移走的文件里, 比较和进度从新的运行开始",
               "earlier runs stay in the moved file; comparisons and the burn-down start again")
LEDGER = Kind("投递台账", "the delivery ledger", "新台账不知道以前投递过什么, 各收件方会再收到一次当前名单",
              "the new ledger does not know what was sent before, so every recipient gets its current list once more")
OUTPUT = Kind("输出目录", "the output folder", folder=True)
STATE = Kind("状态目录", "the state folder", folder=True)
#: A command's own outputs, named on its command line (--out DIR, `sample OUT.xlsx`, `init DIR`).
OUT_OPTION = Kind("输出目录", "the output folder", folder=True, elsewhere_zh="请用 --out 指定一个目录",
                  elsewhere_en="give --out a folder")
NEW_WORKSPACE = Kind("工作区目录", "the workspace folder", folder=True, elsewhere_zh="请给 exitcheck init 一个目录",
                     elsewhere_en="give exitcheck init a folder")
SAMPLE_FILE = Kind("样例登记表", "the sample register", elsewhere_zh="请换一个路径", elsewhere_en="give another path")
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
        folder = _nearest_existing(path if kind.folder else path.parent)
        return WorkspaceFileError(
            path,
            f"无法写入{kind.zh} {path}({detail}): 如果要写的文件正在 Excel 或 WPS 中打开, 请先关闭; 否则请让运行 exitcheck 的用户"
            f"对它和目录 {folder} 有写权限(Windows 上看文件属性中的“安全”, Linux 上用 ls -l 和 lsattr 查看)",
            f"cannot write {kind.en} {path} ({detail}): if the file to write is open in Excel or WPS, close it; otherwise give the user that "
            f"runs exitcheck write access to it and to the folder {folder} (on Windows, the file's Properties > Security; "
            f"on Linux, ls -l and lsattr show what stops it)",
        )
    if isinstance(error, IsADirectoryError) and not kind.folder:
        return WorkspaceFileError(
            path,
            f"{kind.zh} {path} 是一个目录, 不是文件: 请给出文件名, 例如 {path / 'registers.xlsx'}",
            f"{kind.en} {path} is a folder, not a file: give a file name, e.g. {path / 'registers.xlsx'}",
        )
    if isinstance(error, NotADirectoryError | FileExistsError):
        named = Path(os.fsdecode(error.filename)) if isinstance(error, OSError) and error.filename else path
        blocker = _nearest_existing(named if kind.folder or named != path else path.parent)
        named_zh = f"{blocker} 是一个文件" if os.path.isfile(blocker) else "路径上有一个文件"
        named_en = f": {blocker} is a file" if os.path.isfile(blocker) else ""
        if not kind.folder:
            return WorkspaceFileError(
                path,
                f"无法写入{kind.zh} {path}: {named_zh}, 不是目录({detail}); {kind.elsewhere_zh}, 或移走那个文件",
                f"cannot write {kind.en} {path}: a file stands where a folder should be{named_en} ({detail}); {kind.elsewhere_en}, "
                f"or move the file",
            )
        return WorkspaceFileError(
            path,
            f"{kind.zh} {path} 无法成为目录: {named_zh}({detail}); {kind.elsewhere_zh}, 或移走那个文件",
            f"{kind.en} {path} cannot be a folder: a file stands in its way{named_en} ({detail}); {kind.elsewhere_en}, or move the file",
        )
    if isinstance(error, FileNotFoundError) and not kind.folder and not os.path.isdir(path.parent):
        return WorkspaceFileError(
            path,
            f"无法写入{kind.zh} {path}: 目录 {path.parent} 不存在; 请先创建它(mkdir -p {path.parent}), 或{kind.elsewhere_zh.removeprefix('请')}",
            f"cannot write {kind.en} {path}: the folder {path.parent} does not exist; create it first (mkdir -p {path.parent}), "
            f"or {kind.elsewhere_en}",
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


def check_target(path: Path, kind: Kind) -> None:
    """Find, before any work and without making anything, why `path` (a folder of `kind`, or a
    file to write) could not be written: a file where a folder must be, a folder where the file
    must be, a missing folder for a file (a folder is made with its parents), no write access.
    Raise WorkspaceFileError for it; what only the writing itself can tell (a full disk) stays
    for `workspace_files` around the writing."""
    path = Path(os.path.abspath(path))
    with workspace_files(path, kind):
        if kind.folder:
            if os.path.exists(path) and not os.path.isdir(path):
                raise FileExistsError(17, os.strerror(17), str(path))
            existing = _nearest_existing(path)
        else:
            if os.path.isdir(path):
                raise IsADirectoryError(21, os.strerror(21), str(path))
            existing = _nearest_existing(path.parent)
        if not os.path.isdir(existing):  # a file on the way: /tmp/afile/sub
            raise NotADirectoryError(20, os.strerror(20), str(existing))
        if not kind.folder and existing != path.parent:
            raise FileNotFoundError(2, os.strerror(2), str(path.parent))
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(13, os.strerror(13), str(existing))
        if not kind.folder and os.path.exists(path) and not os.access(path, os.W_OK):
            raise PermissionError(13, os.strerror(13), str(path))


def check_folder(path: Path, kind: Kind) -> None:
    """Make the folder (owner-only) if needed and prove that a file can be written in it."""
    with workspace_files(path, kind):
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.is_dir():
            raise NotADirectoryError(20, os.strerror(20), str(path))
        descriptor, probe = tempfile.mkstemp(dir=path, prefix=".exitcheck-probe-")
        os.close(descriptor)
        os.unlink(probe)
