"""Receptive fields through tensor operations, against the built module: permutes (ConvNeXt's channels-last
LayerNorm and Linears, a transpose that swaps H and W), chunk along the channels or a spatial dim, narrow,
mean over the channels, unflatten / flatten of the channels and softmax over them.  The field of a node is
compared with the support of the gradient of its central element (the centre along the axes that hold the
spatial dims, wherever the operations moved them), as tests/test_receptive.py measures it."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_receptive import _positive

import convplan
from convplan.layers import GLOBAL
from convplan.receptive import Field
from convplan.shapes import evaluate

ROOT = Path(__file__).resolve().parent.parent


def _support(module, x, node, axes) -> list[tuple[int, int]] | None:
    """(first, last) input position per spatial dim that the central element of `node` reads (every channel
    summed), the centre taken along `axes` (the node's `receptive_axes`)."""
    x.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = module.run(x)[node.id]
    index = [slice(None)] * value.dim()
    for a in axes:
        index[a] = value.shape[a] // 2
    value[tuple(index)].sum().backward()
    nonzero = x.grad[0].abs().sum(0).nonzero()
    if len(nonzero) == 0:
        return None
    return [(int(nonzero[:, d].min()), int(nonzero[:, d].max())) for d in range(x.dim() - 2)]


def _check(plan, sizes: dict, nodes) -> int:
    """Compare each node's fields (where every dim is a Field, held by an axis) with the measured support;
    the number compared."""
    bound = plan.bind(N=1, **sizes)
    module = _positive(bound.build())
    shape = [int(d) for d in bound.input_shape]
    x = (torch.rand(*shape, dtype=torch.double) + 0.5).requires_grad_(True)
    fields = plan.receptive_field()
    checked = 0
    for node in nodes:
        field = fields[node.name]
        if not all(isinstance(f, Field) for f in field) or None in node.meta["receptive_axes"]:
            continue
        graph_node = next(n for n in bound.graph.nodes if n.name == node.name)
        axes = node.meta["receptive_axes"]
        centre = [int(evaluate(graph_node.shape[a], {"N": 1, **sizes})) // 2 for a in axes]
        want = []
        for d, (f, i) in enumerate(zip(field, centre, strict=True)):
            first, last = (evaluate(v, {"N": 1, **sizes}) for v in f.span(i))
            want.append((max(first, 0), min(last, shape[2 + d] - 1)))
        assert _support(module, x, graph_node, axes) == want, (node.name, sizes, plan.source)
        checked += 1
    return checked


def test_convnext_fields_are_modelled_and_equal_the_gradient_support():
    """examples/convnext_tiny.plan: every layer's field is known (the permutes around its channels-last
    LayerNorms and Linears carry it); the stem, the first blocks (channels-last nodes among them) and the
    first downsampling, at two sizes."""
    plan = convplan.load(ROOT / "examples" / "convnext_tiny.plan")
    fields = plan.receptive_field()
    nodes = [n for n in plan.graph.nodes if n.op != "input"]
    assert [n.name for n in nodes if None in fields[n.name] and n.op != "param"] == []
    assert fields["avgpool"] == (GLOBAL, GLOBAL)
    block = [n for n in nodes if n.name.startswith("features_stage1_0_cnblock2")]
    assert {n.meta["receptive_axes"] for n in block if n.kind in ("LayerNorm", "Linear", "GELU")} == {(1, 2)}
    assert fields["features_stage1_0_cnblock2_add1"][0] == Field(52, 4, -24)  # two 7 x 7 depthwise convs
    early = [n for n in nodes if n.name.startswith(("features_stem", "features_stage1_0_cnblock2",
                                                     "features_down1"))]
    checked = sum(_check(plan, sizes, early) for sizes in ({"H": 64, "W": 64}, {"H": 96, "W": 80}))
    assert checked >= 20


STEPS = {
    "conv": lambda k, s, p, d: f"Conv2d(4, kernel_size=({k}, {k + d - 1}), stride=({s}, 1), dilation={d})",
    "pool": lambda k, s, p, d: f"MaxPool2d({k}, stride={s})",
    "channels_last": lambda k, s, p, d: "permute(0, 2, 3, 1)\n    LayerNorm(eps=1e-6)\n    Linear(8)\n    GELU()\n"
                                        "    permute(0, 3, 1, 2)",
    "transpose": lambda k, s, p, d: "transpose(2, 3)",
    "chunk_channels": lambda k, s, p, d: "a{n}, b{n} = chunk(2, dim=1)\n    add(a{n}, b{n})",
    "chunk_spatial": lambda k, s, p, d: f"a{{n}}, b{{n}} = chunk(2, dim={2 + d % 2})\n    add(a{{n}}, b{{n}})",
    "split_channels": lambda k, s, p, d: "a{n}, b{n} = split((1, 3), dim=1)\n    cat(b{n}, a{n}, dim=1)",
    "narrow": lambda k, s, p, d: f"narrow({2 + d % 2}, {p + 1}, {4 * k})",
    "mean": lambda k, s, p, d: "mean((1,), keepdim=True)\n    Conv2d(4, kernel_size=3)",
    "unflatten": lambda k, s, p, d: "unflatten(1, (2, -1))\n    flatten(1, 2)",
    "softmax": lambda k, s, p, d: "softmax(dim=1)",
}


@given(st.lists(st.tuples(st.sampled_from(sorted(STEPS)), st.integers(1, 3), st.integers(1, 2), st.integers(0, 1),
                          st.integers(1, 2)), min_size=1, max_size=4),
       st.sampled_from([(48, 56), (61, 64), (72, 66)]))
@settings(max_examples=40, deadline=None)
def test_random_plans_with_operations(steps, size):
    """Convolutions and pools with operations between them, each followed by a convolution (so the channels
    mix again); every convolution's field.  Nothing pads: a window near an intermediate tensor's edge would
    read padding, which the classic field counts as positions and the gradient does not (its support is
    then smaller than the field, clipped to the input)."""
    lines = ["plan R:", "    input [N, 3, H, W]", "    Conv2d(4, kernel_size=3)"]
    for n, (name, k, s, p, d) in enumerate(steps):
        lines += ["    " + STEPS[name](k, s, p, d).format(n=n), "    Conv2d(4, kernel_size=3)"]
    text = "\n".join(lines) + "\n"
    sizes = {"H": size[0], "W": size[1]}
    try:
        plan = convplan.parse(text)
        plan.bind(N=1, **sizes)
    except convplan.PlanError:
        return  # a piece too small, chunks that do not add up: refused
    nodes = [n for n in plan.graph.nodes if n.op == "layer" and n.kind == "Conv2d"]
    assert all(isinstance(f, Field) for f in plan.receptive_field()[nodes[-1].name]), text
    _check(plan, sizes, nodes)


SPLIT = """plan Split:
    input [N, 2, 40, W]
    Conv2d(3, kernel_size=3, padding=1)
    a, b = split((16, 24), dim=2)
    top = Conv2d(a, 3, kernel_size=3, stride=2, padding=1)
    bottom = Conv2d(b, 3, kernel_size=3, padding=1)
    c, d, e = chunk(bottom, 3, dim=3)
    e1 = Conv2d(e, 3, kernel_size=(1, 3))
    narrow(2, 5, 10)
    transpose(2, 3)
    Conv2d(3, kernel_size=(5, 1))
"""


def test_split_chunk_and_narrow_along_spatial_dims_shift_the_field():
    """A piece of split, chunk or narrow along a spatial dim starts further in: its field starts there."""
    plan = convplan.parse(SPLIT)
    fields = plan.receptive_field()
    assert fields["bottom"][0] == Field(5, 1, 14)  # the second piece starts at row 16; two 3 x 3 convs
    third = fields["e1"][1]  # the third chunk of W columns starts at 2 * ceil(W / 3); its convs read 2 before
    assert (third.size, third.jump, [evaluate(third.start, {"W": w}) for w in (48, 61)]) == (7, 1, [30, 40])
    nodes = [n for n in plan.graph.nodes if n.op != "input"]
    assert sum(_check(plan, sizes, nodes) for sizes in ({"W": 48}, {"W": 60})) >= 12


def test_a_reshape_that_moves_a_spatial_dims_elements_loses_its_field():
    """[N, 4, H, W] reshaped to [N, H, 4, W] keeps W (the dims before it hold 4*H elements either way) but not H:
    its axis 1 has H's size, not its elements (output row h' reads input rows of several channels), and
    permuted back to [N, 4, H, W] it still does not.  torch's gradient: the centre of the conv after it reads
    far more than the 5 rows a field carried through would say."""
    plan = convplan.parse("plan R:\n    input [N, 4, H, W]\n    Conv2d(4, 3, padding=1)\n    reshape(N, H, 4, W)\n"
                          "    permute(0, 2, 1, 3)\n    Conv2d(4, 3)\n")
    fields = plan.receptive_field()
    nodes = {n.name: n for n in plan.graph.nodes}
    assert nodes["reshape1"].meta["receptive_axes"] == (None, 3) and fields["reshape1"][0] is None
    assert fields["conv2"] == (None, Field(5, 1, -1))
    sizes = {"H": 16, "W": 12}
    bound = plan.bind(N=1, **sizes)
    module = _positive(bound.build())
    x = (torch.rand(1, 4, 16, 12, dtype=torch.double) + 0.5).requires_grad_(True)
    conv2 = next(n for n in bound.graph.nodes if n.name == "conv2")
    (rows, columns) = _support(module, x, conv2, (2, 3))
    assert rows[1] - rows[0] + 1 > 5 and columns == (4, 8)  # W: the field, 5 columns from 4


def test_the_kinds_that_move_axes_are_registry_data():
    """Permute, Flatten and Unflatten declare which operation's axis rule they follow (LayerSpec.moves_axes);
    receptive.py names no kind (it tested names before: a new such kind would have been missed)."""
    from convplan import receptive, receptive_axes
    from convplan.layers import REGISTRY

    moving = {name: spec.moves_axes for name, spec in REGISTRY.items() if spec.moves_axes is not None}
    assert moving == {"Permute": "permute", "Flatten": "reshape", "Unflatten": "reshape"}
    assert all(rule in receptive_axes.OPS for rule in moving.values())
    source = Path(receptive.__file__).read_text()
    assert [name for name in REGISTRY if f'"{name}"' in source] == []
    plan = convplan.parse("plan F:\n    input [N, 4, H, W]\n    Conv2d(4, 3)\n    Unflatten(1, (2, 2))\n"
                          "    Flatten(1, 2)\n    Permute((0, 2, 3, 1))\n    Permute((0, 3, 1, 2))\n    Conv2d(4, 3)\n")
    assert plan.receptive_field()["conv2"] == (Field(5, 1, 0), Field(5, 1, 0))
    nodes = [n for n in plan.graph.nodes if n.op == "layer"]
    assert [n.meta["receptive_axes"] for n in nodes] == [(2, 3), (3, 4), (2, 3), (1, 2), (2, 3), (2, 3)]
    assert _check(plan, {"H": 12, "W": 10}, nodes) == len(nodes)
