"""Candidate i of a search: near-best share, single mutations, budgets, space size."""
import pytest
from scipy import stats

from deeplab_dpc import spec
from deeplab_dpc.errors import InputError
from deeplab_dpc.search import sampler


def _differs_in_one_branch(a, b):
    return a.num_branches == b.num_branches and sum(
        x != y for x, y in zip(a.branches, b.branches)) == 1


def test_the_near_best_share_and_every_near_best_sample_mutates_a_top_cell():
    settings = sampler.SamplerSettings(num_branches=5, near_best_fraction=0.3, seed=11)
    top = [spec.sample(5, i) for i in range(4)]
    n, near = 3000, 0
    for i in range(n):
        cell, origin, parent = sampler.draw(i, settings, top)
        if origin == "near_best":
            near += 1
            assert any(parent is t for t in top)
            assert _differs_in_one_branch(cell, parent)
            assert cell.canonical_key() != parent.canonical_key()
        else:
            assert origin == "uniform" and parent is None
    low, high = stats.binom.interval(0.99, n, 0.3)
    assert low <= near <= high, (near, low, high)


def test_candidate_i_depends_only_on_seed_and_index():
    settings = sampler.SamplerSettings(num_branches=3, near_best_fraction=0.5, seed=4)
    top = [spec.sample(3, 9)]
    a = [sampler.draw(i, settings, top)[0].to_json() for i in range(20)]
    b = [sampler.draw(i, settings, top)[0].to_json() for i in reversed(range(20))][::-1]
    assert a == b
    other = sampler.SamplerSettings(num_branches=3, near_best_fraction=0.5, seed=5)
    assert a != [sampler.draw(i, other, top)[0].to_json() for i in range(20)]


def test_without_a_finished_trial_every_sample_is_uniform():
    settings = sampler.SamplerSettings(num_branches=2, near_best_fraction=1.0)
    assert {sampler.draw(i, settings, [])[1] for i in range(50)} == {"uniform"}


def test_budgets_name_what_they_exceed():
    settings = sampler.SamplerSettings(max_madds=100, max_params=10)
    assert sampler.over_budget((5, 100), settings) is None
    assert "max_madds 100" in sampler.over_budget((5, 101), settings)
    assert "max_params 10" in sampler.over_budget((11, 50), settings)
    assert sampler.over_budget((10 ** 9, 10 ** 12), sampler.SamplerSettings()) is None


@pytest.mark.parametrize("field,value", [("near_best_fraction", 1.5), ("near_best_top_k", 0),
                                         ("num_branches", 0), ("max_madds", -1)])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(InputError) as e:
        sampler.SamplerSettings(**{field: value})
    assert field in e.value.params


def test_the_number_of_networks_counts_distinct_keys():
    assert spec.num_networks(1) == 81
    assert spec.num_networks(2) == 81 * 82 // 2 + 81 * 81
    # B = 3 by brute force over 3 labels instead of 81: enumerate every spec.
    import itertools

    import deeplab_dpc.spec as s

    labels = s.OPS[:3]
    keys = set()
    for inputs in itertools.product(*[range(-1, i) for i in range(3)]):
        for ops in itertools.product(labels, repeat=3):
            keys.add(s.CellSpec(tuple(s.Branch(i, o) for i, o in zip(inputs, ops)))
                     .canonical_key())
    original = s.OPS
    try:
        s.OPS = labels
        assert s.num_networks(3) == len(keys)
    finally:
        s.OPS = original
    assert spec.num_networks(5) < spec.space_size(5)
