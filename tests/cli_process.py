"""Run `python -m exitcheck ARGS` as a process of its own, without paying for its imports each time.

The tests start the program hundreds of times, and each fresh interpreter spent about 0.6 s
importing pandas, numpy, pyarrow and pydantic before exitcheck did anything: close to half of
what a sample audit costs, and on CI's two cores the main suite had grown to 10 of its 15
minutes. Here a multiprocessing fork server imports those libraries once (exitcheck's own
modules are left out, so that each run imports them as the program does, with its own
environment), and every run is a process forked from it: its own pid, working folder,
environment, standard streams and exit status, as subprocess.run would give. What a fork does
not give, a fresh interpreter's first imports, is covered by the tests that start the program
with subprocess themselves (tests/test_launch.py, the crontab line, the signal tests).

EXITCHECK_TESTS_FRESH_PROCESS=1 makes every run a fresh interpreter again, to rule this out.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import locale
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Imported once by the fork server: what `python -m exitcheck` imports from outside itself.
PRELOADED = [
    "numpy", "pandas", "pyarrow", "pyarrow.compute", "pydantic", "typer", "click", "rich",
    "yaml", "xlsxwriter", "python_calamine", "filelock", "httpx", "tenacity",
]

_context = None


def _fork_server():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOADED)
    return _context


def exitcheck(*args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m exitcheck ARGS` in `cwd` with no terminal and no stdin, as cron would:
    this process's environment with utf-8 streams and 200 columns, then `env`."""
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200", **(env or {})}
    return run(args, cwd, environment, timeout)


def run(args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float, module: str = "exitcheck") -> subprocess.CompletedProcess[str]:
    """What subprocess.run([python, -m, module, *args], capture_output=True, text=True,
    stdin=DEVNULL, ...) returns; TimeoutExpired when the run outlives `timeout`. An environment
    that changes how Python itself starts (PYTHONPATH, say) gets a fresh interpreter."""
    command = [sys.executable, "-m", module, *args]
    if os.environ.get("EXITCHECK_TESTS_FRESH_PROCESS") == "1" or sys.platform == "win32" or _starts_otherwise(env):
        return subprocess.run(
            command, capture_output=True, text=True, cwd=cwd, env=dict(env),
            stdin=subprocess.DEVNULL, timeout=timeout,
        )
    # files, not pipes: a pipe nobody reads until the end could fill and stall the run
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = _fork_server().Process(
            target=_run_module,
            args=(module, list(args), str(cwd), dict(env), _Descriptor(stdout.fileno()), _Descriptor(stderr.fileno())),
        )
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(command, timeout)
        return subprocess.CompletedProcess(command, process.exitcode, _text(stdout), _text(stderr))


def _starts_otherwise(env: Mapping[str, str]) -> bool:
    """Whether `env` sets a variable Python reads only as it starts (the fork server started
    with this process's), other than the standard streams' encoding, which a forked run sets."""
    def startup(variables: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in variables.items() if k.startswith("PYTHON") and k != "PYTHONIOENCODING"}
    return startup(env) != startup(os.environ)


class _Descriptor:
    """A file descriptor that reaches the forked process through the fork server's socket."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self):
        return _inherited, (multiprocessing.reduction.DupFd(self.fd),)


def _inherited(duplicate) -> int:
    return duplicate.detach()


def _text(file) -> str:
    file.seek(0)
    # what text=True does: the locale's encoding (the tests ask for utf-8), universal newlines
    return io.TextIOWrapper(file, encoding="utf-8", errors="strict", newline=None).read()


def _run_module(module: str, args: list[str], cwd: str, env: dict[str, str], stdout_fd: int, stderr_fd: int) -> None:
    """In the forked process: become `python -m MODULE ARGS` and exit as it would."""
    null = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((null, 0), (stdout_fd, 1), (stderr_fd, 2)):
        os.dup2(source, target)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    # what a new interpreter reads from its environment at start: the time zone and the locale
    time.tzset()
    with contextlib.suppress(locale.Error):
        locale.setlocale(locale.LC_CTYPE, "")
    encoding = env.get("PYTHONIOENCODING", "utf-8").split(":")[0] or "utf-8"
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=encoding)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=encoding, write_through=False)
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding=encoding, errors="backslashreplace", line_buffering=True,
    )
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    sys.argv = [module, *args]
    code = _exit_code(lambda: runpy.run_module(module, run_name="__main__", alter_sys=True))
    # what the interpreter does on its way out: wait for the threads that are not daemons, run
    # the atexit functions, flush the streams
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = code or 120  # as Python does when it cannot flush its standard streams
    os._exit(code)


def _exit_code(main) -> int:
    """The exit status Python gives a program that runs `main`."""
    try:
        main()
    except SystemExit as exit:
        if exit.code is None:
            return 0
        if isinstance(exit.code, int):
            return exit.code & 0xFF
        print(exit.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0
