"""docs/layers.md from the registry: every layer kind with its arguments, in torch's order, and their
defaults, the argument read from the input, and the input ranks it takes; then the torch.nn classes
that are not layer kinds, with why.  `python -m convplan.docs` rewrites the file; a test checks
that it is current."""

from __future__ import annotations

from pathlib import Path

from .layers import REGISTRY, REQUIRED, LayerSpec
from .merges import MERGES
from .ops import OPS
from .torch_names import NOT_LAYERS, NOT_YET

PATH = Path(__file__).resolve().parent.parent / "docs" / "layers.md"

HEAD = """# Layers

Generated from the registry (`convplan/layers/`) by `python -m convplan.docs`; do not edit.

A plan calls a layer with torch.nn's class name and torch's arguments, in torch's order, leaving out
the one the input decides (the *read from the input* column).  Every shape rule, requirement and
parameter count is checked against torch by the property tests (`tests/test_layers_torch.py`).
`docs/torch_rules.md` says where torch refuses what.
"""


OPS_HEAD = """torch's functions and tensor methods, with torch's names and arguments (docs/language.md): no
weights, no place in the module tree.  A `*` argument takes its values as torch's tensor methods do,
`permute(0, 2, 1)`, or as one tuple.  chunk and split give several tensors: `a, b = chunk(2, dim=1)`.
"""


def signature(spec: LayerSpec) -> str:
    args = [a.name if a.default is REQUIRED else f"{a.name}={a.default!r}" for a in spec.args]
    return f"{spec.name}({', '.join(args)})"


def ranks(spec: LayerSpec) -> str:
    if spec.ranks is not None:
        return ", ".join(f"{r}-D" for r in spec.ranks)
    return f"{spec.min_rank}-D or more"


def _choices(spec: LayerSpec) -> str:
    return "; ".join(f"{a.name}: {', '.join(repr(c) for c in a.choices)}" for a in spec.args if a.choices)


def operation(spec) -> str:
    """`permute(x, *dims)`, `matmul(x, y)`: as a plan calls it (the chain's value fills the first tensor)."""
    tensors = ["query", "key", "value"] if spec.tensors == 3 else ["x", "y"][: spec.tensors]
    args = [f"*{a.name}" if spec.star and k == 0 else a.name if a.default is REQUIRED else f"{a.name}={a.default!r}"
            for k, a in enumerate(spec.args)]
    return f"{spec.name}({', '.join([*tensors, *args])})"


MACS_HEAD = """What `plan.cost("macs")` counts for each kind that it counts: multiply-accumulates of the forward
pass with the weights (and, for attention, between the tensors); bias adds are not counted.  Every other
kind is listed in `cost.uncounted`.  The "flopcounter", "fvcore" and "ptflops" conventions reproduce those
tools exactly (convplan/cost_*.py say how); `convplan cost FILE --compare` sets them side by side by kind.
"""


def macs_rule(spec: LayerSpec) -> str:
    """The docstring of a kind's macs rule, on one line (a 1d/2d/3d member's is its family's)."""
    from .layers import conv

    rule = {"Conv": conv.conv_macs, "ConvTranspose": conv.conv_t_macs}.get(spec.family, spec.macs)
    doc = getattr(rule, "func", rule).__doc__ or ""  # a functools.partial's function
    return " ".join(doc.split())


def render() -> str:
    rows = ["| layer | read from the input | input | string values, notes |", "|---|---|---|---|"]
    for spec in sorted(REGISTRY.values(), key=lambda s: (s.family or s.name, s.nd)):  # 1d/2d/3d together
        where = "" if spec.module == "torch.nn" else f"{'; ' if _choices(spec) else ''}(from {spec.module})"
        where += "".join(f"{'; ' if _choices(spec) or where else ''}{a}: given to forward" for a in spec.forward_args)
        rows.append(f"| `{signature(spec)}` | {spec.inferred or ''} | {ranks(spec)} | {_choices(spec)}{where} |")
    out = [HEAD, f"## The {len(REGISTRY)} layer kinds\n", *rows, ""]
    out += [f"## The {len(OPS)} tensor operations\n", OPS_HEAD, "| operation | gives |", "|---|---|"]
    out += [f"| `{operation(spec)}` | {'a view' if spec.aliases_input else 'a new tensor'} |" for spec in OPS.values()]
    out += ["", f"## The {len(MERGES)} merges\n", "| merge | joins |", "|---|---|"]
    out += [f"| `{name}(a, b, ...{''.join(f', {k}={v!r}' for k, v in spec.args)})` | "
            f"{'along ' + spec.along if spec.along else 'broadcasting' if spec.broadcasts else 'equal shapes'} |"
            for name, spec in MERGES.items()]
    counted = [spec for spec in sorted(REGISTRY.values(), key=lambda s: s.name) if spec.macs is not None]
    out += ["", f"## Multiply-accumulates: the {len(counted)} kinds the \"macs\" convention counts\n", MACS_HEAD,
            "| layer | multiply-accumulates |", "|---|---|"]
    out += [f"| `{spec.name}` | {macs_rule(spec)} |" for spec in counted]
    out += [""]
    out += ["## torch.nn classes that are not layer kinds yet\n"]
    if NOT_YET:
        out += ["| class | why |", "|---|---|", *(f"| `{name}` | {why} |" for name, why in sorted(NOT_YET.items()))]
    else:
        out += ["None: every torch.nn class not listed below is a layer kind (a test enumerates torch.nn)."]
    out += ["", "## torch.nn classes that are no layer of a plan\n", "| class | why |", "|---|---|"]
    out += [f"| `{name}` | {why} |" for name, why in sorted(NOT_LAYERS.items())]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    PATH.write_text(render(), encoding="utf-8")
