"""Seeds that cannot fit a prompt are refused before anything is sent, naming the seed; too few
seeds for the examples a prompt shows are warned about."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_openai import FakeOpenAI
from fake_teacher import FakeTeacher, tasks_answer

from selfinstruct.cli import main
from selfinstruct.errors import SettingError
from selfinstruct.tasks.bootstrap import GenerateConfig, generate

SEEDS = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "seeds" / "seed_tasks.jsonl").read_text().splitlines()[:10]
]


def seed_file(path: Path, *extra: dict, at: int = 5) -> Path:
    """The first ten bundled seeds with `extra` seeds put in at line `at + 1`."""
    lines = [json.dumps(s) for s in SEEDS[:at]] + [json.dumps(s) for s in extra] + [json.dumps(s) for s in SEEDS[at:]]
    path.write_text("\n".join(lines) + "\n")
    return path


def long_seed(words: int, name: str = "seed_long") -> dict:
    return {
        "id": name,
        "instruction": "Summarize this text: " + "river garden " * (words // 2),
        "instances": [{"input": "", "output": "A summary."}],
    }


@pytest.mark.parametrize(("words", "megabytes"), [(1_250_000, 5), (12_500_000, 50)])
def test_a_seed_too_long_for_the_context_is_refused_before_any_request(tmp_path, words, megabytes):
    """How long the refusal takes and its memory (50 MB: 1.3 s and 285 MB, 5,080 MB and two requests
    sent before) are measured by benchmarks/seed_limits.py."""
    seeds = seed_file(tmp_path / "seeds.jsonl", long_seed(words))
    assert seeds.stat().st_size > megabytes * 2**20
    with FakeOpenAI() as server:
        result = CliRunner().invoke(
            main,
            [
                "generate",
                "--out",
                str(tmp_path / "run"),
                "--base-url",
                server.base_url,
                "--model",
                "gpt-4o-mini",
                "--seeds",
                str(seeds),
                "-n",
                "10",
                "--quiet",
            ],
        )
        assert server.calls == []
    assert result.exit_code == 1
    message = result.output.strip().splitlines()[-1]
    assert message.startswith(f"Error: {seeds}:6: seed task 'seed_long' is too long for any prompt")
    assert "(--context-tokens 128,000 less --max-tokens 3,072)" in message
    assert not (tmp_path / "run" / "ledger.jsonl").exists()


def config(seeds: Path, **overrides) -> GenerateConfig:
    settings = dict(
        base_url="http://127.0.0.1:9/v1",
        model="fake-teacher",
        preset="alpaca",
        tasks_per_request=5,
        num_instructions=5,
        concurrency=1,
        max_tokens=1024,
        seeds=str(seeds),
    )
    return GenerateConfig(**{**settings, **overrides})


def test_seeds_that_fit_alone_but_not_together_are_refused(tmp_path):
    """Each long seed fits a prompt alone; the three longest in one prompt do not."""
    seeds = seed_file(tmp_path / "seeds.jsonl", *(long_seed(300, f"seed_long_{i}") for i in range(3)), at=2)
    tight = dict(context_tokens=1024 + 1200)  # 1,200 tokens for a prompt: about 400 of its own, 3 x 300 of examples
    with pytest.raises(
        SettingError,
        match=r"seeds.jsonl:3: seed task 'seed_long_0' is 3\d\d tokens: a prompt that shows it with the 2 next longest seeds is 1,",
    ) as refused:
        generate(
            config(seeds, **tight),
            tmp_path / "three",
            teacher=FakeTeacher(lambda rid: tasks_answer(5, rid)),
            progress=False,
        )
    assert refused.value.fields[0] == "context_tokens"
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid))
    result = generate(config(seeds, examples_per_prompt=1, **tight), tmp_path / "one", teacher=teacher, progress=False)
    assert result.accepted == 5 and teacher.calls


def test_fewer_seeds_than_examples_per_prompt_warns(tmp_path, capsys):
    seeds = tmp_path / "two.jsonl"
    seeds.write_text("".join(json.dumps(s) + "\n" for s in SEEDS[:2]))
    generate(
        config(seeds, examples_per_prompt=5),
        tmp_path / "run",
        teacher=FakeTeacher(lambda rid: tasks_answer(5, rid)),
        progress=False,
    )
    assert f"{seeds}: 2 seed task(s), fewer than the 5 examples a prompt is to show" in capsys.readouterr().err
