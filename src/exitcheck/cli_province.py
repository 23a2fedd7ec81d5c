"""`exitcheck audit PATH... --engine dask`: each PATH a county, audited on a Dask cluster.

Kept apart from cli.py so that the default local engine never imports Dask or this code.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from exitcheck.cli import (
    Ui,
    progress,
    read_header_mapping,
    ruleset_at,
    workspace_nearby,
    writing_to,
)
from exitcheck.errors import ExitCode, worst


def audit_on_dask(
    ui: Ui,
    paths: list[Path],
    *,
    rules: Path | None,
    as_of: date | None,
    out: Path,
    formats: list[str],
    split_by: str | None,
    headers: Path | None,
    strict: bool,
    scheduler: str | None,
    workers: int | None,
) -> int:
    """Audit the counties, report each as it comes back, write the merged outputs once every
    county is accounted for; exit 3 when a county (or a file of one) could not be read."""
    from exitcheck.province import CountyFailure, audit_counties, import_distributed
    from exitcheck.report import console
    from exitcheck.report.gaps_out import write_outputs

    import_distributed()  # before any work: without Dask, say how to install it (exit 4)
    ruleset = ruleset_at(rules)
    # The inputs are read as `load_registers` reads them: --headers, else the nearby workspace's mapping,
    # and the workspace's input limits; the workers get them with each county.
    config = workspace_nearby()
    header_map = read_header_mapping(headers) if headers else (config.headers if config else None)
    limits = config.limits if config else None

    def came_back(outcome: Any, done: int, total: int) -> None:
        if isinstance(outcome, CountyFailure):
            ui.error(outcome.message(ui.lang))
        else:
            ui.note(ui.t(f"[{done}/{total}] {outcome.name} 核查完成", f"[{done}/{total}] {outcome.name} audited"))
            for failure in outcome.failures:
                ui.error(failure.message(ui.lang))

    with progress(ui, ui.t("各县核查中", "Auditing the counties")):
        result = audit_counties([[path] for path in paths], ruleset, as_of=as_of, lang=ui.lang, scheduler=scheduler,
                                workers=workers, strict=strict, headers=header_map, limits=limits, on_county=came_back)
    for zh, en in result.notes:
        ui.note(ui.t(zh, en))
    with progress(ui, ui.t("写出清单", "Writing the lists")), writing_to(out):
        written = write_outputs(out, result, formats, split_by)
    console.print_audit(ui, result, written)
    return worst(result.exit_code(), int(ExitCode.INPUT) if result.failures else 0)
