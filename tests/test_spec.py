"""Tests for deeplab_dpc/spec.py: JSON format, validation, search space, canonical keys."""
import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from deeplab_dpc import spec as S
from deeplab_dpc.errors import InputError
from deeplab_dpc.spec import (GRIDS, OPS, PUBLISHED_CELL_PATH, RATES, Branch, CellSpec,
                              Conv1x1, PyramidPooling, SeparableConv)

PROPERTY = settings(max_examples=200, derandomize=True, deadline=None)
PUBLISHED_STR = ("b0=sep(F,1x6) b1=sep(b0,18x15) b2=sep(b1,6x3) b3=sep(b0,1x1) "
                 "b4=sep(b0,6x21)")


# ------------------------------------------------------------------ published cell
def test_published_cell_round_trip():
    with open(PUBLISHED_CELL_PATH) as f:
        text = f.read()
    cell = S.published_cell()
    assert cell == CellSpec.from_json(text) == CellSpec.from_file(PUBLISHED_CELL_PATH)
    assert json.loads(cell.to_json()) == json.loads(text) == cell.to_reference()
    assert cell.to_json() == text.strip()  # even the key order and spacing match
    assert str(cell) == PUBLISHED_STR
    assert cell.num_branches == 5
    assert cell.branches[2] == Branch(1, SeparableConv(6, 3))


def test_other_ops_write_reference_format():
    cell = CellSpec((Branch(-1, Conv1x1()), Branch(0, PyramidPooling(2, 8))))
    assert cell.to_reference() == [
        {"kernel": 1, "op": "conv", "input": -1},
        {"op": "pyramid_pooling", "grid_size": [2, 8], "input": 0}]
    assert CellSpec.from_json(cell.to_json()) == cell
    assert str(cell) == "b0=conv1x1(F) b1=pool(b0,2x8)"


def test_reference_spellings_are_accepted_and_normalized():
    cell = CellSpec.from_json(
        '[{"op": "conv", "kernel": [1, 1], "input": -7},'
        ' {"op": "conv", "kernel": [3, 3], "rate": [21, 9], "input": -2}]')
    assert cell == CellSpec((Branch(-1, Conv1x1()), Branch(-1, SeparableConv(21, 9))))
    assert [b["input"] for b in cell.to_reference()] == [-1, -1]
    assert Branch(-3, Conv1x1()) == Branch(-1, Conv1x1())


def test_specs_are_hashable_values():
    a, b = S.published_cell(), S.published_cell()
    assert a is not b and a == b and len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.branches = ()


def test_ops_order_and_index():
    assert len(OPS) == 81 == len(set(OPS)) == 1 + len(RATES) ** 2 + len(GRIDS) ** 2
    assert OPS[0] == Conv1x1()
    assert OPS[1] == SeparableConv(1, 1) and OPS[2] == SeparableConv(1, 3)
    assert OPS[64] == SeparableConv(21, 21)
    assert OPS[65] == PyramidPooling(1, 1) and OPS[80] == PyramidPooling(8, 8)
    assert all(S.op_index(op) == i for i, op in enumerate(OPS))
    with pytest.raises(InputError):
        S.op_index("conv")


# ---------------------------------------------------------------------- validation
def _conv(rate, input_):
    return {"kernel": 3, "rate": rate, "op": "conv", "input": input_}


