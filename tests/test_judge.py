"""The judge job (AlpaGasus): a teacher rates every record 0-5, the records at or above the
threshold are kept, `filter --min-score` re-selects without asking, and the card tells."""

import json
import re

import pytest
from click.testing import CliRunner
from fake_batch import FakeBatchAPI
from fake_openai import FakeOpenAI
from fake_run import records as run_records
from fake_run import write_run
from fake_teacher import FakeTeacher

from selfinstruct.clean import clean_dataset, load_preset
from selfinstruct.clean.rules.score import LowScore, with_min_score
from selfinstruct.cli import main
from selfinstruct.engine.job import JobStopped, StopPolicy, StopReason
from selfinstruct.errors import SettingError
from selfinstruct.export.exporter import export_dataset, make_options
from selfinstruct.pricing import price_for
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.judge import JudgeConfig, judge
from selfinstruct.tasks.judge.rating import Rating, RatingError, build_messages, parse_rating

# Record i asks for i + i; its score is SCORES[i % 6], so the threshold's edge (4.5) is there.
SCORES = [5, 4.5, 4, 3.5, 2, 0]


def sums(n: int) -> list[dict]:
    return [
        {
            "id": f"s{i}",
            "instruction": f"What is {i} plus {i}?",
            "input": "",
            "output": f"{2 * i}",
            "teacher_model": "generator-7b",
            "created": "2026-11-20T10:00:00.000+00:00",
        }
        for i in range(n)
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read(path) -> list[dict]:
    return [row for _, row in read_jsonl(path)] if path.exists() else []


def item_of(prompt: str) -> int:
    return int(re.search(r"What is (\d+) plus", prompt).group(1))


def rate(prompt: str):
    i = item_of(prompt)
    return SCORES[i % 6], f"Record {i} is {'right' if SCORES[i % 6] >= 4.5 else 'off'}."


def config(source, server, **overrides) -> JudgeConfig:
    return JudgeConfig(**{"source": str(source), "base_url": server.base_url, "model": "judge-model", **overrides})


@pytest.fixture
def source(tmp_path):
    return write_jsonl(tmp_path / "sums.jsonl", sums(12))


# ---------------------------------------------------------------- reading ratings


@pytest.mark.parametrize(
    "content, score, rationale",
    [
        ('{"score": 4.5, "rationale": "Correct and complete."}', 4.5, "Correct and complete."),
        ('```json\n{"score": 3, "rationale": "Terse."}\n```', 3.0, "Terse."),
        ('Here is my rating: {"score": "4", "rationale": "Fine."}', 4.0, "Fine."),  # prose around, a number in quotes
        ("4.5\nThe answer is right\nand complete.", 4.5, "The answer is right and complete."),  # AlpaGasus's two lines
        ("Score: 4/5 - correct, but terse.", 4.0, "correct, but terse."),
        ("**Rating: 5 out of 5**\n\nExplanation: exactly right.", 5.0, "exactly right."),
        ("0", 0.0, ""),
    ],
)
def test_ratings_are_read_in_either_form(content, score, rationale):
    assert parse_rating(content, "stop") == Rating(score, rationale)


@pytest.mark.parametrize(
    "content, finish_reason, problem",
    [
        ("", "stop", "empty answer"),
        ("   \n", "stop", "empty answer"),
        ("Great answer!", "stop", "the first line is not a score: 'Great answer!'"),
        ("8/10\nGood.", "stop", "the score 8/10 is not on the 0-5 scale"),
        ("7\nVery good.", "stop", "the score 7 is not on the 0-5 scale"),
        ("-1\nBad.", "stop", "the score -1 is not on the 0-5 scale"),
        ('{"score": "high", "rationale": "x"}', "stop", "the score is not a number: '\"high\"'"),
        ('{"score": true, "rationale": "x"}', "stop", "the score is not a number: 'true'"),
        ('{"score": NaN, "rationale": "x"}', "stop", "the score nan is not on the 0-5 scale"),
        ('{"rationale": "no score"}', "stop", "the answer has no 'score'"),
        ('{"score": 4.5, "rationale": 3}', "stop", "the rationale is not a string"),
        ('{"score": 4.5, "rationale": "The answ', "stop", "the answer is not valid JSON"),
        ('{"score": 4.5, "rationale": "The answ', "length", "the answer hit the length limit"),
        ("4.5\nThe answer is right but", "length", "the answer hit the length limit"),  # the rationale was cut off
    ],
)
def test_malformed_ratings_say_what_is_wrong(content, finish_reason, problem):
    with pytest.raises(RatingError) as error:
        parse_rating(content, finish_reason)
    assert problem in str(error.value)


def test_the_prompt_shows_the_record_and_asks_for_alpagasus_scale():
    record = {"instruction": "Add the numbers.", "input": "2, 3", "output": "5"}
    for fmt in ("json", "text"):
        system, user = build_messages(record, fmt)
        assert system["role"] == "system" and "feedback on the performance of an AI assistant" in system["content"]
        assert "[Instruction]\nAdd the numbers.\n\n[Input]\n2, 3\n\n[Response]\n5\n" in user["content"]
        assert "on a scale of 0 to 5" in user["content"]
    assert '{"score"' in build_messages(record, "json")[1]["content"]
    assert "single line containing only the score" in build_messages(record, "text")[1]["content"]
    assert "[Input]\n(none)" in build_messages({**record, "input": ""}, "json")[1]["content"]


def test_the_threshold_rule_keeps_scores_at_or_above_it_and_goes_last():
    rule = LowScore(min_score=4.5)
    assert rule.check({"score": 4.5}) is None and rule.check({"score": 5}) is None
    assert rule.check({"score": 4.49}) == "score 4.49 < 4.5"
    assert rule.check({"score": "4.5"}) == "score '4.5' is not a number from 0 to 5"  # as a judge never writes it
    assert rule.check({"instruction": "unrated"}) is None  # nothing to compare: see filter --min-score
    rules = with_min_score(load_preset("answer").rules, 3)
    assert isinstance(rules[-1], LowScore) and rules[-1].min_score == 3  # a low_score reject passed every other rule
    assert [r.min_score for r in with_min_score(load_preset("judge").rules, 2)] == [2]


# ---------------------------------------------------------------- the job


@pytest.mark.parametrize("response_format", ["auto", "text"])
def test_scores_and_rationales_land_in_the_records_and_the_threshold_keeps_the_best(tmp_path, source, response_format):
    with FakeOpenAI(rate=rate) as server:
        result = judge(config(source, server, response_format=response_format), tmp_path / "run", progress=False)
    assert result.stop_reason is StopReason.WORK_DONE
    kept, rejected = read(tmp_path / "run" / "data.jsonl"), read(tmp_path / "run" / "rejected.jsonl")
    assert sorted(r["id"] for r in kept) == sorted(
        f"s{i}" for i in range(12) if SCORES[i % 6] >= 4.5
    )  # 4.5 itself is kept
    assert result.accepted == len(kept) == 4
    for record in kept + rejected:
        i = int(record["id"][1:])
        assert (
            record["score"] == SCORES[i % 6]
            and record["rationale"] == f"Record {i} is {'right' if SCORES[i % 6] >= 4.5 else 'off'}."
        )
        assert record["judge_model"] == "judge-model" and re.fullmatch(r"r\d{6}", record["judge_request_id"])
        assert {k: record[k] for k in sums(1)[0]} == sums(12)[i]  # the source's own fields, untouched
    assert {r["reason"] for r in rejected} == {"low_score"} and len(rejected) == 8
    assert {r["detail"] for r in rejected} == {"score 4 < 4.5", "score 3.5 < 4.5", "score 2 < 4.5", "score 0 < 4.5"}
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["judge"] == {
        "threshold": 4.5,
        "scored": 12,
        "kept": 4,
        "histogram": {"5": 2, "4.5": 2, "4": 2, "3.5": 2, "2": 2, "0": 2},
    }
    assert stats["task"] == "judge" and stats["items"] == stats["answered_items"] == 12 and stats["unparseable"] == 0
    assert all(b["temperature"] == 0 for b in server.bodies)  # a judge says the same thing twice
    formats = {(b.get("response_format") or {}).get("type") for b in server.bodies}
    assert formats == ({"json_schema"} if response_format == "auto" else {None})


def test_a_judge_through_a_batch_keeps_the_same_records_at_half_price(tmp_path, source):
    with FakeBatchAPI(FakeOpenAI(rate=rate)) as server:
        result = judge(
            config(source, server, model="gpt-4o-mini", batch=True, batch_poll_s=0.01), tmp_path / "run", progress=False
        )
    assert result.stop_reason is StopReason.WORK_DONE and result.accepted == 4
    assert len(server.uploads) == 1 and len(server.uploads[0][1]) == 12  # every record in one batch
    kept = read(tmp_path / "run" / "data.jsonl")
    assert sorted(r["id"] for r in kept) == sorted(f"s{i}" for i in range(12) if SCORES[i % 6] >= 4.5)
    price = price_for("gpt-4o-mini")
    billed = sum(price.cost(u["prompt_tokens"], u["completion_tokens"], batch=True) for _, _, u in server.served)
    assert result.cost["cost_usd"] == pytest.approx(billed) and billed > 0


def test_malformed_ratings_are_counted_and_the_run_goes_on(tmp_path, source):
    malformed = {1: "Great answer!", 2: "12/10\nExcellent.", 3: "", 4: '{"score": "high", "rationale": "x"}'}

    def sometimes_malformed(prompt):
        i = item_of(prompt)
        return malformed[i] if i in malformed else rate(prompt)

    # the first request's answer is cut at the length limit (the fake's "truncated" fault)
    with FakeOpenAI(rate=sometimes_malformed, faults=["truncated"]) as server:
        result = judge(config(source, server, concurrency=1), tmp_path / "run", progress=False)
    assert result.stop_reason is StopReason.WORK_DONE and len(server.calls) == 12  # nothing asked again
    problems = [r for r in read(tmp_path / "run" / "rejected.jsonl") if r["reason"] == "unparseable"]
    cut = json.dumps({"score": 5, "rationale": "Record 0 is right."})
    assert [p["detail"] for p in problems] == [
        f"record s0: the answer hit the length limit before the rating was complete: {cut[: int(len(cut) * 0.7)]!r}",
        "record s1: the first line is not a score: 'Great answer!'",
        "record s2: the score 12/10 is not on the 0-5 scale",
        "record s3: empty answer",
        "record s4: the score is not a number: '\"high\"'",
    ]
    assert result.stats["unparseable"] == 5 and result.stats["judge"]["scored"] == 7
    assert sum(result.stats["judge"]["histogram"].values()) == 7


def test_a_resume_asks_nothing_twice_and_a_new_threshold_re_decides_without_asking(tmp_path, source):
    asked: list[int] = []

    def counting(prompt):
        asked.append(item_of(prompt))
        return rate(prompt)

    run = tmp_path / "run"
    with FakeOpenAI(rate=counting) as server:
        priced = {"price_in": 1000.0, "price_out": 1000.0, "concurrency": 2, "max_tokens": 200}  # $0.001 a token
        first = judge(config(source, server, max_cost=2.0, **priced), run, progress=False)
        assert first.stop_reason is StopReason.MAX_COST and 0 < len(asked) < 12
        done = len(asked)
        again = judge(config(source, server, max_cost=100.0, **priced), run, progress=False)
        assert again.stop_reason is StopReason.WORK_DONE
        assert sorted(asked) == list(range(12)) and len(server.calls) == 12  # each record asked once
        assert again.stats["this_session"]["responses"] == 12 - done
        assert again.stats["this_session"]["replayed_responses"] == 0  # the checkpoint held the first run's answers

        lower = judge(config(source, server, threshold=3.5, **priced), run, progress=False)  # not part of the identity
        assert len(server.calls) == 12 and lower.stats["this_session"]["responses"] == 0
        assert lower.stats["this_session"]["replayed_responses"] == 12  # every answer decided again from the ledger
    assert lower.accepted == 8 and lower.stats["judge"]["threshold"] == 3.5
    assert sorted(r["score"] for r in read(run / "data.jsonl")) == sorted([5, 4.5, 4, 3.5] * 2)
    assert {r["detail"] for r in read(run / "rejected.jsonl")} == {"score 2 < 3.5", "score 0 < 3.5"}
    assert lower.stats["judge"]["histogram"] == again.stats["judge"]["histogram"]

    with pytest.raises(SettingError, match=r"temperature: 0\.0 -> 0\.7"):
        judge(config(source, server, temperature=0.7), run, progress=False)


def test_a_judge_that_rates_everything_low_is_not_stopped_but_one_that_babbles_is(tmp_path, source):
    """A low score is a finding: only answers without a rating count towards the barren streak.
    The in-process teacher answers by request id."""
    low = FakeTeacher(lambda _: json.dumps({"score": 1, "rationale": "Wrong."}))
    result = judge(
        JudgeConfig(source=str(source), base_url="http://127.0.0.1:9/v1", model="judge-model", concurrency=1),
        tmp_path / "low",
        teacher=low,
        progress=False,
        policy=StopPolicy(max_barren_streak=3),
    )
    assert result.stop_reason is StopReason.WORK_DONE and result.accepted == 0 and len(low.calls) == 12

    babble = FakeTeacher(lambda _: "I think this is a fine answer overall.")
    with pytest.raises(JobStopped, match="the last 3 answers") as stopped:
        judge(
            JudgeConfig(source=str(source), base_url="http://127.0.0.1:9/v1", model="judge-model", concurrency=1),
            tmp_path / "babble",
            teacher=babble,
            progress=False,
            policy=StopPolicy(max_barren_streak=3),
        )
    assert stopped.value.reason is StopReason.BARREN_STREAK and len(babble.calls) == 3


def test_a_reasoning_judge_keeps_its_trace_in_the_ledger(tmp_path, source):
    with FakeOpenAI(rate=rate, reasoning="r1") as server:
        result = judge(config(source, server), tmp_path / "run", progress=False)
    assert result.accepted == 4 and result.stats["unparseable"] == 0
    assert all("reasoning" not in r and "</think>" not in r["rationale"] for r in read(tmp_path / "run" / "data.jsonl"))


# ---------------------------------------------------------------- re-selecting, and the card


@pytest.fixture
def judged(tmp_path, source):
    with FakeOpenAI(rate=rate) as server:
        judge(config(source, server), tmp_path / "judged", progress=False)
    return tmp_path / "judged"


@pytest.mark.parametrize("min_score, expected", [(3.5, 8), (4.5, 4), (5, 2), (0, 12)])
def test_filter_min_score_re_selects_without_asking(tmp_path, judged, min_score, expected):
    out = tmp_path / f"at-{min_score}"
    result = CliRunner().invoke(main, ["filter", str(judged), "--min-score", str(min_score), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"kept {expected} of 12 records" in result.output  # no server runs here: nothing could be asked
    kept = read(out / "data.jsonl")
    assert sorted(r["score"] for r in kept) == sorted(s for s in SCORES * 2 if s >= min_score)
    assert all("reason" not in r and "detail" not in r for r in kept)
    assert [r["judge_request_id"] for r in kept] == sorted(
        r["judge_request_id"] for r in kept
    )  # the order they were asked in
    stats = json.loads((out / "stats.json").read_text())
    assert stats["min_score"] == min_score and stats["preset"] == "judge" and stats["seen"] == 12


def test_filter_min_score_takes_any_scored_dataset_and_refuses_unscored_ones(tmp_path, judged, source):
    export_dataset(judged, make_options(format="jsonl", to=tmp_path / "judged.jsonl"))
    result = clean_dataset(tmp_path / "judged.jsonl", tmp_path / "five", min_score=5)
    assert result.stats["kept"] == 2 and result.stats["seen"] == 4  # the judge kept 4; 2 of them scored 5

    result = CliRunner().invoke(main, ["filter", str(source), "--min-score", "4", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert (
        f"{source}: 12 of 12 records have no score from 0 to 5 (record 0 (id 's0'): 'no score field')" in result.output
    )
    assert "--min-score selects records rated by `selfinstruct judge`" in result.output
    result = CliRunner().invoke(main, ["filter", str(judged), "--min-score", "6", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "--min-score 6: a judge's scores run from 0 to 5" in result.output


def test_the_card_shows_the_generation_the_judge_and_the_score_distribution(tmp_path):
    """generate run -> judge -> filter --min-score -> export: the card follows the chain back."""
    run = write_run(tmp_path / "run")  # 20 records by gpt-4o-mini at api.example-llm.com (fake_run)
    with FakeOpenAI(
        rate=lambda prompt: (5 if int(re.search(r"note number (\d+)", prompt)[1]) % 4 == 0 else 3, "Fine.")
    ) as server:
        judge(
            JudgeConfig(source=str(run), base_url=server.base_url, model="judge-model"),
            tmp_path / "judged",
            progress=False,
        )

    export_dataset(tmp_path / "judged", make_options(to=tmp_path / "export" / "data.jsonl"))
    text = (tmp_path / "export" / "data.jsonl.README.md").read_text()
    for fact in [
        (
            "Teacher: `gpt-4o-mini`. Each record was rated 0-5 by `judge-model` (the AlpaGasus method); only records "
            "scored 4.5 or more were kept."
        ),
        "This data was generated by `gpt-4o-mini` served by api.example-llm.com:8443",  # the generation, not the judge
        "The ratings (`score`, `rationale`) were made by `judge-model`",
        "## Judging",
        "rated by `judge-model` (127.0.0.1:",
        "temperature 0.0",
        "prompt `alpagasus-1`",
        "20 records were scored (0 answers held no usable rating); the judge kept the 5 scored 4.5 or more.",
        "| score | records |",
        "| 5 | 5 (kept) |",
        "| 3 | 15 |",
        "$6.8700",  # the generation's cost, from the generate run's ledger
    ]:
        assert fact in text, fact

    result = CliRunner().invoke(
        main, ["filter", str(tmp_path / "judged"), "--min-score", "3", "--out", str(tmp_path / "at-3")]
    )
    assert result.exit_code == 0, result.output
    export_dataset(tmp_path / "at-3", make_options(to=tmp_path / "export3" / "data.jsonl"))
    text = (tmp_path / "export3" / "data.jsonl.README.md").read_text()
    assert "20 instruction-following records" in text and "only records scored 3 or more were kept" in text
    assert "Then `selfinstruct filter --min-score 3` re-selected 20 of the 20 scored records" in text
    assert "| 5 | 5 (kept) |" in text and "| 3 | 15 (kept) |" in text
    assert "$6.8700" in text and "api.example-llm.com:8443" in text


def test_records_the_judge_kept_keep_their_generation_provenance(tmp_path):
    run = write_run(tmp_path / "run")
    with FakeOpenAI(rate=lambda _: (5, "Good.")) as server:
        judge(
            JudgeConfig(source=str(run), base_url=server.base_url, model="judge-model"),
            tmp_path / "judged",
            progress=False,
        )
    kept = read(tmp_path / "judged" / "data.jsonl")
    by_id = {r["id"]: r for r in run_records()}
    assert len(kept) == 20 and all({k: r[k] for k in by_id[r["id"]]} == by_id[r["id"]] for r in kept)


# ---------------------------------------------------------------- the command line


def test_the_judge_command_runs_and_resumes(tmp_path, source):
    out = tmp_path / "run"
    with FakeOpenAI(rate=rate) as server:
        args = [
            "judge",
            str(source),
            "--out",
            str(out),
            "--base-url",
            server.base_url,
            "--model",
            "judge-model",
            "--quiet",
        ]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "all work done: 4 records kept (score >= 4.5)" in result.output
        assert "scores: 5: 2, 4.5: 2, 4: 2, 3.5: 2, 2: 2, 0: 2" in result.output
        result = CliRunner().invoke(main, [*args, "--threshold", "4"])
        assert result.exit_code == 0, result.output
        assert "6 records kept (score >= 4)" in result.output and len(server.calls) == 12


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--base-url", "http://127.0.0.1:9/v1"], "--model is required with --base-url"),
        (["--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--threshold", "7"], "invalid setting --threshold"),
        (["--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--max-cost", "1"], "--max-cost cannot be enforced"),
    ],
)
def test_the_command_names_its_flags_in_errors(tmp_path, source, flags, message):
    result = CliRunner().invoke(main, ["judge", str(source), "--out", str(tmp_path / "run"), *flags])
    assert result.exit_code != 0 and message in result.output, result.output


def test_a_dry_run_counts_the_records_not_rated_yet(tmp_path, source):
    args = [
        "judge",
        str(source),
        "--out",
        str(tmp_path / "run"),
        "--base-url",
        "https://api.openai.com/v1",
        "--model",
        "gpt-4o-mini",
        "--dry-run",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "about 12 requests" in result.output and "~60 completion tokens" in result.output
    assert not (tmp_path / "run").exists()
