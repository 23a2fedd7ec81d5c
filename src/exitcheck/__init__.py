"""exitcheck: audit county poverty-exit registers against the exit indicators.

The library API mirrors the command line: `exitcheck validate FILE` is
`validate(load([FILE]), as_of)`, `exitcheck audit FILE` is `audit(load([FILE]), as_of=...)`,
`exitcheck bands FILE` is `bands(audit(...))`. Imports are lazy so that `exitcheck --help`
starts at once. (No submodule shares a name with a function here: importing it would replace
the function on the package.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load": "exitcheck.registers.load",
    "validate": "exitcheck.validation",
    "prepare": "exitcheck.validation",
    "audit": "exitcheck.auditing",
    "bands": "exitcheck.income_bands",
    "Registers": "exitcheck.registers.model",
    "DataIssue": "exitcheck.issues",
}

if TYPE_CHECKING:
    from exitcheck.auditing import audit
    from exitcheck.income_bands import bands
    from exitcheck.issues import DataIssue
    from exitcheck.registers.load import load
    from exitcheck.registers.model import Registers
    from exitcheck.validation import prepare, validate

__all__ = ["DataIssue", "Registers", "__version__", "audit", "bands", "load", "prepare", "validate"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)
