"""Evol-Instruct (`selfinstruct evolve`): rounds of rewrites, WizardLM's elimination step
counted by reason and round, and resumes that ask nothing twice.

The stand-in teacher plays each source instruction's fate: "Topic 3" is refused in round 1,
"Topic 5" judged equal to its parent in round 2, and so on (FATES); every other rewrite gains.
"""

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from click.testing import CliRunner
from fake_batch import FakeBatchAPI
from fake_openai import FakeOpenAI
from fake_teacher import FakeTeacher

from selfinstruct.clean.rules import RuleSet
from selfinstruct.cli import main
from selfinstruct.engine.job import StopReason
from selfinstruct.errors import SettingError
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.evolve import EvolveConfig, evolve
from selfinstruct.tasks.evolve.elimination import (
    CopiedEvolvingPrompt,
    NoInformationGain,
    RefusedAnswer,
    StopWordsOnly,
    eliminated,
    elimination_rules,
)
from selfinstruct.tasks.evolve.prompts import OPERATIONS, equality_prompt, evolving_prompt, read_judgement

ROOTS = 10
# root -> {round: fate}; a root without a fate in a round gains and is answered well
FATES = {
    1: {1: "copy"},
    2: {1: "equal"},
    3: {1: "refuse"},
    4: {1: "stop_words"},
    5: {2: "equal"},
    6: {2: "refuse"},
    8: {1: "empty"},
    9: {1: "identical"},
}
CLAUSE = " Also consider case {depth}."
# What the elimination step must drop, by round and reason, and what it keeps
ELIMINATED = {
    "1": {
        "copied_evolving_prompt": 1,
        "no_information_gain": 2,  # "equal", and the identical rewrite (not asked)
        "refused_answer": 1,
        "stop_words_only": 1,
    },
    "2": {"no_information_gain": 1, "refused_answer": 1},
}
KEPT = sorted([("seed_0", 1), ("seed_5", 1), ("seed_6", 1), ("seed_7", 1), ("seed_0", 2), ("seed_7", 2)])
# evolve 10, compare 7 (not the empty, copied or identical one), answer 6; then 4, 4, 3
REQUESTS = 10 + 7 + 6 + 4 + 4 + 3


def source_rows(n: int = ROOTS) -> list[dict]:
    return [
        {"id": f"seed_{i}", "instruction": f"Write a short note about Topic {i}.", "input": "", "output": "A note."}
        for i in range(n)
    ]


def fate(text: str) -> tuple[str | None, int]:
    """The fate the stand-in plays for an instruction's next rewrite, and that rewrite's round."""
    root = int(re.search(r"Topic (\d+)", text).group(1))
    depth = text.count("Also consider") + 1
    return FATES.get(root, {}).get(depth), depth


def teacher_answer(prompt: str) -> str:
    """The stand-in's answer to a rewriting prompt, an equality prompt or an evolved instruction."""
    if prompt.startswith("I want you act as a Prompt"):
        given = re.search(r"Prompt#: \n (.*) \n#", prompt, re.DOTALL).group(1)
        what, depth = fate(given)
        return {
            "copy": f"#Rewritten Prompt#: {given}",
            "empty": "  ",
            "identical": f" {given} ",
        }.get(what, given + CLAUSE.format(depth=depth))
    if prompt.startswith("Here are two Instructions"):
        second = prompt.split("The Second Prompt: ", 1)[1]
        what, _ = fate(second.replace("Also consider", "", 1))  # the rewrite's own fate, not its child's
        return "Equal" if what == "equal" else "Not Equal"
    what, _ = fate(prompt.replace("Also consider", "", 1))
    if what == "refuse":
        return "I'm sorry, but I cannot help with that."
    if what == "stop_words":
        return "It is what it is, and so on."
    return f"Here is a careful answer to your request, covering {prompt[:50]}, with two worked examples."


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in source_rows()))
    return path


def config(source, server, **overrides) -> EvolveConfig:
    settings = {"source": str(source), "base_url": server.base_url, "model": "teacher", "rounds": 2, "concurrency": 3}
    return EvolveConfig(**{**settings, **overrides})


def read(path) -> list[dict]:
    return [row for _, row in read_jsonl(path)] if path.exists() else []


def asked_prompts(server: FakeOpenAI) -> list[str]:
    return [body["messages"][-1]["content"] for body in server.bodies]


