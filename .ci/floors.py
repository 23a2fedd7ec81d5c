"""Print pip constraints pinning every runtime dependency to the lower bound pyproject.toml
declares ("pandas>=2.2" gives "pandas==2.2"), so that CI can test the oldest versions a user
may have as well as the newest. Bounds other than >= are left to pip."""

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text("utf-8"))["project"]
for requirement in project["dependencies"]:
    found = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)", requirement.strip())
    if found is None:
        sys.exit(f"floors: cannot read a lower bound in {requirement!r}")
    print(f"{found.group(1)}=={found.group(3)}")
