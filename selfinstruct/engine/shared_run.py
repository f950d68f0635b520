"""Several workers on one run: `--shard i/N` and `--shared-run redis://HOST:PORT[/DB]?run=NAME`.

Each worker keeps its own run directory and ledger (crash-safe as one process is); through
Redis they share the duplicate index, one `--max-cost` and one target.

**The budget.** Before a request is sent, its worst case is reserved in Redis by one Lua
script that adds up what every worker has spent and holds, and refuses a reservation that
could pass the cap: so the sum of all workers' spending never passes it, whatever the
concurrency. Its answer's price replaces the reservation (`settle`); a request given up frees
it (`release`); one cancelled in flight (Ctrl-C) may still be billed, so its reservation
moves to the spent figure at its worst case (`cancel`), as the worker's own ledger counts it.

**A worker that dies** (kill -9, a lost machine) leaves its reservations in Redis. They may
have been billed (a provider bills an answer it computed whether or not the client got it),
so they are not dropped after a time: they keep counting at their worst case, which bounds
what a dead worker holds to its requests in flight. Its lease (renewed every `LEASE_S` / 3 by
a thread) expires `LEASE_S` after its last renewal; then the worker can be started again, on
any machine that has its run directory, and its first act after reading its ledger back is to
replace everything it holds in Redis with what the ledger says (`reconcile`): answers at their
price, requests that were in flight at their worst case (possibly billed), and reservations
made just before a crash and never sent, which the ledger does not know, are freed. A live
worker's name cannot be taken by a second process (its lease refuses it).

**The target.** Each worker's kept records are counted in Redis; a worker writes to its
data.jsonl only the records that still fit under the run's target (`claim`, one script), the
rest go to its surplus.jsonl, so the shards' data.jsonl together hold exactly the target. A
restarted worker gives up its count and claims its records again. Every worker stops when the
total is reached (`accepted`, read at most every `REFRESH_S`).

Without `--shared-run`, `--shard i/N` splits the target and the cap evenly (`Shard.share`),
and `selfinstruct merge` removes the duplicates across shards afterwards.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from ..errors import SelfInstructError, SettingError

LEASE_S = 30.0  # a worker not heard from for this long is dead: its name may be started again
REFRESH_S = 0.5  # the others' kept records are read at most this often (the target check)
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True)
class Shard:
    """Worker `index` (1-based) of `count`: "2/3"."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str, field: str = "shard") -> Shard:
        match = _SHARD.match(text)
        if not match or not 1 <= int(match[1]) <= int(match[2]):
            raise SettingError(f"{{{field}}} {text!r}: expected i/N with 1 <= i <= N, e.g. 2/3", field)
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def name(self) -> str:
        """The worker's name in the shared store: "shard-2-of-3"."""
        return f"shard-{self.index}-of-{self.count}"

    def take(self, items: list) -> list:
        """This shard's items: every N-th, starting at its own (the shards together hold each item once)."""
        return items[self.index - 1 :: self.count]

    def request_number(self, index: int) -> int:
        """The run-wide number of this shard's `index`-th request: the shards' requests interleave,
        so N shards ask together what one run would (a bootstrap draws request i's examples with i)."""
        return index * self.count + self.index - 1

    def share(self, total: float | None) -> float | int | None:
        """This shard's part of a target (an int: the first ones take the remainder) or of a cap."""
        if total is None:
            return None
        if isinstance(total, int):
            return total // self.count + (1 if self.index <= total % self.count else 0)
        return total / self.count


def parse_shared_run(url: str) -> tuple[dict, str]:
    """redis-py connection parameters and the run name of a `shared_run` URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    names = query.pop("run", None)
    if parts.scheme != "redis" or not names:
        raise SettingError(f"{{shared_run}} {url}: expected redis://HOST:PORT[/DB]?run=NAME", "shared_run")
    if not _NAME.match(names[-1]):
        raise SettingError(
            f"{{shared_run}} {url}: the run name {names[-1]!r} may hold letters, digits, '.', '_' and '-' only",
            "shared_run",
        )
    try:
        from redis.connection import parse_url
    except ImportError:
        raise SettingError(
            "{shared_run} needs the redis package: pip install 'selfinstruct[redis]'", "shared_run"
        ) from None
    try:
        params = parse_url(urlunsplit(parts._replace(query=urlencode(query, doseq=True))))
    except ValueError as e:
        raise SettingError(f"{{shared_run}} {url}: {e}", "shared_run") from None
    return params, names[-1]


def index_url(url: str) -> str:
    """The duplicate index's URL (`lsh_storage`) for the workers of a shared run: same Redis, the run's name."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    name = query.pop("run")[-1]
    return urlunsplit(parts._replace(query=urlencode({**query, "index": f"run-{name}"}, doseq=True)))


