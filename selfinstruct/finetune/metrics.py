"""Training metrics: the loss curve as JSON (for tools) and PNG (for people)."""

from __future__ import annotations

from pathlib import Path

from ..records import write_json_atomic

CURVE_KEYS = ("step", "epoch", "loss", "learning_rate", "grad_norm", "num_tokens", "mean_token_accuracy")
# DPO's own: the implicit rewards beta * log(policy / reference) of the chosen and rejected answers,
# their difference, and the share of pairs where the chosen one is rewarded more
PREFERENCE_KEYS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")


def write_metrics(log_history: list[dict], out: Path, data_stats: dict) -> dict:
    """Write `metrics.json` and `loss.png` from the Trainer's log history; return the metrics."""
    keys = CURVE_KEYS + PREFERENCE_KEYS
    curve = [{k: entry[k] for k in keys if k in entry} for entry in log_history if "loss" in entry]
    summary = next((entry for entry in reversed(log_history) if "train_runtime" in entry), {})
    metrics = {
        "first_loss": curve[0]["loss"] if curve else None,
        "last_loss": curve[-1]["loss"] if curve else None,
        "train": summary,
        "data": data_stats,
        "loss_curve": curve,
    }
    write_json_atomic(out / "metrics.json", metrics)
    _plot(curve, out / "loss.png")
    return metrics


def _plot(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p["step"] for p in curve], [p["loss"] for p in curve], marker="." if len(curve) < 50 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (response tokens)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
