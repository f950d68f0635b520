"""The run directory: where a teacher job keeps everything, who may write it, how it resumes.

Its files are listed and named in `runfiles.py`.

One process writes a run directory at a time: `RunDir.lock()` takes an exclusive lock on
DIR/.lock (`lockf`) for the life of the job. The kernel drops it when the process ends, `kill -9`
included, so nothing stale is left behind. Readers (`filter`, `export`, `report`, `cost`: `view.py`) take
no lock: they only read, and every writer leaves whole lines and whole files (atomic renames).

Format 2 added the task's name to config.json (format 1 only knew `generate`); a format-1
directory is read as a `bootstrap` run and rewritten as format 2 when a job opens it.

The ledger's first line (its `run` event) records what config.json does, so a run whose
config.json is lost or damaged resumes from its ledger; for a ledger too old to have that line,
a checkpoint written by a job of the same identity vouches for the command instead.
`--overwrite` never deletes paid answers: the old ledger is kept aside, renamed with the time.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import itertools
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import SelfInstructError, SettingError, warn
from ..records import write_json_atomic
from ..runfiles import CONFIG_FILE, LOCK_FILE, MERGED_FROM, RUN_FILES, RunFiles
from .checkpoint import made_with
from .ledger import ledger_header, start_ledger

FORMAT_VERSION = 2
# how every message offers to start over: what happens to the paid answers is said, not left to find out
START_OVER = "pass {overwrite} to start over (the old ledger is kept aside, renamed with the time; its paid answers are not reused)"


class DamagedRunConfig(SelfInstructError):
    """A run's saved settings cannot be read: the ledger may still tell them."""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class RunDir(RunFiles):
    """The write side of a run directory: its lock, and making it a job's (new, resumed or started over)."""

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

        With `overwrite`, the files of an earlier run are removed first, its ledger kept aside."""
        run = {"format_version": FORMAT_VERSION, "task": task, "identity": identity, "config": config}
        if overwrite:
            self._start_over()
        else:
            self._check_same_run(task, identity)
        write_json_atomic(self.config, run)
        start_ledger(self.ledger, run)

    def holds_run(self) -> bool:
        """A teacher job's directory: its config, or its ledger alone (what was paid for) when the config is lost."""
        return self.config.exists() or self.ledger.exists()

    def check_usable(self) -> None:
        """Refuse a directory that holds something other than a run (before anything is written to it)."""
        if self.path.exists() and not self.path.is_dir():
            raise SettingError(f"{self.path}: not a directory; choose another {{out}}", "out")
        if self.path.is_dir() and not self.holds_run() and any(p.name != LOCK_FILE for p in self.path.iterdir()):
            raise SettingError(
                f"{self.path}: exists and is not a selfinstruct run directory; choose another {{out}}", "out"
            )

    def _check_same_run(self, task: str, identity: dict) -> None:
        saved = self._saved_run(task, identity)
        if saved is None:
            return
        if MERGED_FROM in saved:
            raise SettingError(
                f"{self.path} is a merge of the runs {', '.join(m['dir'] for m in saved[MERGED_FROM])}: resume each of "
                "them in its own directory, and merge again; or choose another {out}",
                "out",
            )
        if saved["task"] != task:
            raise SettingError(
                f"{self.path} holds a {saved['task']!r} run, not {task!r}: choose another {{out}}, or {START_OVER}",
                "out",
                "overwrite",
            )
        before = saved["identity"]
        changed = [f"{k}: {before.get(k)!r} -> {v!r}" for k, v in identity.items() if before.get(k) != v]
        if changed:
            raise SettingError(
                f"{self.path}: this run was made with different settings ({'; '.join(changed)}). "
                f"Rerun with the original settings to resume, choose another {{out}}, or {START_OVER}",
                "out",
                "overwrite",
            )

    def _saved_run(self, task: str, identity: dict) -> dict | None:
        """The task and identity the directory's run was made with (None for a new one): config.json's,
        or when it is missing or damaged, the ledger's (the source of truth)."""
        if self.config.exists():
            try:
                return read_run_config(self.path)
            except DamagedRunConfig as e:
                problem = str(e)
        else:
            problem = f"{self.config}: missing"
        if not self._ledger_started():
            return None  # nothing was asked yet: nothing to check, nothing to lose
        header = ledger_header(self.ledger)
        if header is not None:
            warn(f"{problem}; the run's task and settings are read from the first line of {self.ledger} instead")
            return _checked(header, self.ledger)
        if made_with(self, identity):
            warn(f"{problem}; {self.checkpoint} shows that this command's settings made the run, so it resumes")
            return {"task": task, "identity": identity}
        raise SettingError(
            f"{problem}, and {self.ledger} is too old to record the run's settings ({self.checkpoint} is missing, "
            "damaged or made with other settings). To resume its paid answers, rerun the command that started the "
            f"run, or put back a copy of {CONFIG_FILE}; or choose another {{out}}, or {START_OVER}",
            "out",
            "overwrite",
        )

    def _ledger_started(self) -> bool:
        return self.ledger.exists() and self.ledger.stat().st_size > 0

    def _start_over(self) -> None:
        """Remove an earlier run's files; its ledger, what was paid for, is kept aside under a new name."""
        if self._ledger_started():
            kept = _set_aside(self.ledger)
            warn(f"starting over: the earlier run's ledger is kept as {kept} (its answers are not reused)")
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)


def _set_aside(path: Path) -> Path:
    """Rename `path` to a free name with the time in it: ledger.jsonl -> ledger-20260101-120000.jsonl."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count(1):
        kept = path.with_name(f"{path.stem}-{stamp}{f'-{n}' if n > 1 else ''}{path.suffix}")
        if not kept.exists():  # a rename would replace it: it may hold an earlier overwrite's answers
            path.rename(kept)
            return kept


def read_run_config(run_dir: Path) -> dict:
    """A run's config.json, format 1 read as format 2."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        saved = json.loads(path.read_bytes())
    except ValueError as e:  # not JSON, or not even UTF-8 (a torn or zeroed file)
        raise DamagedRunConfig(f"{path}: not valid JSON ({e})") from None
    return _checked(saved, path)


def _checked(saved, path: Path) -> dict:
    """A run's saved settings (config.json, or the ledger's `run` event) checked, format 1 read as format 2."""
    version = saved.get("format_version") if isinstance(saved, dict) else None
    if version == 1:
        saved = {**saved, "format_version": FORMAT_VERSION, "task": "bootstrap"}
    elif version not in (None, FORMAT_VERSION):
        raise SelfInstructError(
            f"{path}: run format version {version!r}; this selfinstruct reads versions 1 and {FORMAT_VERSION} "
            "(a newer selfinstruct wrote it? upgrade, or start over in another directory)"
        )
    if version is None or not isinstance(saved.get("task"), str) or not isinstance(saved.get("identity"), dict):
        raise DamagedRunConfig(f"{path}: not a run's settings (format_version, task and identity expected)")
    return saved