# Every script adds up the workers' figures itself: one Redis call, atomic, whatever the
# number of workers (a handful of hash fields each).
_TOTAL = """
local function total(p)
  local sum = 0
  for _, v in ipairs(redis.call('HVALS', p .. 'spent')) do sum = sum + tonumber(v) end
  for _, v in ipairs(redis.call('HVALS', p .. 'held')) do sum = sum + tonumber(v) end
  return sum
end
"""
# Whether this process holds the worker's lease: "TOKEN|EXPIRES|HOLDER" starts with its token.
_LEASED = """
local function leased(p, worker, token)
  local lease = redis.call('HGET', p .. 'leases', worker)
  return lease and string.sub(lease, 1, string.len(token)) == token
end
"""
# ARGV: prefix, worker, token, request id, amount, cap -> {1 | 0 (over the cap) | -1 (lease lost), total}
_RESERVE = (
    _TOTAL
    + _LEASED
    + """
local p, worker, token, rid, amount, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
if not leased(p, worker, token) then return {-1, '0'} end
local sum = total(p)
if sum + amount > cap * (1 + 1e-12) then return {0, tostring(sum)} end
redis.call('HSET', p .. 'reservations:' .. worker, rid, ARGV[5])
redis.call('HINCRBYFLOAT', p .. 'held', worker, ARGV[5])
return {1, tostring(sum + amount)}
"""
)
# ARGV: prefix, worker, request id, cost (nil: the reservation itself, possibly billed)
_SETTLE = """
local p, worker, rid = ARGV[1], ARGV[2], ARGV[3]
local reserved = redis.call('HGET', p .. 'reservations:' .. worker, rid)
if reserved then
  redis.call('HDEL', p .. 'reservations:' .. worker, rid)
  redis.call('HINCRBYFLOAT', p .. 'held', worker, -tonumber(reserved))
end
local cost = ARGV[4] or reserved or '0'
redis.call('HINCRBYFLOAT', p .. 'spent', worker, cost)
return 1
"""
# ARGV: prefix, worker, n, target ('' for none) -> {granted, total}
_CLAIM = """
local p, worker, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local sum = 0
for _, v in ipairs(redis.call('HVALS', p .. 'accepted')) do sum = sum + tonumber(v) end
if ARGV[4] ~= '' then n = math.max(math.min(n, tonumber(ARGV[4]) - sum), 0) end
redis.call('HINCRBY', p .. 'accepted', worker, n)
return {n, sum + n}
"""
# ARGV: prefix, worker, token, now, lease seconds, holder, join ('1': also forget the count of kept records)
# -> {1} or {0, the live holder}
_LEASE = (
    _LEASED
    + """
local p, worker, token, now, ttl, holder = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local lease = redis.call('HGET', p .. 'leases', worker)
if lease and not leased(p, worker, token) then
  local _, _, expires, who = string.find(lease, '^[^|]*|([^|]*)|(.*)$')
  if tonumber(expires) > now then return {0, who} end
  if ARGV[7] ~= '1' then return {0, who} end
end
redis.call('HSET', p .. 'leases', worker, token .. '|' .. tostring(now + ttl) .. '|' .. holder)
if ARGV[7] == '1' then redis.call('HSET', p .. 'accepted', worker, 0) end
return {1}
"""
)
# ARGV: prefix, worker, token: the lease given back, if it is still this process's
_LEAVE = (
    _LEASED
    + """
if leased(ARGV[1], ARGV[2], ARGV[3]) then redis.call('HDEL', ARGV[1] .. 'leases', ARGV[2]) end
return 1
"""
)
# ARGV: prefix, worker, token, committed (the ledger's: spent and possibly billed)
_RECONCILE = """
local p, worker = ARGV[1], ARGV[2]
redis.call('DEL', p .. 'reservations:' .. worker)
redis.call('HSET', p .. 'held', worker, 0)
redis.call('HSET', p .. 'spent', worker, ARGV[4])
return 1
"""


class LeaseLost(SelfInstructError):
    """Another process took this worker's name (its lease lapsed): this one must stop."""


