"""Reading the registers while the rest of exitcheck is still being imported.

A county audit spends 0.4 s importing pandas, numpy, pyarrow and its own modules, and about
a second in calamine, which parses a sheet without holding the GIL. Started first, the reading
overlaps the two: `ReadAhead` reads the files in a background thread; the command waits until
calamine is parsing (the package scan, which needs the GIL as much as an import does, has
passed the largest sheet by then), imports what it needs, and the loader takes each file's
read from `ReadAhead.read` instead of reading it itself. While it waits there, the loader is
handed each sheet as soon as it is read and makes its register and parses its columns at once:
the household, village and township sheets are done while calamine is still on the members.

The program may start the reading before its command line is even parsed (exitcheck/launch.py);
the command then takes it over with `take_started`.

Nothing here imports pandas: that is the point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from exitcheck.registers.limits import Limits
from exitcheck.registers.read import (
    Background,
    FileRead,
    ReadControl,
    SheetRead,
    expand_paths,
    read_file,
)

#: How long a command waits for calamine to start before it imports anyway: the scan of a
#: prefecture's member sheet takes a few seconds, and the imports then overlap the scan.
PARSING_WAIT_SECONDS = 2.0


class ReadAhead:
    """The first file of `paths`, read in a background thread; the loader reads the others
    itself, one at a time, as it always has (reading them all ahead would hold every file's
    cells at once).

    Use it as a context manager: leaving the block stops a reading still under way (Ctrl-C,
    an error before the loader took the file) at the next sheet or chunk.
    """

    def __init__(self, paths: Iterable[str | Path], limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        files = expand_paths(paths)
        self.first = files[0] if files else None
        self._control = ReadControl()
        self._task: Background[FileRead] | None = None
        self._taken = False
        if self.first is None:
            self._control.parsing.set()
        else:
            self._task = Background("exitcheck-read-ahead", read_file, *self.first, self.limits, self._control)

    def wait_until_parsing(self, timeout: float = PARSING_WAIT_SECONDS) -> None:
        """Return once calamine parses the first file's first sheet, or the read has ended."""
        self._control.parsing.wait(timeout)

    def read(self, path: Path, shown: str, limits: Limits, on_sheet: Callable[[SheetRead], None] | None = None) -> FileRead:
        """`read_file`'s answer for this file: the one read ahead (its InputError is raised
        here), handed over once; any other file is read now.

        While the reading ahead goes on, `on_sheet` is given each sheet as soon as it is read, in
        the order the reading lanes finish them, not the workbook's: the small village and
        township sheets, read beside the members, are made into registers before the member
        sheet is done, not after it. (The loader reports errors in workbook order whatever the
        order of this.)
        """
        if self._task is None or self._taken or (path, shown) != self.first or limits != self.limits:
            return read_file(path, shown, limits)
        self._taken = True
        if on_sheet is not None:
            while (arrived := self._control.arrived.get()) is not None:
                on_sheet(arrived)
        return self._task.future.result()

    def reads(self, paths: Iterable[str | Path], limits: Limits | None) -> bool:
        """Whether this is the reading a command over `paths` with `limits` would start."""
        files = expand_paths(paths)
        return self._task is not None and not self._taken and bool(files) and files[0] == self.first and (limits or Limits()) == self.limits

    def close(self, wait: bool = True) -> None:
        """Stop the reading at its next sheet or chunk; with `wait`, return once it has ended.
        Only a program about to exit passes False: it need not wait for calamine to finish a
        sheet (its threads are daemons)."""
        self._control.stop()
        if wait and self._task is not None:
            self._task.join()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()


#: A reading the program started before its command line was parsed (exitcheck/launch.py).
started: ReadAhead | None = None


def take_started(paths: Iterable[str | Path], limits: Limits | None) -> ReadAhead | None:
    """The reading started early, if it is the one a command over `paths` with `limits` would
    start: handed over once. Any other is stopped: its work would be wasted, or read twice."""
    global started
    early, started = started, None
    if early is not None and not early.reads(paths, limits):
        early.close()
        early = None
    return early
