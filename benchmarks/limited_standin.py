"""The benchmarks' stand-in (`standin.py`) with the limits of a real endpoint, and a log that a
benchmark reads after the fact, even after the stand-in was killed.

    python benchmarks/limited_standin.py --port 8931 --rpm-window 240 --latency 0.6 \\
        --max-in-flight 6 --log outputs/standin-b.jsonl

- `--rpm-window N`: at most N requests admitted in any sliding minute; above it 429 with
  `Retry-After` (standin.py's rule, the way OpenAI answers).
- `--max-in-flight N`: a concurrency limit the client is not told (vLLM behind a gateway, a
  provider's per-key concurrency): a request arriving while N are being answered gets 429
  without `Retry-After`, so only the client's own adaptation can find N. Refused requests use
  no quota of the sliding minute.
- `--log FILE`: one JSON line per request, written once its response has gone out: the
  client's `X-Client-Request-Id`, a digest of the prompt, arrival and end on the machine's
  monotonic clock (shared by all processes, so several stand-ins' logs line up), status (499:
  the client went away before its request was read), the limit that refused it, and the
  requests in flight on arrival. Each line is one `write`, so
  a SIGKILL loses none that were answered and logs none that were not.
- Answers fit the task asked: the bootstrap prompt gets standin.py's `{"tasks": [...]}`,
  any other prompt (`selfinstruct answer`, `judge`) a paragraph of the same T0-like words.

`StandInProcess` runs one in its own process (the client under test gets the CPU it would
against a real provider) and can SIGKILL it mid-run.
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from generate_scale import HERE, free_port
from standin import StandIn, arguments, serve
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

BOOTSTRAP_OPENING = "You are asked to come up with a set of"  # selfinstruct/tasks/bootstrap/prompts.py


def prompt_digest(body: dict) -> str:
    """Names the work a request asks for, whatever id the client gave it: two answers with the
    same digest from two stand-ins are one prompt paid for twice."""
    messages = body.get("messages") or [{}]
    return hashlib.sha256(str(messages[-1].get("content", "")).encode()).hexdigest()[:16]


class LimitedStandIn(StandIn):
    def __init__(self, *args, max_in_flight: int | None = None, log: Path | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        if log:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
        # Open for the server's life, line-buffered: each line leaves the process in one write(2).
        self.log = open(log, "a", buffering=1, encoding="utf-8") if log else None  # noqa: SIM115
        self.texts = [task["output"] for answer in self.answers for task in json.loads(answer)["tasks"]]

    def content(self, body: dict) -> str:
        messages = body.get("messages") or [{}]
        if BOOTSTRAP_OPENING in str(messages[-1].get("content", "")):
            return super().content(body)
        return self.texts[(len(self.served) - 1) % len(self.texts)]

    async def chat(self, request: Request) -> Response:
        arrived, in_flight = self.clock(), self.in_flight
        if self.max_in_flight is not None and in_flight >= self.max_in_flight:
            error = {"error": {"message": "Too many concurrent requests", "type": "requests"}}
            response, limit = JSONResponse(error, status_code=429), "concurrency"
        else:
            self.in_flight += 1
            try:
                response = await super().chat(request)
            except ClientDisconnect:  # the client died while sending: nginx logs it as 499
                response = Response(status_code=499)
            finally:
                self.in_flight -= 1
            limit = "rpm" if response.status_code == 429 else None
        if self.log is not None:
            try:
                prompt = prompt_digest(await request.json())
            except ClientDisconnect:
                prompt = None
            line = {
                "id": request.headers.get("x-client-request-id"),
                "prompt": prompt,
                "arrived": arrived,
                "status": response.status_code,
                "limit": limit,
                "in_flight": in_flight,
            }
            response.background = BackgroundTask(self._write, line)
        return response

    async def _write(self, line: dict) -> None:
        """After the response went out: a request killed before it is never logged as answered.
        A coroutine, so it runs at once on the event loop (starlette hands a plain function to a
        thread, which could write after the next request was served)."""
        self.log.write(json.dumps({**line, "ended": self.clock()}) + "\n")


def read_log(path: Path) -> list[dict]:
    """The lines of a stand-in's log; a last line cut by a SIGKILL mid-write is left out."""
    lines = []
    for text in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return lines


@dataclass
class StandInProcess:
    """One limited stand-in in its own process, ready when the constructor returns."""

    name: str
    log: Path
    rpm_window: int | None = None
    latency: float = 0.3
    max_in_flight: int | None = None
    tasks: int = 5
    answers: int = 300

    def __post_init__(self):
        self.port = free_port()
        self.log.unlink(missing_ok=True)
        options = {
            "--port": self.port,
            "--latency": self.latency,
            "--tasks": self.tasks,
            "--answers": self.answers,
            "--log": self.log,
            "--rpm-window": self.rpm_window,
            "--max-in-flight": self.max_in_flight,
        }
        command = [sys.executable, str(HERE / "limited_standin.py")]
        for option, value in options.items():
            if value is not None:
                command += [option, str(value)]
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + 60
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stand-in {self.name} did not start (exit {self.process.poll()})")
            time.sleep(0.1)

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def kill(self) -> None:
        """SIGKILL, as when its machine or container dies: no goodbye to open connections."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def lines(self) -> list[dict]:
        return read_log(self.log)


def main() -> None:
    parser = arguments()
    parser.description = __doc__.split("\n\n")[0]
    parser.add_argument("--max-in-flight", type=int, help="429 (no Retry-After) above this many requests in flight")
    parser.add_argument("--log", type=Path, help="one JSON line per request answered")
    args = parser.parse_args()
    standin = LimitedStandIn(
        args.latency,
        args.tasks,
        args.rpm_window,
        args.seed,
        args.answers,
        max_in_flight=args.max_in_flight,
        log=args.log,
    )
    serve(standin, args.port)


if __name__ == "__main__":
    main()
