"""Nightly operation through the real CLI against real workspaces: exitcheck init, run, history
and diff; fingerprints that survive moved rows; the lock; killed and failed runs; retention."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from builders import County, base_county
from ports import port_down

IDS = [f"51343400{n:04d}" for n in range(1, 7)]  # the household ids of base_county()

CONFIG = """\
registers: data/registers.xlsx
out: out
state: state
departments:
  civil-affairs:
    name: 民政局
    bands: [below_4200, 4200_4500]
    deliver: {type: dir, path: outbox/civil-affairs}
townships:
  deliver: {type: dir, path: outbox/townships}
"""


# ---- helpers ----

@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    (folder / "data").mkdir(parents=True)
    (folder / "exitcheck.yaml").write_text(CONFIG, encoding="utf-8")
    return folder


def write_county(folder: Path, county: County, name: str = "registers.xlsx") -> Path:
    return county.write(folder / "data" / name)


def broken(*indexes: int, income: object = 3000) -> County:
    county = base_county()
    for i in indexes:
        county.households[i]["人均纯收入"] = income
    return county


def diff_json(run_cli, folder: Path, *runs: str) -> dict:
    result = run_cli("diff", *runs, "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def keys(entries: list[dict]) -> set[tuple[str, str]]:
    return {(e["rule"], e["household_id"]) for e in entries}


def history(run_cli, folder: Path) -> list[dict]:
    result = run_cli("history", "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema"] == "exitcheck/history@1"
    return document["runs"]


def run_ids(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "out").iterdir() if p.name[:1].isdigit())


def nightly(run_cli, folder: Path, as_of: str, *extra: str, expect: int = 1) -> str:
    """One `exitcheck run`; returns the new run's id."""
    before = set(run_ids(folder)) if (folder / "out").is_dir() else set()
    result = run_cli("run", "--as-of", as_of, *extra, cwd=folder)
    assert result.returncode == expect, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    new = sorted(set(run_ids(folder)) - before) if (folder / "out").is_dir() else []
    return new[-1] if new else ""


def gap_keys(folder: Path, run_id: str) -> set[tuple[str, str]]:
    gaps = json.loads((folder / "out" / run_id / "gaps.json").read_text(encoding="utf-8"))["gaps"]
    return {(g["rule"], g["household_id"]) for g in gaps}


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """`path` (a file, or a folder's entries) cannot be changed or deleted, for the owner too:
    read-only by its mode, or for root, who ignores modes, immutable (chattr +i)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        return
    mode = path.stat().st_mode
    path.chmod(mode & ~0o222)
    try:
        yield
    finally:
        path.chmod(mode)


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- new, resolved, open with ages, reopened ----

def test_two_runs_diff_lists_exactly_the_fixed_and_the_broken(workspace, run_cli):
    write_county(workspace, broken(0, 1, 2, 3))
    first = nightly(run_cli, workspace, "2020-06-01")
    assert diff_json(run_cli, workspace) == {"schema": "exitcheck/diff@1", "from": None, "to": first,
                                             "new": [], "resolved": [], "open": [], "reopened": []}

    # Between the nights: households 1 and 2 fixed, 3 still broken, 4's income now blank (its
    # income finding turns from fail to unknown: still open), 5 loses safe water, 6 its income.
    county = broken(2, 3)
    county.households[3]["人均纯收入"] = None
    county.households[4]["安全饮水"] = "否"
    county.households[5]["人均纯收入"] = 3500
    write_county(workspace, county)
    second = nightly(run_cli, workspace, "2020-06-08")

    diff = diff_json(run_cli, workspace)
    assert (diff["schema"], diff["from"], diff["to"]) == ("exitcheck/diff@1", first, second)
    h1, h2, h3, h4, h5, h6 = IDS
    assert keys(diff["resolved"]) == {("income", h1), ("risk_wrong_exit", h1), ("income", h2), ("risk_wrong_exit", h2)}
    assert keys(diff["new"]) == {("water", h5), ("risk_wrong_exit", h5), ("income", h6), ("risk_wrong_exit", h6),
                                 ("info_accuracy", h4)}  # the blank income is itself a data gap
    assert keys(diff["open"]) == {("income", h3), ("risk_wrong_exit", h3), ("income", h4), ("risk_wrong_exit", h4)}
    assert diff["reopened"] == []
    # The same sets follow from the two nights' own gap lists.
    a, b = gap_keys(workspace, first), gap_keys(workspace, second)
    assert (keys(diff["resolved"]), keys(diff["new"]), keys(diff["open"])) == (a - b, b - a, a & b)
    # Ages: calendar days between the runs' reference dates, from the night first seen open.
    assert {e["age_days"] for e in diff["open"]} == {7}
    assert {e["age_days"] for e in diff["new"]} == {0}
    entry = diff["open"][0]
    assert set(entry) == {"fingerprint", "level", "rule", "household_id", "township", "village", "age_days"}
    assert entry["township"] and entry["village"] and len(entry["fingerprint"]) == 64

    # Night three: household 1 broken again (reopened); ages go on counting from night one.
    county.households[0]["人均纯收入"] = 3000
    write_county(workspace, county)
    third = nightly(run_cli, workspace, "2020-06-10")
    diff = diff_json(run_cli, workspace)
    assert keys(diff["reopened"]) == {("income", h1), ("risk_wrong_exit", h1)}
    assert diff["new"] == [] and diff["resolved"] == []
    ages = {(e["rule"], e["household_id"]): e["age_days"] for e in diff["open"]}
    assert ages[("income", h3)] == 9 and ages[("income", h4)] == 9 and ages[("water", h5)] == 2
    # RUN_A alone compares with the latest run; both given, exactly those two.
    since_first = diff_json(run_cli, workspace, first)
    assert (since_first["from"], since_first["to"]) == (first, third)
    # Household 1 was open on night one too, but closed in between: reopened, not "still open".
    assert keys(since_first["reopened"]) == {("income", h1), ("risk_wrong_exit", h1)}
    assert ("income", h3) in keys(since_first["open"])
    assert diff_json(run_cli, workspace, first, second)["to"] == second

    # The people's view: a summary line and a table by township and rule.
    shown = run_cli("diff", cwd=workspace)
    assert shown.returncode == 0 and second in shown.stdout and "risk_wrong_exit" in shown.stdout
    listed = history(run_cli, workspace)
    assert [r["id"] for r in listed] == [first, second, third]
    assert [r["status"] for r in listed] == ["findings"] * 3
    assert listed[0]["by_rule"] == {"income": 4, "risk_wrong_exit": 4}
    assert listed[1]["ruleset"]["version"] and listed[1]["inputs"][0]["sha256"]
    table = run_cli("history", cwd=workspace)
    assert table.returncode == 0 and "risk_wrong_exit" in table.stdout


def test_moved_rows_and_an_unrelated_column_change_no_fingerprint(workspace, run_cli):
    county = broken(0, 4)
    county.households[2]["安全饮水"] = "否"
    write_county(workspace, county)
    first = nightly(run_cli, workspace, "2020-06-01")
    moved = county.copy()
    moved.households.reverse()
    moved.members = moved.members[5:] + moved.members[:5]
    moved.villages.reverse()
    for row in moved.households:
        row["备用列"] = "与核查无关"
    write_county(workspace, moved)
    second = nightly(run_cli, workspace, "2020-06-02")
    diff = diff_json(run_cli, workspace)
    assert (diff["from"], diff["to"]) == (first, second)
    assert diff["new"] == diff["resolved"] == diff["reopened"] == []
    assert keys(diff["open"]) == gap_keys(workspace, first) == gap_keys(workspace, second)
    assert {e["age_days"] for e in diff["open"]} == {1}


def test_id_numbers_are_masked_in_history_and_logs(workspace, run_cli):
    """A county that uses the head's ID number as household id: stored masked, same identity."""
    county = broken(0)
    id_number = county.members[0]["证件号码"]
    for row in (county.households[0], *[m for m in county.members if m["户编号"] == IDS[0]]):
        row["户编号"] = id_number
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-01")
    nightly(run_cli, workspace, "2020-06-02")
    diff = diff_json(run_cli, workspace)
    masked = {e["household_id"] for e in diff["open"]}
    assert masked == {id_number[:6] + "********" + id_number[-4:]}
    stored = [workspace / "state" / "history.sqlite", *sorted((workspace / "state" / "logs").iterdir())]
    every_id = [m["证件号码"] for m in county.members]
    for path in stored:
        data = path.read_bytes()
        assert not any(number.encode() in data for number in every_id), path
    assert oct((workspace / "state" / "history.sqlite").stat().st_mode & 0o777) == "0o600"


# ---- the lock, a killed run, a failed run ----

