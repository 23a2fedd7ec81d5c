"""`exitcheck init DIR`: a ready workspace for the nightly run.

It writes a commented exitcheck.yaml (with the crontab line for this machine), a copy of the
default rule set under rules/, and the sample county register under data/, so that
`exitcheck run` works at once and the county replaces the sample with its own registers.

Running it again fills in what is missing and never touches a file that exists: a file the
user changed stays as the user left it, a file left as written is already right.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from exitcheck.report.files import write_bytes

CONFIG_NAME = "exitcheck.yaml"
RULES_DIR = "rules"
DATA_FILE = "data/registers.xlsx"
SAMPLE_HOUSEHOLDS = 300
SAMPLE_SEED = 2020

Action = Literal["created", "kept"]


@dataclass(frozen=True)
class InitStep:
    path: Path
    action: Action  # created now, or kept as found (never overwritten)


def crontab_line(folder: Path) -> str:
    """Every night at 02:00, from the workspace folder, errors only (cron mails what is printed)."""
    return f"0 2 * * * cd {shlex.quote(str(folder))} && {_command(shlex.quote)} run --quiet"


def schtasks_line(folder: Path) -> str:
    """The same on Windows: a Task Scheduler task made with schtasks, the workspace named by
    --config (a task starts in System32, and its paths are relative to exitcheck.yaml)."""
    def quoted(text: str) -> str:  # a quote inside schtasks' /TR "..." is written \"
        return f'\\"{text}\\"'

    config = folder / CONFIG_NAME
    return (f'schtasks /Create /SC DAILY /ST 02:00 /TN exitcheck-nightly '
            f'/TR "{_command(quoted)} run --quiet --config {quoted(str(config))}"')


def nightly_line(folder: Path, windows: bool | None = None) -> tuple[str, str, str]:
    """How to run the workspace every night on this system: (how, in Chinese and English; the
    line): a crontab line, or on Windows a schtasks command to type once in cmd."""
    if os.name == "nt" if windows is None else windows:
        return "在命令提示符(cmd)中运行一次", "run this once in a command prompt (cmd)", schtasks_line(folder)
    return "用 crontab -e 加入这一行", "add this line with crontab -e", crontab_line(folder)


def _command(quote: Callable[[str], str]) -> str:
    """How to start exitcheck from a scheduler: the script beside this Python, else the one
    on PATH, else this Python with -m."""
    found = shutil.which("exitcheck")
    scripts = Path(sys.executable).parent
    beside = next((path for path in (scripts / "exitcheck", scripts / "exitcheck.exe") if path.exists()), None)
    if beside is not None:
        return quote(str(beside))
    if found:
        return quote(found)
    return f"{quote(sys.executable)} -m exitcheck"


CONFIG_TEMPLATE = """\
# exitcheck 工作区: `exitcheck run` 每晚做什么。路径都相对于本文件。密码和令牌不写在这里, 只写环境变量的名称。
# exitcheck workspace: what `exitcheck run` does every night.
# Paths are relative to this file. Secrets never go in this file: name environment variables.
#
# 每晚 02:00 运行: @HOW_ZH@(@QUIET_ZH@)。
# Run it every night at 02:00: @HOW_EN@ (@QUIET_EN@):
#   @CRONTAB@
#
# 退出码: 0 未发现问题, 1 有未达标, 3 有输入读不出(不投递), 4 本文件或规则集有误, 5 有投递失败,
# 70 程序错误(请报告), 74 历史、投递记录、输出或状态文件夹读写不了(提示中有文件和改法), 75 上一次运行还没结束。
# Exit codes: 0 nothing found, 1 gaps found, 3 an input unreadable (nothing delivered),
# 4 this file or the rules invalid, 5 a delivery failed, 70 a bug (report it), 74 the history,
# delivery ledger, output or state folder cannot be read or written (the message says which
# file and how to fix it), 75 another run still going.

