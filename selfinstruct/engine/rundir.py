"""The run directory: where a teacher job keeps everything, who may write it, how it resumes.

    DIR/config.json      the task, its settings, the format version, hashes of its inputs
    DIR/ledger.jsonl     every request and response (the source of truth)
    DIR/data.jsonl       accepted records                 } derived from the ledger; on resume
    DIR/rejected.jsonl   rejected ones, with the reason   } they are checked against the
    DIR/checkpoint.json  how much of the ledger they hold } checkpoint and completed from it
    DIR/stats.json       counts per rule, acceptance, throughput
    DIR/cost.json        tokens and dollars
    DIR/teacher.log      the embedded teacher's log
    DIR/.lock            locked by the process writing the directory

One process writes a run directory at a time: `RunDir.lock()` takes an exclusive lock on
DIR/.lock (`lockf`) for the life of the job. The kernel drops it when the process ends, `kill -9`
included, so nothing stale is left behind. Readers (`filter`, `export`, `cost`) take no lock:
they only read, and every writer leaves whole lines and whole files (atomic renames).

Format 2 added the task's name to config.json (format 1 only knew `generate`); a format-1
directory is read as a `bootstrap` run and rewritten as format 2 when a job opens it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from ..errors import SelfInstructError, SettingError
from ..records import write_json_atomic

FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
LEDGER_FILE = "ledger.jsonl"
DATA_FILE = "data.jsonl"
REJECTED_FILE = "rejected.jsonl"
CHECKPOINT_FILE = "checkpoint.json"
STATS_FILE = "stats.json"
COST_FILE = "cost.json"
TEACHER_LOG = "teacher.log"
LOCK_FILE = ".lock"
RUN_FILES = (CONFIG_FILE, LEDGER_FILE, DATA_FILE, REJECTED_FILE, CHECKPOINT_FILE, STATS_FILE, COST_FILE, TEACHER_LOG)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    config = property(lambda self: self.path / CONFIG_FILE)
    ledger = property(lambda self: self.path / LEDGER_FILE)
    data = property(lambda self: self.path / DATA_FILE)
    rejected = property(lambda self: self.path / REJECTED_FILE)
    checkpoint = property(lambda self: self.path / CHECKPOINT_FILE)
    stats = property(lambda self: self.path / STATS_FILE)
    cost = property(lambda self: self.path / COST_FILE)
    teacher_log = property(lambda self: self.path / TEACHER_LOG)

    @contextmanager
    def lock(self):
        """Hold the directory for this process; fail at once if another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                # a POSIX record lock, not flock: a process forked by the job (its rule-check
                # workers) does not inherit it, so it never outlives the job
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise SelfInstructError(
                    f"{self.path} is in use by process {holder}: wait for it to finish or stop it, "
                    "then run the same command again"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield self
        finally:
            os.close(fd)  # closing drops the lock

    def prepare(self, task: str, identity: dict, config: dict, overwrite: bool) -> None:
        """Make the directory ours (under the lock): new, or a run of the same task and identity.

        With `overwrite`, the files of an earlier run are removed first."""
        if overwrite:
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)
        elif self.config.exists():
            self._check_same_run(task, identity)
        write_json_atomic(self.config, {"format_version": FORMAT_VERSION, "task": task, "identity": identity, "config": config})

    def check_usable(self) -> None:
        """Refuse a directory that holds something other than a run (before anything is written to it)."""
        if self.path.exists() and not self.path.is_dir():
            raise SettingError(f"{self.path}: not a directory; choose another {{out}}", "out")
        if self.path.is_dir() and not self.config.exists() and any(p.name != LOCK_FILE for p in self.path.iterdir()):
            raise SettingError(f"{self.path}: exists and is not a selfinstruct run directory; choose another {{out}}", "out")

    def _check_same_run(self, task: str, identity: dict) -> None:
        saved = read_run_config(self.path)
        if saved["task"] != task:
            raise SettingError(
                f"{self.path} holds a {saved['task']!r} run, not {task!r}: choose another {{out}}, or pass {{overwrite}} "
                "to start over", "out", "overwrite",
            )  # fmt: skip
        before = saved.get("identity", {})
        changed = [f"{k}: {before.get(k)!r} -> {v!r}" for k, v in identity.items() if before.get(k) != v]
        if changed:
            raise SettingError(
                f"{self.path}: this run was made with different settings ({'; '.join(changed)}). "
                "Rerun with the original settings to resume, pass {overwrite} to start over, or choose another {out}",
                "overwrite", "out",
            )  # fmt: skip


def read_run_config(run_dir: Path) -> dict:
    """A run's config.json, format 1 read as format 2."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SettingError(f"{path}: not valid JSON ({e}); pass {{overwrite}} to start over", "overwrite") from None
    version = saved.get("format_version")
    if version == 1:
        saved = {**saved, "format_version": FORMAT_VERSION, "task": "bootstrap"}
    elif version != FORMAT_VERSION:
        raise SelfInstructError(
            f"{path}: run format version {version!r}; this selfinstruct reads versions 1 and {FORMAT_VERSION} "
            "(a newer selfinstruct wrote it? upgrade, or start over in another directory)"
        )
    return saved
