"""The `exitcheck` program: start reading the register before the command line is parsed.

Before a command runs, typer parses the command line (building a pydantic adapter for each
option) and the command finds its workspace: 0.2 to 0.4 s of the one core Python code runs on,
with the register not yet opened. For `exitcheck validate|audit|bands FILE ...` the file is
plain in the command line before any of that, so this entry point starts reading it
(registers/ahead.py), waits until calamine parses it (the scan that must come first holds the
GIL), and only then parses the command line. The command takes the reading over when it reads
the same first file with the same limits (`cli.reading_ahead`); otherwise the reading is
stopped and the command reads as it always has. A guess that misses costs a little work, never
a wrong result.

The price: a mistyped option or a bad rule set is reported once the scan has passed the largest
sheet (at most ahead.PARSING_WAIT_SECONDS later). The process then ends at once: the reading
runs on daemon threads (read.Background), so exit does not wait for calamine to finish a sheet.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exitcheck.registers.ahead import ReadAhead

#: Commands that read one local register first and take a reading over.
READING_COMMANDS = ("validate", "audit", "bands")


def early_file(args: Sequence[str]) -> Path | None:
    """The file a command line will read first, when it is plain: the argument right after
    validate, audit or bands, naming an existing file. None for anything less certain (an
    option before the path, a folder, help, another engine)."""
    if len(args) < 2 or args[0] not in READING_COMMANDS or args[1].startswith("-"):
        return None
    if any(arg in ("-h", "--help") or arg.startswith(("--engine", "--config")) for arg in args[1:]):
        return None
    path = Path(args[1])
    return path if path.is_file() else None


def start_reading(path: Path) -> ReadAhead | None:
    """A reading of `path`, started now and parsing, or None when the workspace is in doubt."""
    try:
        from exitcheck.config_path import nearby_config
        from exitcheck.registers.ahead import ReadAhead

        config = nearby_config()  # what the command's workspace_nearby will find
        ahead = ReadAhead([path], config.limits if config else None)
    except Exception:  # a bad workspace, say: the command meets it again and reports it
        return None
    try:
        ahead.wait_until_parsing()
    except BaseException:  # Ctrl-C: the program ends; the reading must not keep it up
        ahead.close(wait=False)
        raise
    return ahead


def main() -> None:
    path = early_file(sys.argv[1:])
    early = None
    try:
        if path is not None:  # nothing else imports the reader: --help stays instant
            from exitcheck.registers import ahead

            early = ahead.started = start_reading(path)
        from exitcheck import cli

        cli.whole_process = True
        cli.main()
    except KeyboardInterrupt:  # before a command runs (a command reports its own)
        sys.stderr.write("exitcheck: 已中断 / interrupted\n")
        raise SystemExit(130) from None
    finally:
        if early is not None:  # closed already when the command took it over; again is harmless
            ahead.started = None
            early.close(wait=False)  # the program ends here: no waiting for calamine
