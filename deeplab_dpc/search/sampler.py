"""Candidate i of a search: the paper's random search (Sec. 3.2, after Vizier).

Candidate i is drawn from a generator seeded by (seed, i): with probability
`near_best_fraction` (once some trial is done) a single mutation of one of the
`near_best_top_k` best done trials, otherwise a uniform sample of the whole space
(B branches: inputs, the 81 ops). The draw of the share comes first either way,
so candidate i depends only on (seed, i) and the top trials at the time.
"""
import dataclasses

import numpy as np

from deeplab_dpc import spec
from deeplab_dpc.errors import InputError


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    num_branches: int = 5
    near_best_fraction: float = 0.2
    near_best_top_k: int = 10
    seed: int = 0
    max_madds: int = 0  # 0: no budget
    max_params: int = 0

    def __post_init__(self):
        spec._check_num_branches(self.num_branches)
        if not 0.0 <= self.near_best_fraction <= 1.0:
            raise InputError(f"near_best_fraction must be in [0, 1], got "
                             f"{self.near_best_fraction}", param="near_best_fraction")
        if self.near_best_top_k < 1:
            raise InputError("near_best_top_k must be >= 1", param="near_best_top_k")
        for name in ("max_madds", "max_params"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0 (0: no budget)", param=name)

    def to_dict(self):
        return dataclasses.asdict(self)


def draw(index, settings, top_cells):
    """(cell, origin, parent) of candidate `index`: origin "uniform" (parent None) or
    "near_best" (parent: the top cell it mutates). `top_cells`: the current top-k."""
    rng = np.random.default_rng([settings.seed, index])
    near = rng.random() < settings.near_best_fraction
    if near and top_cells:
        parent = top_cells[int(rng.integers(len(top_cells)))]
        return spec.mutate(parent, rng), "near_best", parent
    return spec.sample(settings.num_branches, rng), "uniform", None


def over_budget(cost, settings):
    """A line saying which budget a (params, madds) cost exceeds, or None."""
    params, madds = cost
    if settings.max_madds and madds > settings.max_madds:
        return f"{madds} multiply-adds > max_madds {settings.max_madds}"
    if settings.max_params and params > settings.max_params:
        return f"{params} parameters > max_params {settings.max_params}"
    return None