class SharedRun:
    """One worker's view of a shared run in Redis (see the module's docstring)."""

    def __init__(self, url: str, worker: str, *, clock: Callable[[], float] = time.time, lease_s: float = LEASE_S):
        params, self.name = parse_shared_run(url)  # checks that redis is installed
        import redis

        self.url, self.worker, self.clock, self.lease_s = url, worker, clock, lease_s
        self.client = redis.Redis(**params)
        try:
            self.client.ping()
        except redis.RedisError as e:
            raise SettingError(f"{{shared_run}} {url}: cannot reach Redis ({e})", "shared_run") from None
        self.prefix = f"selfinstruct:run:{self.name}:"
        self.token = uuid.uuid4().hex
        self.holder = f"{socket.gethostname()} pid {os.getpid()}"
        self._scripts = {
            name: self.client.register_script(script)
            for name, script in (
                ("reserve", _RESERVE),
                ("settle", _SETTLE),
                ("claim", _CLAIM),
                ("lease", _LEASE),
                ("reconcile", _RECONCILE),
                ("leave", _LEAVE),
            )
        }
        self._total: tuple[float, int] | None = None  # (when read, the run's kept records)
        self._renewer: threading.Thread | None = None
        self._stopped = threading.Event()
        self.lost: str | None = None  # why the lease was lost, once it is

    # ------------------------------------------------------------ joining and leaving

    def join(self) -> None:
        """Take this worker's lease (refused while another live process holds it) and forget
        its count of kept records, which the resume claims again; then keep the lease alive."""
        self._renew(join=True)
        self._renewer = threading.Thread(target=self._keep_alive, name=f"lease {self.worker}", daemon=True)
        self._renewer.start()

    def reconcile(self, committed_usd: float) -> None:
        """Replace what this worker holds and spent in Redis by its ledger's figure (after a resume
        read it back): what a previous process of it left there is settled by its ledger."""
        self._call("reconcile", self.token, repr(float(committed_usd)))

    def leave(self) -> None:
        """Stop renewing and give the name back (the reservations are settled by then)."""
        self._stopped.set()
        if self._renewer is not None:
            self._renewer.join()
        self._call("leave", self.token)
        self.client.close()

    def _renew(self, join: bool = False) -> None:
        ok, *holder = self._call(
            "lease", self.token, repr(self.clock()), repr(self.lease_s), self.holder, "1" if join else "0"
        )
        if not ok:
            who = holder[0].decode() if holder else "another process"
            message = (
                f"{{shared_run}} {self.url}: worker {self.worker} is running already ({who}); give this one another "
                f"--shard, or wait {self.lease_s:.0f} s after that process died"
            )
            if join:
                raise SettingError(message, "shared_run", "shard")
            self.lost = message

    def _keep_alive(self) -> None:
        renewed = self.clock()
        while not self._stopped.wait(self.lease_s / 3):
            try:
                self._renew()
                renewed = self.clock()
            except Exception as e:  # noqa: BLE001  Redis gone a moment: the lease has time left, the next renewal tries again
                if self.clock() - renewed >= self.lease_s:
                    self.lost = f"worker {self.worker} of run {self.name} could not renew its lease: {e}"
            if self.lost is not None:
                return

    # ------------------------------------------------------------ the budget

    def reserve(self, request_id: str, usd: float, cap: float) -> bool:
        """Reserve `usd` for `request_id` if the run's spending and reservations leave room under `cap`."""
        status = (
            -1
            if self.lost is not None
            else self._call("reserve", self.token, request_id, repr(float(usd)), repr(float(cap)))[0]
        )
        if status == -1:
            self.lost = self.lost or f"worker {self.worker} of run {self.name} lost its lease to another process"
            raise LeaseLost(self.lost)
        return status == 1

    def settle(self, request_id: str, cost_usd: float | None) -> None:
        """The request was answered at `cost_usd` (None: priced at nothing, the embedded teacher)."""
        self._call("settle", request_id, repr(float(cost_usd or 0.0)))

    def release(self, request_id: str) -> None:
        """The request was given up: no answer, nothing billed."""
        self._call("settle", request_id, "0")

    def cancel(self, request_ids: list[str]) -> None:
        """The requests were in flight when the worker stopped: possibly billed, at their worst case."""
        for request_id in request_ids:
            self._call("settle", request_id)

    def committed(self) -> float:
        """The whole run's spending and reservations."""
        spent = sum(float(v) for v in self.client.hvals(self.prefix + "spent"))
        return spent + sum(float(v) for v in self.client.hvals(self.prefix + "held"))

    # ------------------------------------------------------------ the target

    def claim(self, count: int, target: int | None) -> int:
        """How many of `count` records this worker may add to its data.jsonl under the run's `target`."""
        granted, total = self._call("claim", str(count), "" if target is None else str(target))
        self._total = (self.clock(), int(total))
        return int(granted)

    def accepted(self) -> int:
        """The run's kept records (data.jsonl of every worker), read from Redis at most every `REFRESH_S`."""
        now = self.clock()
        if self._total is None or now - self._total[0] >= REFRESH_S:
            self._total = (now, sum(int(v) for v in self.client.hvals(self.prefix + "accepted")))
        return self._total[1]

    def _call(self, script: str, *args: str) -> list:
        return self._scripts[script](args=[self.prefix, self.worker, *args])
