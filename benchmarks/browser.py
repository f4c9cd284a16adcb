"""The web page (js/web) in headless Chromium, driven in real time over the DevTools protocol.

Headless ``--dump-dom`` / ``--screenshot`` runs end when a *virtual*-time budget
is spent, and virtual time runs ahead while the page waits on real work
(compiling WebAssembly, fetching a model): on a busy machine the page is dumped
before it has a result. Here Chromium talks on a pipe (``--remote-debugging-pipe``,
fds 3/4, NUL-separated JSON), the page runs in real time and is polled until
``<pre id="result">`` has a ``data-state``, with a real deadline.

Test infrastructure rather than a benchmark: tests/test_web_page.py drives the
page with it, and so does the product benchmark ``benchmarks/js_latency.py``;
it lives here beside that benchmark.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from shipcam.errors import ShipcamError


class BrowserError(ShipcamError):
    """Chromium is missing, closed its pipe, or the page gave no result in time."""


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def serve(directory: str | Path, isolated: bool = False) -> str:
    """A static server for ``directory`` on a daemon thread; returns its base URL.

    ``isolated`` adds the cross-origin isolation headers that SharedArrayBuffer,
    and so WebAssembly threads, need.
    """

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {
            **http.server.SimpleHTTPRequestHandler.extensions_map,
            ".mjs": "text/javascript",
            ".wasm": "application/wasm",
        }

        def end_headers(self):
            if isolated:
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            super().end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}"


# Headless Chromium on a machine with no network: without the background-networking flags it keeps
# trying to reach Google's hosts. Shared by every caller that starts a browser.
HEADLESS_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class Page:
    """One page in its own headless Chromium; use as a context manager (the browser is killed on exit)."""

    def __init__(self, url: str, profile: str | Path, size: tuple[int, int] = (1280, 760), chromium: str | None = None):
        chromium = chromium or find_chromium()
        if chromium is None:
            raise BrowserError("no Chromium found (apt-get install chromium)")
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        flags = [*HEADLESS_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}"]
        # Chromium reads the protocol on fd 3 and writes on fd 4: bash puts the pipe ends there
        cmd = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        self._proc = subprocess.Popen(
            ["bash", "-c", cmd, chromium, *flags, "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._reader, self._writer = os.fdopen(from_chrome_r, "rb"), os.fdopen(to_chrome_w, "wb")
        self._buffer, self._ids = b"", iter(range(1, 1 << 30))
        try:
            target = self._call("Target.createTarget", url="about:blank")["targetId"]
            self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            self._call(
                "Emulation.setDeviceMetricsOverride",
                self._session,
                width=size[0],
                height=size[1],
                deviceScaleFactor=1,
                mobile=False,
            )
            self._call("Page.navigate", self._session, url=url)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Page":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)  # Chromium and its helper processes
        self._proc.wait()
        for f in (self._reader, self._writer):
            try:
                f.close()
            except OSError:
                pass

    def evaluate(self, expression: str):
        """The value of ``expression`` in the page, or None while it has no document to evaluate in."""
        reply = self._call("Runtime.evaluate", self._session, check=False, expression=expression, returnByValue=True)
        return reply.get("result", {}).get("value")

    def result(self, timeout_s: float = 180.0) -> tuple[str, dict]:
        """Wait for ``<pre id="result">``: its ``data-state`` ("done" or "error") and its JSON."""
        probe = (
            "(() => { const r = document.getElementById('result'); return r && r.dataset.state ? "
            "JSON.stringify([r.dataset.state, r.textContent]) : null; })()"
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(probe)
            if value:
                state, text = json.loads(value)
                return state, json.loads(text)
            time.sleep(0.25)
        raise BrowserError(f"the page gave no result in {timeout_s:.0f} s")

    def html(self) -> str:
        return self.evaluate("document.documentElement.outerHTML") or ""

    def screenshot(self, path: str | Path) -> None:
        data = self._call("Page.captureScreenshot", self._session, format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def _call(self, method: str, session: str | None = None, check: bool = True, **params) -> dict:
        i = next(self._ids)
        self._writer.write(
            json.dumps(
                {"id": i, "method": method, "params": params, **({"sessionId": session} if session else {})}
            ).encode()
            + b"\0"
        )
        self._writer.flush()
        while True:  # events arrive between answers: skip them
            while b"\0" not in self._buffer:
                chunk = self._reader.read1(1 << 16)
                if not chunk:
                    raise BrowserError(f"Chromium closed the DevTools pipe during {method}")
                self._buffer += chunk
            msg, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(msg)
            if reply.get("id") == i:
                if "error" in reply and check:
                    raise BrowserError(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})