# 本县的登记表: 一个工作簿、一个放工作簿的文件夹, 或它们的列表。
# The county's registers: a workbook, a folder of workbooks, or a list of them.
registers: @REGISTERS@
# 规则集(默认规则集的副本; 修改后用 `exitcheck rules check` 检查)。
# The rule set (a copy of the default; edit it, then check it with `exitcheck rules check`).
rules: @RULES@
# 每次运行的问题清单和分档名单写到 out/<运行编号>/ (如 out/20200630-020000/)。
# Each run writes its gap lists and band lists to out/<run-id>/ (e.g. out/20200630-020000/).
out: out
# 历史(history.sqlite)、投递记录(deliveries.sqlite)、锁和日志(logs/)。
# History (history.sqlite), delivery ledger (deliveries.sqlite), lock and logs (logs/).
state: state
# 运行文件夹和日志含个人信息: 保留这么多天后删除(1 到 36500)。历史中的统计数一直保留。
# Run folders and logs hold personal data: they are deleted after this many days (1 to 36500).
# The history keeps its counts for the burn-down.
retention_days: 60
# 输出文件只有本人可读。可以让一个用户组读("0640"), 其他用户不行: 让他们能读的权限会被拒绝。
# Output files are readable by their owner only. A group may be let in ("0640"), other users
# never: a mode that lets them in is refused.
file_mode: "0600"
# 核查的基准日(年龄、学龄按它算)。每晚运行时不要设置: 每次按运行当天核查, `exitcheck diff` 的天数才是真实的。
# The reference date of the audit (ages, school ages). Leave it unset for a nightly run: each
# run is then audited as of the day it runs, and the ages in `exitcheck diff` count real days.
# as_of: 2020-06-30

# 核查方式。local(默认): registers 下的全部是一个县, 在本进程中核查。dask(需 pip install 'exitcheck[dask]'):
# registers 的每一项是一个县, 各作为一个任务在 Dask 集群上核查。
# How the registers are audited. `local` (the default): everything under `registers` is one
# county, audited in this process. `dask` (pip install 'exitcheck[dask]'): each entry of
# `registers` is one county (a workbook or a folder), audited as a task on a Dask cluster: the
# scheduler at `scheduler`, or else a local cluster of `workers` processes (default: one per
# core). Township books and `townships:` names then read "<county>-<township>".
engine: local
# scheduler: tcp://10.0.0.5:8786
# workers: 2

# 各部门的收入分档名单(`exitcheck bands --push-to all`, 以及每晚的 `exitcheck run`)。每个部门只拿到它的档和列;
# name 是部门名称, --push-to 也认它; deliver 是送达方式: 文件夹(dir)、网络接口(http)或电子邮件(email)。
# Income-band lists for the departments that act on them (`exitcheck bands --push-to all`,
# and every night with `exitcheck run`). Each department gets only its bands and its columns.
departments:
  civil-affairs:
    name: 民政局
    bands: [below_4200, 4200_4500, 4500_5000]
    columns: [household_id, township, village, head_name, household_size, income_per_capita, special]
    deliver: {type: dir, path: outbox/civil-affairs}
  agriculture-rural:
    name: 农业农村局
    bands: [below_4200, 4200_4500, 4500_5000]
    deliver: {type: dir, path: outbox/agriculture-rural}
    # deliver: {type: http, url: "https://inbox.example/exitcheck", token_env: EXITCHECK_TOKEN_AGRI}
    # 令牌和密码只从环境变量读取; 定时运行时它们从哪里来, 见使用说明「定时运行时的令牌和密码」。
    # Tokens and passwords come from the environment only; where the scheduled night run gets
    # them: the README, "Secrets for the nightly run".
  human-resources:
    name: 人社局
    bands: [below_4200, 4200_4500]
    where: labour_unemployed > 0
    # how many of the household can work and have no work: what 人社 acts on
    columns: [household_id, township, village, head_name, household_size, income_per_capita, labour_unemployed, special]
    deliver: {type: dir, path: outbox/human-resources}
    # deliver: {type: email, host: smtp.example, port: 587, starttls: true, from: exitcheck@example.org,
    #           to: [renshe@example.org], username_env: EXITCHECK_SMTP_USER, password_env: EXITCHECK_SMTP_PASSWORD}

