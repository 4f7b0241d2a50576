"""Dense Prediction Cell specs and the architecture search space (paper Sec. 3.1).

A cell is B branches; branch i applies one op to one input, which is either the
backbone features F (input -1) or the output of an earlier branch k < i. The cell
output concatenates every branch and a learned 1x1 projection follows, so the
concat order carries no meaning: the network is a rooted tree (root F, each branch
a node labelled by its op, parent = its input) and `canonical_key` names that tree.

The JSON format is the reference DeepLab's, so users' cell files load unchanged.
Validation is strict: besides bad values, an unknown key (likely a typo) and a known
key that the branch's op does not use (e.g. `rate` on a 1x1 conv) are errors, since
either would otherwise silently build a network other than the one the user meant.

Pure Python (+ numpy for random generators): no TensorFlow here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
from typing import Union

import numpy as np

from deeplab_dpc.errors import InputError

RATES = (1, 3, 6, 9, 12, 15, 18, 21)  # atrous rates r_h, r_w of the 3x3 separable conv
GRIDS = (1, 2, 4, 8)  # pyramid pooling grid sizes g_h, g_w
# The paper searches B = 5 (and its Table shows up to 7); 16 leaves room for wider
# searches while refusing files that would build an absurd network (a 55 MB cell
# JSON with a million branches was once accepted and trained silently).
MAX_BRANCHES = 16

PUBLISHED_CELL_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "cells", "dense_prediction_cell_branch5_top1_cityscapes.json")


def _show(value) -> str:
    """A value as the user wrote it (JSON), on one line and short."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value) -> bool:
    # bool is an int subclass in Python, but `true` is never a valid rate or input.
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_pair_member(field: str, value, allowed: tuple) -> int:
    if not _is_int(value):
        raise InputError(f"field '{field}': {_show(value)} is not an integer")
    if value not in allowed:
        raise InputError(f"field '{field}': {_show(value)} is not in the search space "
                         "{" + ", ".join(map(str, allowed)) + "}")
    return int(value)


# ---------------------------------------------------------------------------- ops
@dataclasses.dataclass(frozen=True)
class Conv1x1:
    """1x1 convolution to 256 channels."""

    @property
    def label(self) -> str:
        return "conv1x1"

    def describe(self, source: str) -> str:
        return f"conv1x1({source})"


@dataclasses.dataclass(frozen=True)
class SeparableConv:
    """3x3 atrous separable convolution with separate height/width rates."""
    rate_h: int
    rate_w: int

    def __post_init__(self):
        object.__setattr__(self, "rate_h", _check_pair_member("rate_h", self.rate_h, RATES))
        object.__setattr__(self, "rate_w", _check_pair_member("rate_w", self.rate_w, RATES))

    @property
    def label(self) -> str:
        return f"sep{self.rate_h}x{self.rate_w}"

    def describe(self, source: str) -> str:
        return f"sep({source},{self.rate_h}x{self.rate_w})"


@dataclasses.dataclass(frozen=True)
class PyramidPooling:
    """Average pooling in a g_h x g_w grid, 1x1 conv, bilinear resize back."""
    grid_h: int
    grid_w: int

    def __post_init__(self):
        object.__setattr__(self, "grid_h", _check_pair_member("grid_h", self.grid_h, GRIDS))
        object.__setattr__(self, "grid_w", _check_pair_member("grid_w", self.grid_w, GRIDS))

    @property
    def label(self) -> str:
        return f"pool{self.grid_h}x{self.grid_w}"

    def describe(self, source: str) -> str:
        return f"pool({source},{self.grid_h}x{self.grid_w})"


Op = Union[Conv1x1, SeparableConv, PyramidPooling]

# The 81 ops in a fixed order that search logs and studies may store as indices:
# 0 = Conv1x1; 1..64 = SeparableConv(rh, rw), rh-major over RATES;
# 65..80 = PyramidPooling(gh, gw), gh-major over GRIDS.
OPS: tuple = (
    (Conv1x1(),)
    + tuple(SeparableConv(h, w) for h in RATES for w in RATES)
    + tuple(PyramidPooling(h, w) for h in GRIDS for w in GRIDS))
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
assert len(OPS) == 81 == len(_OP_INDEX)