GOOD = _conv([1, 6], -1)
# (branch objects after a good branch 0, the field the message must name).
BAD_BRANCHES = {
    "not an object": ([1, 2], None),
    "unknown op": ({"op": "maxpool", "input": 0}, "op"),
    "op not a string": ({"op": 3, "input": 0}, "op"),
    "missing op": ({"kernel": 1, "input": 0}, "op"),
    "missing input": ({"kernel": 1, "op": "conv"}, "input"),
    "missing kernel": ({"op": "conv", "input": 0}, "kernel"),
    "unknown field (typo)": ({"kernel": 3, "rates": [1, 1], "op": "conv", "input": 0},
                             "rates"),
    "input is bool": (_conv([1, 1], True), "input"),
    "input is float": (_conv([1, 1], 0.0), "input"),
    "input is string": (_conv([1, 1], "0"), "input"),
    "input is itself": (_conv([1, 1], 1), "input"),
    "input is later": (_conv([1, 1], 4), "input"),
    "kernel 5": ({"kernel": 5, "rate": [1, 1], "op": "conv", "input": 0}, "kernel"),
    "kernel [1, 3]": ({"kernel": [1, 3], "op": "conv", "input": 0}, "kernel"),
    "kernel true": ({"kernel": True, "op": "conv", "input": 0}, "kernel"),
    "kernel 1.0": ({"kernel": 1.0, "op": "conv", "input": 0}, "kernel"),
    "kernel string": ({"kernel": "3", "rate": [1, 1], "op": "conv", "input": 0}, "kernel"),
    "rate missing for 3x3": ({"kernel": 3, "op": "conv", "input": 0}, "rate"),
    "rate outside RATES": (_conv([1, 5], 0), "rate"),
    "rate too short": (_conv([6], 0), "rate"),
    "rate too long": (_conv([6, 6, 6], 0), "rate"),
    "rate scalar": (_conv(6, 0), "rate"),
    "rate float": (_conv([6.0, 6], 0), "rate"),
    "rate bool": (_conv([True, 1], 0), "rate"),
    "grid_size missing": ({"op": "pyramid_pooling", "input": 0}, "grid_size"),
    "grid_size outside GRIDS": ({"op": "pyramid_pooling", "grid_size": [3, 1], "input": 0},
                                "grid_size"),
    "grid_size not a list": ({"op": "pyramid_pooling", "grid_size": "1x1", "input": 0},
                             "grid_size"),
}


def _assert_one_line(err, *parts):
    msg = str(err.value)
    assert "\n" not in msg and msg.strip() == msg, msg
    for part in parts:
        assert part in msg, (part, msg)


@pytest.mark.parametrize("name", sorted(BAD_BRANCHES))
def test_bad_branch_raises_input_error_naming_branch_and_field(name):
    obj, field = BAD_BRANCHES[name]
    with pytest.raises(InputError) as err:
        CellSpec.from_json(json.dumps([GOOD, obj]))
    _assert_one_line(err, "branch 1:", *([f"field '{field}'"] if field else []))


def test_rate_message_matches_documented_form():
    with pytest.raises(InputError) as err:
        CellSpec.from_reference([GOOD, GOOD, _conv([5, 1], 0)])
    assert str(err.value) == ("branch 2: field 'rate': 5 is not in the search space "
                              "{1, 3, 6, 9, 12, 15, 18, 21}")


def test_branch_zero_cannot_use_an_earlier_branch():
    with pytest.raises(InputError) as err:
        CellSpec.from_reference([_conv([1, 1], 0)])
    _assert_one_line(err, "branch 0:", "field 'input'")


@pytest.mark.parametrize("text", ['{"op": "conv"}', "[]", '"cell"', "null", "[1, 2", ""])
def test_bad_top_level_raises_one_line(text):
    with pytest.raises(InputError) as err:
        CellSpec.from_json(text)
    _assert_one_line(err)


def test_file_errors_are_prefixed_with_path(tmp_path):
    path = tmp_path / "cell.json"
    path.write_text(json.dumps([GOOD, GOOD, _conv([5, 1], 0)]))
    with pytest.raises(InputError) as err:
        CellSpec.from_file(path)
    _assert_one_line(err, f"{path}: branch 2: field 'rate': 5 is not in the search space")
    with pytest.raises(InputError) as err:
        CellSpec.from_file(tmp_path / "missing.json")
    _assert_one_line(err, "missing.json:")


