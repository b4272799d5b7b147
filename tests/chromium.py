"""Headless Chromium for the tests that look at a web page (the compare page, the MLflow UI).

`make test` installs Debian's chromium; without it these tests fail and say so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def _args(profile: Path, wait_ms: int, size: str) -> list[str]:
    assert BROWSER, "chromium not found: `make test` installs it (Debian package chromium)"
    return [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--virtual-time-budget={wait_ms}",
            f"--window-size={size}"]


def render(url: str, profile: Path, screenshot: Path | None = None, wait_ms: int = 15_000,
           size: str = "1400,900") -> str:
    """Load `url` in a fresh browser profile, let its scripts run for `wait_ms` of virtual time,
    save a PNG screenshot if asked, and return the DOM as the page then holds it."""
    args = _args(profile, wait_ms, size)
    if screenshot is not None:
        subprocess.run([*args, f"--screenshot={screenshot}", url], check=True, timeout=120,
                       capture_output=True)
    return subprocess.run([*args, "--dump-dom", url], check=True, timeout=120,
                          capture_output=True, text=True).stdout
