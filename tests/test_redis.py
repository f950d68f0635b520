"""The duplicate index shared through Redis, against a real redis-server on loopback.

`make test` installs Debian's redis-server when it is missing (`make redis-server`).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import random
import sys
import time
from pathlib import Path

import pytest

from selfinstruct.clean import Cleaner, clean_dataset, load_preset
from selfinstruct.clean.dedup import NEAR_DUPLICATE, DedupSettings, DuplicateIndex, rouge_l, tokenize
from selfinstruct.clean.dedup.store import RedisStore, parse_redis_url
from selfinstruct.errors import SelfInstructError
from selfinstruct.records import read_jsonl, read_records
from redis_server import free_port

SEEDS = Path(__file__).resolve().parents[1] / "seeds" / "seed_tasks.jsonl"


@pytest.fixture
def index_url(redis_url, request):
    """A fresh index name per test on the shared server."""
    return f"{redis_url}?index={request.node.name}"


def variants(n_groups: int = 40) -> list[str]:
    """Groups of near-duplicates: seed instructions with a word or two changed."""
    rng = random.Random(0)
    seeds = [r["instruction"] for r in read_records(SEEDS) if len(r["instruction"].split()) >= 8][:n_groups]
    texts = []
    for seed in seeds:
        words = seed.split()
        for _ in range(4):
            edited = list(words)
            edited[rng.randrange(len(edited))] = rng.choice(["quickly", "please", "simple", "short"])
            texts.append(" ".join(edited))
    return texts


def test_workers_see_each_others_texts(index_url):
    settings = DedupSettings()
    a = DuplicateIndex(settings, RedisStore(index_url, settings), namespace="worker-a")
    b = DuplicateIndex(settings, RedisStore(index_url, settings), namespace="worker-b")
    a.add([("seed_0", "Give three tips for staying healthy.")])
    assert b.check("1", "Give three good tips for staying healthy.").of == "seed_0"
    assert b.check("2", "Describe the water cycle to a ten year old.") is None
    duplicate = a.check("1", "Describe the water cycle to a ten year old child.")
    assert duplicate.reason == NEAR_DUPLICATE and duplicate.of == "worker-b/2"  # confirmed on b's text, from Redis
    assert a.check("2", "Describe the water cycle to a ten year old!").of == "worker-b/2"  # exact, across workers
    assert len(a) == len(b) == 2


def _worker(url: str, name: str, texts: list[str], seed: int) -> None:
    settings = DedupSettings()
    index = DuplicateIndex(settings, RedisStore(url, settings), namespace=name)
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    for i in order:
        index.check(str(i), texts[i])


def test_concurrent_workers_never_keep_a_pair_of_duplicates(index_url):
    """Four processes check the same 160 texts in different orders at the same time.
    Check-and-insert is atomic under the Redis lock, so what ends up indexed (kept by
    someone) has no pair above the ROUGE-L threshold, and no group is kept twice."""
    texts = variants()
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_worker, args=(index_url, f"w{n}", texts, n)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    settings = DedupSettings()
    store = RedisStore(index_url, settings)
    kept = [store.indexed_text(k.decode()) for k in store.client.hkeys(store._entries_key)]
    assert 0 < len(kept) < len(texts) // 2
    for x, y in itertools.combinations(kept, 2):
        assert rouge_l(x, y) <= 0.7 and rouge_l(y, x) <= 0.7, (x, y)
    # the same texts in one process, one worker, keep as many
    single = DuplicateIndex(settings)
    assert sum(single.check(str(i), t) is None for i, t in enumerate(texts)) == len(kept)


def test_filter_processes_share_the_index(index_url, tmp_path):
    texts = variants(10)
    rows = [{"instruction": t, "input": "", "output": "An answer."} for t in texts]
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in rows[:20]))
    second.write_text("".join(json.dumps(r) + "\n" for r in rows[20:] + rows[:3]))
    one = clean_dataset(first, tmp_path / "one", lsh_storage=index_url)
    two = clean_dataset(second, tmp_path / "two", lsh_storage=index_url)
    assert one.stats["kept"] == 5  # one per group
    assert two.stats["kept"] == 5  # the five other groups; the three copies of first's records go
    foreign = [
        r["duplicate_of"] for _, r in read_jsonl(tmp_path / "two" / "rejected.jsonl") if r["instruction"] in texts[:3]
    ]
    assert len(foreign) == 3 and all(d.startswith("filter:") for d in foreign)
    # running the same filter again replays the same decisions: nothing it kept is a duplicate of itself now
    again = clean_dataset(first, tmp_path / "again", lsh_storage=index_url)
    assert (tmp_path / "again" / "data.jsonl").read_text() == (tmp_path / "one" / "data.jsonl").read_text()
    assert again.stats["rejected"] == one.stats["rejected"]


def test_generate_workers_share_the_index(index_url, tmp_path):
    """Two runs of the bootstrap loop with the same answers: the second keeps nothing."""
    from fake_run import replayed, write_answer

    from selfinstruct.tasks.bootstrap import GenerateConfig

    instructions = [
        "Write a limerick about a cat who is afraid of mice.",
        "List four inventions of the nineteenth century that changed daily life.",
        "Explain to a child why the moon changes shape during the month.",
        "Suggest a name for a bakery that only sells sourdough bread.",
    ]
    tasks = [{"instruction": t, "input": "", "output": "An answer."} for t in instructions]
    config = GenerateConfig(lsh_storage=index_url).resolved()
    kept = []
    for name in ("run-a", "run-b"):
        write_answer(tmp_path / name, json.dumps({"tasks": tasks}))
        kept.append(replayed(tmp_path / name, config).state.accepted)
    assert kept == [4, 0]
    rejected = [r for _, r in read_jsonl(tmp_path / "run-b" / "rejected.jsonl")]
    assert any(str(tmp_path / "run-a") in str(r.get("duplicate_of")) for r in rejected)
    # resuming run-a replays to the same records, its own entries are not duplicates of themselves
    assert replayed(tmp_path / "run-a", config).state.accepted == kept[0]


def test_an_index_refuses_other_settings(index_url):
    RedisStore(index_url, DedupSettings())
    with pytest.raises(SelfInstructError, match=r"other dedup settings \(bands=32"):
        RedisStore(index_url, DedupSettings(bands=16))


def test_cleaner_takes_the_url(index_url):
    cleaner = Cleaner(load_preset("default"), lsh_storage=index_url, namespace="x")
    assert isinstance(cleaner.dedup.store, RedisStore)


def test_url_errors():
    with pytest.raises(SelfInstructError, match="expected redis://HOST:PORT"):
        parse_redis_url("http://localhost:6379")
    assert parse_redis_url("redis://h:7000/2?index=mine") == ({"host": "h", "port": 7000, "db": 2}, "mine")
    with pytest.raises(SelfInstructError, match="cannot reach Redis"):
        RedisStore(f"redis://127.0.0.1:{free_port()}/0", DedupSettings())


def test_missing_redis_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(SelfInstructError, match=r"pip install 'selfinstruct\[redis\]'"):
        RedisStore("redis://127.0.0.1:6379/0", DedupSettings())


def test_tokens_round_trip_through_redis(index_url):
    settings = DedupSettings()
    store = RedisStore(index_url, settings)
    index = DuplicateIndex(settings, store)
    text = "Ünïcode café, numbers 3.14 and CAPS"
    index.check("k", text)
    assert store.indexed_text("k") == tokenize(text)