def op_index(op: Op) -> int:
    """Position of `op` in OPS (inverse of OPS[i])."""
    try:
        return _OP_INDEX[op]
    except (KeyError, TypeError):
        raise InputError(f"{op!r} is not an op of the search space") from None


# ------------------------------------------------------------------------- branches
@dataclasses.dataclass(frozen=True)
class Branch:
    """One branch: `op` applied to `input` (-1 = backbone features, k = branch k)."""
    input: int
    op: Op

    def __post_init__(self):
        if not _is_int(self.input):
            raise InputError(f"field 'input': {_show(self.input)} is not an integer")
        # Any negative input means the backbone features, as in the reference.
        object.__setattr__(self, "input", max(int(self.input), -1))
        if not isinstance(self.op, (Conv1x1, SeparableConv, PyramidPooling)):
            raise InputError(f"field 'op': {self.op!r} is not an op of the search space")


_KNOWN_FIELDS = ("op", "input", "kernel", "rate", "grid_size")


def _pair(field: str, value, allowed: tuple, what: str) -> tuple:
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise InputError(f"field '{field}': {_show(value)} is not a list of 2 integers {what}")
    return tuple(_check_pair_member(field, v, allowed) for v in value)


def _branch_from_reference(obj) -> Branch:
    """Parse one reference branch object; errors name the field (caller adds branch)."""
    if not isinstance(obj, dict):
        raise InputError(f"must be an object, got {_show(obj)}")
    for key in obj:
        if key not in _KNOWN_FIELDS:
            raise InputError(f"field {key!r}: unknown field (known: "
                             + ", ".join(_KNOWN_FIELDS) + ")")
    for key in ("op", "input"):
        if key not in obj:
            raise InputError(f"field '{key}': missing")
    name = obj["op"]
    if name == "conv":
        if "kernel" not in obj:
            raise InputError("field 'kernel': missing (1 or 3 for op \"conv\")")
        kernel = _kernel_size(obj["kernel"])
        if kernel is None:
            raise InputError(
                f"field 'kernel': {_show(obj['kernel'])} is not 1, [1, 1], 3 or [3, 3]")
        kind = f"conv{kernel}x{kernel}"
    elif name == "pyramid_pooling":
        kind = "pyramid_pooling"
    else:
        raise InputError(f"field 'op': {_show(name)} is not \"conv\" or \"pyramid_pooling\"")
    # Known fields that this op does not use (a `rate` on a 1x1 conv) are ignored,
    # as in the reference, so files written for it load unchanged.
    if kind == "conv1x1":
        op = Conv1x1()
    elif kind == "conv3x3":
        if "rate" not in obj:
            raise InputError("field 'rate': missing (required for a 3x3 conv)")
        op = SeparableConv(*_pair("rate", obj["rate"], RATES, "[rate_h, rate_w]"))
    else:
        if "grid_size" not in obj:
            raise InputError("field 'grid_size': missing (required for pyramid_pooling)")
        op = PyramidPooling(*_pair("grid_size", obj["grid_size"], GRIDS, "[grid_h, grid_w]"))
    return Branch(obj["input"], op)


def _kernel_size(value):
    """1 or 3 for `k` or `[k, k]` with int k in {1, 3}; None otherwise.

    Checked by type, not `==`: in Python `true == 1` and `1.0 == 1`.
    """
    if isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    return value if _is_int(value) and value in (1, 3) else None


def _branch_to_reference(branch: Branch) -> dict:
    op = branch.op
    if isinstance(op, Conv1x1):
        return {"kernel": 1, "op": "conv", "input": branch.input}
    if isinstance(op, SeparableConv):
        return {"kernel": 3, "rate": [op.rate_h, op.rate_w], "op": "conv",
                "input": branch.input}
    return {"op": "pyramid_pooling", "grid_size": [op.grid_h, op.grid_w],
            "input": branch.input}