# ---------------------------------------------------------------- the prompts and the rules


def test_the_prompts_are_wizardlms_with_the_instruction_in_place():
    prompt = evolving_prompt("add_constraints", "Name three fruits.")
    assert prompt.startswith("I want you act as a Prompt Rewriter.")
    assert "Please add one more constraints/requirements into #The Given Prompt#'" in prompt
    assert prompt.endswith("#The Given Prompt#: \n Name three fruits. \n#Rewritten Prompt#:\n")
    breadth = evolving_prompt("breadth", "Name three fruits.")
    assert "draw inspiration from the #Given Prompt#" in breadth and breadth.endswith("#Created Prompt#:\n")
    assert "Please add JSON data format data as input data" in evolving_prompt("complicate_input", "x", "JSON data")
    assert set(OPERATIONS) == {
        "add_constraints",
        "deepen",
        "concretize",
        "increase_reasoning",
        "complicate_input",
        "breadth",
    }
    equality = equality_prompt("A.", "B.")
    assert "The First Prompt: A.\nThe Second Prompt: B.\n" in equality and "Equal or Not Equal" in equality


@pytest.mark.parametrize(
    "content, gain",
    [
        ("Not Equal", True),
        ("not equal.", True),
        ("They are unequal.", True),
        ("Equal", False),
        ("Equal. They are not equal in length but ask the same.", False),  # the first verdict counts
        ("The second one is harder.", None),
        ("", None),
    ],
)
def test_the_judgement_is_read_from_its_first_verdict(content, gain):
    assert read_judgement(content) is gain


def evolved(**fields) -> dict:
    return {
        "instruction": "List three fruits that grow in winter.",
        "input": "",
        "output": "Kiwi, pomelo, kale.",
    } | fields


def test_copied_evolving_prompt_rejects_the_rewriting_prompts_words():
    rule = CopiedEvolvingPrompt()
    assert rule.check(evolved()) is None
    assert (
        rule.check(evolved(instruction="#Rewritten Prompt#: list fruits."))
        == "the instruction says '#rewritten prompt#'"
    )
    assert (
        rule.check(evolved(instruction="Rewrite the Given Prompt with fruits."))
        == "the instruction says 'given prompt'"
    )
    assert (
        rule.check(evolved(instruction="Here is the created prompt: fruits")) == "the instruction says 'created prompt'"
    )


def test_no_information_gain_rejects_equal_unreadable_and_identical_rewrites():
    rule = NoInformationGain()
    assert rule.check(evolved()) is None  # never compared: not this rule's business
    assert rule.check(evolved(information_gain=True, judgement="Not Equal")) is None
    assert rule.check(evolved(information_gain=False, judgement="Equal")) == "judged equal to its parent: 'Equal'"
    assert rule.check(evolved(information_gain=None, judgement="Hmm.")) == (
        "the judgement says neither Equal nor Not Equal: 'Hmm.'"
    )
    assert rule.check(evolved(information_gain=False, judgement=None)) == "identical to its parent"


def test_refused_answer_rejects_a_short_sorry_only():
    rule = RefusedAnswer()
    assert rule.check(evolved(output="I'm sorry, I can't do that.")) == "'sorry' in a 6-word answer"
    assert rule.check(evolved(output="Sorry!")) == "'sorry' in a 1-word answer"
    long_sorry = "Sorry for the wait: " + "here is a full answer with the steps. " * 12
    assert rule.check(evolved(output=long_sorry)) is None  # 80 words or more: an answer, not a refusal
    assert rule.check(evolved(output="Kiwi.")) is None
    assert RefusedAnswer(max_words=3).check(evolved(output="I'm sorry, I can't.")) is None


def test_stop_words_only_rejects_answers_without_a_content_word():
    rule = StopWordsOnly()
    assert rule.check(evolved(output="It is what it is!")) == "the answer is 'It is what it is!'"
    assert rule.check(evolved(output="... ?!")) == "the answer is '... ?!'"
    assert rule.check(evolved(output="")) == "the answer is ''"
    assert rule.check(evolved(output="It is 42.")) is None
    assert rule.check(evolved(output="Kiwi.")) is None


