"""A stand-in for exitcheck in tests/test_cli_process.py: prints what a run sees of its process.

`python -m process_probe sleep` sleeps a minute; anything else prints and exits 7."""

import os
import sys
import time

if __name__ == "__main__":
    if sys.argv[1:] == ["sleep"]:
        time.sleep(60)
    print(os.getcwd(), os.environ.get("EXITCHECK_PROBE"), time.strftime("%Z"), os.getpid(), *sys.argv[1:])
    print(sys.stdin.read() == "", "to stderr", file=sys.stderr)
    sys.exit(7)
