"""AlpaGasus's data selection: a teacher rates every record 0-5, the best are kept.

rating.py    the rating prompt (JSON or AlpaGasus's score-then-explanation text) and its parser
task.py      `JudgeTask` on the job engine, `JudgeConfig`, `judge()`, its `--dry-run` estimate and its entry
"""

from .task import ENTRY, JudgeConfig, JudgeTask, estimate_judge_cost, judge

__all__ = ["ENTRY", "JudgeConfig", "JudgeTask", "estimate_judge_cost", "judge"]
