"""Python beside JavaScript: ``python -m shipcam.benchmarks.js_latency MODEL.onnx IMAGE [--runs 30] [--threads 1] [--browser 1 2]``.

Times ``Detector.predict`` (ONNX Runtime) on one image, then runs
``node js/bench/latency.mjs`` on the same file and image, and with
``--browser`` the web page (js/web, onnxruntime-web WebAssembly) in headless
Chromium with each thread count given, and prints every runtime's per-stage
medians side by side (one sitting, one machine) and a JSON line. Needs node
and ``js/node_modules`` (``cd js && npm ci --ignore-scripts``); the browser
column needs Chromium.

The page is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
headless runs with a virtual-time budget freeze ``performance.now()`` during
compute, so the page is run in real time and polled until its result is there.
It is served with cross-origin isolation headers, which WebAssembly threads need.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("image")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--browser", type=int, nargs="*", metavar="THREADS", help="also time the web page in headless Chromium with these thread counts")
    args = p.parse_args(argv)

    from shipcam.runtime import Detector, read_image

    det = Detector.load(args.model, threads=args.threads)
    image = read_image(args.image)
    for _ in range(3):
        det.predict(image)
    stages: dict[str, list[float]] = {"preprocess": [], "inference": [], "cam": [], "total": []}
    for _ in range(args.runs):
        t0 = time.perf_counter()
        pred = det.predict(image)
        stages["total"].append((time.perf_counter() - t0) * 1e3)
        for k in ("preprocess", "inference", "cam"):
            stages[k].append(pred.timings_ms[k])
    py = {k: statistics.median(v) for k, v in stages.items()}
    node = subprocess.run(["node", str(ROOT / "js" / "bench" / "latency.mjs"), args.model, args.image, "--runs", str(args.runs), "--threads", str(args.threads)], capture_output=True, text=True, timeout=600)
    if node.returncode:
        print(f"node failed: {node.stderr.strip().splitlines()[-1] if node.stderr.strip() else node.returncode}", file=sys.stderr)
        return 1
    js = json.loads(node.stdout.strip().splitlines()[-1])["median_ms"]
    web = {t: page_latency(args.model, args.image, args.runs, t) for t in (args.browser or [])}
    print(f"{args.model} on {args.image} {image.shape[1]}x{image.shape[0]}, Python and Node {args.threads} thread(s), median of {args.runs}")
    cols = [f"browser WASM, {t} thread{'s' if t > 1 else ''} (ms)" for t in web]
    print("| stage | Python (ms) | Node.js (ms) | " + " | ".join(cols) + (" |" if cols else "") + "\n|---|---:|---:|" + "---:|" * len(cols))
    for k in py:
        print(f"| {k} | {py[k]:.2f} | {js[k]:.2f} | " + " | ".join(f"{w['median_ms'][k]:.2f}" for w in web.values()) + (" |" if cols else ""))
    print(json.dumps({"model": args.model, "image": args.image, "threads": args.threads, "runs": args.runs, "python_ms": py, "node_ms": js, "browser": {str(t): w for t, w in web.items()}}))
    return 0


def page_latency(model: str, image: str, runs: int, threads: int, timeout_s: float = 600.0) -> dict:
    """The page's own per-stage medians (``?bench=N``) for ``model`` on ``image`` in headless Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        raise SystemExit("--browser needs Chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as site:  # Chromium's helpers may still write its profile
        for name, target in (("js", ROOT / "js"), ("model" + Path(model).suffix, Path(model).resolve()), ("image" + Path(image).suffix, Path(image).resolve())):
            os.symlink(target, Path(site) / name)
        base = _serve_isolated(site)
        url = f"{base}/js/web/index.html?model=../../model{Path(model).suffix}&image=../../image{Path(image).suffix}&threads={threads}&bench={runs}"
        result = _run_page(chromium, url, Path(site) / "chrome", timeout_s)
    if "error" in result:
        raise SystemExit(f"the page failed: {result['error']}")
    if result["bench"]["threads"] != threads:
        raise SystemExit(f"the page ran {result['bench']['threads']} thread(s), asked {threads} (cross-origin isolated: {result['bench']['cross_origin_isolated']})")
    return result["bench"]


def _serve_isolated(directory: str) -> str:
    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript", ".wasm": "application/wasm"}

        def end_headers(self):  # cross-origin isolation: SharedArrayBuffer, so WebAssembly threads
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            super().end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=directory))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def _run_page(chromium: str, url: str, profile: Path, timeout_s: float) -> dict:
    """Open ``url`` over the DevTools protocol (messages on fds 3/4, NUL-separated) and poll for <pre id="result">."""
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    cmd = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--remote-debugging-pipe", f"--user-data-dir={profile}"]
    proc = subprocess.Popen(["bash", "-c", cmd, chromium, *flags, "about:blank"], pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    reader, writer = os.fdopen(from_chrome_r, "rb"), os.fdopen(to_chrome_w, "wb")
    buffer, ids = b"", iter(range(1, 1 << 30))

    def call(method: str, session: str | None = None, check: bool = True, **params):
        nonlocal buffer
        i = next(ids)
        writer.write(json.dumps({"id": i, "method": method, "params": params, **({"sessionId": session} if session else {})}).encode() + b"\0")
        writer.flush()
        while True:  # skip events until our answer
            while b"\0" not in buffer:
                chunk = reader.read1(1 << 16)
                if not chunk:
                    raise SystemExit("Chromium closed the DevTools pipe")
                buffer += chunk
            msg, buffer = buffer.split(b"\0", 1)
            reply = json.loads(msg)
            if reply.get("id") == i:
                if "error" in reply and check:
                    raise SystemExit(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})

    try:
        target = call("Target.createTarget", url=url)["targetId"]
        session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        probe = "(() => { const r = document.getElementById('result'); return r && r.dataset.state ? r.textContent : null; })()"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # check=False: until the page's document exists there is no context to evaluate in
            value = call("Runtime.evaluate", session, check=False, expression=probe, returnByValue=True).get("result", {}).get("value")
            if value:
                return json.loads(value)
            time.sleep(0.5)
        raise SystemExit(f"the page gave no result in {timeout_s:.0f} s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # Chromium and its helper processes
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
