"""Data issues out: the exitcheck/issues@1 JSON document and the issues.xlsx a clerk fixes from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from exitcheck.issues import CATALOGUE, ISSUES_SHEET, DataIssue, severity_label
from exitcheck.registers.schema import field_label
from exitcheck.report.files import DEFAULT_MODE, atomic_path
from exitcheck.report.sheets import open_workbook, write_table

ISSUE_COLUMNS = ("code", "severity", "file", "sheet", "row", "column", "header", "field",
                 "value", "household_id", "message")
ISSUE_HEADERS = {
    "zh": ("问题代码", "级别", "文件", "工作表", "行号", "列", "表头", "字段", "原值", "户编号", "说明"),
    "en": ("Code", "Severity", "File", "Sheet", "Row", "Column", "Header", "Field", "Value",
           "Household", "Message"),
}


def summary(issues: Sequence[DataIssue], counts: dict[str, int] | None = None) -> dict[str, object]:
    by_code = Counter(issue.code for issue in issues)
    by_sheet = Counter(f"{issue.file}:{issue.sheet}" for issue in issues)
    return {
        "issues": len(issues),
        "errors": sum(1 for issue in issues if issue.severity == "error"),
        "warnings": sum(1 for issue in issues if issue.severity == "warning"),
        "by_code": dict(sorted(by_code.items())),
        "by_sheet": dict(sorted(by_sheet.items())),
        "records": counts or {},
    }


def issues_document(issues: Sequence[DataIssue], lang: str, counts: dict[str, int] | None = None) -> dict[str, object]:
    return {
        "schema": "exitcheck/issues@1",
        "summary": summary(issues, counts),
        "data_issues": [issue.to_dict(lang) for issue in issues],
    }


def issues_frame(issues: Sequence[DataIssue], lang: str, *, mask_ids: bool) -> pd.DataFrame:
    """One row per issue, with the catalogue's title after the code and its fix at the end."""
    rows = [issue.to_dict(lang, mask_ids=mask_ids) for issue in issues]
    frame = pd.DataFrame(rows, columns=list(ISSUE_COLUMNS))
    key = "en" if lang == "en" else "zh"
    frame.insert(1, "title", frame["code"].map({code: entry.title[key] for code, entry in CATALOGUE.items()}))
    frame["fix"] = frame["code"].map({code: entry.fix[key] for code, entry in CATALOGUE.items()})
    # A clerk reads 错误 and the field's Chinese name; the JSON keeps the codes.
    frame["severity"] = [severity_label(severity, lang) for severity in frame["severity"]]
    frame["field"] = [field_label(name, lang) if isinstance(name, str) else name for name in frame["field"]]
    return frame


def add_issues_sheet(workbook: object, issues: Sequence[DataIssue], lang: str, name: str, *, page_header: str | None = None) -> None:
    """The sheet a clerk fixes cells from: ID numbers shown whole, so the cell can be found,
    and how to fix each (register-format.md: an issue comes with its fix)."""
    frame = issues_frame(issues, lang, mask_ids=False)
    headers = list(ISSUE_HEADERS[lang])
    headers.insert(1, "问题" if lang != "en" else "Title")
    headers.append("如何修改" if lang != "en" else "How to fix")
    write_table(workbook, name, frame, headers, none_note="没有数据问题" if lang != "en" else "No data issues", page_header=page_header)


def write_issues_xlsx(path: Path, issues: Sequence[DataIssue], lang: str, mode: int = DEFAULT_MODE) -> Path:
    with atomic_path(path, mode) as temp:
        workbook = open_workbook(temp)
        add_issues_sheet(workbook, issues, lang, ISSUES_SHEET["en" if lang == "en" else "zh"])
        workbook.close()
    return path