# 每个乡镇自己的问题清单工作簿, 送达方式同上。deliver 送给所有乡镇(文件夹下每个乡镇一个子文件夹);
# each 给某个乡镇单独的送达方式; only 只送给列出的乡镇。
# Each township's own gap workbook, through the same kinds of delivery and the same ledger.
# `deliver` serves every township (a folder gets a sub-folder per township); `each` gives a
# township its own target; `only` limits the townships served.
townships:
  deliver: {type: dir, path: outbox/townships}
  # each:
  #   越城镇: {type: email, host: smtp.example, from: exitcheck@example.org, to: [yuecheng@example.org]}
  # only: [越城镇, 中所镇]
"""


#: What a scheduled run's printing comes to, by scheduler (the line nightly_line gives).
QUIET_REMARKS = {
    "cron": ("cron 会把打印出的内容发邮件, 加 --quiet 则只有错误", "cron mails anything printed; with --quiet, errors only"),
    "schtasks": ("计划任务不发邮件, 结果看 out/ 和历史; --quiet 只打印错误", "the task scheduler mails nothing: see out/ and the history; --quiet prints errors only"),
}


def config_text(folder: Path, registers: str, rules: str, windows: bool | None = None) -> str:
    how_zh, how_en, line = nightly_line(folder, windows)
    quiet_zh, quiet_en = QUIET_REMARKS["schtasks" if line.startswith("schtasks") else "cron"]
    return (CONFIG_TEMPLATE.replace("@CRONTAB@", line).replace("@HOW_ZH@", how_zh).replace("@HOW_EN@", how_en)
            .replace("@QUIET_ZH@", quiet_zh).replace("@QUIET_EN@", quiet_en)
            .replace("@REGISTERS@", registers).replace("@RULES@", rules))


def init_workspace(folder: Path) -> list[InitStep]:
    """Create (or complete) a workspace in `folder`; returns what was created and what kept."""
    from exitcheck.rules.model import default_rules_path

    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    rules_source = default_rules_path()
    rules_target = folder / RULES_DIR / rules_source.name
    steps = [
        _ensure(rules_target, lambda path: write_bytes(path, rules_source.read_bytes(), 0o644)),
        _ensure(folder / DATA_FILE, _write_sample),
        _ensure(folder / CONFIG_NAME, lambda path: write_bytes(
            path, config_text(folder, DATA_FILE, f"{RULES_DIR}/{rules_source.name}").encode("utf-8"), 0o644)),
    ]
    # The state folder holds the history and the lock: create it private from the start.
    (folder / "state").mkdir(mode=0o700, exist_ok=True)
    return steps


def _ensure(path: Path, write: Callable[[Path], object]) -> InitStep:
    """Write `path` only when it does not exist: a file already there is the user's."""
    if path.exists():
        return InitStep(path, "kept")
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path)
    return InitStep(path, "created")


def _write_sample(path: Path) -> None:
    """The sample county register (exitcheck.sample); written to a temporary name and renamed,
    so an interrupted init leaves no half workbook that a re-run would then keep."""
    from exitcheck.report.files import DEFAULT_MODE, atomic_path

    try:
        from exitcheck.sample import write_sample
    except ImportError:  # a build without the generator: the bundled copy
        bundled = Path(__file__).resolve().parents[2] / "sample_data" / "registers.xlsx"
        write_bytes(path, bundled.read_bytes(), DEFAULT_MODE)
        return
    with atomic_path(path, DEFAULT_MODE) as temp:  # the register the clerk's real one replaces: private
        write_sample(temp, households=SAMPLE_HOUSEHOLDS, seed=SAMPLE_SEED)
