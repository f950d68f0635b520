"""Each quality rule on real bad records, and on real good ones it must keep.

The bad records are copied from the embedded teacher's answers (SmolLM2-135M through
`selfinstruct generate`, marked "smollm2") or from Stanford Alpaca's released data; the
good ones come from the 208 bundled seed tasks, self-instruct's 175 seeds and 252
user-oriented eval tasks, and GSM8K.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import GSM8K, SEED_TASKS, USER_ORIENTED

from selfinstruct.clean import load_preset
from selfinstruct.clean.rules import RULES, RuleSet
from selfinstruct.clean.rules.topic import content_words
from selfinstruct.errors import SelfInstructError
from selfinstruct.records import read_jsonl, read_records
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
    assert (
        rejects("leading_punctuation", record("*Use a Python function to find the largest digit,")) is not None
    )  # smollm2
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
    assert (
        rejects("truncated", record("Implement a function to count the number of digits in a given integer,"))
        == "instruction ends with ','"
    )
    assert (
        rejects("truncated", record("How much to pay for an additional car?", "$20.00, $40.00, $80.00,", "2 dollars"))
        == "input ends with ','"
    )
    json_debris = record("Show how to parse JSON string in python using json_decode()'},{", "List of examples", "[]")
    assert rejects("truncated", json_debris) == "instruction ends with '{'"
    listing = "This is a list with all the items listed, followed by their type: item1, and each item's category: item2. Then there are additional items to this point:"
    assert (
        rejects("truncated", record("Make a list of every thing that has been described.", "", listing))
        == "output ends with ':'"
    )
    # human-written endings that are fine
    assert (
        rejects("truncated", record("Translate the article.", "Le dentiste.\nTranslate to French:", "Le dentiste."))
        is None
    )
    assert (
        rejects("truncated", record("Write an email inviting friends.", "", "Hi all,\nLooking forward to seeing you,"))
        is None
    )
    assert rejects("truncated", record("Write a SQL query.", "", "SELECT * FROM t;")) is None


def test_truncated_at_the_output_limit():
    cut = record(output="The reasons are many and they include the weather and the " * 10)
    assert rejects("truncated", cut, output_limit_tokens=50) == "output stops mid-sentence at 50 tokens"
    assert rejects("truncated", record(output=cut["output"].strip() + "."), output_limit_tokens=50) is None
    assert rejects("truncated", cut) is None  # no limit set


def test_merged_tasks():
    merged = record(
        output="Paris.\n\n###\n2. Instruction: Name the capital of Spain.\n2. Input:\n<noinput>\n2. Output:\nMadrid."
    )
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
    with pytest.raises(
        SelfInstructError, match=r"bad\.toml: rules\.teacher_artefact\.phrases_file: .*nope\.txt not found"
    ):
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


# ---------------------------------------------------------------- not a task


def test_not_a_task_rejects_the_embedded_teachers_statements():
    for statement in (  # smollm2: accepted by the default preset before this rule
        "In a room of any size you can fit anything.",
        "It is possible to create a new travel date with the input time range of 24 days.",
        "You build equity in your house.",
        "Cause of the global warming",
        "Pipe A can fill a tank in 6 hours and pipe B can fill it in 3 hours.",
        # smollm2: accepted by the first versions of this rule
        "You will have four days before the wedding in 4 weeks.",
        "I am ready to assist and improve upon you in the most appropriate manner of your request.",
        "I am going on a trip to London and I want to see famous landmarks.",
        "A question is required for every task.",
    ):
        assert rejects("not_a_task", record(statement)) is not None, statement


def test_not_a_task_keeps_the_ways_people_ask():
    for request in (
        "Rewrite the sentence in passive voice.",
        "What emotion does the speaker express: joy, anger, sadness, fear, or surprise?",
        # a statement followed by a real question or order (bundled seeds, GSM8K)
        "The streets are wet this morning, but it did not rain. Give two plausible explanations.",
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
        "Tommy has 10 more sheets than Jimmy does. If Jimmy has 32 sheets, how many more sheets will Jimmy have than Tommy if his friend Ashton gives him 40 sheets.",
        "A pen costs $9 more than a pencil. If a pencil costs $2, find the total cost of both items.",
        # self-instruct's seeds and user-oriented tasks
        "Given a sentence, detect if there is any potential stereotype in it.",
        "Converting 85 F to Celsius.",
        "Solving the equation and find the value of X. Show your steps.",
        "Fact checking - tell me if the statement is true, false, or unknown, based on your knowledge and common sense.",
        "You are given a Python command and are required to convert it into Ruby.",
        "You are provided with a description of the code, specifications, or prompts. Your help is needed in automating code generation to speed up the development process.",
        "If you could help me write an email to my friends inviting them to dinner on Friday, it would be greatly appreciated.",
        "The tone of the email should be changed and rewritten in a more professional manner.",
        "You will need to guide this person through the scenario they have described for the interview.",
        "Read the given story carefully, and then answer the question in the end.",
        "You can easily make your holidays more eco-friendly by following these simple steps:",
        "Please proofread my cover letter.",
        "Can you suggest a name for my bakery.",
    ):
        assert rejects("not_a_task", record(request)) is None, request


def test_not_a_task_verbs_file_beside_a_users_preset(tmp_path):
    (tmp_path / "verbs.txt").write_text("# my verbs\nponder\n")
    (tmp_path / "mine.toml").write_text('[rules.not_a_task]\nverbs_file = "verbs.txt"\n')
    mine = RuleSet(load_preset(str(tmp_path / "mine.toml")).rules)
    assert mine.check(record("Ponder the meaning of a quiet morning.")).rejection is None
    assert rejects("not_a_task", record("Ponder the meaning of a quiet morning.")) is not None  # not a shipped verb


# ---------------------------------------------------------------- needs the web


def test_needs_web_rejects_content_the_model_cannot_see():
    # made for this test in the shape of the records AlpacaDataCleaned removed by hand
    for unseen in (
        record("Summarize the article at https://www.bbc.com/news/science-environment-56837908."),
        record("Watch this video and list the main points.", "https://youtu.be/dQw4w9WgXcQ"),
        record("Based on the attached file, write a summary of last quarter's sales."),
        record("Describe the content of the following website.", "www.python.org"),
        record("Summarize this article: https://example.com/a"),
        record("Summarize the following article."),  # nothing follows
    ):
        assert rejects("needs_web", unseen) is not None, unseen


def test_needs_web_keeps_tasks_whose_content_is_there():
    article = "Scientists said on Tuesday that a new species of frog was found in the rainforest of Peru. Source: https://example.com/frogs"
    for seen in (
        record("Summarize the following article.", article),
        record("Extract the domain name from the URL.", "https://www.example.com/path?q=1"),  # the URL is the text
        record("Convert this link to a Markdown hyperlink.", "https://example.com"),
        record("Write a blog post about hiking."),
        # bundled seed: a link inside the email to judge
        record(
            "Does this email look like a phishing attempt? Reply with phishing or legitimate.",
            "Subject: Account suspended!\nYour PayPaI account has been locked. Verify your identity within 24 hours at http://paypai-secure-login.co or it will be closed.",
        ),
        # T0 (ag_news): the article comes first, the reference after it
        record(
            "Carlyle Looks Toward Commercial Aerospace (Reuters) Reuters - Private investment firm Carlyle Group has quietly placed its bets on another part of the market.\nWhat label best describes this news article?"
        ),
        # user-oriented: the tweet is the input
        record(
            "Assess the sentiment of the given tweet and categorize it as Positive, Negative, or Neutral.",
            '"This is the best cheat-sheet paper that I\'ve found in a LONG time."',
        ),
    ):
        assert rejects("needs_web", seen) is None, seen


# ---------------------------------------------------------------- placeholders


def test_placeholder_rejects_unfilled_slots():
    for output in (
        "Dear Sir,\nThe answer is [Insert answer here].",
        "Here are three tips: <insert tips here>",
        "Maria is a chef who loves {your favourite dish}.",
        "The capital of Peru is ____.",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
        "def total(items):\n    # TODO: implement\n    pass",
        "Call us at 555-XXX-XXXX.",
        "{n} of {d}{m{e}} (10% of {}), which is 285,34",  # smollm2
    ):
        assert rejects("placeholder", record("Write a short answer.", "", output)) is not None, output
    # smollm2: a slot left in the input
    assert (
        rejects("placeholder", record("Set your travel dates in 2 days.", "<time-in-days>", "setTravelDate(8)"))
        == "input has '<time-in-days>'"
    )


def test_placeholder_keeps_slots_that_were_asked_for_or_given():
    keeps = (
        record("Write an email template with placeholders for the name.", "", "Dear [Name],\n[Insert message here]"),
        record(
            "Fill in the blank with a word or phrase.",
            "The Houston Rockets are an American professional ___ team.",
            "basketball",
        ),
        record(
            "Replace the <mask> token in the text with proper words.",
            "The <mask> sat on the mat.",
            "The <mask> is a cat.",
        ),
        record("Write a Python function that greets a user.", "", 'def greet(name):\n    print(f"Hello {name}")'),
        record("Give a regular expression for lowercase words.", "", "[a-z]+"),
        record(
            "Link the entities to Wikipedia.", "[Naruto] is a manga.", "[Naruto](https://en.wikipedia.org/wiki/Naruto)"
        ),
        record("Write a short to-do list for moving house.", "", "My todo list: pack, label, clean."),
        record("Convert the year 1987 into Roman numerals.", "", "MCMLXXXVII"),  # bundled seed
        # personal details the instruction did not give (self-instruct's own answers do this)
        record(
            "Write an email to attendees as a reminder that the event is coming up.",
            "",
            "Dear [name],\nSee you on [date and time] at [location].\nBest,\n[Your Name]",
        ),
        record(
            "Write a recommendation letter given the student's achievement.",
            "GPA 3.8",
            "Dear Professor ____,\nI recommend Jane.",
        ),
    )
    for kept in keeps:
        assert rejects("placeholder", kept) is None, kept
    assert rejects("placeholder", keeps[-2], detail_slots=True) == "output has '[name]'"


# ---------------------------------------------------------------- off-topic output


def task(path: Path, instruction_starts: str) -> dict:
    """The first record of a real task set whose instruction starts so."""
    return next(r for r in read_records(path) if r["instruction"].startswith(instruction_starts))


def test_off_topic_output_rejects_another_tasks_answer():
    # a teacher that lost track: each of these seeds with the answer of the next one
    seeds = ROOT / "seeds" / "seed_tasks.jsonl"
    for asked, answered in (
        ("Why does water boil", "What rule decides"),
        ("How does a rainbow form", "What is the placebo effect"),
    ):
        moved = {**task(seeds, asked), "output": task(seeds, answered)["output"]}
        detail = rejects("off_topic_output", moved)
        assert detail is not None and detail.startswith("no shared word, cosine -"), asked


def test_off_topic_output_keeps_real_answers():
    water = task(ROOT / "seeds" / "seed_tasks.jsonl", "Why does water boil")
    assert rejects("off_topic_output", water) is None
    assert rejects("off_topic_output", {**water, "output": "At about 90 C."}) is None  # too short to judge
    # no word in common, and the static embedding still sees the topic
    names = task(EVAL, "Suggest some names for a friendly group in telegram")
    assert content_words(names["instruction"]).isdisjoint(content_words(names["output"]))
    assert rejects("off_topic_output", names) is None


def test_rules_decide_in_batches_as_one_by_one(good_records):
    rules = RuleSet(load_preset("default").rules)
    moved = [
        {**r, "output": good_records[(i + 7) % len(good_records)]["output"]} for i, r in enumerate(good_records[:120])
    ]
    mixed = [
        *good_records[:120],
        *moved,
        record("In a room of any size you can fit anything."),
        record(input="<noinput>"),
    ]
    one_by_one = [rules.check(r) for r in mixed]
    assert rules.check_many(mixed) == one_by_one
    assert sum(c.rejection is not None and c.rejection.rule == "off_topic_output" for c in one_by_one) >= 10


# ---------------------------------------------------------------- presets


def first_instances(path: Path) -> list[dict]:
    """One record per task, its first instance (as Alpaca samples seeds)."""
    firsts = {}
    for r in read_records(path):
        firsts.setdefault(r["id"], r)
    return list(firsts.values())


@pytest.fixture(scope="module")
def human_sets() -> dict[str, list[dict]]:
    """The calibration sets of filters/README.md."""
    gsm = [r for _, r in read_jsonl(GSM8K)]
    return {
        "bundled seeds": first_instances(ROOT / "seeds" / "seed_tasks.jsonl"),
        "self-instruct seeds": first_instances(SEED_TASKS),
        "user-oriented": first_instances(EVAL),
        "gsm8k sample": [gsm[i] for i in sorted(random.Random(0).sample(range(len(gsm)), 1000))],
    }


def test_default_preset_keeps_the_human_written_tasks(human_sets):
    """False rejects on real good data (filters/README.md has the figures): the whole preset
    rejects at most 5% of each set, mostly by Alpaca's own rules (the blacklist drops "map",
    "file", "video"...); the request, web and placeholder rules reject none of the 1,635
    records, the off-topic rule at most 1.2% of a set."""
    rules = RuleSet(load_preset("default").rules)
    for name, records in human_sets.items():
        reasons = [c.rejection.rule for c in rules.check_many(records) if c.rejection]
        assert len(reasons) <= 0.05 * len(records), (name, reasons)
        assert not {"not_a_task", "needs_web", "placeholder"} & set(reasons), (name, reasons)
        assert reasons.count("off_topic_output") <= 0.012 * len(records), (name, reasons)


def test_shipped_presets():
    alpaca = load_preset("alpaca")
    assert [r.name for r in alpaca.rules] == [
        "instruction_words",
        "blacklist",
        "write_a_program",
        "leading_punctuation",
        "non_ascii_start",
    ]
    default = load_preset("default")
    # a task's own rules (a student's, evolve's elimination) register when their module is imported
    cleaning_rules = {name for name, rule in RULES.items() if rule.__module__.startswith("selfinstruct.clean.")}
    assert {r.name for r in default.rules} == cleaning_rules - {
        "unverifiable",
        "wrong_answer",
        "low_score",
        "template_tokens",
        "instruction_cut_off",
        "answers_other_task",
    }  # but what --verify, judge and magpie add, and the sentence-model rule of the `semantic` preset
    assert default.dedup.fields == ("instruction",) and default.dedup.rouge_threshold == 0.7
    semantic = load_preset("semantic")
    assert {r.name for r in semantic.rules} == {r.name for r in default.rules} | {"answers_other_task"}


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
