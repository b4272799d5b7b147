"""The dialog page in a real headless browser: it drives a few turns through its own form,
against the page server with the tiny toy model; then the POST /turn answers to bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scene2img.serving.dialog.web import make_server
from scene2img.serving.pipeline import SceneToImage

pytestmark = pytest.mark.usefixtures("one_thread")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TURNS = ["a road with a bus", "add a red car left of the bus", "add a purple car",
         "make the car blue"]


@pytest.fixture(scope="module")
def page_url(toy_model: Path):
    server = make_server(SceneToImage.from_dir(toy_model), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def _chromium(url: str, tmp_path: Path, *args: str) -> str:
    assert CHROMIUM, "chromium not found: `make test` installs it (Debian package chromium)"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=60000",
         "--window-size=800,700", *args, url],
        capture_output=True, text=True, timeout=180).stdout


def test_the_page_in_a_browser(page_url: str, tmp_path: Path) -> None:
    url = page_url + "?turns=" + "|".join(t.replace(" ", "%20") for t in TURNS)
    dom = _chromium(url, tmp_path, "--dump-dom")
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-turns-done="4"' in body and 'data-turns-failed="1"' in body, body
    items = re.findall(r"<li[^>]*>(.*?)</li>", dom)
    assert "added car #3 (red) left of bus #2" in items[1]
    assert "no attribute 'purple'" in items[2] and "made car #3 blue" in items[3]
    assert re.search(r'<img id="image" [^>]*src="data:image/png;base64,', dom)
    shot = tmp_path / "page.png"
    _chromium(url, tmp_path, f"--screenshot={shot}")
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.std(axis=(0, 1)).max() > 10  # not a blank page
    # the picture's area (256 x 256 at the left, below the form) holds a painted image, not the
    # empty grey placeholder
    picture = pixels[150:450, 20:300]
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 50


def _post(url: str, body: bytes) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "turn", data=body)) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_turn_requests(page_url: str) -> None:
    status, answer = _post(page_url, json.dumps({"instruction": "a road with a bus"}).encode())
    assert status == 200 and answer["message"] == "started a new scene: road #1, bus #2"
    state = answer["state"]
    for body, message in [
        (b"{", "malformed JSON"), (b'{"state": null}', "expected {'instruction'"),
        (json.dumps({"instruction": "remove the car", "state": state}).encode(),
         "there is no car"),
        (json.dumps({"instruction": "undo", "state": {**state, "position": 3}}).encode(),
         "checksum"),
    ]:
        status, answer = _post(page_url, body)
        assert status == 400 and message in answer["message"], answer
