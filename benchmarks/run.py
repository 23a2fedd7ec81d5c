"""Benchmarks: exitcheck against the bare read of the same workbook, as whole processes.

    python benchmarks/run.py [--scale county|prefecture|both] [--repeat N] [--out FILE]

It needs the test extras (pip install -e '.[test]'): the homemade baseline reads with openpyxl.

For each scale it generates the register once with `exitcheck sample` (cached under
benchmarks/.cache), then times, alternating so that machine noise spreads evenly:
  (a) read:      the bare read of every sheet with python-calamine (the floor)
  (b) validate:  exitcheck validate
  (c) audit:     exitcheck audit --format json,xlsx
  (d) bands:     exitcheck bands (when the command exists)
  (e) homemade:  pandas.read_excel (default engine) + a Python loop over rows for the
                 12 household indicators: what county offices run today (county only)
Each figure is the median wall time of whole processes, its ratio to (a) measured in the
same run, and the peak resident memory. Results are printed and written as JSON.

The ratio of medians moves with a machine whose speed drifts during the run; each round also
gives a paired ratio (the case over the read of the same round, a few seconds apart), whose
median and range are reported beside it: the range says how far one figure can be trusted.

exitcheck's bytecode is compiled before the timing starts, as pip does when it installs a
package: an editable install run with PYTHONDONTWRITEBYTECODE set would otherwise compile every
module changed since its last .pyc in each timed process (0.1 s of a county validate).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SCALES = {"county": 20_000, "prefecture": 200_000}
AS_OF = "2020-06-30"

BARE_READ = """
import sys, python_calamine
book = python_calamine.CalamineWorkbook.from_path(sys.argv[1])
for name in book.sheet_names:
    book.get_sheet_by_name(name).to_python()
"""

HOMEMADE = """
import sys, pandas as pd
sheets = pd.read_excel(sys.argv[1], sheet_name=None, header=None)
def header_at(frame, word):
    for i in range(10):
        if word in [str(v).strip() for v in frame.iloc[i].tolist()]:
            return i
households = sheets["户表"]; members = sheets["成员表"]
h = header_at(households, "户编号"); households.columns = [str(c).strip() for c in households.iloc[h]]; households = households.iloc[h + 1:]
m = header_at(members, "户编号"); members.columns = [str(c).strip() for c in members.iloc[m]]; members = members.iloc[m + 1:]
yes = {"是", "有", "Y", "√", "1", "1.0", "已"}
gaps = []
insured = {}
for _, row in members.iterrows():
    if str(row.get("城乡居民基本医疗保险")) not in yes:
        insured[row["户编号"]] = False
    if row.get("在校生状况") == "失学辍学":
        insured.setdefault(("drop", row["户编号"]), True)
for _, row in households.iterrows():
    if row.get("农户类别") != "建档立卡户":
        continue
    hid = row["户编号"]
    try:
        income = float(str(row.get("人均纯收入(元)", row.get("人均纯收入", 0))).replace(",", "").replace("元", ""))
    except ValueError:
        income = 0
    if income < 4200: gaps.append((hid, "income"))
    if ("drop", hid) in insured: gaps.append((hid, "education"))
    if insured.get(hid) is False: gaps.append((hid, "medical"))
    if str(row.get("住房安全等级")) not in ("A", "B"): gaps.append((hid, "housing"))
    for col in ("安全饮水", "生活用电", "广播电视", "政策知晓", "人居环境达标", "感恩袋"):
        if str(row.get(col)) not in yes: gaps.append((hid, col))
    if row.get("认可度") not in ("满意", "基本满意"): gaps.append((hid, "satisfaction"))
