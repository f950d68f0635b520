"""A real browser for tests: headless Chromium driven over the DevTools protocol, offline.

    with Chromium() as browser:
        page = browser.open(Path("report.html"), wait_for="document.querySelectorAll('.js-plotly-plot').length")
        page.errors          # console errors, uncaught exceptions, failed requests
        page.evaluate("document.title")
        page.screenshot(Path("shot.png"))

The network is off twice over: every host name resolves to nothing (`--host-resolver-rules`)
and the page runs under DevTools' offline network emulation, so a page that needs a CDN
fails loudly (a failed request, then a console error) instead of quietly working online.
Debian's `chromium` package is required: `make chromium` installs it.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from selfinstruct.processes import stop

CHROMIUM = "chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",  # tests run as root, where the sandbox cannot start
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: nothing outside the page can load
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    "--window-size=1400,1000",
]


def chromium_path() -> str:
    path = shutil.which(CHROMIUM)
    if path is None:
        raise RuntimeError("Chromium is not installed: run `make chromium` (Debian: apt-get install -y chromium)")
    return path


class Page:
    """One tab: commands go out over the DevTools websocket, events are collected as they come."""

    def __init__(self, socket):
        self._socket = socket
        self._ids = itertools.count(1)
        self.events: list[dict] = []

    def send(self, method: str, **params) -> dict:
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(0.1)

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed requests, as text."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                found.append(f"request failed: {params.get('errorText')}")
        return found

    def screenshot(self, path: Path, width: int = 1400, height: int | None = None) -> Path:
        """The page (its first `height` pixels, or all of it) as a PNG. The window is first made
        that tall and the page given time to lay out again: charts sized to the window
        (plotly's responsive ones) would otherwise be caught mid-resize."""
        height = height or self.evaluate("document.documentElement.scrollHeight")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.evaluate("new Promise(done => requestAnimationFrame(() => setTimeout(done, 1000)))")
        shot = self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


class Chromium:
    def __init__(self):
        self.binary = chromium_path()

    def __enter__(self) -> "Chromium":
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        self._sockets = contextlib.ExitStack()  # one DevTools connection per page, closed on exit
        self._process = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])
        return self

    def open(self, path: Path, wait_for: str, timeout: float = 60.0) -> Page:
        """Load a file in a fresh offline tab and wait until `wait_for` (JavaScript) is true."""
        from websockets.sync.client import connect

        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            target = json.load(response)
        page = Page(
            self._sockets.enter_context(connect(target["webSocketDebuggerUrl"], max_size=2**28, open_timeout=10))
        )
        for domain in ("Runtime", "Log", "Network", "Page"):
            page.send(f"{domain}.enable")
        page.send(
            "Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1, uploadThroughput=-1
        )
        page.started = time.monotonic()
        page.send("Page.navigate", url=path.resolve().as_uri())
        page.wait_for(f"document.readyState === 'complete' && Boolean({wait_for})", timeout)
        page.load_seconds = time.monotonic() - page.started
        return page

    def __exit__(self, *exc) -> None:
        self._sockets.close()
        stop(self._process)
        self._profile.cleanup()
