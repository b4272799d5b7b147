"""The dialog as a web page: a small standard-library HTTP server next to the model.

    GET  /        the page (`page.html`): type a turn, see the picture and its layout, step back
                  through the history, undo / redo
    POST /turn    {"instruction": "...", "state": STATE or null, "seed": 0, "upscale": null}
                  -> 200 {"message", "image", "layout" (PNG, base64), "state", "image_size",
                          "upscale"}
                  -> 400 {"message"} when the turn fails or the request is bad (state unchanged)

Stateless like the served pyfunc: the page keeps the session state and sends it with each turn,
so one server serves any number of people. Gradio, the field's usual demo page, is not used: it
is a large dependency tree for one text box and two pictures, and this page needs nothing beyond
the standard library and the browser.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from PIL import Image

from scene2img.errors import Scene2ImgError
from scene2img.serving.dialog.session import Dialog, check_dialog_state, seal
from scene2img.serving.outputs import layout_drawing, png_bytes
from scene2img.serving.pipeline import SceneToImage
from scene2img.serving.schema import check_seed, load_json_text

log = logging.getLogger(__name__)


def answer_turn(model: SceneToImage, body: bytes) -> tuple[int, dict]:
    """(HTTP status, JSON answer) for one POST /turn body."""
    try:
        request = load_json_text(body, "request", model.limits.max_state_bytes + 4096,
                                 "dialog turn")
        if not isinstance(request, dict) or not isinstance(request.get("instruction"), str):
            raise Scene2ImgError("request: expected {'instruction': TEXT, 'state': STATE or "
                                 "null}")
        state = request.get("state")
        if state is not None:
            state = check_dialog_state(model, state, "request: state")
        factor = model.check_upscale(request.get("upscale"), "request: upscale")
        dialog = Dialog(model, state, check_seed(request.get("seed"), "request: seed") or 0)
        turn = dialog.turn(request["instruction"])
        picture = model.upscaled(turn.generation, factor) if turn.ok else None
    except Scene2ImgError as exc:
        return HTTPStatus.BAD_REQUEST, {"message": str(exc)}
    if not turn.ok:
        return HTTPStatus.BAD_REQUEST, {"message": turn.message}
    return HTTPStatus.OK, {
        "message": turn.message, "state": seal(dialog.state),
        "image": base64.b64encode(png_bytes(Image.fromarray(picture.image))).decode(),
        "layout": base64.b64encode(png_bytes(layout_drawing(picture, model.vocab))).decode(),
        "image_size": int(picture.image.shape[0]), "upscale": picture.upscale}


def make_server(model: SceneToImage, host: str = "127.0.0.1", port: int = 8765
                ) -> ThreadingHTTPServer:
    """The page's server (not started: `serve_forever()`); port 0 picks a free one."""
    page = resources.files("scene2img.serving.dialog").joinpath("page.html").read_bytes()
    lock = threading.Lock()  # one model, one turn at a time

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (the http.server hook)
            if self.path.split("?")[0] in ("/", "/index.html"):
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/turn":
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                return
            size = int(self.headers.get("Content-Length") or 0)
            limit = model.limits.max_state_bytes + 4096
            if size > limit:
                status, answer = HTTPStatus.BAD_REQUEST, {
                    "message": f"request: {size} bytes, more than the {limit} accepted"}
            else:
                with lock:
                    status, answer = answer_turn(model, self.rfile.read(size))
            self._send(status, json.dumps(answer).encode(), "application/json")

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            log.info("%s " + format, self.address_string(), *args)

    return ThreadingHTTPServer((host, port), Handler)
