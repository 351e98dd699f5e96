"""Runs browser_provider.html in headless Chromium, from an origin that is not the OFREP server's.

Serves the page, cases.json and the installed node_modules on a free loopback port (a
different origin from the control plane's, so the browser enforces CORS), opens the page in
headless Chromium with a fresh profile, waits for the page to POST its result, and prints it.
Chromium is kept on loopback: every other host resolves to nothing and goes to a dead proxy,
and its background services are off.

Usage: browser_provider.py CHROMIUM CASES_JSON NODE_MODULES_DIR
Environment: CHECKGATE_URL, OFREP_CLIENT_KEY. Exits 1 with one line per failed check.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

RESULT_WAIT = 30  # seconds for the page to report
HERE = Path(__file__).resolve().parent


def stop(browser):
    """Ends Chromium and every process of its group (zygote, renderers, utilities)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(browser.pid, sig)
        except ProcessLookupError:
            pass
        try:
            browser.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # The main process is gone; give its helpers a moment, then end any left.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(browser.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def main():
    # A `timeout` that ends this program must end Chromium too (it has a session of its own).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    chromium, cases, node_modules = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]).resolve()
    base = os.environ["CHECKGATE_URL"]
    key = os.environ["OFREP_CLIENT_KEY"]
    page = (HERE / "browser_provider.html").read_bytes()
    result = {}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = urlsplit(self.path).path
            if path == "/":
                return self.send(200, page, "text/html; charset=utf-8")
            if path == "/cases.json":
                return self.send(200, cases.read_bytes(), "application/json")
            if path.startswith("/node_modules/"):
                file = (node_modules / path[len("/node_modules/"):]).resolve()
                if file.is_file() and node_modules in file.parents:
                    kind = "text/javascript" if file.suffix in (".js", ".mjs") else "application/json"
                    return self.send(200, file.read_bytes(), kind)
            self.send(404, b"not found", "text/plain")

        def do_POST(self):
            if urlsplit(self.path).path != "/result":
                return self.send(404, b"not found", "text/plain")
            length = int(self.headers.get("Content-Length", "0"))
            result.update(json.loads(self.rfile.read(length)))
            self.send(204, b"", "text/plain")
            done.set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page_url = (
        f"http://127.0.0.1:{server.server_address[1]}/?base={quote(base, safe='')}"
        f"&key={quote(key, safe='')}"
    )

    profile = tempfile.mkdtemp(prefix="checkgate-chromium.")
    args = [
        chromium,
        "--headless",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        # Loopback only: other hosts do not resolve, and go to a port nothing listens on.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=127.0.0.1",
    ]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    browser = subprocess.Popen(
        args + [page_url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: its helpers end with it
    )
    started = time.monotonic()
    try:
        reported = done.wait(RESULT_WAIT)
    finally:
        stop(browser)
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)

    problems = result.get("problems", [])
    if not reported:
        problems = [f"the page reported nothing within {RESULT_WAIT}s"]
    if problems:
        print("browser web provider: FAILED", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        print(f"  bulk requests: {json.dumps(result.get('requests'))}", file=sys.stderr)
        sys.exit(1)
    print(
        f"browser web provider: cross-origin values, ETag, 304 and event stream as expected "
        f"({time.monotonic() - started:.1f}s)"
    )


if __name__ == "__main__":
    main()
