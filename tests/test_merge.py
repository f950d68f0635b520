"""`selfinstruct merge`: the shards of one run (`--shard i/N`, here without a shared store, so
they overlap) made into one run directory that `cost` and `export` read."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fake_openai import FakeOpenAI
from fake_run import real_run

from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError, SettingError
from selfinstruct.merge import merge
from selfinstruct.records import read_jsonl
from selfinstruct.report.cost import cost_report
from selfinstruct.tasks.answer import AnswerConfig, answer
from selfinstruct.tasks.bootstrap import generate


def shard_run(tmp_path, shard: str, target: int = 30, **settings):
    """One shard of a 30-record run against its own stand-in: each stand-in draws the same tasks
    (its generator's seed is fixed), so the shards repeat each other's records."""
    out = tmp_path / f"shard{shard[0]}"
    with FakeOpenAI() as server:
        config = real_run(server.base_url, out, target).model_copy(update={"preset": "default", "shard": shard})
        config = type(config)(**{**config.model_dump(exclude_unset=True), **settings})
        result = generate(config, out, progress=False)
    return out, result


def test_shards_split_the_target_and_merge_drops_their_copies_of_each_other(tmp_path):
    first, one = shard_run(tmp_path, "1/2")
    second, two = shard_run(tmp_path, "2/2")
    assert one.accepted == two.accepted == 15  # each shard takes its half of the target
    assert json.loads((first / "config.json").read_text())["identity"]["shard"] == "1/2"

    result = merge([first, second], tmp_path / "merged")
    merged = tmp_path / "merged"
    kept = [r for _, r in read_jsonl(merged / "data.jsonl")]
    rejected = [r for _, r in read_jsonl(merged / "rejected.jsonl")]
    shard1 = [f"1/2:{r['id']}" for _, r in read_jsonl(first / "data.jsonl")]
    assert [r["id"] for r in kept][: len(shard1)] == shard1  # the first shard's copy is kept, in order
    assert len({r["id"] for r in kept}) == len(kept)  # each shard numbers its records from r000000
    assert result.duplicates == len(rejected) > 0
    assert {r["shard"] for r in rejected} == {"2/2"}
    assert all(r["duplicate_of"].startswith("1/2:") and "duplicate" in r["reason"] for r in rejected), rejected
    stats = json.loads((merged / "stats.json").read_text())
    assert stats["target"] == 30
    assert stats["shards"]["1/2"]["records"] == 15
    assert (
        stats["shards"]["2/2"]["records"] + stats["shards"]["2/2"]["duplicate_across_shards"]
        == 15 + two.stats["surplus"]
    )

    # one cost report over both shards' ledgers
    report = cost_report(merged)
    shard_costs = [json.loads((d / "cost.json").read_text())["cost_usd"] for d in (first, second)]
    assert report.cost_usd == pytest.approx(sum(shard_costs))
    assert report.requests == one.cost["requests"] + two.cost["requests"]
    out = CliRunner().invoke(main, ["export", str(merged), "--format", "alpaca", "--to", str(tmp_path / "a.json")])
    assert out.exit_code == 0, out.output
    assert len(json.loads((tmp_path / "a.json").read_text())) == len(kept)
    card = (tmp_path / "a.json.README.md").read_text()
    assert "Made by 2 workers of one run" in card
    assert f"| 2/2 | {stats['shards']['2/2']['records']} |" in card

    # a merged directory is read, never resumed; a second merge there needs --overwrite
    with FakeOpenAI() as server:
        with pytest.raises(SettingError, match="is a merge of the runs"):
            generate(real_run(server.base_url, merged, 30).model_copy(update={"preset": "default"}), merged)
    with pytest.raises(SettingError, match="earlier merge"):
        merge([first, second], merged)
    cli = CliRunner().invoke(main, ["merge", str(first), str(second), "--out", str(merged), "--overwrite"])
    assert cli.exit_code == 0 and "duplicates across shards removed" in cli.output


def test_merge_refuses_runs_of_other_settings_and_a_shard_twice(tmp_path):
    first, _ = shard_run(tmp_path, "1/2", target=10)
    other, _ = shard_run(tmp_path, "2/2", target=10, temperature=0.5)
    with pytest.raises(SelfInstructError, match=r"other settings .*temperature: 1.0 vs 0.5"):
        merge([first, other], tmp_path / "m1")
    with pytest.raises(SelfInstructError, match="are both shard 1/2"):
        merge([first, first], tmp_path / "m2")
    with pytest.raises(SettingError, match="two or more"):
        merge([first], tmp_path / "m3")


def test_an_item_task_shard_answers_every_nth_item(tmp_path):
    source = tmp_path / "questions.jsonl"
    source.write_text(
        "".join(json.dumps({"instruction": f"Question number {i}?", "input": ""}) + "\n" for i in range(10))
    )
    preset = tmp_path / "keep-all.toml"
    preset.write_text('description = "keep every answer"\n[dedup]\nenabled = false\n')
    with FakeOpenAI() as server:
        settings = {"base_url": server.base_url, "model": "m", "price_in": 0, "price_out": 0, "preset": str(preset)}
        for shard in ("1/3", "2/3", "3/3"):
            answer(AnswerConfig(source=str(source), shard=shard, **settings), tmp_path / shard[0], progress=False)
    asked = {shard: sorted(r["instruction"] for _, r in read_jsonl(tmp_path / shard / "data.jsonl")) for shard in "123"}
    assert asked["2"] == [f"Question number {i}?" for i in (1, 4, 7)]
    assert sorted(sum(asked.values(), [])) == sorted(f"Question number {i}?" for i in range(10))


def test_shard_settings_are_checked():
    with pytest.raises(SettingError, match=r"'shard' '0/2': expected i/N"):
        AnswerConfig(source="x.jsonl", base_url="http://127.0.0.1:1/v1", model="m", shard="0/2")
    with pytest.raises(SettingError, match=r"'shared_run' needs 'shard'"):
        AnswerConfig(source="x.jsonl", base_url="http://127.0.0.1:1/v1", model="m", shared_run="redis://h:1/0?run=a")
    with pytest.raises(SettingError, match=r"expected redis://HOST:PORT\[/DB\]\?run=NAME"):
        AnswerConfig(
            source="x.jsonl", base_url="http://127.0.0.1:1/v1", model="m", shard="1/2", shared_run="redis://h:1/0"
        )
    from selfinstruct.eval.run import EvalConfig

    with pytest.raises(SettingError, match="an eval scores the whole set: leave out 'shard'"):
        EvalConfig(set="x.jsonl", shard="1/2")
