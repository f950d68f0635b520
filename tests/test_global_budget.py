"""Several workers on one run under one budget and one target, through a real redis-server.

The budget's scripts under concurrent workers (threads, each its own connection), the lease
of a worker's name, and three `selfinstruct generate` processes against a priced stand-in,
one killed with SIGKILL and started again: the sum of what they spent stays under the cap.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate_scale import StandIn  # noqa: E402

from selfinstruct.engine.shared_run import Shard, SharedRun
from selfinstruct.errors import SettingError
from selfinstruct.merge import merge
from selfinstruct.records import read_jsonl
from selfinstruct.runfiles import RunFiles

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_url(redis_url, request):
    """A fresh shared run per test on the session's server."""
    return f"{redis_url}?run={request.node.name.replace('[', '-').replace(']', '')}"


def test_reservations_never_pass_the_cap_under_concurrent_workers(run_url):
    cap, workers = 1.0, [SharedRun(run_url, f"shard-{i}-of-4") for i in range(1, 5)]
    for worker in workers:
        worker.join()
    over: list[float] = []

    def spend(worker: SharedRun, seed: int) -> None:
        rng = random.Random(seed)
        for n in range(400):
            reserve = rng.uniform(0.001, 0.02)
            if not worker.reserve(f"r{n}", reserve, cap):
                continue
            committed = worker.committed()
            if committed > cap + 1e-9:
                over.append(committed)
            # an answer costs at most its reservation; some are given up
            worker.settle(f"r{n}", reserve * rng.random()) if rng.random() < 0.9 else worker.release(f"r{n}")

    threads = [threading.Thread(target=spend, args=(worker, i)) for i, worker in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert over == []
    spent = workers[0].committed()
    assert 0.9 < spent <= cap  # the cap bound: the workers spent nearly all of it, never more
    for worker in workers:
        worker.leave()


def test_a_live_workers_name_is_refused_and_freed_when_its_lease_lapses(run_url):
    now = [1000.0]
    first = SharedRun(run_url, "shard-1-of-2", clock=lambda: now[0], lease_s=30)
    first.join()
    assert first.reserve("r0", 0.5, 1.0)
    with pytest.raises(SettingError, match=r"worker shard-1-of-2 is running already .*pid"):
        SharedRun(run_url, "shard-1-of-2", clock=lambda: now[0], lease_s=30).join()

    now[0] += 31  # the first process is dead: nothing renewed its lease
    second = SharedRun(run_url, "shard-1-of-2", clock=lambda: now[0], lease_s=30)
    second.join()
    assert second.committed() == pytest.approx(0.5)  # the dead worker's reservation may have been billed: it counts
    second.reconcile(0.2)  # until its ledger says what it spent
    assert second.committed() == pytest.approx(0.2)
    with pytest.raises(Exception, match="lost its lease"):
        first.reserve("r1", 0.1, 1.0)  # the old process, if it comes back, must stop
    first.leave()  # and leaves the new one's lease alone
    with pytest.raises(SettingError, match="running already"):
        SharedRun(run_url, "shard-1-of-2", clock=lambda: now[0], lease_s=30).join()
    second.leave()


def test_the_target_is_claimed_exactly_across_workers(run_url):
    workers = [SharedRun(run_url, f"shard-{i}-of-3") for i in range(1, 4)]
    for worker in workers:
        worker.join()
    granted = [0, 0, 0]

    def keep(i: int) -> None:
        for _ in range(100):
            granted[i] += workers[i].claim(7, target=1000)

    threads = [threading.Thread(target=keep, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 1000
    assert workers[0].claim(5, target=1000) == 0
    workers[1].leave()  # a restarted worker gives up its count and claims its records again
    restarted = SharedRun(run_url, "shard-2-of-3")
    restarted.join()
    assert restarted.claim(granted[1] + 5, target=1000) == granted[1]
    for worker in (workers[0], workers[2], restarted):
        worker.leave()


def test_shards_split_items_target_and_cap():
    assert Shard.parse("2/3").take(list(range(10))) == [1, 4, 7]
    assert [Shard(i, 3).share(10) for i in (1, 2, 3)] == [4, 3, 3]
    with pytest.raises(SettingError, match=r"'shard' '4/3': expected i/N"):
        Shard.parse("4/3")


# ---------------------------------------------------------------- three generate workers


def generate(out: Path, base_url: str, shard: str, run_url: str, cap: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "selfinstruct", "generate", "--out", str(out), "--base-url", base_url]
        + ["--model", "gpt-4o-mini", "--num-instructions", "100000", "--max-cost", str(cap), "--concurrency", "4"]
        + ["--shard", shard, "--shared-run", run_url],
        stdout=subprocess.DEVNULL,
        stderr=open(out.parent / f"{out.name}.log", "a"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def answers(out: Path) -> int:
    ledger = RunFiles(out).ledger
    return sum(1 for _, event in read_jsonl(ledger) if event.get("event") == "response") if ledger.exists() else 0


def test_three_workers_one_killed_and_restarted_stay_under_the_cap(run_url, tmp_path):
    cap = 0.04  # about 25 answers of 20 tasks at gpt-4o-mini's price
    server = StandIn(latency=0.02, tasks=20, start_timeout_s=120)  # slow to start on a loaded machine
    base_url = server.base_url
    outs = [tmp_path / f"w{i}" for i in (1, 2, 3)]
    try:
        workers = [generate(out, base_url, f"{i}/3", run_url, cap) for i, out in enumerate(outs, 1)]
        deadline = time.monotonic() + 60
        while answers(outs[1]) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        workers[1].send_signal(signal.SIGKILL)  # mid-run, with requests in flight
        workers[1].wait()
        assert workers[0].wait(timeout=120) == 0 and workers[2].wait(timeout=120) == 0
        import redis

        client = redis.Redis.from_url(run_url.split("?")[0])
        name = run_url.split("run=")[1]
        (worker2,) = [k for k in client.hkeys(f"selfinstruct:run:{name}:leases") if k.startswith(b"shard-2-of-3-")]
        # what it had in flight stays reserved: the provider may bill it
        assert float(client.hget(f"selfinstruct:run:{name}:held", worker2)) > 0
        # a kill -9 leaves its lease, which lapses after LEASE_S (the restart would wait it out;
        # the test clears it as the lapse would)
        client.hdel(f"selfinstruct:run:{name}:leases", worker2)
        assert generate(outs[1], base_url, "2/3", run_url, cap).wait(timeout=120) == 0
    finally:
        server.close()

    costs = [json.loads(RunFiles(out).cost.read_text()) for out in outs]
    spent = sum(cost["cost_usd"] for cost in costs)
    possibly = sum(cost.get("unsettled_usd") or 0 for cost in costs)
    assert spent + possibly <= cap
    assert spent > cap * 0.5  # the workers did spend the budget
    assert all(json.loads(RunFiles(out).stats.read_text())["status"] == "max cost reached" for out in outs)
    held = {k.decode()[:12]: float(v) for k, v in client.hgetall(f"selfinstruct:run:{name}:held").items()}
    assert held == {"shard-1-of-3": 0, "shard-2-of-3": 0, "shard-3-of-3": 0}  # every reservation settled

    result = merge(outs, tmp_path / "merged")
    texts = [r["instruction"] + r["input"] for _, r in read_jsonl(tmp_path / "merged" / "data.jsonl")]
    assert len(texts) == len(set(texts)) == result.records
    assert result.stats["shards"]["2/3"]["records"] > 0


def test_the_run_target_is_exact_and_stops_every_worker(run_url, tmp_path):
    """Two workers on one stand-in at once, then a third: the shards' data.jsonl hold exactly the
    target between them (the rest is surplus), and a worker started after it is reached asks nothing."""
    from fake_openai import FakeOpenAI
    from fake_run import real_run

    from selfinstruct.engine.job import StopReason
    from selfinstruct.tasks.bootstrap import generate

    with FakeOpenAI(delay_s=0.01) as server:

        def worker(shard: str):
            out = tmp_path / shard.replace("/", "of")
            config = real_run(server.base_url, out, 40).model_copy(update={"concurrency": 3})
            config = type(config)(**{**config.model_dump(exclude_unset=True), "shard": shard, "shared_run": run_url})
            return out, generate(config, out, progress=False)

        results = {}
        threads = [threading.Thread(target=lambda s=s: results.update([(s, worker(s))])) for s in ("1/3", "2/3")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        late_out, late = worker("3/3")

    assert sum(result.accepted for _, result in results.values()) == 40
    assert all(result.stop_reason is StopReason.TARGET_REACHED for _, result in results.values())
    assert late.stop_reason is StopReason.TARGET_REACHED and late.cost["requests"] == 0
    merged = merge([out for out, _ in results.values()] + [late_out], tmp_path / "merged")
    assert merged.records == 40