def test_the_rules_run_in_the_order_an_evolution_meets_them():
    rules = RuleSet(elimination_rules())
    both = evolved(instruction="given prompt: fruits", information_gain=False, judgement="Equal", output="Sorry.")
    assert eliminated(rules, both) == "copied_evolving_prompt"
    assert (
        eliminated(rules, evolved(information_gain=False, judgement="Equal", output="Sorry.")) == "no_information_gain"
    )
    assert eliminated(rules, evolved(output="Sorry, it is.")) == "refused_answer"
    assert eliminated(rules, evolved()) is None


# ---------------------------------------------------------------- two rounds, end to end


def test_two_rounds_evolve_the_survivors_and_count_the_eliminated_by_reason_and_round(tmp_path, source):
    out = tmp_path / "run"
    with FakeOpenAI(answer=teacher_answer) as server:
        result = evolve(config(source, server), out, progress=False)
    assert result.stop_reason is StopReason.WORK_DONE
    assert len(server.calls) == REQUESTS

    kept = read(out / "data.jsonl")
    assert sorted((r["root_id"], r["evol_depth"]) for r in kept) == KEPT
    by_id = {r["id"]: r for r in kept}
    for record in kept:
        assert record["instruction"].endswith(CLAUSE.format(depth=record["evol_depth"]))
        assert record["output"].startswith("Here is a careful answer") and record["input"] == ""
        assert record["information_gain"] is True and record["judgement"] == "Not Equal"
        assert record["operation"] in OPERATIONS
        if record["evol_depth"] == 1:
            assert record["parent_id"] == record["root_id"]
            assert (
                record["parent_instruction"]
                == f"Write a short note about {record['root_id'].replace('seed_', 'Topic ')}."
            )
        else:  # the round-2 rewrite of a kept round-1 record
            parent = by_id[record["parent_id"]]
            assert parent["evol_depth"] == 1 and record["parent_instruction"] == parent["instruction"]

    rejected = read(out / "rejected.jsonl")
    reasons = Counter((str(r.get("evol_depth")), r["reason"]) for r in rejected)
    assert reasons == Counter(
        {(depth, reason): n for depth, counts in ELIMINATED.items() for reason, n in counts.items()}
        | {("None", "unparseable"): 1}  # the empty rewrite
    )
    assert {r["detail"] for r in rejected if r["reason"] == "refused_answer"} == {"'sorry' in a 8-word answer"}

    rounds = result.stats["evolve"]["rounds"]
    assert {depth: figures["eliminated"] for depth, figures in rounds.items()} == ELIMINATED
    assert rounds["1"] | {"eliminated": None} == {
        "evolved": 10,
        "decided": 10,
        "eliminated": None,
        "unparseable": 1,
        "rejected_by_preset": 0,
        "kept": 4,
        "eliminated_share": 0.5,
    }
    assert rounds["2"]["kept"] == 2 and rounds["2"]["eliminated_share"] == 0.5
    assert result.stats["filters"]["rejected"]["no_information_gain"] == 3
    operations = result.stats["evolve"]["operations"].values()
    assert sum(figures["kept"] for figures in operations) == 6
    assert sum(figures["decided"] for figures in operations) == 10 + 4  # every evolution, the empty one included

    # each step asked once: no rewriting prompt, judgement or answer twice
    prompts = asked_prompts(server)
    assert len(prompts) == len(set(prompts)) == REQUESTS


def test_an_empty_or_cut_off_rewrite_ends_its_evolution_as_unparseable(tmp_path, source):
    with FakeOpenAI(answer=teacher_answer, faults=["truncated"]) as server:  # root 0's rewrite hits max_tokens
        result = evolve(config(source, server, rounds=1, limit=1), tmp_path / "cut", progress=False)
        assert len(server.calls) == 1
        empty = evolve(config(source, server, rounds=1), tmp_path / "empty", progress=False)
    assert empty.stats["evolve"]["rounds"]["1"]["unparseable"] == 1
    assert [r["detail"] for r in read(tmp_path / "cut" / "rejected.jsonl")] == [
        "the rewrite of seed_0 (round 1) was cut off at max_tokens"
    ]
    assert result.stats["evolve"]["rounds"]["1"]["unparseable"] == 1 and result.accepted == 0
    assert "the rewrite of seed_8 (round 1) is empty" in {
        r["detail"] for r in read(tmp_path / "empty" / "rejected.jsonl")
    }


