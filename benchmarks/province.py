"""Province-style benchmark: many county workbooks, one process against a Dask LocalCluster.

    python benchmarks/province.py [--counties 16] [--households 20000] [--workers 1,2,4]
                                  [--repeat 1] [--out FILE]

Builds the county workbooks once (cached under benchmarks/.cache/province-C-H/), each made up
by the generator behind `exitcheck sample` with its own seed and its own Liangshan county code,
so that no household id recurs across counties. Then times whole processes, alternating:
  local-union  `exitcheck audit C1..Cn`: the counties read as one register, one process
  local-each   `exitcheck audit Ci` once per county, one after another (what each county runs)
  dask-K       `exitcheck audit C1..Cn --engine dask --workers K`: a LocalCluster of K
               single-threaded worker processes, cluster start-up included
Every case writes gaps.json and gaps.xlsx. The figures are median wall seconds and the speed-up
of each dask-K over dask-1 and over local-each; the core count is printed beside them, since
more workers than cores cannot help. Results are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import AS_OF, CACHE, timed  # noqa: E402  (the same whole-process timer as run.py)

#: Liangshan's 17 county-level units (凉山州, prefecture 513400): names and codes.
COUNTIES = (
    ("西昌市", "513401"), ("木里县", "513422"), ("盐源县", "513423"), ("德昌县", "513424"), ("会理市", "513425"),
    ("会东县", "513426"), ("宁南县", "513427"), ("普格县", "513428"), ("布拖县", "513429"), ("金阳县", "513430"),
    ("昭觉县", "513431"), ("喜德县", "513432"), ("冕宁县", "513433"), ("越西县", "513434"), ("甘洛县", "513435"),
    ("美姑县", "513436"), ("雷波县", "513437"),
)


def county_books(counties: int, households: int) -> list[Path]:
    """The county workbooks, generated once and cached (same seed, same workbook)."""
    from exitcheck.sample import SampleSpec, generate, write_workbook

    folder = CACHE / f"province-{counties}-{households}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(counties):
        name, code = COUNTIES[index % len(COUNTIES)]
        if index >= len(COUNTIES):  # beyond one prefecture: the next "prefecture" 5135..
            code = f"5135{index - len(COUNTIES) + 1:02d}"
            name = f"{name}{index // len(COUNTIES) + 1}"
        path = folder / f"{name}.xlsx"
        if not path.exists():
            print(f"generating {path.name} ({households} households) ...", flush=True)
            spec = SampleSpec(households=households, seed=2020 + index, county=name, county_code=code)
            write_workbook(generate(spec), path)
        paths.append(path)
    return paths


def cases(paths: list[Path], out: Path, workers: list[int]) -> dict[str, list[list[str]]]:
    """Each case as the processes it runs, one after another."""
    exe = [sys.executable, "-m", "exitcheck", "audit"]
    common = ["--as-of", AS_OF, "--format", "json,xlsx", "-q"]
    found = {
        "local-union": [[*exe, *map(str, paths), "--out", str(out / "union"), *common]],
        "local-each": [[*exe, str(path), "--out", str(out / "each" / path.stem), *common] for path in paths],
    }
    for count in workers:
        found[f"dask-{count}"] = [[*exe, *map(str, paths), "--engine", "dask", "--workers", str(count), "--out", str(out / f"dask{count}"), *common]]
    return found


def measure(paths: list[Path], workers: list[int], repeat: int) -> dict[str, dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        commands = cases(paths, Path(tmp), workers)
        runs: dict[str, list[float]] = {name: [] for name in commands}
        peaks: dict[str, int] = dict.fromkeys(commands, 0)
        codes: dict[str, set[int]] = {name: set() for name in commands}
        for round_ in range(repeat):
            for name, argvs in commands.items():
                total = 0.0
                for argv in argvs:
                    seconds, peak, code = timed(argv)
                    total += seconds
                    peaks[name] = max(peaks[name], peak)
                    codes[name].add(code)
                runs[name].append(total)
                print(f"  {name} #{round_ + 1}: {total:.2f} s", flush=True)
    medians = {name: statistics.median(samples) for name, samples in runs.items()}
    one = medians.get("dask-1")
    return {
        name: {
            "median_s": round(median, 2),
            "speedup_vs_dask_1": round(one / median, 2) if one and name.startswith("dask") else None,
            "speedup_vs_local_each": round(medians["local-each"] / median, 2),
            "peak_mib": peaks[name],
            "exit_codes": sorted(codes[name]),
            "runs": len(runs[name]),
        }
        for name, median in medians.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counties", type=int, default=16)
    parser.add_argument("--households", type=int, default=20_000, help="households per county")
    parser.add_argument("--workers", default="1,2,4", help="comma-separated LocalCluster sizes")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "province.json")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    paths = county_books(args.counties, args.households)
    result = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "counties": args.counties,
        "households_per_county": args.households,
        "workbook_mib": round(sum(p.stat().st_size for p in paths) / 2**20, 1),
        "cases": measure(paths, workers, args.repeat),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n{args.counties} counties x {args.households} households ({result['workbook_mib']} MiB), "
          f"{result['machine']['cores']} cores")
    print(f"{'case':<12} {'median s':>9} {'x dask-1':>9} {'x each':>7} {'peak MiB':>9}")
    for name, row in result["cases"].items():  # type: ignore[union-attr]
        vs_one = f"{row['speedup_vs_dask_1']:.2f}" if row["speedup_vs_dask_1"] else ""
        print(f"{name:<12} {row['median_s']:>9.2f} {vs_one:>9} {row['speedup_vs_local_each']:>7.2f} {row['peak_mib']:>9}")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