# ----------------------------------------------------------------------------- cell
@dataclasses.dataclass(frozen=True)
class CellSpec:
    """A Dense Prediction Cell: branches built in order, outputs concatenated."""
    branches: tuple

    def __post_init__(self):
        if isinstance(self.branches, (str, bytes, dict)) or not hasattr(self.branches, "__iter__"):
            raise InputError(f"a cell needs a sequence of branches, got {_show(self.branches)}")
        object.__setattr__(self, "branches", tuple(self.branches))
        if not self.branches:
            raise InputError("a cell needs at least one branch, got none")
        if len(self.branches) > MAX_BRANCHES:
            raise InputError(f"a cell has at most {MAX_BRANCHES} branches, got "
                             f"{len(self.branches)}")
        for i, b in enumerate(self.branches):
            if not isinstance(b, Branch):
                raise InputError(f"branch {i}: must be a Branch, got {b!r}")
            if b.input >= i:
                raise InputError(
                    f"branch {i}: field 'input': {b.input} is not an earlier branch "
                    f"(use a negative value for the backbone features"
                    + {0: ")", 1: " or 0)"}.get(i, f" or 0..{i - 1})"))

    # -- reference JSON
    @classmethod
    def from_reference(cls, obj) -> "CellSpec":
        """From the reference format: a list of branch objects (parsed JSON)."""
        if not isinstance(obj, list):
            raise InputError(f"a cell must be a JSON list of branch objects, got {_show(obj)}")
        if not obj:
            raise InputError("a cell must have at least one branch, got an empty list")
        if len(obj) > MAX_BRANCHES:
            raise InputError(f"a cell has at most {MAX_BRANCHES} branches, got {len(obj)}")
        branches = []
        for i, item in enumerate(obj):
            try:
                branches.append(_branch_from_reference(item))
            except InputError as e:
                raise InputError(f"branch {i}: {e}") from None
        return cls(tuple(branches))

    @classmethod
    def from_json(cls, text: str) -> "CellSpec":
        from deeplab_dpc.files import parse_json

        try:
            obj = parse_json(text, "cell")
        except InputError as e:
            raise InputError(str(e)[len("cell: "):]) from None
        return cls.from_reference(obj)

    @classmethod
    def from_file(cls, path) -> "CellSpec":
        """Load a cell JSON file; errors are prefixed with the path."""
        from deeplab_dpc.files import read_json

        obj = read_json(path, "cell file")
        try:
            return cls.from_reference(obj)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None

    def to_reference(self) -> list:
        return [_branch_to_reference(b) for b in self.branches]

    def to_json(self) -> str:
        """Reference JSON, one line, in the reference's key order."""
        return json.dumps(self.to_reference())

    # -- identity of the network
    def _subtree_codes(self) -> tuple:
        """AHU code of every branch's subtree, plus the tree (children, roots).

        code(node) = label + "(" + ",".join(sorted(code(child))) + ")". Children always
        have larger indices than their parent, so one backward pass suffices.
        """
        children = [[] for _ in self.branches]
        roots = []
        for i, b in enumerate(self.branches):
            (roots if b.input < 0 else children[b.input]).append(i)
        codes = [None] * len(self.branches)
        for i in reversed(range(len(self.branches))):
            codes[i] = (self.branches[i].op.label + "("
                        + ",".join(sorted(codes[c] for c in children[i])) + ")")
        return codes, children, roots

    def canonical_key(self) -> str:
        """Equal for two specs iff they build the same network (isomorphic trees).

        Labels contain no '(', ')' or ',', so the code is uniquely decodable and
        sorting the children's codes makes it independent of branch order. A multiset
        of root-to-node paths would not do: A(B),A(C) and A(B,C),A() share it.
        """
        codes, _, roots = self._subtree_codes()
        return "F(" + ",".join(sorted(codes[r] for r in roots)) + ")"

    def short_id(self) -> str:
        """12 hex chars of sha1(canonical_key): a stable name for run directories."""
        return hashlib.sha1(self.canonical_key().encode()).hexdigest()[:12]

    def canonicalize(self) -> "CellSpec":
        """The same network with branches in a canonical order.

        Preorder from F, visiting children in order of their subtree codes; ties are
        identical subtrees, so the result is the same for every equivalent spec, and
        parents come before children, so inputs stay valid.
        """
        codes, children, roots = self._subtree_codes()
        order, new_input = [], {}
        stack = [(r, -1) for r in sorted(roots, key=lambda r: codes[r], reverse=True)]
        while stack:
            i, parent = stack.pop()
            new_input[i] = parent
            me = len(order)
            order.append(i)
            stack.extend((c, me) for c in sorted(children[i], key=lambda c: codes[c],
                                                 reverse=True))
        return CellSpec(tuple(Branch(new_input[i], self.branches[i].op) for i in order))

    @property
    def num_branches(self) -> int:
        return len(self.branches)

    def __str__(self) -> str:
        return " ".join(
            f"b{i}=" + b.op.describe("F" if b.input < 0 else f"b{b.input}")
            for i, b in enumerate(self.branches))