def test_the_operation_is_drawn_per_evolution_from_the_seed_and_the_operations_given(tmp_path, source):
    with FakeOpenAI(answer=teacher_answer) as server:
        first = evolve(config(source, server, rounds=1), tmp_path / "a", progress=False)
        again = evolve(config(source, server, rounds=1), tmp_path / "b", progress=False)
        other = evolve(config(source, server, rounds=1, seed=7), tmp_path / "c", progress=False)
        only = evolve(config(source, server, rounds=1, operations="deepen, breadth"), tmp_path / "d", progress=False)

    def drawn(result):
        return {r["root_id"]: r["operation"] for r in read(result.out_dir / "data.jsonl")}

    assert drawn(first) == drawn(again) and drawn(first) != drawn(other)
    assert set(drawn(only).values()) <= {"deepen", "breadth"}


@pytest.mark.parametrize(
    "max_cost, keep_checkpoint",
    [(2.0, True), (4.5, True), (4.5, False)],
    ids=["round-1-checkpoint", "round-2-checkpoint", "round-2-whole-ledger"],
)
def test_a_resume_asks_nothing_twice_through_the_checkpoint_or_the_whole_ledger(
    tmp_path, source, max_cost, keep_checkpoint
):
    """A run cut short by its cost cap (in round 1, or in round 2), resumed from its checkpoint
    or by replaying its whole ledger: it ends with the records and counts of an uninterrupted
    run, each step asked once."""
    out = tmp_path / "run"
    priced = {"price_in": 1000.0, "price_out": 1000.0, "max_tokens": 100}  # $0.001 a token
    with FakeOpenAI(answer=teacher_answer) as server:
        first = evolve(config(source, server, max_cost=max_cost, **priced), out, progress=False)
        answered = len(server.calls)
        assert first.stop_reason is StopReason.MAX_COST and 0 < answered < REQUESTS
        if not keep_checkpoint:
            (out / "checkpoint.json").unlink()
        done = evolve(config(source, server, **priced), out, progress=False)
        prompts = asked_prompts(server)
    assert done.stop_reason is StopReason.WORK_DONE
    assert len(prompts) == len(set(prompts)) == REQUESTS
    assert done.stats["this_session"]["replayed_responses"] == (0 if keep_checkpoint else answered)
    assert sorted((r["root_id"], r["evol_depth"]) for r in read(out / "data.jsonl")) == KEPT
    assert {depth: figures["eliminated"] for depth, figures in done.stats["evolve"]["rounds"].items()} == ELIMINATED


def test_an_evolve_run_through_the_batch_api_sends_one_batch_per_step(tmp_path, source):
    with FakeBatchAPI(FakeOpenAI(answer=teacher_answer)) as server:
        settings = {"model": "gpt-4o-mini", "batch": True, "batch_poll_s": 0.01}
        result = evolve(config(source, server, **settings), tmp_path / "run", progress=False)
    assert result.stop_reason is StopReason.WORK_DONE and result.accepted == len(KEPT)
    assert [len(ids) for _, ids in server.uploads] == [10, 7, 6, 4, 4, 3]  # rewrite, compare, answer; twice
    assert {depth: figures["eliminated"] for depth, figures in result.stats["evolve"]["rounds"].items()} == ELIMINATED


def test_more_rounds_continue_a_finished_run(tmp_path, source):
    out = tmp_path / "run"
    with FakeOpenAI(answer=teacher_answer) as server:
        one = evolve(config(source, server, rounds=1), out, progress=False)
        assert one.accepted == 4 and len(server.calls) == 10 + 7 + 6
        two = evolve(config(source, server, rounds=2), out, progress=False)
        prompts = asked_prompts(server)
    assert two.accepted == 6 and len(prompts) == len(set(prompts)) == REQUESTS
    assert two.stats["evolve"]["rounds"]["2"]["eliminated"] == ELIMINATED["2"]


class PromptTeacher(FakeTeacher):
    """The stand-in's answers in process, by prompt; a KeyboardInterrupt at the `interrupt_at`-th request."""

    def __init__(self, interrupt_at: int | None = None):
        super().__init__(lambda request_id: teacher_answer(self.prompts[request_id]))
        self.prompts: dict[str, str] = {}
        self.interrupt_at = interrupt_at

    async def complete(self, ask, request_id):
        if len(self.prompts) == self.interrupt_at:
            raise KeyboardInterrupt
        self.prompts[request_id] = ask.messages("text")[-1]["content"]
        return await super().complete(ask, request_id)