@pytest.mark.parametrize("build", [
    lambda: CellSpec(()),
    lambda: CellSpec("b0"),
    lambda: CellSpec((Branch(-1, Conv1x1()), "b1")),
    lambda: CellSpec((Branch(0, Conv1x1()),)),
    lambda: CellSpec((Branch(-1, Conv1x1()), Branch(2, Conv1x1()))),
    lambda: Branch(True, Conv1x1()),
    lambda: Branch(0.0, Conv1x1()),
    lambda: Branch(-1, "conv"),
    lambda: SeparableConv(5, 1),
    lambda: SeparableConv(1, True),
    lambda: PyramidPooling(3, 1),
    lambda: PyramidPooling(1.0, 1),
], ids=lambda f: "")
def test_specs_built_in_python_are_validated(build):
    with pytest.raises(InputError) as err:
        build()
    _assert_one_line(err)


def test_python_error_names_branch_and_field():
    with pytest.raises(InputError) as err:
        CellSpec((Branch(-1, Conv1x1()), Branch(-1, Conv1x1()), Branch(2, Conv1x1())))
    _assert_one_line(err, "branch 2:", "field 'input'")


# -------------------------------------------------------------------- search space
@pytest.mark.parametrize("b,size", [(1, 81), (2, 13122), (3, 3188646), (4, 1033121304),
                                    (5, 418414128120)])
def test_space_size_matches_hand_values(b, size):
    assert S.space_size(b) == size


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_space_size_rejects_bad_branch_count(bad):
    with pytest.raises(InputError):
        S.space_size(bad)


def test_sample_is_reproducible():
    assert S.sample(5, 7) == S.sample(5, 7)
    assert S.sample(5, np.random.default_rng(7)) == S.sample(5, 7)
    assert len({S.sample(5, seed) for seed in range(20)}) == 20
    g = np.random.default_rng(3)
    assert S.sample(5, g) != S.sample(5, g)  # a Generator advances
    with pytest.raises(TypeError):
        S.sample(5, "seed")


def test_sample_is_uniform_over_ops_and_inputs():
    g = np.random.default_rng(0)
    cells = [S.sample(5, g) for _ in range(5000)]
    ops = np.bincount([S.op_index(c.branches[2].op) for c in cells], minlength=81)
    assert stats.chisquare(ops).pvalue > 0.001
    inputs = np.bincount([c.branches[4].input + 1 for c in cells], minlength=5)
    assert stats.chisquare(inputs).pvalue > 0.001
    assert all(c.branches[0].input == -1 for c in cells)
    # Uniform over the 81 ops, hence NOT over the 3 op types: 1x1 conv is ~1/81.
    kinds = [type(c.branches[1].op) for c in cells]
    types = np.array([kinds.count(k) for k in (Conv1x1, SeparableConv, PyramidPooling)])
    assert stats.chisquare(types).pvalue < 1e-6
    assert stats.chisquare(types, 5000 * np.array([1, 64, 16]) / 81).pvalue > 0.001


# ------------------------------------------------------------------ canonical keys
SMALL_OPS = (Conv1x1(), SeparableConv(1, 1), PyramidPooling(1, 1))


@st.composite
def cells(draw, max_branches=7):
    """Random specs; often with few distinct ops so that equal subtrees are common."""
    n = draw(st.integers(1, max_branches))
    ops = draw(st.sampled_from([SMALL_OPS[:1], SMALL_OPS[:2], OPS]))
    return CellSpec(tuple(Branch(draw(st.integers(-1, i - 1)), draw(st.sampled_from(ops)))
                          for i in range(n)))


def _reorder(cell, rnd):
    """The same network with branches in a random topological order."""
    placed, new_index = [], {-1: -1}
    left = list(range(cell.num_branches))
    while left:
        ready = [i for i in left if cell.branches[i].input in new_index]
        i = rnd.choice(ready)
        left.remove(i)
        new_index[i] = len(placed)
        placed.append(Branch(new_index[cell.branches[i].input], cell.branches[i].op))
    return CellSpec(tuple(placed))


