"""`filter --engine ray` against the local path: the same decisions, on a local Ray cluster
that this module starts (2 cores, no dashboard) and stops.

Records are the real T0 prompts (many exact and near-duplicates among them) cut to an
instruction, plus edited copies of earlier ones (words dropped or swapped), so that chains
form: a copy of a record that was itself dropped as a near duplicate is judged only against
the kept records, and buckets fill up to `max_bucket`."""

from __future__ import annotations

import gzip
import json
import random
import sys

import pytest
import ray
from click.testing import CliRunner
from conftest import T0_PROMPTS

from selfinstruct.clean import clean_dataset
from selfinstruct.clean.cleaner import Cleaner
from selfinstruct.clean.presets import load_preset
from selfinstruct.clean.ray_engine import verdicts_on_ray
from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError
from selfinstruct.records import read_jsonl


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield
    ray.shutdown()


def t0_records(n: int | None, copies: int = 0, seed: int = 0) -> list[dict]:
    with gzip.open(T0_PROMPTS, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:n]
    records = [
        {
            "id": f"t0-{i}",
            "instruction": row["prompt"][:400],
            "input": "",
            # the prompt's closing words: an output on the instruction's topic, as the off-topic rule
            # screens it without its sentence model (which would only slow the test down)
            "output": "The answer: " + " ".join(row["prompt"].split()[-12:]),
        }
        for i, row in enumerate(rows)
    ]
    rng = random.Random(seed)
    for i in range(copies):
        original = rng.choice(records)
        words = original["instruction"].split()
        for _ in range(rng.randint(0, max(1, len(words) // 4))):
            j = rng.randrange(len(words))
            words[j] = rng.choice(words) if rng.random() < 0.5 else ""
        at = rng.randrange(len(records) + 1)
        records.insert(at, {**original, "id": f"copy-{i}", "instruction": " ".join(w for w in words if w)})
    return records


def decisions(out) -> tuple[list, list, dict]:
    """Kept ids in order; each rejection's id, reason, detail and the record it duplicates; the counts."""
    kept = [row["id"] for _, row in read_jsonl(out / "data.jsonl")]
    rejected = [
        (row["id"], row["reason"], row["detail"], row.get("duplicate_of"))
        for _, row in read_jsonl(out / "rejected.jsonl")
    ]
    stats = json.loads((out / "stats.json").read_text())
    return kept, rejected, {k: stats[k] for k in ("seen", "kept", "rejected", "fixed")}


def both_engines(tmp_path, records: list[dict]) -> tuple[tuple, tuple]:
    src = tmp_path / "records.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    clean_dataset(src, tmp_path / "local", progress=False)
    on_ray = clean_dataset(src, tmp_path / "ray", engine="ray", progress=False)
    assert on_ray.stats["engine"] == "ray" and set(on_ray.stats["stage_seconds"]) >= {"rules_signatures", "near"}
    return decisions(tmp_path / "local"), decisions(tmp_path / "ray")


def test_same_decisions_as_the_local_path(tmp_path):
    local, on_ray = both_engines(tmp_path, t0_records(2000, copies=600))
    stats = local[2]
    # the sample exercises what must agree: rules, exact copies, near duplicates (267, 347, 874)
    assert stats["rejected"]["exact_duplicate"] > 200 and stats["rejected"]["near_duplicate"] > 600
    assert stats["kept"] > 200
    assert on_ray == local


@pytest.mark.slow
def test_same_decisions_on_all_t0_prompts(tmp_path):
    local, on_ray = both_engines(tmp_path, t0_records(None))
    assert local[2]["seen"] == 55185
    assert on_ray == local


def test_records_stream_through_in_chunks_in_record_order():
    """Many small chunks (11 here): each chunk's verdicts come back in record order, a duplicate
    names a record of an earlier chunk by its id, and the input is a one-pass generator that
    the driver reads once, as it reads a file."""
    records = t0_records(2000, copies=600)
    local = Cleaner(load_preset("default")).check_all(records, [str(i) for i in range(len(records))])
    read = []

    def once():
        for record in records:
            read.append(record["id"])
            yield record

    seconds = {}
    on_ray = list(verdicts_on_ray(Cleaner(load_preset("default")), once(), seconds=seconds, progress=False, chunk=250))
    assert len(read) == len(records) == len(on_ray)
    assert [(v.record, v.rejection) for v in on_ray] == [(v.record, v.rejection) for v in local]
    ids = [record["id"] for record in records]
    expected = [None if v.duplicate_of is None else ids[int(v.duplicate_of)] for v in local]
    assert [v.duplicate_of for v in on_ray] == expected
    crossing = [i for i, v in enumerate(on_ray) if v.duplicate_of and i // 250 != ids.index(v.duplicate_of) // 250]
    assert len(crossing) > 100  # duplicates of records in other chunks: the case chunking could get wrong
    assert set(seconds) >= {"rules_signatures", "exact", "banding", "near", "verdicts"}


def test_a_bad_line_far_down_stops_the_filter_and_writes_nothing(tmp_path):
    src = tmp_path / "records.jsonl"
    lines = [json.dumps(r) for r in t0_records(300)]
    src.write_text("\n".join(lines[:250] + ['{"instruction": "cut off', *lines[250:]]) + "\n")
    with pytest.raises(SelfInstructError, match=r"records\.jsonl:251: not valid JSON"):
        clean_dataset(src, tmp_path / "out", engine="ray", progress=False)
    assert not list((tmp_path / "out").glob("*.jsonl*"))


def test_filter_command_runs_on_ray(tmp_path):
    src = tmp_path / "records.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in t0_records(400)))
    result = CliRunner().invoke(main, ["filter", str(src), "--out", str(tmp_path / "ray"), "--engine", "ray"])
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and "near_duplicate" in result.output
    CliRunner().invoke(main, ["filter", str(src), "--out", str(tmp_path / "local"), "--quiet"])
    assert decisions(tmp_path / "ray") == decisions(tmp_path / "local")


def test_without_ray_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    src = tmp_path / "records.jsonl"
    src.write_text(json.dumps(t0_records(1)[0]) + "\n")
    with pytest.raises(SelfInstructError, match=r"pip install 'selfinstruct\[ray\]'"):
        clean_dataset(src, tmp_path / "out", engine="ray", progress=False)
    result = CliRunner().invoke(main, ["filter", str(src), "--out", str(tmp_path / "out"), "--engine", "ray"])
    assert result.exit_code != 0
    assert "pip install 'selfinstruct[ray]'" in result.output and len(result.output.strip().splitlines()) == 1


def test_a_shared_index_is_refused_before_any_work(tmp_path):
    src = tmp_path / "records.jsonl"
    src.write_text(json.dumps(t0_records(1)[0]) + "\n")
    result = CliRunner().invoke(
        main, ["filter", str(src), "--out", str(tmp_path / "out"), "--engine", "ray", "--lsh-storage", "redis://x:1"]
    )
    assert result.exit_code != 0 and "--lsh-storage" in result.output and "--engine" in result.output
    assert not (tmp_path / "out").exists()
