"""Child processes that never outlive their parent, even after `kill -9` of the parent."""

from __future__ import annotations

import os
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
