"""Child processes: they never outlive their parent (even after `kill -9` of the parent), and
they stop when asked."""

from __future__ import annotations

import os
import subprocess
import threading
import time


def exit_with_parent(parent_pid: int) -> None:
    """End this process once `parent_pid` is gone: when a parent dies, even by SIGKILL, its
    children are re-parented and getppid() changes."""

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def stop(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Ask `process` to end (SIGTERM), and kill it if it is still there after `grace_s`."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
