"""The tests' forked runs of the program (tests/cli_process.py) give what a fresh interpreter gives."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import cli_process

SAMPLE = Path(__file__).parents[1] / "sample_data" / "registers.xlsx"

COMMAND_LINES = [
    ("--help",),
    ("audit", "--outt", "x"),  # a usage error: exit 2, in Chinese
    ("explain", "no_such_code", "--lang", "en"),
    ("validate", "registers.xlsx", "--format", "json"),
    ("audit", "registers.xlsx", "--out", "out", "--as-of", "2020-06-30"),
]


@pytest.mark.parametrize("args", COMMAND_LINES, ids=[" ".join(a) for a in COMMAND_LINES])
def test_a_forked_run_prints_and_exits_as_a_fresh_interpreter(tmp_path, monkeypatch, args):
    outputs = []
    for fresh in ("1", "0"):
        folder = tmp_path / f"fresh-{fresh}"
        folder.mkdir()
        shutil.copy(SAMPLE, folder / "registers.xlsx")
        monkeypatch.setenv("EXITCHECK_TESTS_FRESH_PROCESS", fresh)
        done = cli_process.exitcheck(*args, cwd=folder, env={"EXITCHECK_PROBE": fresh})
        written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        outputs.append((done.returncode, done.stdout.replace(str(folder), "<folder>"),
                        done.stderr.replace(str(folder), "<folder>"), written))
    assert outputs[0] == outputs[1]


def test_a_forked_run_has_its_own_folder_environment_streams_and_exit_status(tmp_path, monkeypatch):
    """What a run sees of its process, printed from inside it by a stand-in for exitcheck."""
    monkeypatch.setenv("EXITCHECK_TESTS_FRESH_PROCESS", "0")
    monkeypatch.setenv("TZ", "UTC")
    environment = {**os.environ, "EXITCHECK_PROBE": "seen", "TZ": "Asia/Shanghai"}
    done = cli_process.run(("a", "b c"), tmp_path, environment, 60, module="process_probe")
    assert done.returncode == 7, done.stderr
    cwd, seen, zone, pid, *argv = done.stdout.split()
    assert (cwd, seen, zone, argv) == (str(tmp_path), "seen", "CST", ["a", "b", "c"])
    assert int(pid) != os.getpid()
    assert done.stderr == "True to stderr\n"


def test_a_forked_run_that_outlives_its_timeout_is_killed(tmp_path, monkeypatch):
    monkeypatch.setenv("EXITCHECK_TESTS_FRESH_PROCESS", "0")
    with pytest.raises(subprocess.TimeoutExpired):
        cli_process.run(("sleep",), tmp_path, dict(os.environ), 1, module="process_probe")


def test_an_environment_python_starts_with_gets_a_fresh_interpreter(tmp_path, monkeypatch):
    """PYTHONPATH is read as Python starts: a forked run would not see it."""
    monkeypatch.setenv("EXITCHECK_TESTS_FRESH_PROCESS", "0")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "exitcheck").mkdir(parents=True)
    (elsewhere / "exitcheck" / "__init__.py").write_text("")
    (elsewhere / "exitcheck" / "__main__.py").write_text("print('the other exitcheck')\n")
    done = cli_process.exitcheck("--help", cwd=tmp_path, env={"PYTHONPATH": str(elsewhere)})
    assert done.returncode == 0 and done.stdout == "the other exitcheck\n", done.stdout + done.stderr
