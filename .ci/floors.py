"""Requirements for CI's extra venvs, read from pyproject.toml so that they cannot drift from it.

    python .ci/floors.py               pip constraints pinning every runtime dependency to the
                                       lower bound declared ("pandas>=2.2" gives "pandas==2.2")
    python .ci/floors.py requirements  the runtime and test requirements as declared

The first lets CI test the oldest versions a user may have as well as the newest. The second
lets a venv's dependencies be installed without building the project, so that several venvs can
be installed at once (an editable build writes src/exitcheck.egg-info, which two would race on).
Bounds other than >= are left to pip."""

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text("utf-8"))["project"]
if sys.argv[1:] == ["requirements"]:
    print("\n".join([*project["dependencies"], *project["optional-dependencies"]["test"]]))
    sys.exit()
for requirement in project["dependencies"]:
    found = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)", requirement.strip())
    if found is None:
        sys.exit(f"floors: cannot read a lower bound in {requirement!r}")
    print(f"{found.group(1)}=={found.group(3)}")