def test_ctrl_c_mid_round_then_a_rerun_asks_nothing_twice(tmp_path, source):
    out = tmp_path / "run"
    settings = {"source": str(source), "base_url": "http://127.0.0.1:9/v1", "model": "teacher", "rounds": 2}
    interrupted = PromptTeacher(interrupt_at=20)  # round 1's answers under way
    with pytest.raises(KeyboardInterrupt):
        evolve(EvolveConfig(**settings, concurrency=1), out, teacher=interrupted, progress=False)
    assert json.loads((out / "stats.json").read_text())["status"] == "interrupted"
    rest = PromptTeacher()
    result = evolve(EvolveConfig(**settings, concurrency=1), out, teacher=rest, progress=False)
    assert result.stop_reason is StopReason.WORK_DONE and result.accepted == 6
    asked = [*interrupted.prompts.values(), *rest.prompts.values()]
    assert len(asked) == len(set(asked)) == REQUESTS


# ---------------------------------------------------------------- the command line


def test_the_evolve_command_runs_resumes_and_sums_up_each_round(tmp_path, source):
    out = tmp_path / "run"
    with FakeOpenAI(answer=teacher_answer) as server:
        args = ["evolve", str(source), "--out", str(out), "--base-url", server.base_url, "--model", "m", "--quiet"]
        result = CliRunner().invoke(main, [*args, "--rounds", "2", "--limit", "4"])
        assert result.exit_code == 0, result.output
        assert "all work done: 2 evolved instructions kept" in result.output
        assert (
            "round 1: 4 evolutions decided, 3 eliminated (copied_evolving_prompt 1, no_information_gain 1, "
            "refused_answer 1), 0 unparseable, 0 rejected by preset, 1 kept" in result.output
        )
        calls = len(server.calls)
        again = CliRunner().invoke(main, [*args, "--rounds", "2", "--limit", "4"])
        assert again.exit_code == 0 and len(server.calls) == calls  # nothing left to ask


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--operations", "deepen,shorten"], "unknown operation(s) shorten; known: add_constraints"),
        (["--rounds", "0"], "invalid setting --rounds"),
    ],
)
def test_bad_settings_are_named(tmp_path, source, flags, message):
    args = [
        "evolve",
        str(source),
        "--out",
        str(tmp_path / "run"),
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
    ]
    result = CliRunner().invoke(main, [*args, *flags])
    assert result.exit_code != 0 and message in result.output, result.output


def test_a_changed_seed_is_refused_on_resume(tmp_path, source):
    with FakeOpenAI(answer=teacher_answer) as server:
        evolve(config(source, server, rounds=1, limit=2), tmp_path / "run", progress=False)
        with pytest.raises(SettingError, match="seed"):
            evolve(config(source, server, rounds=1, limit=2, seed=3), tmp_path / "run", progress=False)


def test_a_dry_run_prices_every_step_of_every_round(tmp_path, source):
    args = ["evolve", str(source), "--base-url", "https://api.openai.com/v1", "--model", "gpt-4o-mini"]
    result = CliRunner().invoke(main, [*args, "--rounds", "3", "--out", str(tmp_path / "run"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "about 90 requests" in result.output  # 10 instructions x 3 rounds x 3 steps, none eliminated
    assert not (tmp_path / "run").exists()


def test_kill_9_mid_run_then_the_command_again_asks_nothing_twice(tmp_path, source):
    out = tmp_path / "run"
    with FakeOpenAI(answer=teacher_answer, delay_s=0.1) as server:
        cmd = [sys.executable, "-m", "selfinstruct", "evolve", str(source), "--out", str(out)]
        cmd += ["--base-url", server.base_url, "--model", "m", "--rounds", "2", "--concurrency", "2", "--quiet"]
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while (out / "ledger.jsonl").exists() is False or (out / "ledger.jsonl").read_text().count(
            '"event": "response"'
        ) < 14:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        prompts = asked_prompts(server)
    # a request in flight at the kill may have been answered by the server and lost: asked again, never more
    assert len(set(prompts)) == REQUESTS and len(prompts) - len(set(prompts)) <= 2
    assert len(read(out / "data.jsonl")) == 6
