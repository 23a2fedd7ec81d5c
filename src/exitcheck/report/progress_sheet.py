"""The 进度 (progress) sheet of the audit workbook: the burn-down of open gaps per township over
the runs so far, as a table and a native Excel line chart, and the age of the oldest open gap
per township, so the county sees at a glance which townships are stuck.

It takes the frame `exitcheck.history.History.progress()` returns (columns run, day, township,
open, oldest_days) and knows nothing about SQLite.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from exitcheck.history import COUNTY, NO_TOWNSHIP, township_label
from exitcheck.i18n import chooser
from exitcheck.report.sheets import formats, set_up_page, write_cells, write_list_row

#: Excel's limit on the series of one chart; a county has far fewer townships.
MAX_SERIES = 255


def add_progress_sheet(workbook: Any, progress: pd.DataFrame, lang: str) -> Any:
    """Add the 进度 sheet to an open xlsxwriter workbook; returns the worksheet."""
    t = chooser(lang)
    name = t("进度", "Progress")
    sheet = workbook.add_worksheet(name)
    fmt = formats(workbook)
    sheet.write_string(0, 0, t("整改进度: 各乡镇未解决问题数(每次运行)", "Progress: open gaps per township, run by run"), fmt["title"])

    runs = list(dict.fromkeys(zip(progress["run"], progress["day"], strict=True)))
    named = progress[progress["township"].notna()]
    townships = sorted(set(named["township"]), key=lambda town: (town in (COUNTY, NO_TOWNSHIP), town))
    opened = {(run, town): int(n) for run, town, n in zip(named["run"], named["township"], named["open"], strict=True)}
    labels = [township_label(town, lang) for town in townships]

    top = 2
    write_cells(workbook, sheet, top, [t("运行", "Run"), t("基准日", "As of"), *labels, t("合计", "Total")], "header")
    for offset, (run, day) in enumerate(runs, start=1):
        counts = [opened.get((run, town), 0) for town in townships]
        write_list_row(workbook, sheet, top + offset, [run, day.isoformat() if day else None, *counts, sum(counts)])
    last = top + len(runs)
    if runs:
        _chart(workbook, sheet, name, top, last, len(townships), t)

    # The oldest open gap per township, in the latest run: the stuck townships first.
    below = last + 2
    sheet.write_row(below, 0, [t("乡镇", "Township"), t("当前未解决", "Open now"), t("最久未解决(天)", "Oldest open (days)")], fmt["header"])
    if runs:
        latest = named[named["run"] == runs[-1][0]]
        rows = sorted(zip(latest["township"], latest["open"], latest["oldest_days"], strict=True),
                      key=lambda row: (-(_int(row[2]) or 0), row[0]))
        for offset, (town, n, oldest) in enumerate(rows, start=1):
            write_list_row(workbook, sheet, below + offset, [township_label(town, lang), int(n), _int(oldest)])
    sheet.set_column(0, 0, 18)
    sheet.set_column(1, 1, 12)
    sheet.set_column(2, 2 + len(townships), 14)
    sheet.freeze_panes(top + 1, 2)
    set_up_page(sheet)
    return sheet


def _chart(workbook: Any, sheet: Any, name: str, top: int, last: int, columns: int, t: Any) -> None:
    chart = workbook.add_chart({"type": "line"})
    # A line per township; with nothing open anywhere, the total's line at zero is the news.
    series = range(2, 2 + min(columns, MAX_SERIES)) if columns else [2]
    for col in series:
        chart.add_series({
            "name": [name, top, col],
            "categories": [name, top + 1, 0, last, 0],
            "values": [name, top + 1, col, last, col],
            "marker": {"type": "circle", "size": 4},
        })
    chart.set_title({"name": t("各乡镇未解决问题数", "Open gaps per township")})
    chart.set_x_axis({"name": t("运行", "Run")})
    chart.set_y_axis({"name": t("未解决", "Open"), "min": 0})
    chart.set_legend({"position": "right"})
    chart.set_size({"width": 720, "height": 360})
    sheet.insert_chart(top, 3 + columns, chart)


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def township_progress(progress: pd.DataFrame, township: str) -> pd.DataFrame:
    """The burn-down of one township, for its own workbook: every run stays on the chart, at
    zero where the township had nothing open."""
    own = progress[progress["township"] == township]
    missing = progress.loc[~progress["run"].isin(set(own["run"])), ["run", "day"]].drop_duplicates("run")
    filler = missing.assign(township=township, open=0, oldest_days=pd.NA)
    return pd.concat([own, filler], ignore_index=True).sort_values("run").reset_index(drop=True) if len(filler) else own
