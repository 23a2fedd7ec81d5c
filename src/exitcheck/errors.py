"""Exit codes and the errors the library raises instead of printing or exiting.

The CLI maps each error to its exit code; where several apply, the worst wins in the order
70, 75, 2, 4, 74, 3, 5, 1, 0 (`worst`). Every message exists in Chinese and English.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1
    USAGE = 2
    INPUT = 3
    CONFIG = 4
    DELIVERY = 5
    INTERNAL = 70
    #: sysexits' EX_IOERR: the workspace's own files (history, delivery ledger, output or state
    #: folders) or a command's outputs (--out, `sample OUT.xlsx`, `init DIR`) cannot be read or
    #: written. The clerk fixes the file or the path; it is not a bug.
    WORKSPACE_FILES = 74
    LOCKED = 75


#: Severity order used to combine the outcomes of several steps (first = worst).
_SEVERITY = (ExitCode.INTERNAL, ExitCode.LOCKED, ExitCode.USAGE, ExitCode.CONFIG, ExitCode.WORKSPACE_FILES,
             ExitCode.INPUT, ExitCode.DELIVERY, ExitCode.FINDINGS, ExitCode.OK)


def worst(*codes: int) -> int:
    """The exit code that wins when several apply (70, 75, 2, 4, 74, 3, 5, 1, 0)."""
    present = [ExitCode(code) for code in codes] or [ExitCode.OK]
    return int(min(present, key=_SEVERITY.index))


class ExitcheckError(Exception):
    """An expected failure with a bilingual one-line message and an exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, zh: str, en: str | None = None) -> None:
        super().__init__(zh)
        self.zh = zh
        self.en = en or zh

    def message(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh

    def __str__(self) -> str:
        return self.zh if self.zh == self.en else f"{self.zh} / {self.en}"


class InputError(ExitcheckError):
    """An input cannot be read: missing, not a spreadsheet, corrupt, encrypted, over a limit."""

    exit_code = ExitCode.INPUT

    def __init__(self, path: str, zh: str, en: str, *, issues: list | None = None) -> None:
        super().__init__(f"{path}: {zh}", f"{path}: {en}")
        self.path = path
        self.issues = issues or []

    def with_hint(self, zh: str, en: str) -> InputError:
        """The same error with a hint added to its message (the cause a file's kind suggests)."""
        hinted = type(self)(self.path, "", "", issues=self.issues)
        hinted.zh, hinted.en = self.zh + zh, self.en + en
        hinted.args = (hinted.zh,)
        return hinted


class UnrecognisedInput(InputError):
    """A file whose content no reader here makes out (corrupt, or a format of its own): saving it
    again from the program that made it is the fix, which a caller may add as a hint."""


class ConfigError(ExitcheckError):
    """A rule set or a workspace configuration is invalid."""

    exit_code = ExitCode.CONFIG


class WorkspaceFileError(ExitcheckError):
    """A file or folder of the workspace's own cannot be read or written (exitcheck.state_files
    words the message: the full path and how to fix it)."""

    exit_code = ExitCode.WORKSPACE_FILES

    def __init__(self, path: object, zh: str, en: str) -> None:
        super().__init__(zh, en)
        self.path = path


class UsageError(ExitcheckError):
    exit_code = ExitCode.USAGE


class DeliveryError(ExitcheckError):
    exit_code = ExitCode.DELIVERY


class LockedError(ExitcheckError):
    exit_code = ExitCode.LOCKED
