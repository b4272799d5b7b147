"""`scene2img` in the test process: `run_cli` calls the console script's own `main` (its parser,
one-line errors and exit codes) without paying a Python start and the imports on every call.
Each command's tests still run the installed script once (`CLI`), which proves the entry point.
"""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

from scene2img.cli import main

CLI = str(Path(sys.executable).with_name("scene2img"))


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`scene2img ARGS` with `stdin`, as `subprocess.run(..., capture_output=True, text=True)`."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), mock.patch("sys.stdin", io.StringIO(stdin)):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(["scene2img", *args], code, out.getvalue(), err.getvalue())
