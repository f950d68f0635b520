"""A score with its sample size and 95% interval, and the intervals that go with each kind.

An evaluation on 50 items that says "accuracy 0.62" hides that the truth could be anywhere from
0.48 to 0.74; every score here carries its interval and its n so a table never overclaims.

- proportions (accuracy, win rate): Wilson's interval, right near 0 and 1 and for small n,
  where the normal approximation spills outside [0, 1]:
  `wilson(31, 50) -> (0.482, 0.741)`;
- means (NLL per token): Student's t interval on the per-item values;
- pass@k with `--samples k`: the unbiased estimator of Chen et al. 2021 (HumanEval) averaged over
  items, with a t interval over the per-item estimates: `pass_at_k(n=5, c=1, k=1) -> 0.2`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

# Two-sided 95%: the normal quantile; small samples use the t quantile below instead.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Score:
    """One metric of one model: `value` with its 95% interval [`low`, `high`] over `n` items."""

    name: str  # the metric: "accuracy", "pass@4", "win_rate", "nll_per_token"
    value: float
    low: float
    high: float
    n: int

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Score:
        return cls(
            name=str(data["name"]),
            value=float(data["value"]),
            low=float(data["low"]),
            high=float(data["high"]),
            n=int(data["n"]),
        )

    def __str__(self) -> str:
        """`0.620 [0.482, 0.741] n=50`, the form tables and the terminal show."""
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] n={self.n}"


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion `successes / n`; (0, 1) when there is no item.

    `successes` may be fractional (a tie counted as half a win)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(name: str, successes: float, n: int) -> Score:
    """A rate with its Wilson interval: `proportion("accuracy", 31, 50)`."""
    low, high = wilson(successes, n)
    return Score(name, successes / n if n else 0.0, low, high, n)


# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (the classic table); beyond
# 30 the Cornish-Fisher expansion below is within 1e-4 of the exact value.
T95 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


def t_quantile(df: int) -> float:
    """Two-sided 95% quantile of Student's t with `df` degrees of freedom: `t_quantile(9) -> 2.262`."""
    if df <= len(T95):
        return T95[df - 1]
    z = Z95
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean of `values` with its t interval; a single value has no spread
    to estimate, so its interval is the value itself."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    m = sum(values) / n
    if n == 1:
        return m, m, m
    variance = sum((v - m) ** 2 for v in values) / (n - 1)
    half = t_quantile(n - 1) * math.sqrt(variance / n)
    return m, m - half, m + half


def mean(name: str, values: Sequence[float]) -> Score:
    """A mean with its t interval: `mean("nll_per_token", per_item_nll)`."""
    m, low, high = mean_interval(values)
    return Score(name, m, low, high, len(values))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct:
    1 - C(n-c, k) / C(n, k), computed as a product to stay exact for large n (Chen et al. 2021)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per item, got {n}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def pass_at_k_score(samples: Sequence[tuple[int, int]], k: int) -> Score:
    """pass@k over items, each given as (samples drawn, samples correct), with the t interval of
    the per-item estimates (for k=1 and one sample per item, this is plain accuracy: use
    `proportion` there, whose Wilson interval behaves at 0 and 1)."""
    per_item = [pass_at_k(n, c, k) for n, c in samples]
    m, low, high = mean_interval(per_item)
    return Score(f"pass@{k}", m, max(0.0, low), min(1.0, high), len(per_item))
