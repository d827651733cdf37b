"""Headless Chromium driven over the DevTools protocol, for pages that keep a stream open.

`--dump-dom` waits for the page to go idle, which a page reading a live stream never does.
`Browser(profile)` starts `chromium --headless --remote-debugging-port=0` (the port it picked is
in `<profile>/DevToolsActivePort`), attaches to its page's websocket (aiohttp's client, on a
private event loop) and offers `navigate`, `evaluate` (a JavaScript expression's value, as
JSON) and `screenshot`. `close()` stops the browser (by its pid) and the loop.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp


class Browser:
    def __init__(self, chromium: str, profile: Path, size: str = "1280,1600") -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.log = (profile / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--remote-debugging-port=0",
             f"--window-size={size}", "--hide-scrollbars", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.loop = asyncio.new_event_loop()
        self.ids = itertools.count(1)
        try:
            port = self._port(profile / "DevToolsActivePort")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                (page,) = [t for t in json.loads(r.read()) if t["type"] == "page"]
            self.ws = self.loop.run_until_complete(self._attach(page["webSocketDebuggerUrl"]))
        except BaseException:
            self.close()
            raise

    async def _attach(self, url: str) -> aiohttp.ClientWebSocketResponse:
        self.session = aiohttp.ClientSession()
        return await self.session.ws_connect(url, max_msg_size=0)

    def _port(self, path: Path) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited ({self.proc.returncode}); see {self.log.name}")
            if path.exists() and path.read_text().strip():
                return int(path.read_text().split()[0])
            time.sleep(0.1)
        raise RuntimeError("chromium opened no DevTools port within 30 s")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.loop.run_until_complete(asyncio.wait_for(self._call(method, params), 30))

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        n = next(self.ids)
        await self.ws.send_json({"id": n, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == n:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def close(self) -> None:
        ws, session = getattr(self, "ws", None), getattr(self, "session", None)
        if ws is not None:
            self.loop.run_until_complete(ws.close())
        if session is not None:
            self.loop.run_until_complete(session.close())
        self.loop.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
