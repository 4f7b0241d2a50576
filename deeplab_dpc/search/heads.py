"""What a trial trains: a DPC cell, or an ASPP head (the baselines), and its key.

The key names the network: a cell's canonical key (equal for specs that build the
same tree, see `spec.CellSpec.canonical_key`), or `ASPP(r1,r2,...;pool)`. Studies
store heads as JSON: the reference cell format for cells, so an exported cell
loads in any DeepLab, and `{"head": "aspp", ...}` for ASPP.
"""
import dataclasses

from deeplab_dpc import spec
from deeplab_dpc.errors import InputError


@dataclasses.dataclass(frozen=True)
class AsppHead:
    """DeepLab's ASPP with these rates (literal, as `--atrous_rates`)."""

    atrous_rates: tuple = (6, 12, 18)
    image_pooling: bool = True

    def __post_init__(self):
        object.__setattr__(self, "atrous_rates", tuple(int(r) for r in self.atrous_rates))


def head_key(head):
    if isinstance(head, spec.CellSpec):
        return head.canonical_key()
    return (f"ASPP({','.join(map(str, head.atrous_rates))}"
            f"{';pool' if head.image_pooling else ''})")


def head_to_json(head):
    if isinstance(head, spec.CellSpec):
        return head.to_reference()
    return {"head": "aspp", "atrous_rates": list(head.atrous_rates),
            "image_pooling": head.image_pooling}


def head_from_json(obj):
    if isinstance(obj, dict) and obj.get("head") == "aspp":
        unknown = set(obj) - {"head", "atrous_rates", "image_pooling"}
        if unknown:
            raise InputError(f"ASPP head: unknown field {sorted(unknown)[0]!r}")
        return AsppHead(tuple(obj.get("atrous_rates", (6, 12, 18))),
                        bool(obj.get("image_pooling", True)))
    return spec.CellSpec.from_reference(obj)


def describe(head):
    """One line: the cell's branches (`b0=sep(F,1x6) ...`) or the ASPP rates."""
    return str(head) if isinstance(head, spec.CellSpec) else head_key(head)


def deeplab_head_args(head):
    """The `DeepLab` / `layers.heads.build_head` arguments that build `head`."""
    if isinstance(head, spec.CellSpec):
        return dict(head="dpc", cell=head)
    return dict(head="aspp", atrous_rates=head.atrous_rates,
                add_image_level_feature=head.image_pooling)
