"""The intervals every eval score carries: Wilson for rates, t for means, pass@k's unbiased estimator."""

import itertools
import math

import pytest

from selfinstruct.eval.scores import Score, mean, pass_at_k, pass_at_k_score, proportion, t_quantile, wilson


def test_wilson_matches_the_textbook_and_stays_inside_0_1():
    assert wilson(10, 20) == pytest.approx((0.2993, 0.7007), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)  # the normal interval would be [0, 0]
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)  # nothing measured: anything is possible


def test_a_tie_counts_as_half_a_win():
    score = proportion("win_rate", 3 + 0.5 * 5, 8)
    assert score.value == pytest.approx(0.6875) and score.low < score.value < score.high


def test_mean_interval_uses_the_t_quantile():
    values = [1.0, 2.0, 3.0, 4.0]
    score = mean("nll_per_token", values)
    sd = math.sqrt(sum((v - 2.5) ** 2 for v in values) / 3)
    assert score.value == 2.5 and score.n == 4
    assert score.high - score.value == pytest.approx(3.1824 * sd / 2, abs=1e-3)  # t(3) = 3.182
    assert t_quantile(1000) == pytest.approx(1.9623, abs=1e-4)  # past the table: Cornish-Fisher


def test_pass_at_k_equals_the_exact_probability():
    # n=6 samples, c=2 correct, k=3: the share of 3-subsets that hold a correct sample
    subsets = list(itertools.combinations([1, 1, 0, 0, 0, 0], 3))
    assert pass_at_k(6, 2, 3) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
    assert pass_at_k(5, 1, 1) == pytest.approx(0.2)
    assert pass_at_k(5, 0, 5) == 0.0 and pass_at_k(5, 3, 3) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)
    assert pass_at_k_score([(4, 1), (4, 0)], 4).value == pytest.approx(0.5)


def test_a_score_survives_json():
    score = Score("accuracy", 0.5, 0.2993, 0.7007, 20)
    assert Score.from_json(score.to_json()) == score
    assert str(score) == "0.500 [0.299, 0.701] n=20"
