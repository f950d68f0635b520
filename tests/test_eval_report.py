"""Where eval results show: the report page of the run the student was trained on, and the
model card `finetune` wrote."""

import json
import shutil

from click.testing import CliRunner
from conftest import GSM8K
from fake_openai import FakeOpenAI
from test_eval import N, gsm8k_stand_in

from selfinstruct.cli import main
from selfinstruct.eval.results import student_folders, update_model_card
from selfinstruct.eval.run import EvalConfig, evaluate


def eval_into(folder, *answers):
    """An eval of stand-ins (one per `answers` function) on GSM8K, written into `folder`."""
    servers = [FakeOpenAI(answer=answer).__enter__() for answer in answers]
    try:
        specs = [f"model{i}@{server.base_url}" for i, server in enumerate(servers)]
        return evaluate(EvalConfig(set=str(GSM8K), limit=N, train=str(GSM8K)), specs, folder, progress=False)
    finally:
        for server in servers:
            server.__exit__(None, None, None)


def test_the_report_of_a_run_shows_its_evaluation(small_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    report = tmp_path / "report.html"
    CliRunner().invoke(main, ["report", str(run), "--out", str(report)])
    assert 'id="evaluation"' not in report.read_text()  # no eval.json: no section, no link

    eval_into(run / "eval", gsm8k_stand_in(lambda i: i % 2 == 0), gsm8k_stand_in(lambda i: True))
    result = CliRunner().invoke(main, ["report", str(run), "--out", str(report)])
    assert result.exit_code == 0, result.output
    page = report.read_text()
    section = page.split('<section id="evaluation">', 1)[1].split("</section>", 1)[0]
    assert '<a href="#evaluation">Evaluation</a>' in page
    assert "<td>model0</td><td>0.500 [0.299, 0.701]</td><td>20</td>" in section
    assert "<td>model1</td><td>1.000 [0.839, 1.000]</td><td>20</td>" in section
    assert "20 of 20 items" in section  # the overlap with the training data
    assert 'id="chart-eval-0-0"' in section  # each model's accuracy with its interval, drawn


def test_the_model_card_gets_an_evaluation_section_once(tmp_path):
    student = tmp_path / "student"
    student.mkdir()
    (student / "metrics.json").write_text(json.dumps({"data": {"path": str(GSM8K)}}))
    card = "# smollm2 fine-tuned on gsm8k\n\n## Training\n\n- loss: 1.2\n\n## Prompt\n\nAlpaca's template.\n"
    (student / "README.md").write_text(card)
    doc = eval_into(tmp_path / "eval", gsm8k_stand_in(lambda i: i % 2 == 0)).doc

    assert update_model_card(student, doc) and update_model_card(student, doc)  # a second eval replaces the first
    text = (student / "README.md").read_text()
    assert text.count("## Evaluation") == 1
    assert text.index("## Training") < text.index("## Evaluation") < text.index("## Prompt")
    assert "| model0 | 0.500 [0.299, 0.701] | 20 of 20 items |" in text
    (student / "merged").mkdir()
    assert student_folders(str(student)) == [student]
    assert student_folders(str(student / "merged")) == [student / "merged", student]  # both cards
    assert student_folders(str(tmp_path / "eval")) == []  # not a folder finetune wrote
