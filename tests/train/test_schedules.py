"""Learning-rate values, by hand."""
import json

import pytest

from deeplab_dpc.train.schedules import DeepLabLearningRate


def _lr(schedule, step):
    return float(schedule(step))


def test_poly_is_the_papers_formula_without_slow_start():
    s = DeepLabLearningRate(0.01, 1000, "poly", learning_power=0.9)
    for step in (0, 1, 250, 999, 1000, 1200):
        expected = 0.01 * (1 - min(step, 1000) / 1000) ** 0.9
        assert _lr(s, step) == pytest.approx(expected, rel=1e-4, abs=1e-12)  # float32


def test_slow_start_then_poly_over_the_remaining_steps():
    s = DeepLabLearningRate(0.01, 1000, "poly", learning_power=0.9, slow_start_step=100,
                            slow_start_learning_rate=1e-4)
    assert _lr(s, 0) == pytest.approx(1e-4)
    assert _lr(s, 99) == pytest.approx(1e-4)
    assert _lr(s, 100) == pytest.approx(0.01)  # decay restarts where the slow start ends
    assert _lr(s, 550) == pytest.approx(0.01 * 0.5 ** 0.9, rel=1e-5)
    assert _lr(s, 1000) == pytest.approx(0.0, abs=1e-12)


def test_step_policy():
    s = DeepLabLearningRate(0.1, 10000, "step", learning_rate_decay_step=2000,
                            learning_rate_decay_factor=0.1, slow_start_step=10,
                            slow_start_learning_rate=1e-3)
    assert [_lr(s, t) for t in (5, 10, 2009, 2010, 4010)] == pytest.approx(
        [1e-3, 0.1, 0.1, 0.01, 0.001], rel=1e-5)


def test_config_round_trips():
    s = DeepLabLearningRate(0.01, 100, slow_start_step=5)
    clone = DeepLabLearningRate.from_config(json.loads(json.dumps(s.get_config())))
    assert _lr(clone, 3) == _lr(s, 3) and _lr(clone, 50) == _lr(s, 50)
