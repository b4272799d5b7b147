"""Headless Chromium for the tests that look at a web page (the MLflow UI, the demo page)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def render(url: str, screenshot: Path, wait_ms: int = 15_000, size: str = "1400,900") -> str:
    """Load `url`, let its scripts run for `wait_ms` (virtual time), save a PNG screenshot and
    return the DOM as the page then holds it."""
    if BROWSER is None:
        pytest.skip("no chromium on PATH (Debian: apt install chromium)")
    args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--virtual-time-budget={wait_ms}", f"--window-size={size}"]
    subprocess.run([*args, f"--screenshot={screenshot}", url], check=True, timeout=120,
                   capture_output=True)
    return subprocess.run([*args, "--dump-dom", url], check=True, timeout=120,
                          capture_output=True, text=True).stdout