class SlowInbox:
    """An HTTP inbox on 127.0.0.1 that holds each POST until released: keeps a run busy."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.posts = 0
        inbox = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                inbox.posts += 1
                inbox.arrived.set()
                inbox.release.wait(60)
                body = b'{"id": "r1"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/inbox"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def slow_workspace(workspace: Path) -> Iterator[tuple[Path, SlowInbox]]:
    inbox = SlowInbox()
    config = CONFIG.replace("townships:", f"""  slow-office:
    bands: [below_4200]
    deliver: {{type: http, url: "{inbox.url}", timeout: 60, retries: 1}}
townships:""")
    (workspace / "exitcheck.yaml").write_text(config, encoding="utf-8")
    write_county(workspace, broken(0, 1))
    yield workspace, inbox
    inbox.close()


#: `python -m exitcheck`, with Ctrl-C raising KeyboardInterrupt as in a terminal: a process
#: started in the background by a non-interactive shell (a CI script's `cmd &`) inherits
#: SIGINT ignored, and Python then leaves it ignored.
EXITCHECK_AS_IN_A_TERMINAL = [
    sys.executable, "-c",
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('exitcheck', run_name='__main__', alter_sys=True)",
]


def start_run(folder: Path, *command: str) -> subprocess.Popen[str]:
    """`exitcheck run` (or `command`) in the background."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.Popen([*EXITCHECK_AS_IN_A_TERMINAL, *(command or ["run"]), "--as-of", "2020-06-01"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def holder(folder: Path) -> dict:
    return json.loads((folder / "state" / "run.lock.json").read_text(encoding="utf-8"))


def test_two_runs_started_together_one_exits_75(slow_workspace):
    folder, inbox = slow_workspace
    runs = [start_run(folder), start_run(folder)]
    # One of them takes the lock; the other is refused at once, before any work.
    finished = None
    deadline = time.monotonic() + 60
    while finished is None and time.monotonic() < deadline:
        finished = next((p for p in runs if p.poll() is not None), None)
        time.sleep(0.05)
    assert finished is not None, "neither run ended: the second should have been refused at once"
    out, err = finished.communicate()
    assert finished.returncode == 75, out + err
    assert inbox.arrived.wait(60)
    first = holder(folder)
    assert first["run"] in err and str(first["pid"]) in err and first["started"] in err
    other = runs[1 - runs.index(finished)]
    assert other.pid == first["pid"]
    inbox.release.set()
    out, err = other.communicate(timeout=120)
    assert other.returncode == 1, out + err
    assert not (folder / "state" / "run.lock.json").exists()


def delivered_rows(folder: Path, department: str) -> int:
    with sqlite3.connect(folder / "state" / "deliveries.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM attempts WHERE department = ? AND outcome = 'delivered'",
                          (department,)).fetchone()[0]


def test_a_push_while_the_run_delivers_exits_75_and_nothing_goes_out_twice(slow_workspace, run_cli, tmp_path):
    folder, inbox = slow_workspace
    night = start_run(folder)
    assert inbox.arrived.wait(60)  # the run is delivering slow-office's list, not yet in the ledger
    run_id = holder(folder)["run"]
    push = run_cli("bands", "--push-to", "slow-office", "--as-of", "2020-06-01", cwd=folder)
    assert push.returncode == 75, push.stdout + push.stderr
    assert run_id in push.stderr and str(night.pid) in push.stderr
    # The registers named on the command line and the workspace by --config: the same lock.
    by_path = run_cli("bands", str(folder / "data" / "registers.xlsx"), "--config", str(folder / "exitcheck.yaml"),
                      "--push-to", "all", "--as-of", "2020-06-01", cwd=tmp_path)
    assert by_path.returncode == 75, by_path.stdout + by_path.stderr
    dry = run_cli("bands", "--push-to", "slow-office", "--dry-run", "--as-of", "2020-06-01", cwd=folder)
    assert dry.returncode == 0, dry.stdout + dry.stderr  # a dry run sends nothing: no lock needed
    inbox.release.set()
    out, err = night.communicate(timeout=120)
    assert night.returncode == 1, out + err
    assert inbox.posts == 1 and delivered_rows(folder, "slow-office") == 1
    assert not (folder / "state" / "run.lock.json").exists()


def test_two_pushes_at_once_deliver_once_and_a_run_waits_for_neither(slow_workspace, run_cli):
    folder, inbox = slow_workspace
    first = start_run(folder, "bands", "--push-to", "slow-office", "--lang", "en")
    assert inbox.arrived.wait(60)
    assert holder(folder)["command"] == "bands --push-to" and holder(folder)["pid"] == first.pid
    second = run_cli("bands", "--push-to", "slow-office", "--as-of", "2020-06-01", "--lang", "en", cwd=folder)
    assert second.returncode == 75, second.stdout + second.stderr
    assert "another run holds the lock" in second.stderr and "bands --push-to" in second.stderr and str(first.pid) in second.stderr
    night = run_cli("run", "--as-of", "2020-06-01", cwd=folder)
    assert night.returncode == 75 and str(first.pid) in night.stderr
    inbox.release.set()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert inbox.posts == 1 and delivered_rows(folder, "slow-office") == 1
    assert not (folder / "state" / "run.lock.json").exists()
    # Once the push is done, the next one finds the list delivered and sends nothing.
    again = run_cli("bands", "--push-to", "slow-office", "--as-of", "2020-06-01", "--lang", "en", cwd=folder)
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert inbox.posts == 1


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_a_killed_run_does_not_block_the_next(slow_workspace, run_cli, sig):
    folder, inbox = slow_workspace
    victim = start_run(folder)
    assert inbox.arrived.wait(60)
    killed = holder(folder)["run"]
    victim.send_signal(sig)
    assert victim.wait(120) in (-signal.SIGKILL, 130)  # generous: CI machines can be busy
    inbox.release.set()
    again = run_cli("run", "--as-of", "2020-06-02", cwd=folder)
    assert again.returncode == 1, again.stdout + again.stderr
    runs = history(run_cli, folder)
    # recorded by the next run, in its language (Chinese, the default)
    assert runs[0]["id"] == killed and runs[0]["status"] == "failed" and runs[0]["note"].startswith("已中断: 进程 ")
    assert runs[1]["status"] == "findings"
    # The killed run is left out: one good run, nothing to compare yet.
    assert diff_json(run_cli, folder)["from"] is None
    second_run = run_cli("run", "--as-of", "2020-06-03", cwd=folder)
    assert second_run.returncode == 1
    diff = diff_json(run_cli, folder)
    assert diff["from"] == runs[1]["id"] and len(diff["open"]) == 4
    refused = run_cli("diff", killed, cwd=folder)
    assert refused.returncode == 2 and killed in refused.stderr
    # The killed run's delivery is recorded as interrupted, in the language it is listed in:
    # by the next run that finds its claim (SIGKILL), or by the run itself (Ctrl-C).
    told = {"zh": ("已中断: ", f"上的进程 {victim.pid} 于 "), "en": (f"interrupted: pid {victim.pid} on ",)}
    if sig == signal.SIGINT:
        told = {"zh": ("在得知结果之前被中断",), "en": ("interrupted before the outcome was known",)}
    for lang, words in told.items():
        listed = run_cli("deliveries", "--json", "--lang", lang, cwd=folder)
        (error,) = [a["error"] for a in json.loads(listed.stdout)["attempts"] if a["outcome"] == "failed"]
        assert all(word in error for word in words), (lang, error)


def test_a_failed_delivery_is_told_in_the_language_of_the_run_and_logged_in_english(workspace, run_cli):
    """The run's step line speaks its --lang (Chinese by default), its log English, as every
    other line of both does."""
    write_county(workspace, broken(0, 1))
    with port_down() as port:  # the department's server is down all night
        (workspace / "exitcheck.yaml").write_text(CONFIG.replace("townships:", f"""  agriculture:
    bands: [below_4200]
    deliver: {{type: http, url: "http://127.0.0.1:{port}/inbox", retries: 1, timeout: 5}}
townships:"""), encoding="utf-8")
        runs = {lang: run_cli("run", "--as-of", day, "--lang", lang, cwd=workspace)
                for lang, day in (("zh", "2020-06-01"), ("en", "2020-06-02"))}
    said = {"zh": f"agriculture: 无法连接 http://127.0.0.1:{port}/inbox(ConnectError)",
            "en": f"agriculture: cannot connect to http://127.0.0.1:{port}/inbox (ConnectError)"}
    for lang, done in runs.items():
        assert done.returncode == 5, done.stdout + done.stderr
        assert said[lang] in done.stdout and said[lang] in done.stderr, done.stdout + done.stderr
        assert said["en" if lang == "zh" else "zh"].split(": ", 1)[1] not in done.stdout + done.stderr
    for run_id in run_ids(workspace):
        log = (workspace / "state" / "logs" / f"{run_id}.jsonl").read_text(encoding="utf-8").splitlines()
        (step,) = [e for e in map(json.loads, log) if e.get("step") == "departments"]
        assert [o["error"] for o in step["outcomes"] if o["recipient"] == "agriculture"] == [said["en"].split(": ", 1)[1]]


