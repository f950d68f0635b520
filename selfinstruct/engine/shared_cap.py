"""One `max_cost` over several runs that make one result (`answer --student`: the student's run,
its ratings, the teacher's run, the teacher's ratings; `eval`: each model's answers and its
judge's verdicts): each run's own cap is what the others have not spent. A resumed run's own
spending is in its ledger, which its cap covers, so it is left out of the others' sum.

    cap = SharedCap(5.0, [out_student, out_student_judged, out_teacher, out])
    config = config.model_copy(update={"max_cost": cap.cap_for(out_teacher)})   # $5 less the others' cost.json
    cap = SharedCap(5.0, found_in=Path("outputs/eval"), pattern="*/*")  # the runs there when a cap is asked
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import SettingError
from ..records import read_json_object
from ..runfiles import COST_FILE, RunFiles


class SharedCap:
    def __init__(
        self,
        max_cost: float | None,
        run_dirs: Sequence[Path] = (),
        *,
        found_in: Path | None = None,
        pattern: str = "*",
    ):
        """The runs sharing `max_cost`: `run_dirs`, and those `pattern` finds under the folder
        `found_in` (by their cost.json) each time a cap is asked for, for runs made as a command
        goes (an eval's, one pair per model)."""
        self.max_cost = max_cost
        self.run_dirs = [Path(d) for d in run_dirs]
        self.found_in = None if found_in is None else Path(found_in)
        self.pattern = pattern

    def runs(self) -> list[Path]:
        found = [] if self.found_in is None else [c.parent for c in self.found_in.glob(f"{self.pattern}/{COST_FILE}")]
        return self.run_dirs + found

    def spent(self, run_dir: Path) -> float:
        """What `run_dir` has cost so far, by its cost.json (nothing before it ran)."""
        return (read_json_object(RunFiles(run_dir).cost) or {}).get("cost_usd") or 0.0

    def cap_for(self, run_dir: Path) -> float | None:
        """The cap of `run_dir`: `max_cost` less what the other runs cost; None without a cap."""
        if self.max_cost is None:
            return None
        others = [d for d in self.runs() if d.resolve() != Path(run_dir).resolve()]
        spent = sum(self.spent(d) for d in others)
        left = self.max_cost - spent
        if left <= 0:
            names = ", ".join(str(d) for d in others)
            raise SettingError(
                f"{{max_cost}} is spent: the runs {names} cost ${spent:.4f} so far; raise it to go on", "max_cost"
            )
        return left
