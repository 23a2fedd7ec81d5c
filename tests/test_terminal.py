"""The terminal: a progress display on a terminal, nothing extra when quiet or piped; --help fast."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from builders import AS_OF, base_county, recode


def _run_on_terminal(args: list[str], cwd) -> tuple[int, str]:
    """Run the CLI with its stderr and stdout on a pseudo-terminal, as a cadre would see it."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen([sys.executable, "-m", "exitcheck", *args], stdin=subprocess.DEVNULL,
                               stdout=follower, stderr=follower, cwd=cwd, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return process.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_a_terminal_and_silence_when_quiet(tmp_path):
    path = base_county().write(tmp_path / "c.xlsx")
    code, shown = _run_on_terminal(["audit", str(path), "--out", "o", "--as-of", AS_OF.isoformat()], tmp_path)
    assert code == 0
    assert "读取登记表" in shown and "评估指标" in shown  # the stages' progress lines
    code, shown = _run_on_terminal(["audit", str(path), "--out", "o", "--as-of", AS_OF.isoformat(), "--quiet"], tmp_path)
    assert code == 0 and shown.strip() == ""


def test_no_progress_when_piped(tmp_path, run_cli):
    path = base_county().write(tmp_path / "c.xlsx")
    result = run_cli("audit", str(path), "--out", "o", "--as-of", AS_OF.isoformat())
    assert "读取登记表" not in result.stdout + result.stderr


def test_help_lists_every_command(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("validate", "audit", "explain", "columns", "rules", "sample"):
        assert command in result.stdout


def test_help_imports_nothing_heavy() -> None:
    # --help must stay instant: neither the reader (and pydantic with its limits) nor pandas
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "exitcheck", "--help"],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 0
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "exitcheck.cli" in imported
    assert not imported & {"pandas", "pydantic", "numpy", "exitcheck.registers.read"}


def test_the_issue_table_keeps_household_ids_whole_and_names_the_workbook_of_each_cell(tmp_path, run_cli):
    """At 80 columns the first issues' household ids are not cut in two (a clerk searches for
    them), and with several workbooks the position says which one."""
    county = base_county()
    county.households[1]["家庭人口数"] = 9  # size_mismatch, on 户表
    county.members[0]["性别"] = "女"  # id_gender_mismatch, on 成员表
    (tmp_path / "a").mkdir()
    one = county.write(tmp_path / "a" / "一.xlsx")
    other = recode(base_county(), "513435", town_prefix="新")  # another county's ids and people
    other.households[2]["家庭人口数"] = 8
    two = other.write(tmp_path / "a" / "二.xlsx")
    result = run_cli("validate", str(one.parent), "--as-of", AS_OF.isoformat(), env={"COLUMNS": "80"})
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for hid in (county.households[1]["户编号"], county.members[0]["户编号"], other.households[2]["户编号"]):
        assert any(hid in line for line in lines), (hid, result.stdout)
    assert any(f"{one.name}: 户表!" in line for line in lines) and any(f"{two.name}: 户表!" in line for line in lines), result.stdout