print(len(gaps))
"""


def register(households: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"registers-{households}.xlsx"
    if not path.exists():
        print(f"generating {path.name} ...", flush=True)
        subprocess.run([sys.executable, "-m", "exitcheck", "sample", str(path), "--households", str(households), "--seed", "2020", "-q"], check=True)
    return path


def timed(argv: list[str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in MiB, and exit code of one whole process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    return elapsed, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status)


def cases(path: Path, out: Path, scale: str) -> dict[str, list[str]]:
    exe = [sys.executable, "-m", "exitcheck"]
    found = {
        "read": [sys.executable, "-c", BARE_READ, str(path)],
        "validate": [*exe, "validate", str(path), "--as-of", AS_OF, "-q"],
        "audit": [*exe, "audit", str(path), "--out", str(out / "audit"), "--format", "json,xlsx", "--as-of", AS_OF, "-q"],
    }
    help_text = subprocess.run([*exe, "--help"], capture_output=True, text=True).stdout
    if " bands " in help_text:
        found["bands"] = [*exe, "bands", str(path), "--out", str(out / "bands"), "--as-of", AS_OF, "-q"]
    if scale == "county":
        found["homemade"] = [sys.executable, "-c", HOMEMADE, str(path)]
    return found


def measure(scale: str, repeat: int) -> dict[str, object]:
    path = register(SCALES[scale])
    with tempfile.TemporaryDirectory() as tmp:
        commands = cases(path, Path(tmp), scale)
        runs: dict[str, list[tuple[float, int, int]]] = {name: [] for name in commands}
        for round_ in range(repeat):
            for name, argv in commands.items():
                if name == "homemade" and round_ > 0 and repeat > 1 and scale != "county":
                    continue
                runs[name].append(timed(argv))
                print(f"  {scale} {name} #{round_ + 1}: {runs[name][-1][0]:.2f} s", flush=True)
    base = statistics.median(t for t, _, _ in runs["read"])
    report = {}
    for name, samples in runs.items():
        median = statistics.median(t for t, _, _ in samples)
        paired = [t / read for (t, _, _), (read, _, _) in zip(samples, runs["read"], strict=False)]
        report[name] = {
            "median_s": round(median, 3),
            "ratio_to_read": round(median / base, 2),
            "paired_ratio": round(statistics.median(paired), 2),
            "paired_range": [round(min(paired), 2), round(max(paired), 2)],
            "peak_mib": max(m for _, m, _ in samples),
            "exit_codes": sorted({c for _, _, c in samples}),
            "runs": len(samples),
        }
    return {"households": SCALES[scale], "workbook_mib": round(path.stat().st_size / 2**20, 1), "cases": report}


def compile_package() -> None:
    """Write exitcheck's .pyc files, so that no timed process compiles its sources."""
    found = subprocess.run([sys.executable, "-c", "import exitcheck, os; print(os.path.dirname(exitcheck.__file__))"],
                           capture_output=True, text=True, check=True)
    compileall.compile_dir(found.stdout.strip(), quiet=1)


def help_time(repeat: int = 5) -> float:
    samples = [timed([sys.executable, "-m", "exitcheck", "--help"])[0] for _ in range(repeat)]
    return round(statistics.median(samples), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=["county", "prefecture", "both"], default="county")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args()
    scales = ["county", "prefecture"] if args.scale == "both" else [args.scale]
    compile_package()
    result: dict[str, object] = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "help_s": help_time(),
    }
    for scale in scales:
        result[scale] = measure(scale, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nexitcheck --help: {result['help_s']} s   ({result['machine']['cores']} cores)")
    for scale in scales:
        data = result[scale]
        print(f"\n{scale}: {data['households']} households, {data['workbook_mib']} MiB")  # type: ignore[index]
        print(f"{'case':<10} {'median s':>9} {'x read':>7} {'paired':>7} {'range':>12} {'peak MiB':>9}")
        for name, row in data["cases"].items():  # type: ignore[index]
            low, high = row["paired_range"]
            print(f"{name:<10} {row['median_s']:>9.2f} {row['ratio_to_read']:>7.2f} {row['paired_ratio']:>7.2f}"
                  f" {f'{low:.2f}-{high:.2f}':>12} {row['peak_mib']:>9}")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