def published_cell() -> CellSpec:
    """The top-1 Cityscapes cell released with the paper."""
    return CellSpec.from_file(PUBLISHED_CELL_PATH)


# --------------------------------------------------------------------- search space
def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if _is_int(rng):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator or an int seed, got {rng!r}")


def _check_num_branches(num_branches) -> int:
    if not _is_int(num_branches) or not 1 <= num_branches <= MAX_BRANCHES:
        raise InputError(f"num_branches: {_show(num_branches)} is not an integer in "
                         f"[1, {MAX_BRANCHES}]", param="num_branches")
    return int(num_branches)


def space_size(num_branches: int) -> int:
    """B! * 81^B: branch i (0-based) has i+1 inputs and 81 ops (paper Sec. 3.1).

    Counts specs, not networks: many specs build the same network.
    """
    b = _check_num_branches(num_branches)
    return math.factorial(b) * len(OPS) ** b


def sample(num_branches: int, rng) -> CellSpec:
    """A spec drawn uniformly from the space: input uniform over {F, b0..b(i-1)},
    op uniform over the 81 ops (so 1x1 conv is 1/81, not 1/3)."""
    b, g = _check_num_branches(num_branches), _rng(rng)
    return CellSpec(tuple(
        Branch(int(g.integers(-1, i)), OPS[int(g.integers(len(OPS)))]) for i in range(b)))


def mutate(spec: CellSpec, rng) -> CellSpec:
    """A neighbour: one branch's op or input changed, building a different network.

    The branch is uniform; op vs input is a fair coin (branch 0 can only change its
    op), so tree shape is explored as often as ops; the new value is uniform over the
    others. An input change can give an isomorphic tree, so such draws are redone;
    op changes always alter the multiset of labels, so this ends quickly.
    """
    g, key = _rng(rng), spec.canonical_key()
    n = spec.num_branches
    while True:
        i = int(g.integers(n))
        branches = list(spec.branches)
        old = branches[i]
        if i > 0 and g.integers(2):
            choices = [k for k in range(-1, i) if k != old.input]
            branches[i] = Branch(choices[int(g.integers(len(choices)))], old.op)
        else:
            j = int(g.integers(len(OPS) - 1))
            j += j >= op_index(old.op)
            branches[i] = Branch(old.input, OPS[j])
        candidate = CellSpec(tuple(branches))
        if candidate.canonical_key() != key:
            return candidate


def num_networks(num_branches: int) -> int:
    """How many different networks (canonical keys) B branches build.

    A cell is a forest of B nodes hung from F, each node one of the 81 ops, children
    unordered. With t(n) trees and f(n) forests of n nodes: t(n) = 81 f(n - 1), and
    f is the Euler transform of t (multisets of trees): n f(n) = sum_{k=1..n} c(k)
    f(n - k), c(k) = sum_{d | k} d t(d). B = 1: 81; B = 2: 81 * 82 / 2 + 81^2 = 9882.
    """
    b = _check_num_branches(num_branches)
    trees, forests = [0] * (b + 1), [1] + [0] * b
    for n in range(1, b + 1):
        trees[n] = len(OPS) * forests[n - 1]
        c = [sum(d * trees[d] for d in range(1, k + 1) if k % d == 0) for k in range(n + 1)]
        forests[n] = sum(c[k] * forests[n - k] for k in range(1, n + 1)) // n
    return forests[b]


HEADS = ("dpc", "aspp")


def resolve_head(head, cell):
    """The reference's rule for an unset head: a cell means the DPC, none means ASPP.
    Here, without TensorFlow, so the binaries apply it before their slow import."""
    if head is None:
        return "dpc" if cell is not None else "aspp"
    if head not in HEADS:
        raise InputError(f"head {head!r}: expected one of {', '.join(HEADS)}", param="head")
    return head
