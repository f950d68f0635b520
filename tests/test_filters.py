"""Each quality rule on real bad records, and on real good ones it must keep.

The bad records are copied from the embedded teacher's answers (SmolLM2-135M through
`selfinstruct generate`, marked "smollm2") or from Stanford Alpaca's released data; the
good ones are the 175 shipped seed tasks and the 252 user-oriented eval tasks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import USER_ORIENTED

from selfinstruct.clean import load_preset
from selfinstruct.clean.rules import RULES, RuleSet
from selfinstruct.errors import SelfInstructError
from selfinstruct.records import read_records
from selfinstruct.stats import cleaning_summary

ROOT = Path(__file__).resolve().parents[1]
EVAL = USER_ORIENTED


def record(instruction="Name three primary colors.", input="", output="Red, yellow and blue."):
    return {"instruction": instruction, "input": input, "output": output}


def rule(name, **settings):
    return RULES[name](**settings)


def rejects(name, rec, **settings) -> str | None:
    return rule(name, **settings).check(rec)


@pytest.fixture(scope="module")
def good_records() -> list[dict]:
    records = read_records(ROOT / "seeds" / "seed_tasks.jsonl")
    records += read_records(EVAL)
    return records


# ---------------------------------------------------------------- Alpaca's rules (exact)


def test_alpaca_rules_are_alpacas():
    assert rejects("instruction_words", record("Solve this equation.")) == "3 words < 4"
    assert rejects("instruction_words", record(" ".join(["word"] * 151))) == "151 words > 150"
    assert rejects("blacklist", record("Draw a picture of a cat.")) == "contains 'Draw'"
    assert rejects("blacklist", record("Give a brief summary of the movie's plot.")) == "contains 'plot'"
    assert rejects("blacklist", record("Describe the mapping between keys and values.")) is None  # whole words only
    assert rejects("write_a_program", record("Write a program that prints hello.")) is not None
    assert rejects("leading_punctuation", record("*Use a Python function to find the largest digit,")) is not None  # smollm2
    assert rejects("non_ascii_start", record("¿Cómo estás hoy, amigo?")) is not None


# ---------------------------------------------------------------- output problems


def test_noinput_marker_is_repaired_not_rejected():
    marker = rule("noinput_marker")
    for placeholder in ("<noinput>", "<No Input>", "N/A", "None.", "no input required", "(empty)"):
        fixed = marker.fix(record(input=placeholder))
        assert fixed is not None and fixed["input"] == "", placeholder
    assert marker.fix(record(input="None of the above applies to my cat.")) is None
    assert marker.check(record(input="<noinput>")) is None


def test_empty_output():
    # smollm2 left these outputs empty or as a JSON fragment
    assert rejects("empty_output", record("Add one item to the specified task", output="")) == "empty"
    assert rejects("empty_output", record(output=");[{")) is not None
    assert rejects("empty_output", record(output="},")) is not None
    assert rejects("empty_output", record(output="<nooutput>")) is not None  # Alpaca's data
    assert rejects("empty_output", record(output="N/A")) is not None
    assert rejects("empty_output", record(output="- 😌😊")) is None  # emojis are an answer
    assert rejects("empty_output", record(output="42")) is None


def test_output_copies_input():
    copy = record("Rewrite the sentence in passive voice.", "The cat chased the mouse.", "The cat chased  the mouse.")
    assert rejects("output_copies_input", copy) == "output equals the input"
    echo = record("Describe the water cycle.", "", "Describe the water cycle.")
    assert rejects("output_copies_input", echo) == "output equals the instruction"
    fix = record("Fix the bug in the code.", "print(Answer is:)", 'print("Answer is:")')
    assert rejects("output_copies_input", fix) is None  # a fix may only change punctuation


def test_truncated():
    # smollm2
    assert rejects("truncated", record("Implement a function to count the number of digits in a given integer,")) == "instruction ends with ','"
    assert rejects("truncated", record("How much to pay for an additional car?", "$20.00, $40.00, $80.00,", "2 dollars")) == "input ends with ','"
    json_debris = record("Show how to parse JSON string in python using json_decode()'},{", "List of examples", "[]")
    assert rejects("truncated", json_debris) == "instruction ends with '{'"
    listing = "This is a list with all the items listed, followed by their type: item1, and each item's category: item2. Then there are additional items to this point:"
    assert rejects("truncated", record("Make a list of every thing that has been described.", "", listing)) == "output ends with ':'"
    # human-written endings that are fine
    assert rejects("truncated", record("Translate the article.", "Le dentiste.\nTranslate to French:", "Le dentiste.")) is None
    assert rejects("truncated", record("Write an email inviting friends.", "", "Hi all,\nLooking forward to seeing you,")) is None
    assert rejects("truncated", record("Write a SQL query.", "", "SELECT * FROM t;")) is None


def test_truncated_at_the_output_limit():
    cut = record(output="The reasons are many and they include the weather and the " * 10)
    assert rejects("truncated", cut, output_limit_tokens=50) == "output stops mid-sentence at 50 tokens"
    assert rejects("truncated", record(output=cut["output"].strip() + "."), output_limit_tokens=50) is None
    assert rejects("truncated", cut) is None  # no limit set


def test_merged_tasks():
    merged = record(output="Paris.\n\n###\n2. Instruction: Name the capital of Spain.\n2. Input:\n<noinput>\n2. Output:\nMadrid.")
    assert rejects("merged_tasks", merged) == "output contains '2. Instruction:'"
    assert rejects("merged_tasks", record(output="Steps:\n1. Preheat the oven.\n2. Mix the flour.")) is None


def test_instruction_bullets():
    # smollm2
    junk = (
        "Use regex with Python's 're' module to remove non-alphanumeric characters from a string while preserving case.\n"
        "*The function can take 2 arguments - one of which is the replacement string,\nsmallable for removing all non-alphanumeric characters."
    )
    assert rejects("instruction_bullets", record(junk)) == "line starts with '*'"
    assert rejects("instruction_bullets", record("Sort these numbers.\nUse ascending order.")) is None


def test_image_reference():
    assert rejects("image_reference", record("Describe what you see.", "<Picture Attached>")) is not None
    assert rejects("image_reference", record("Caption this.", "https://example.com/cat.jpg")) is not None
    assert rejects("image_reference", record("Caption this.", "![a cat](cat.png)")) is not None
    assert rejects("image_reference", record("Summarize the page.", "https://example.com/about")) is None


# ---------------------------------------------------------------- teacher artefacts


def test_teacher_artefacts():
    # smollm2 refused a seed task this way
    refusal = record(
        "What are the main pros and cons of renting a home versus buying one?",
        "",
        "I am not allowed to provide any detailed data or information on this task; I have only written 3 items in total.",
    )
    assert rejects("teacher_artefact", refusal) == "output says 'I am not allowed to'"
    for output in (
        "As an AI language model, I do not have personal opinions.",
        "I’m ChatGPT, a model trained by OpenAI.",  # curly apostrophe
        "I cannot   assist with that request.",
        "Sorry, my knowledge cutoff is 2021.",
    ):
        assert rejects("teacher_artefact", record(output=output)) is not None, output
    assert rejects("teacher_artefact", record(output="The assistant cannot cancel your order today.")) is None


def test_phrase_file_beside_a_users_preset(tmp_path):
    (tmp_path / "mine.txt").write_text("# my teacher's habit\nhappy to help\n")
    (tmp_path / "mine.toml").write_text('[rules.teacher_artefact]\nphrases_file = "mine.txt"\n')
    preset = load_preset(str(tmp_path / "mine.toml"))
    assert RuleSet(preset.rules).check(record(output="Happy to help! Paris.")).rejection.rule == "teacher_artefact"
    assert RuleSet(preset.rules).check(record(output="As an AI language model, Paris.")).rejection is None


def test_missing_phrase_file_names_preset_and_setting(tmp_path):
    (tmp_path / "bad.toml").write_text('[rules.teacher_artefact]\nphrases_file = "nope.txt"\n')
    with pytest.raises(SelfInstructError, match=r"bad\.toml: rules\.teacher_artefact\.phrases_file: .*nope\.txt not found"):
        load_preset(str(tmp_path / "bad.toml"))


# ---------------------------------------------------------------- language


def test_language():
    for text in (
        "Écrivez un court poème sur l'automne.",
        "Nenne drei Vorteile von erneuerbaren Energien.",
        "请列出三种常见的编程语言。",
        "Podaj trzy przykłady ssaków morskich.",
    ):
        assert rejects("language", record(text)) is not None, text
    assert rejects("language", record("Translate to French: Good morning")) is None
    assert rejects("language", record("Design a medium-level sudoku puzzle.")) is None
    assert rejects("language", record("Name it.")) is None  # too few letters to judge
    assert rejects("language", record("Écrivez un court poème sur l'automne."), keep=("en", "fr")) is None


def test_unknown_language_code_is_a_clear_error(tmp_path):
    (tmp_path / "p.toml").write_text('[rules.language]\nkeep = ["english"]\n')
    with pytest.raises(SelfInstructError, match="rules.language.keep: .*unknown language code"):
        load_preset(str(tmp_path / "p.toml"))


# ---------------------------------------------------------------- degenerate text


def test_repetition():
    loop = "The answer is that the function returns the value of the variable. " * 8  # a teacher stuck in a loop
    assert rejects("word_repetition", record(output=loop)) == "output: ratio 1.00 > 0.5"
    digits = "The total number of combinations is 1" + "0" * 120  # a teacher stuck on one character
    assert rejects("char_repetition", record(output=digits)).startswith("output: ratio 0.7")
    assert rejects("char_repetition", record(output=loop)) is None  # data-juicer's char ratio wants shorter loops
    prose = (
        "Water boils when its vapor pressure equals the pressure of the air above it. At high altitude the air "
        "pressure is lower, so that point is reached at a lower temperature."
    )
    assert rejects("char_repetition", record(output=prose)) is None
    assert rejects("word_repetition", record(output=prose)) is None


def test_token_length():
    assert rejects("token_length", record(output="word " * 3000)) == "output has 3001 tokens, outside [1, 2048]"
    assert rejects("token_length", record(input="word " * 1100)) == "input has 1101 tokens, outside [0, 1024]"
    assert rejects("token_length", record(output="Hi"), min_output=5) == "output has 1 tokens, outside [5, 2048]"
    assert rejects("token_length", record()) is None


# ---------------------------------------------------------------- presets


def test_default_preset_keeps_the_human_written_tasks(good_records):
    """False positives on good data: the seeds all pass; of the 252 eval tasks only
    Alpaca's own rules (blacklist, 4 words) and one instruction that really ends with
    a comma are rejected."""
    rules = RuleSet(load_preset("default").rules)
    rejected = [(r["instruction"], rules.check(r).rejection) for r in good_records]
    reasons = {rejection.rule for _, rejection in rejected if rejection}
    assert reasons <= {"blacklist", "instruction_words", "truncated"}
    assert sum(1 for _, rejection in rejected if rejection and rejection.rule == "truncated") <= 1


def test_shipped_presets():
    alpaca = load_preset("alpaca")
    assert [r.name for r in alpaca.rules] == ["instruction_words", "blacklist", "write_a_program", "leading_punctuation", "non_ascii_start"]
    default = load_preset("default")
    assert {r.name for r in default.rules} == set(RULES) - {"wrong_answer", "low_score"}  # but what --verify and judge add
    assert default.dedup.fields == ("instruction",) and default.dedup.rouge_threshold == 0.7


def test_rejection_counts_add_up():
    preset = load_preset("default")
    from selfinstruct.clean import Cleaner

    cleaner = Cleaner(preset)
    records = [record(), record(output=""), record(input="<noinput>"), record("Solve this equation."), record()]
    verdicts = [cleaner.check(r, str(i)) for i, r in enumerate(records)]
    stats = cleaning_summary(cleaner.stats)
    assert stats["seen"] == 5 and stats["kept"] == 1
    assert stats["rejected"] == {"empty_output": 1, "exact_duplicate": 2, "instruction_words": 1}
    assert stats["fixed"] == {"noinput_marker": 1}
    assert verdicts[2].record["input"] == ""