@PROPERTY
@given(cells(), st.randoms(use_true_random=False))
def test_reorderings_share_key_and_canonical_form(cell, rnd):
    other = _reorder(cell, rnd)
    assert other.canonical_key() == cell.canonical_key()
    assert other.short_id() == cell.short_id()
    canon = cell.canonicalize()
    assert other.canonicalize() == canon
    assert canon.canonical_key() == cell.canonical_key()
    assert canon.canonicalize() == canon


@PROPERTY
@given(cells(), st.integers(0, 2**32 - 1))
def test_mutation_changes_network_and_one_field(cell, seed):
    child = S.mutate(cell, seed)
    assert child.canonical_key() != cell.canonical_key()
    diffs = [(a.input != b.input) + (a.op != b.op)
             for a, b in zip(cell.branches, child.branches)]
    assert sorted(diffs)[-1] == 1 and sum(diffs) == 1
    assert S.mutate(cell, seed) == child  # reproducible


def test_mutation_changes_inputs_as_well_as_ops():
    g = np.random.default_rng(0)
    cell = S.published_cell()
    children = [S.mutate(cell, g) for _ in range(200)]
    changed_input = sum(any(a.input != b.input for a, b in zip(cell.branches, c.branches))
                        for c in children)
    assert 40 < changed_input < 160


def test_key_is_not_a_multiset_of_root_paths():
    a, b, c = SMALL_OPS[1], SMALL_OPS[0], SMALL_OPS[2]
    # F -> A1 -> B, F -> A2 -> C   versus   F -> A1 -> (B, C), F -> A2
    one = CellSpec((Branch(-1, a), Branch(-1, a), Branch(0, b), Branch(1, c)))
    two = CellSpec((Branch(-1, a), Branch(-1, a), Branch(0, b), Branch(0, c)))
    assert one.canonical_key() != two.canonical_key()
    assert one.short_id() != two.short_id()


def test_published_cell_key_ignores_concat_order():
    cell = S.published_cell()
    swapped = CellSpec(cell.branches[:3] + (cell.branches[4], cell.branches[3]))
    assert swapped != cell and swapped.canonical_key() == cell.canonical_key()
    assert len(cell.short_id()) == 12 and int(cell.short_id(), 16) >= 0


def _brute_form(cell):
    """Isomorphism class by brute force: the least edge list over all relabellings."""
    n = cell.num_branches
    return min(
        tuple(sorted((p[i], S.op_index(b.op), -1 if b.input < 0 else p[b.input])
                     for i, b in enumerate(cell.branches)))
        for p in itertools.permutations(range(n)))


def test_key_equality_is_tree_isomorphism_for_small_cells():
    every = [
        CellSpec(tuple(Branch(i, op) for i, op in zip(inputs, ops)))
        for n in range(1, 5)
        for inputs in itertools.product(*[range(-1, i) for i in range(n)])
        for ops in itertools.product(SMALL_OPS, repeat=n)]
    assert len(every) == sum(S.space_size(n) // 27 ** n for n in range(1, 5))
    key_to_form, form_to_key = {}, {}
    for cell in every:
        key, form = cell.canonical_key(), _brute_form(cell)
        assert key_to_form.setdefault(key, form) == form
        assert form_to_key.setdefault(form, key) == key
    # Unordered rooted trees with 1..4 non-root nodes: 1, 2, 4, 9 shapes (OEIS A000081);
    # labelled ones are fewer than specs, so the check above was not vacuous.
    assert len(key_to_form) < len(every)


def test_known_fields_an_op_does_not_use_are_ignored_as_in_the_reference():
    spec = CellSpec.from_reference([
        {"kernel": 1, "rate": [1, 1], "op": "conv", "input": -1},
        {"op": "pyramid_pooling", "kernel": 1, "grid_size": [2, 1], "input": 0}])
    assert spec.to_reference() == [
        {"kernel": 1, "op": "conv", "input": -1},
        {"op": "pyramid_pooling", "grid_size": [2, 1], "input": 0}]