def test_a_run_that_fails_half_way_leaves_history_and_earlier_outputs_intact(workspace, run_cli):
    write_county(workspace, broken(0, 1))
    first = nightly(run_cli, workspace, "2020-06-01")
    kept = tree_digest(workspace / "out" / first)
    outbox = tree_digest(workspace / "outbox")

    # A second register file that cannot be read: the other is audited, nothing is delivered,
    # the run is recorded as failed and left out of the comparison.
    write_county(workspace, broken(0, 1, 2, 3, 4, 5, income=2000))
    (workspace / "data" / "more.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    config = (workspace / "exitcheck.yaml").read_text(encoding="utf-8")
    (workspace / "exitcheck.yaml").write_text(config.replace("registers: data/registers.xlsx",
                                                             "registers: [data/registers.xlsx, data/more.xlsx]"), encoding="utf-8")
    result = run_cli("run", "--as-of", "2020-06-02", cwd=workspace)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "more.xlsx" in result.stderr and "Traceback" not in result.stderr
    assert tree_digest(workspace / "outbox") == outbox  # no list with households missing
    # A register that cannot be read at all: exit 3 at once, no outputs, still recorded.
    (workspace / "exitcheck.yaml").write_text(config.replace("data/registers.xlsx", "data/more.xlsx"), encoding="utf-8")
    result = run_cli("run", "--as-of", "2020-06-03", cwd=workspace)
    assert result.returncode == 3 and "more.xlsx" in result.stderr

    runs = history(run_cli, workspace)
    assert [r["status"] for r in runs] == ["findings", "failed", "failed"]
    assert runs[1]["total"] == 0 and runs[1]["exit_code"] == 3 and runs[2]["as_of"] == "2020-06-03"
    assert tree_digest(workspace / "out" / first) == kept
    assert diff_json(run_cli, workspace)["from"] is None

    # Back to a readable register: compared with the last good run, the failed ones skipped.
    (workspace / "exitcheck.yaml").write_text(config, encoding="utf-8")
    write_county(workspace, broken(1))
    last = nightly(run_cli, workspace, "2020-06-04")
    diff = diff_json(run_cli, workspace)
    assert (diff["from"], diff["to"]) == (first, last)
    assert keys(diff["resolved"]) == {("income", IDS[0]), ("risk_wrong_exit", IDS[0])}
    assert {e["age_days"] for e in diff["open"]} == {3}
    with sqlite3.connect(workspace / "state" / "history.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM findings WHERE run_id IN (SELECT id FROM runs WHERE status = 'failed')").fetchone() == (0,)


@pytest.mark.parametrize(("lang", "words", "other"), [("zh", "读取登记表失败", "reading the registers"),
                                                     ("en", "reading the registers failed", "读取登记表")])
def test_a_failed_runs_note_is_in_the_runs_language(workspace, run_cli, lang, words, other):
    """The note was always English, also for a Chinese night, and `history` showed it so."""
    (workspace / "data" / "registers.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    result = run_cli("run", "--as-of", "2020-06-01", "--lang", lang, cwd=workspace)
    assert result.returncode == 3, result.stdout + result.stderr
    (run,) = history(run_cli, workspace)
    assert run["status"] == "failed" and "registers.xlsx" in run["note"], run["note"]
    assert words in run["note"] and other not in run["note"], run["note"]
    shown = run_cli("history", "--lang", lang, cwd=workspace, env={"COLUMNS": "400"})
    assert words in shown.stdout, shown.stdout


def test_a_broken_config_exits_4_and_an_unknown_run_exits_2(workspace, run_cli):
    (workspace / "exitcheck.yaml").write_text(CONFIG + "retention_dayz: 3\n", encoding="utf-8")
    result = run_cli("run", cwd=workspace)
    assert result.returncode == 4 and "retention_days" in result.stderr
    (workspace / "exitcheck.yaml").write_text(CONFIG, encoding="utf-8")
    assert diff_json(run_cli, workspace) == {"schema": "exitcheck/diff@1", "from": None, "to": None,
                                             "new": [], "resolved": [], "open": [], "reopened": []}
    unknown = run_cli("diff", "20200101-020000", "--json", cwd=workspace)
    assert unknown.returncode == 2 and "20200101-020000" in unknown.stderr


def config_line(folder: Path, key: str) -> str:
    """'<folder>/exitcheck.yaml:<n>': where a key sits, as a configuration error names it."""
    lines = (folder / "exitcheck.yaml").read_text(encoding="utf-8").splitlines()
    number = next(n for n, line in enumerate(lines, 1) if line.startswith(f"{key}:"))
    return f"{folder / 'exitcheck.yaml'}:{number}"


@pytest.mark.parametrize("command", ["run", "history", "bands"])
def test_an_impossible_as_of_is_a_config_error_at_its_line(workspace, run_cli, command):
    """PyYAML reads 2020-06-31 as a date and fails with a bare ValueError: it was exit 70."""
    write_county(workspace, base_county())
    (workspace / "exitcheck.yaml").write_text(CONFIG + "as_of: 2020-06-31\n", encoding="utf-8")
    where = config_line(workspace, "as_of")
    for lang, words in (("en", "'2020-06-31' is not a valid date"), ("zh", "「2020-06-31」不是有效的日期")):
        result = run_cli(command, "--lang", lang, cwd=workspace)
        assert result.returncode == 4, result.stdout + result.stderr
        assert f"{where}: as_of: {words}" in result.stderr and "internal" not in result.stderr
    assert not (workspace / "out").exists()


def test_retention_beyond_a_hundred_years_is_a_config_error_at_its_line(workspace, run_cli):
    """1000000 days put the cutoff before year 1: every run ended with an OverflowError, after
    its deliveries."""
    write_county(workspace, base_county())
    (workspace / "exitcheck.yaml").write_text(CONFIG + "retention_days: 1000000\n", encoding="utf-8")
    where = config_line(workspace, "retention_days")
    for lang, words in (("en", "from 1 to 36500 (100 years)"), ("zh", "1 到 36500 天(100 年)之间")):
        result = run_cli("run", "--lang", lang, cwd=workspace)
        assert result.returncode == 4, result.stdout + result.stderr
        assert f"{where}: retention_days: " in result.stderr and words in result.stderr
    assert not (workspace / "out").exists() and not (workspace / "outbox").exists()
    (workspace / "exitcheck.yaml").write_text(CONFIG + "retention_days: 36500\n", encoding="utf-8")
    nightly(run_cli, workspace, "2020-06-01", expect=0)


@pytest.mark.parametrize("mode", ['"0666"', '"0604"', "0o601"])
def test_a_file_mode_open_to_other_users_is_refused_at_its_line(workspace, run_cli, mode):
    """The outputs name households: 0666 made them world-readable and world-writable."""
    write_county(workspace, base_county())
    (workspace / "exitcheck.yaml").write_text(CONFIG + f"file_mode: {mode}\n", encoding="utf-8")
    where = config_line(workspace, "file_mode")
    for lang, words in (("en", "must give other users no access"), ("zh", "不能给其他用户任何权限")):
        result = run_cli("run", "--lang", lang, cwd=workspace)
        assert result.returncode == 4, result.stdout + result.stderr
        assert f"{where}: file_mode: {words}" in result.stderr
    assert not (workspace / "out").exists() and not (workspace / "outbox").exists()
    (workspace / "exitcheck.yaml").write_text(CONFIG + 'file_mode: "0640"\n', encoding="utf-8")
    run_id = nightly(run_cli, workspace, "2020-06-01", expect=0)
    assert (workspace / "out" / run_id / "gaps.xlsx").stat().st_mode & 0o777 == 0o640


# ---- outputs, deliveries, retention ----

def test_run_outputs_progress_sheet_township_deliveries_and_log(workspace, run_cli):
    import openpyxl

    write_county(workspace, broken(0, 3))
    first = nightly(run_cli, workspace, "2020-06-01")
    county = broken(0, 5)
    county.households[4]["安全饮水"] = "否"
    write_county(workspace, county)
    result = run_cli("run", "--as-of", "2020-06-05", cwd=workspace)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert re.search(r"读取登记表: 户表 \d+ 行, 成员表 \d+ 行", result.stdout), result.stdout  # rows, not households
    for word in ("读取登记表", "核查", "输出", "分档", "部门名单", "乡镇问题清单", "与上次", "保留"):
        assert sum(word in line for line in lines) == 1, (word, result.stdout)
    second = run_ids(workspace)[-1]
    folder = workspace / "out" / second
    assert {p.name for p in folder.iterdir()} >= {"gaps.xlsx", "gaps.json", "bands.json", "bands.xlsx", "run.json", "townships"}
    assert json.loads((folder / "run.json").read_text(encoding="utf-8"))["exit_code"] == 1

    book = openpyxl.load_workbook(folder / "gaps.xlsx")
    sheet = book["进度"]
    rows = [r for r in sheet.iter_rows(values_only=True) if any(v is not None for v in r)]
    assert rows[1][:4] == ("运行", "基准日", "中所镇", "越城镇")
    assert rows[2][:5] == (first, "2020-06-01", 2, 2, 4)
    assert rows[3][:5] == (second, "2020-06-05", 4, 2, 6)
    oldest = {r[0]: r[2] for r in rows[5:]}
    assert oldest == {"中所镇": 0, "越城镇": 4}
    assert len(sheet._charts) == 1 and sheet._charts[0].tagname == "lineChart"

    # Each township's own book went through the ledger to its own folder: again only when its
    # list changed (越城镇's did not, 中所镇's did), never for the date alone.
    def delivered(township: str) -> int:
        return len(list((workspace / "outbox" / "townships" / township).glob("*.xlsx")))

    assert (delivered("越城镇"), delivered("中所镇")) == (1, 2)
    unchanged = run_cli("run", "--as-of", "2020-06-06", cwd=workspace)
    assert unchanged.returncode == 1
    assert (delivered("越城镇"), delivered("中所镇")) == (1, 2)
    ledger = run_cli("deliveries", "--json", cwd=workspace)
    recipients = {a["department"] for a in json.loads(ledger.stdout)["attempts"]}
    assert {"township:越城镇", "township:中所镇", "civil-affairs"} <= recipients

    log = [json.loads(line) for line in (workspace / "state" / "logs" / f"{second}.jsonl").read_text(encoding="utf-8").splitlines()]
    assert log[0]["event"] == "start" and log[-1] == {**log[-1], "event": "end", "exit_code": 1}
    assert {e.get("step") for e in log} >= {"load", "audit", "outputs", "bands", "departments", "townships", "history", "retention"}

    quiet = run_cli("run", "--quiet", "--as-of", "2020-06-07", cwd=workspace)
    assert quiet.returncode == 1 and quiet.stdout == "" and quiet.stderr == ""


def township_deliveries(workspace: Path) -> dict[str, int]:
    """How many workbooks each township's delivery folder holds."""
    return {folder.name: len(list(folder.glob("*.xlsx"))) for folder in (workspace / "outbox" / "townships").iterdir()}


def test_a_township_list_is_not_sent_again_for_the_language_of_the_run_alone(workspace, run_cli):
    """The digest hashes each gap's reason in Chinese whatever --lang says: an English night
    after a Chinese one, over the same registers, finds every township's list unchanged."""
    write_county(workspace, broken(0, 3))
    nightly(run_cli, workspace, "2020-06-01")
    assert township_deliveries(workspace) == {"越城镇": 1, "中所镇": 1}
    # Pinned: a change in what is hashed sends every township's list again after an upgrade,
    # which the README must then say.
    digests = {folder.name: json.loads(next(folder.glob("*.json")).read_text(encoding="utf-8"))["digest"]
               for folder in (workspace / "outbox" / "townships").iterdir()}
    assert digests == {"越城镇": "3f67fb8c18e60fa3a0b7d11d4eb4c939cde14c517394a17dca81d57563bb3b9f",
                       "中所镇": "b2f5e8d90225b232be996a23d940aafd1b486353b3bc59a180d1b2f36f7c7f13"}
    english = run_cli("run", "--as-of", "2020-06-02", "--lang", "en", cwd=workspace)
    assert english.returncode == 1, english.stdout + english.stderr
    assert township_deliveries(workspace) == {"越城镇": 1, "中所镇": 1}
    # A change in English is still a change: the reason in Chinese changes with it.
    write_county(workspace, broken(0, 3, income=2000))
    english = run_cli("run", "--as-of", "2020-06-03", "--lang", "en", cwd=workspace)
    assert english.returncode == 1, english.stdout + english.stderr
    assert township_deliveries(workspace) == {"越城镇": 2, "中所镇": 2}


def test_a_township_list_goes_out_again_when_a_household_it_lists_gets_a_new_helper(workspace, run_cli):
    """The book names each household's helper cadre and phone: a new one is a new list for the
    township whose household it is, whatever the gaps; a household not on any list is not."""
    county = broken(0, 3)
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-01")
    county.households[0]["帮扶责任人电话"] = "13900000001"  # 越城镇, on its list
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-02")
    assert township_deliveries(workspace) == {"越城镇": 2, "中所镇": 1}
    county.households[3]["帮扶责任人"] = "李干部"  # 中所镇, on its list
    county.households[1]["帮扶责任人"] = "赵干部"  # 越城镇, but every indicator met: on no list
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-03")
    assert township_deliveries(workspace) == {"越城镇": 2, "中所镇": 2}
    [sent] = [p for p in (workspace / "outbox" / "townships" / "中所镇").glob("*.xlsx") if "2020-06-03" in p.name]
    assert "李干部" in workbook_text(sent)
    households = json.loads(sent.with_suffix(".json").read_text(encoding="utf-8"))["households"]
    assert [(h["household_id"], h["helper_name"], h["helper_phone"]) for h in households] == [(IDS[3], "李干部", "13800000000")]


def test_a_value_only_the_english_message_names_changes_the_township_list(workspace, run_cli):
    """A rule set of the county's own may name in message_en what message does not: the digest
    (of the Chinese reasons) holds that value too, so a change in it reaches the township in
    an English night, and in a Chinese one, where the English book would differ."""
    from exitcheck.rules.model import default_rules_path

    rules = default_rules_path().read_text(encoding="utf-8")
    english = "message_en: per-capita income {income_per_capita} yuan, below {income_line}"
    assert english in rules
    (workspace / "rules.yaml").write_text(rules.replace(english, english + " (house {house_id})"), encoding="utf-8")
    (workspace / "exitcheck.yaml").write_text(CONFIG + "rules: rules.yaml\n", encoding="utf-8")
    county = broken(0, 3)
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-01", "--lang", "en")
    county.households[3]["住房编号"] = "F-NEW-3"
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-02", "--lang", "en")
    assert township_deliveries(workspace) == {"越城镇": 1, "中所镇": 2}
    [sent] = [p for p in (workspace / "outbox" / "townships" / "中所镇").glob("*.xlsx") if "2020-06-02" in p.name]
    assert "(house F-NEW-3)" in workbook_text(sent)
    county.households[0]["住房编号"] = "F-NEW-0"
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-03")
    assert township_deliveries(workspace) == {"越城镇": 2, "中所镇": 2}
    # A gap that cannot be told says why instead of the template: the value is not in it.
    county.households[5]["人均纯收入"] = ""
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-04", "--lang", "en")
    assert township_deliveries(workspace) == {"越城镇": 2, "中所镇": 3}
    county.households[5]["住房编号"] = "F-NEW-5"
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-05", "--lang", "en")
    assert township_deliveries(workspace) == {"越城镇": 2, "中所镇": 3}


def test_a_township_list_is_not_sent_again_for_what_its_book_does_not_show(workspace, run_cli):
    """A household only on the risk list shows its group, head, helper and phone there, not
    its other columns; a column new to the register is no change where it is blank."""
    county = broken(0)
    county.households[4].update({"农户类别": "一般农户", "人均纯收入": 3000})  # 中所镇: a missed-assessment risk alone
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-01")
    county.households[4]["备注"] = "已走访"
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-02")
    assert township_deliveries(workspace) == {"越城镇": 1, "中所镇": 1}
    county.households[4]["帮扶责任人"] = "李干部"  # shown on the risk list
    county.households[1]["新列"] = "x"  # 越城镇, on no list: every other household blank in it
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-03")
    assert township_deliveries(workspace) == {"越城镇": 1, "中所镇": 2}
    county.households[0]["新列"] = "y"  # 越城镇's listed household: its list shows it
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-04")
    assert township_deliveries(workspace) == {"越城镇": 2, "中所镇": 2}


def test_a_township_list_goes_out_again_when_only_its_data_issues_change(workspace, run_cli):
    """A data issue that opens no gap (two households sharing a house number: a warning) is in
    the township's book, so it is a new list; rows moved in the register are not, even when an
    issue names the rows it is on (a household entered twice)."""
    county = broken(0)
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-01")
    county.households[5]["住房编号"] = county.households[4]["住房编号"]  # both of 中所镇
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-02")
    assert township_deliveries(workspace) == {"越城镇": 1, "中所镇": 2}
    sent = sorted((workspace / "outbox" / "townships" / "中所镇").glob("*.json"))[-1]
    issues = json.loads(sent.read_text(encoding="utf-8"))["issues"]
    assert sorted((i["code"], i["household_id"]) for i in issues) == [("shared_house", IDS[4]), ("shared_house", IDS[5])]

    # A household entered twice: its issue names the rows it is on, which move with the rows.
    county.households.append(dict(county.households[3]))
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-03")
    assert township_deliveries(workspace) == {"越城镇": 1, "中所镇": 3}
    county.households.reverse()
    county.members.reverse()
    write_county(workspace, county)
    nightly(run_cli, workspace, "2020-06-04")
    assert township_deliveries(workspace) == {"越城镇": 1, "中所镇": 3}


def test_progress_counts_households_of_a_blank_township_apart_from_the_county(workspace, run_cli):
    """Gaps of households whose 乡镇 is blank are theirs, not the county's own (县级)."""
    import openpyxl

    county = broken(0, 3)
    county.households[3]["乡镇"] = ""
    county.households[3]["人均纯收入"] = 3000
    write_county(workspace, county)
    run_id = nightly(run_cli, workspace, "2020-06-01")
    sheet = openpyxl.load_workbook(workspace / "out" / run_id / "gaps.xlsx")["进度"]
    rows = [r for r in sheet.iter_rows(values_only=True) if any(v is not None for v in r)]
    labels = rows[1][2:rows[1].index("合计")]
    assert "乡镇未填" in labels and "县级" not in labels, labels
    assert rows[2][2 + labels.index("乡镇未填")] == 3  # income, the wrong-exit risk, the blank as an inaccuracy
    nightly(run_cli, workspace, "2020-06-02")
    diff = run_cli("diff", cwd=workspace)
    assert re.search(r"乡镇未填\s*│\s*income", diff.stdout) and "(县级)" not in diff.stdout, diff.stdout


def test_a_rule_that_does_not_compile_stops_the_run_before_the_registers_are_read(workspace, run_cli):
    from exitcheck.rules.model import default_rules_path

    rules = workspace / "rules.yaml"
    rules.write_text(default_rules_path().read_text(encoding="utf-8").replace("check: safe_water", "check: safe_watr", 1), encoding="utf-8")
    line = next(n for n, text in enumerate(rules.read_text(encoding="utf-8").splitlines(), 1) if "safe_watr" in text)
    (workspace / "exitcheck.yaml").write_text(CONFIG + "rules: rules.yaml\n", encoding="utf-8")
    (workspace / "data" / "registers.xlsx").write_bytes(b"not read")  # read, it would be exit 3
    result = run_cli("run", "--as-of", "2020-06-01", "--lang", "en", cwd=workspace)
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"rules.yaml:{line}: rule water, check: unknown name 'safe_watr'" in result.stdout + result.stderr


def workbook_text(path: Path) -> str:
    """Every cell of a workbook, joined: enough to see whose households it holds."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    return " ".join(str(v) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for v in row if v is not None)


def test_townships_whose_names_make_the_same_file_name_keep_their_own_books(workspace, run_cli):
    """"中所镇" and a typo "中所镇?" are two townships: each its own workbook and its own delivery,
    whether through the common target or its own `each:` one; neither is sent the other's."""
    typo = "中所镇?"
    suffix = hashlib.sha256(typo.encode("utf-8")).hexdigest()[:6]
    county = broken(0, 3)
    county.households[0]["乡镇"] = typo  # household 0 (越城镇) is now in the typo's township
    write_county(workspace, county)
    config = CONFIG + f"""  each:
    "{typo}": {{type: dir, path: outbox/typo}}
"""
    (workspace / "exitcheck.yaml").write_text(config, encoding="utf-8")
    run = nightly(run_cli, workspace, "2020-06-01")
    books = workspace / "out" / run / "townships"
    assert sorted(p.name for p in books.iterdir()) == sorted(["中所镇.xlsx", f"中所镇-{suffix}.xlsx", "越城镇.xlsx"])
    assert IDS[0] in workbook_text(books / f"中所镇-{suffix}.xlsx")
    assert IDS[3] in workbook_text(books / "中所镇.xlsx") and IDS[0] not in workbook_text(books / "中所镇.xlsx")

    def delivered(folder: str) -> tuple[str, str]:
        [book] = (workspace / "outbox" / folder).glob("*.xlsx")
        return json.loads(book.with_suffix(".json").read_text(encoding="utf-8"))["township"], workbook_text(book)

    township, text = delivered("townships/中所镇")
    assert township == "中所镇" and IDS[3] in text and IDS[0] not in text
    township, text = delivered("typo")
    assert township == typo and IDS[0] in text and IDS[3] not in text

    # The same without `each:`: the typo gets a folder of its own beside 中所镇's.
    (workspace / "exitcheck.yaml").write_text(CONFIG, encoding="utf-8")
    shutil.rmtree(workspace / "outbox")
    shutil.rmtree(workspace / "state")
    nightly(run_cli, workspace, "2020-06-02")
    township, text = delivered(f"townships/中所镇-{suffix}")
    assert township == typo and IDS[0] in text and IDS[3] not in text
    township, text = delivered("townships/中所镇")
    assert township == "中所镇" and IDS[0] not in text


def test_audit_split_by_township_keeps_apart_names_that_make_the_same_file_name(tmp_path, run_cli):
    county = broken(0, 3)
    county.households[0]["乡镇"] = "中所镇?"
    path = county.write(tmp_path / "registers.xlsx")
    result = run_cli("audit", str(path), "--out", "out", "--as-of", "2020-06-01", "--split-by", "township")
    assert result.returncode == 1, result.stdout + result.stderr
    books = {p.name: workbook_text(p) for p in (tmp_path / "out" / "townships").iterdir()}
    suffix = hashlib.sha256("中所镇?".encode()).hexdigest()[:6]
    assert set(books) == {"中所镇.xlsx", f"中所镇-{suffix}.xlsx", "越城镇.xlsx"}  # 越城镇 is clear: its book says so
    assert IDS[0] in books[f"中所镇-{suffix}.xlsx"] and IDS[0] not in books["中所镇.xlsx"]


def test_a_township_name_too_long_for_a_file_name_is_cut_not_an_internal_error(tmp_path, run_cli):
    """A note typed into the township cell made a file name over 255 bytes: exit 70 after the
    county's outputs were written. The name is cut to MAX_STEM_CHARS and hashed."""
    county = broken(0, 3)
    long_name = "中所镇(2019年12月由原越城镇与原新民乡合并设立,辖区包括原越城镇全部行政村及原新民乡的新民村、瓦曲村、马拖村等,以民政部门批复为准,具体见县政府2019年第12号文件及附件)"
    assert len(long_name.encode()) > 255 - len(".xlsx.12345678.part.")  # as a file name, too long
    county.households[0]["乡镇"] = long_name
    path = county.write(tmp_path / "registers.xlsx")
    result = run_cli("audit", str(path), "--out", "out", "--as-of", "2020-06-01", "--split-by", "township")
    assert result.returncode == 1, result.stdout + result.stderr
    from exitcheck.report.files import MAX_STEM_CHARS

    suffix = hashlib.sha256(long_name.encode()).hexdigest()[:6]
    books = {p.name: workbook_text(p) for p in (tmp_path / "out" / "townships").iterdir()}
    assert f"{long_name[:MAX_STEM_CHARS]}-{suffix}.xlsx" in books
    assert IDS[0] in books[f"{long_name[:MAX_STEM_CHARS]}-{suffix}.xlsx"]


def test_retention_prunes_old_run_folders_and_logs_but_keeps_counts(workspace, run_cli):
    write_county(workspace, broken(0))
    first = nightly(run_cli, workspace, "2020-06-01")
    second = nightly(run_cli, workspace, "2020-06-02")
    old = workspace / "out" / "20200101-020000"
    (old / "townships").mkdir(parents=True)
    (old / "gaps.json").write_text("{}", encoding="utf-8")
    (workspace / "state" / "logs" / "20200101-020000.jsonl").write_text("{}\n", encoding="utf-8")
    mine = workspace / "out" / "notes-2020"
    mine.mkdir()
    # The first run started long ago, as far as the history knows.
    with sqlite3.connect(workspace / "state" / "history.sqlite") as db:
        db.execute("UPDATE runs SET started = '2019-01-01T02:00:00+08:00' WHERE id = ?", (first,))
    result = run_cli("run", "--as-of", "2020-06-03", cwd=workspace)
    assert result.returncode == 1
    assert not old.exists() and not (workspace / "state" / "logs" / "20200101-020000.jsonl").exists()
    assert mine.exists() and (workspace / "out" / first).exists()  # only run folders, by their id's date
    runs = {r["id"]: r for r in history(run_cli, workspace)}
    assert runs[first]["findings_pruned"] and runs[first]["total"] == 2  # counts kept
    assert not runs[second]["findings_pruned"]
    refused = run_cli("diff", first, "--json", cwd=workspace)
    assert refused.returncode == 2
    assert len(diff_json(run_cli, workspace)["open"]) == 2


def test_an_old_folder_retention_cannot_delete_is_a_warning_not_a_failed_night(workspace, run_cli):
    """It was exit 70 every night, naming only 'gaps.json', with the rest of retention skipped
    and the history saying exit 1 while run.json said 70."""
    write_county(workspace, broken(0))
    stuck, other = workspace / "out" / "20200101-000000", workspace / "out" / "20200102-000000"
    for folder in (stuck, other):
        folder.mkdir(parents=True)
        (folder / "gaps.json").write_text("{}", encoding="utf-8")
    old_log = workspace / "state" / "logs" / "20200102-000000.jsonl"
    old_log.parent.mkdir(parents=True)
    old_log.write_text("{}\n", encoding="utf-8")
    with unwritable(stuck):
        result = run_cli("run", "--lang", "en", "--as-of", "2020-06-01", cwd=workspace)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""  # nothing for cron to mail: the night did not fail
    assert not other.exists() and not old_log.exists() and stuck.exists()  # the rest of retention ran
    blocked = str(stuck / "gaps.json")
    line = next(line for line in result.stdout.splitlines() if line.startswith("retention"))
    assert f"warning: 1 could not be deleted, check the permissions (first: {blocked} (" in line
    run_id = run_ids(workspace)[-1]
    log = [json.loads(x) for x in (workspace / "state" / "logs" / f"{run_id}.jsonl").read_text(encoding="utf-8").splitlines()]
    warnings = [e["message"] for e in log if e["event"] == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith(f"cannot delete {blocked} (")
    # The history says what the process said, as does run.json.
    recorded = history(run_cli, workspace)[-1]
    document = json.loads((workspace / "out" / run_id / "run.json").read_text(encoding="utf-8"))
    assert recorded["id"] == run_id and recorded["exit_code"] == document["exit_code"] == 1
    assert recorded["status"] == document["status"] == "findings"


# ---- the workspace's own files: exit 74, before anything is read or sent ----

def test_exit_74_ranks_after_configuration_and_before_inputs():
    from exitcheck.errors import ExitCode, worst

    assert ExitCode.WORKSPACE_FILES == 74
    assert worst(70, 75, 2, 4, 74, 3, 5, 1, 0) == 70
    assert [worst(74, code) for code in (75, 2, 4, 3, 5, 1, 0)] == [75, 2, 4, 74, 74, 74, 74]


def fresh_lists(workspace: Path, run_cli) -> tuple[dict[str, str], list[str]]:
    """One good night, then registers whose lists differ: the next run would deliver."""
    write_county(workspace, broken(0))
    nightly(run_cli, workspace, "2020-06-01")
    write_county(workspace, broken(0, 1, 2))
    return tree_digest(workspace / "outbox"), run_ids(workspace)


def refused_74(workspace: Path, run_cli, before: tuple[dict[str, str], list[str]], *words: str) -> str:
    """A run that stops with exit 74 before anything is audited, written or delivered."""
    outbox, runs = before
    for lang in ("zh", "en"):
        result = run_cli("run", "--lang", lang, "--as-of", "2020-06-02", cwd=workspace)
        assert result.returncode == 74, result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "internal" not in result.stderr and "内部错误" not in result.stderr
    assert all(word in result.stderr for word in words), result.stderr
    assert tree_digest(workspace / "outbox") == outbox and run_ids(workspace) == runs
    return result.stderr


DAMAGED = b"this is not an SQLite database " * 200


def test_a_damaged_history_is_exit_74_naming_it_for_run_history_and_diff(workspace, run_cli):
    before = fresh_lists(workspace, run_cli)
    database = workspace / "state" / "history.sqlite"
    database.write_bytes(DAMAGED)
    refused_74(workspace, run_cli, before, f"the run history {database} is damaged",
               f"move it aside (mv {database} {database}.broken) and the next run makes a new one")
    for command in ("history", "diff"):
        result = run_cli(command, "--lang", "en", cwd=workspace)
        assert result.returncode == 74 and f"the run history {database} is damaged" in result.stderr
    # The advice works: a new history, and the run goes on.
    database.rename(database.with_name("history.sqlite.broken"))
    nightly(run_cli, workspace, "2020-06-02")
    assert len(history(run_cli, workspace)) == 1


def test_a_damaged_delivery_ledger_is_exit_74_naming_it_for_run_deliveries_and_bands(workspace, run_cli):
    before = fresh_lists(workspace, run_cli)
    ledger = workspace / "state" / "deliveries.sqlite"
    ledger.write_bytes(DAMAGED)
    refused_74(workspace, run_cli, before, f"the delivery ledger {ledger} is damaged", "gets its current list once more")
    for command in (["deliveries"], ["bands", "--push-to", "all"]):
        result = run_cli(*command, "--lang", "en", cwd=workspace)
        assert result.returncode == 74 and f"the delivery ledger {ledger} is damaged" in result.stderr, result.stderr
    assert tree_digest(workspace / "outbox") == before[0]


def test_a_read_only_history_stops_the_run_before_it_delivers(workspace, run_cli):
    """It audited, wrote and delivered, then failed to record: the run was lost for good."""
    before = fresh_lists(workspace, run_cli)
    database = workspace / "state" / "history.sqlite"
    with unwritable(database):
        refused_74(workspace, run_cli, before, f"cannot write the run history {database}",
                   f"give the user that runs exitcheck write access to it and to the folder {database.parent}")
    nightly(run_cli, workspace, "2020-06-02")
    assert len(history(run_cli, workspace)) == 2


@pytest.mark.parametrize(("key", "value"), [("out", "data/registers.xlsx"), ("state", "data/registers.xlsx/state")])
def test_an_output_or_state_folder_that_cannot_be_made_is_exit_74(workspace, run_cli, key, value):
    write_county(workspace, broken(0))
    (workspace / "exitcheck.yaml").write_text(re.sub(rf"(?m)^{key}: .*$", f"{key}: {value}", CONFIG), encoding="utf-8")
    result = run_cli("run", "--lang", "en", "--as-of", "2020-06-01", cwd=workspace)
    assert result.returncode == 74, result.stdout + result.stderr
    assert f"{workspace / value} cannot be a folder: a file stands in its way" in result.stderr
    assert "point it at a folder in exitcheck.yaml" in result.stderr
    assert not (workspace / "outbox").exists()

#: A state folder that cannot be made or written, and what the message says (en, zh) besides its path.
STATE_OBSTACLES = {
    "a file where the folder should be": ("data/registers.xlsx/state", "cannot be a folder: a file stands in its way", "无法成为目录"),
    "a read-only parent": ("locked/state", "give the user that runs exitcheck write access", "有写权限"),
    "the lock's details a folder": ("state/run.lock.json", "cannot read or write the state folder", "无法读写状态目录"),
}


@pytest.mark.parametrize("command", [["run"], ["bands", "--push-to", "all"]], ids=["run", "push"])
@pytest.mark.parametrize("obstacle", list(STATE_OBSTACLES))
def test_a_push_meets_a_state_folder_it_cannot_use_as_the_run_does_with_exit_74(workspace, run_cli, command, obstacle):
    """`bands --push-to` takes the run's lock in the state folder: the same exit 74 and the same
    message, the full path and the fix, never an internal error."""
    write_county(workspace, broken(0))
    path, en, zh = STATE_OBSTACLES[obstacle]
    (workspace / "locked").mkdir()
    if obstacle == "the lock's details a folder":
        (workspace / path).mkdir(parents=True)
    else:
        (workspace / "exitcheck.yaml").write_text(CONFIG.replace("state: state", f"state: {path}"), encoding="utf-8")
    with unwritable(workspace / "locked"):
        for lang, words in (("en", en), ("zh", zh)):
            result = run_cli(*command, "--lang", lang, "--as-of", "2020-06-01", cwd=workspace)
            assert result.returncode == 74, result.stdout + result.stderr
            assert str(workspace / path) in result.stderr and words in result.stderr, result.stderr
            assert "Traceback" not in result.stderr and "internal" not in result.stderr and "内部错误" not in result.stderr
            if obstacle == "a read-only parent":  # the folder to fix is the one that exists, not the state folder to be
                assert (f"the folder {workspace / 'locked'} (" if lang == "en" else f"目录 {workspace / 'locked'} 有写权限") in result.stderr, result.stderr
                # on Windows a file open in Excel is what most often stops a write
                assert ("is open in Excel or WPS, close it" if lang == "en" else "正在 Excel 或 WPS 中打开, 请先关闭") in result.stderr
    assert not (workspace / "outbox").exists()



def test_a_history_that_fails_after_the_deliveries_leaves_the_ledger_true(slow_workspace, run_cli):
    """The history turns read-only while a delivery is on its way: the run ends with 74, it is
    not in the history, and the ledger says what was delivered."""
    folder, inbox = slow_workspace
    run = start_run(folder)
    assert inbox.arrived.wait(60)
    run_id = holder(folder)["run"]
    with unwritable(folder / "state" / "history.sqlite"):
        inbox.release.set()
        out, err = run.communicate(timeout=120)
    assert run.returncode == 74, out + err
    assert "本次运行未能记入历史, 投递情况见 exitcheck deliveries" in err and "history.sqlite" in err
    assert run_id not in [r["id"] for r in history(run_cli, folder)]
    attempts = json.loads(run_cli("deliveries", "--json", cwd=folder).stdout)["attempts"]
    mine = {a["department"]: a["outcome"] for a in attempts if a["run_id"] == run_id}
    assert mine["slow-office"] == "delivered" and mine["civil-affairs"] == "delivered"
    document = json.loads((folder / "out" / run_id / "run.json").read_text(encoding="utf-8"))
    assert document["exit_code"] == 74 and document["status"] == "findings"  # audited and delivered, not recorded


# ---- init ----

def test_init_makes_a_ready_workspace_and_never_overwrites(tmp_path, run_cli):
    made = run_cli("init", "county")
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "county"
    config = folder / "exitcheck.yaml"
    text = config.read_text(encoding="utf-8")
    assert "run --quiet" in text and "0 2 * * *" in text and str(folder) in text
    assert (folder / "rules" / "sichuan-2020.yaml").is_file() and (folder / "data" / "registers.xlsx").is_file()
    assert "0 2 * * *" in made.stdout
    # the Chinese guide tells a clerk every setting is explained in the file: in Chinese too
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line[:1].isalpha() and ":" in line:  # a top-level setting
            above = itertools.takewhile(lambda comment: comment.startswith("#"), reversed(lines[:index]))
            assert any(re.search(r"[\u4e00-\u9fff]", comment) for comment in above), line
    # and how to schedule it, which the clerk reads first, in both languages
    assert "# 每晚 02:00 运行: 用 crontab -e 加入这一行" in text and "add this line with crontab -e" in text

    config.write_text(text + "# my own note\n", encoding="utf-8")
    (folder / "rules" / "sichuan-2020.yaml").unlink()
    sample = (folder / "data" / "registers.xlsx").read_bytes()
    again = run_cli("init", "county")
    assert again.returncode == 0
    assert config.read_text(encoding="utf-8").endswith("# my own note\n")
    assert (folder / "data" / "registers.xlsx").read_bytes() == sample
    assert (folder / "rules" / "sichuan-2020.yaml").is_file()
    assert "exitcheck.yaml" in again.stdout

    # Ready as it is: the nightly run works on the sample county straight away.
    run = run_cli("run", "--as-of", "2020-06-30", cwd=folder)
    assert run.returncode == 1, run.stdout + run.stderr
    assert any((folder / "outbox" / "townships").iterdir())
    assert "1 个文件(registers.xlsx)" in run.stdout, run.stdout  # which file was read, by name

    # A clerk's test: the county's workbook copied beside the sample was not read, and the run
    # said only "1 个文件" while delivering the sample's lists; init's hint now says to replace
    # data/registers.xlsx, and the run names the file it left unread.
    assert "用本县登记表替换 data/registers.xlsx(文件名不变)" in made.stdout, made.stdout
    shutil.copy(folder / "data" / "registers.xlsx", folder / "data" / "越西县登记表.xlsx")
    beside = run_cli("run", "--as-of", "2020-07-01", cwd=folder)
    assert "旁边的 越西县登记表.xlsx 未读取(exitcheck.yaml 的 registers: 没有指向它)" in beside.stdout, beside.stdout


def test_the_crontab_line_init_prints_runs_the_workspace(tmp_path, run_cli):
    """The line is run as cron would: by sh, from no particular folder, with the schedule's five
    fields taken off."""
    assert run_cli("init", "county").returncode == 0
    config = (tmp_path / "county" / "exitcheck.yaml").read_text(encoding="utf-8")
    line = re.search(r"(?m)^#   (0 2 \* \* \* .*)$", config).group(1)
    command = line.split(" ", 5)[5]
    done = subprocess.run(["sh", "-c", command + " --as-of 2020-06-30"], cwd="/", capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # the sample county has gaps; --quiet: nothing printed
    assert done.stdout == "" and any((tmp_path / "county" / "outbox" / "townships").iterdir())


def test_on_windows_init_gives_a_task_scheduler_command_naming_the_workspace():
    from exitcheck.workspace_init import nightly_line

    folder = Path("C:/Users/扶贫办/county x")
    how_zh, how_en, line = nightly_line(folder, windows=True)
    assert how_zh == "在命令提示符(cmd)中运行一次" and "cmd" in how_en
    assert line.startswith("schtasks /Create /SC DAILY /ST 02:00 /TN exitcheck-nightly /TR \"")
    # a task starts in System32: the workspace is named by --config, quoted for /TR
    assert line.endswith(f' run --quiet --config \\"{folder / "exitcheck.yaml"}\\""')
    assert "crontab" not in line and "cd " not in line
    assert nightly_line(folder, windows=False)[2].startswith("0 2 * * * cd ")
    # and the exitcheck.yaml init writes there says what a scheduled task's printing comes to
    from exitcheck.workspace_init import config_text

    text = config_text(folder, "data", "rules/sichuan-2020.yaml", windows=True)
    assert "# 每晚 02:00 运行: 在命令提示符(cmd)中运行一次(计划任务不发邮件" in text and "cron" not in text
    assert "cron 会把打印出的内容发邮件" in config_text(folder, "data", "rules/sichuan-2020.yaml", windows=False)


def test_run_ids_are_unique_even_within_one_second(workspace, run_cli):
    """Ids are the start time to the second; when that id is taken the run gets a suffix."""
    write_county(workspace, base_county())
    now = time.time()
    for offset in range(120):  # every id of the next two minutes already has a folder
        (workspace / "out" / time.strftime("%Y%m%d-%H%M%S", time.localtime(now + offset))).mkdir(parents=True)
    run_id = nightly(run_cli, workspace, "2020-06-01", expect=0)
    assert re.fullmatch(r"\d{8}-\d{6}-02", run_id), run_id
    assert [r["id"] for r in history(run_cli, workspace)] == [run_id]


def test_the_folder_a_write_error_names_is_found_where_looking_it_up_fails(tmp_path):
    """Looking for the nearest existing folder may itself fail (no search permission for
    another user's home; here a name too long to look up): the message is still made, exit 74."""
    from exitcheck.errors import ExitCode
    from exitcheck.state_files import STATE, workspace_file_error

    state = tmp_path / ("x" * 300) / "state"  # os.stat raises ENAMETOOLONG, which Path.exists() re-raises
    error = workspace_file_error(state, STATE, PermissionError(13, "Permission denied"))
    assert error.exit_code == ExitCode.WORKSPACE_FILES
    assert f"the folder {tmp_path} (" in error.en


def test_several_counties_keep_a_blank_township_apart_from_the_county_in_the_history():
    """With `engine: dask` a finding's township is "<county>-<township>": a household whose
    township is blank was labelled with its county alone, as the county's own rules are."""
    from types import SimpleNamespace

    from exitcheck.history import counts_of, findings_from_gaps, township_label

    def gap(level: str, rule: str, household: str | None) -> SimpleNamespace:
        return SimpleNamespace(level=level, rule=rule, status="fail", household_id=household, township=None,
                               village="瓦曲村" if household else None, county="越西县")

    findings = findings_from_gaps([gap("household", "income", "513434001"), gap("county", "county_incidence", None)])
    assert {town for _, town in counts_of(findings)} == {"越西县-no-township", "越西县"}
    assert (township_label("越西县-no-township", "zh"), township_label("越西县-no-township", "en")) == ("越西县-乡镇未填", "越西县-Township blank")


def test_audit_in_a_workspace_uses_its_rule_set_as_run_does(workspace, run_cli):
    """`exitcheck audit` run in a workspace reads the rules its exitcheck.yaml names, as
    `exitcheck run` and `exitcheck bands` do; --rules still overrides them."""
    from exitcheck.rules.model import default_rules_path

    rules = default_rules_path().read_text(encoding="utf-8")
    assert "  income_line: 4200\n" in rules
    (workspace / "rules.yaml").write_text(rules.replace("  income_line: 4200\n", "  income_line: 9000\n"), encoding="utf-8")
    (workspace / "exitcheck.yaml").write_text(CONFIG + "rules: rules.yaml\n", encoding="utf-8")
    write_county(workspace, broken(0))

    def income_gaps(*extra: str) -> int:
        result = run_cli("audit", "data/registers.xlsx", "--as-of", "2020-06-01", "--out", "a", "-q", *extra, cwd=workspace)
        assert result.returncode == 1, result.stdout + result.stderr
        gaps = json.loads((workspace / "a" / "gaps.json").read_text(encoding="utf-8"))["gaps"]
        return sum(gap["rule"] == "income" for gap in gaps)

    assert income_gaps() == 6  # every household's 8,000 yuan is under the workspace's line
    assert income_gaps("--rules", str(default_rules_path())) == 1


def test_a_night_whose_household_ids_all_lost_their_digits_delivers_nothing(workspace, run_cli):
    """The household ID column saved as numbers: no household is left to audit. The night must
    fail (exit 3) rather than pass every indicator and send each department an empty list in
    place of the last good one; audit and bands refuse it the same way."""
    write_county(workspace, broken(0))
    nightly(run_cli, workspace, "2020-06-30")
    assert delivered_rows(workspace, "civil-affairs") == 1
    county = broken(0)
    for number, row in enumerate(county.households, start=1):
        row["户编号"] = float(f"513434001001{number:06d}")  # more digits than a number cell keeps
    path = write_county(workspace, county)
    nightly(run_cli, workspace, "2020-07-01", expect=3)
    assert delivered_rows(workspace, "civil-affairs") == 1
    for command in (("audit", str(path), "--out", "o"), ("bands", str(path), "--out", "o")):
        done = run_cli(*command, "--as-of", "2020-07-01", cwd=workspace.parent)
        assert done.returncode == 3, done.stdout + done.stderr
        assert f"户表 {len(county.households)} 行的户编号都为空、无法识别或已丢失位数, 没有一户可以核查" in done.stderr
        assert not (workspace.parent / "o").exists()


@pytest.mark.parametrize("key", ["only", "each"])
def test_a_township_misspelt_in_the_config_is_a_config_error_not_a_silent_stop(workspace, run_cli, key):
    """`only: [越城, 中所镇]` (越城 for 越城镇) served 中所镇 and never 越城镇, exit 1 like any
    night and nothing printed under --quiet; an `each:` key misspelt sent 越城镇's list to the
    common target, or nowhere without one, without a word. Both are exit 4 now, naming the
    township and the nearest one; the townships spelt right are served."""
    write_county(workspace, broken(0, 3))
    config = CONFIG + ("  only: [越城, 中所镇]\n" if key == "only" else "  each:\n    越城: {type: dir, path: outbox/yuecheng}\n")
    (workspace / "exitcheck.yaml").write_text(config, encoding="utf-8")
    done = run_cli("run", "--as-of", "2020-06-01", "--quiet", cwd=workspace)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "townships 中有登记表没有的乡镇, 其清单无法投递, 请改正: 越城(是否指 越城镇?)" in done.stderr
    assert list((workspace / "outbox" / "townships" / "中所镇").glob("*.xlsx"))


def test_a_clock_that_jumped_ahead_does_not_wipe_the_earlier_runs(workspace, run_cli):
    """With the clock 61 days ahead every earlier run looked older than retention_days and one
    night deleted all their folders and logs; counted from the latest earlier run, the next night
    did, the clock being still wrong. Seen from the jumped clock, the earlier runs started 61 days
    ago: the night says the clock may be wrong and keeps them, and the newest runs are kept
    whatever the clock says on the nights after."""
    from datetime import datetime, timedelta

    from exitcheck.runner import KEEP_NEWEST_RUNS

    write_county(workspace, broken(0))
    earlier = [nightly(run_cli, workspace, "2020-06-01"), nightly(run_cli, workspace, "2020-06-02")]
    then = datetime.now().astimezone() - timedelta(days=61)
    old_ids = []
    with sqlite3.connect(workspace / "state" / "history.sqlite") as db:  # as the runs were recorded before the jump
        for n, run_id in enumerate(earlier):
            started = then + timedelta(minutes=n)
            old_id = started.strftime("%Y%m%d-%H%M%S")
            db.execute("UPDATE runs SET id = ?, started = ?, ended = ? WHERE id = ?",
                       (old_id, started.isoformat(timespec="seconds"), started.isoformat(timespec="seconds"), run_id))
            for table in ("counts", "findings"):
                db.execute(f"UPDATE {table} SET run_id = ? WHERE run_id = ?", (old_id, run_id))  # noqa: S608 - the test's own names
            (workspace / "out" / run_id).rename(workspace / "out" / old_id)
            (workspace / "state" / "logs" / f"{run_id}.jsonl").rename(workspace / "state" / "logs" / f"{old_id}.jsonl")
            old_ids.append(old_id)

    def kept() -> bool:
        return all((workspace / "out" / i).is_dir() and (workspace / "state" / "logs" / f"{i}.jsonl").is_file() for i in old_ids)

    jumped = run_cli("run", "--as-of", "2020-06-03", cwd=workspace)
    assert jumped.returncode == 1 and kept(), jumped.stdout + jumped.stderr
    assert "距上次运行已 61 天, 若本机时钟有误请校正" in jumped.stdout
    for day in range(4, 4 + KEEP_NEWEST_RUNS - 2):  # the clock stays wrong: the newest runs stay
        nightly(run_cli, workspace, f"2020-06-{day:02d}")
        assert kept()
    nightly(run_cli, workspace, "2020-06-28")  # now more than KEEP_NEWEST_RUNS runs are newer: due
    assert not (workspace / "out" / old_ids[0]).exists() and (workspace / "out" / old_ids[1]).exists()


def test_a_clock_set_back_a_day_keeps_the_history_in_the_order_the_runs_happened(tmp_path):
    """The nights' ids are their start times by the clock: a run on a clock set back a day got
    an id before yesterday's, and the history compared the wrong runs (tonight's diff against
    the day before yesterday, tonight listed first, streaks carried from the wrong night)."""
    from datetime import datetime, timedelta

    from exitcheck.history import Finding, History, RunRecord

    history = History(tmp_path / "state")
    base = datetime(2020, 6, 10, 2, 0).astimezone()
    income = Finding("f-income", "household", "income", "fail", "h1", "越城镇", "大花村")
    water = Finding("f-water", "household", "water", "fail", "h2", "越城镇", "大花村")
    for run_id, started, found in (("20200610-020000", base, [income]),
                                   ("20200611-020000", base + timedelta(days=1), [income, water]),
                                   ("20200609-020500", base - timedelta(days=1, minutes=-5), [water])):  # clock back
        history.record(RunRecord(run_id, started, started, "findings", 1, day=started.date(), findings=found))
    assert [run.id for run in history.runs(counts=False)] == ["20200610-020000", "20200611-020000", "20200609-020500"]
    diff = history.diff()
    assert (diff.from_run, diff.to_run) == ("20200611-020000", "20200609-020500")
    assert [e.rule for e in diff.resolved] == ["income"] and [e.rule for e in diff.open] == ["water"]
    with sqlite3.connect(tmp_path / "state" / "history.sqlite") as db:  # its streak, carried from the night before
        since = db.execute("SELECT open_since FROM findings WHERE run_id = '20200609-020500' AND fingerprint = 'f-water'").fetchone()
    assert since == ("20200611-020000",)
    burn_down = history.progress()  # the chart's runs in the order they happened, its ages on tonight's
    assert list(dict.fromkeys(burn_down["run"])) == ["20200610-020000", "20200611-020000", "20200609-020500"]
    # income: open on the first night, fixed on the second, back on the third (set back): reopened
    history.record(RunRecord("20200608-020500", base, base, "findings", 1, day=base.date(), findings=[income]))
    assert [e.rule for e in history.diff("20200609-020500", "20200608-020500").reopened] == ["income"]
    assert [e.rule for e in history.diff("20200609-020500", "20200608-020500").open] == []
