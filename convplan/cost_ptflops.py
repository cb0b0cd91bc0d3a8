"""The "ptflops" cost convention: what ptflops' `get_model_complexity_info(module, ..., backend="pytorch")`
(0.7.x) reports for the built module, as formulas.

ptflops counts in two ways at once, and both reach the total (measured, and read in ptflops/pytorch_ops.py):

- a forward hook on each module of a known class, summed over the modules and divided by the batch
  size, which it takes as `len()` of the model's first input (its dim 0, whatever that dim is);
- patched functions (F.relu, F.elu, F.gelu, F.silu, F.softmax, the pooling functions, F.interpolate),
  counted at every call and NOT divided by the batch.  nn.ReLU calls F.relu, so a ReLU counts twice.

The total is `int()` of the sum.  Module hooks: a convolution counts its multiply-accumulates plus one
per output element for the bias, with `input.shape[0]` as its batch (an unbatched input's channels);
Linear (in x out + out with a bias) per row; ReLU, ELU, LeakyReLU, ReLU6 and GELU their output's
elements; every pool its input's elements; BatchNorm, InstanceNorm and GroupNorm their input's elements,
twice with an affine (LayerNorm once: it has no `affine` attribute); Upsample the elements of its
output's first slice.  Everything else (merges included: `a + b` is not the patched `torch.add`) counts 0.
Swin's kinds: PatchMerging's LayerNorm and Linear children are hooked; ShiftedWindowAttention applies its
Linears with F.linear (unpatched), so only its two `Tensor.matmul`s and its F.softmax count.
"""

from __future__ import annotations

from fractions import Fraction

import sympy

from . import cost_ptflops_sequence
from .cost_ptflops_sequence import SEQUENCE
from .graph import Node
from .layers import prod
from .shapes import floordiv

# their module calls a patched F.* on its input (F.prelu, F.softmax for Softmax2d)
_FUNCTIONAL = {"ReLU", "ELU", "GELU", "SiLU", "Softmax", "PReLU", "Softmax2d"}
_ACTIVATION_HOOK = {"ReLU", "ELU", "LeakyReLU", "ReLU6", "GELU", "PReLU"}
_UPSAMPLING = {"UpsamplingNearest2d", "UpsamplingBilinear2d"}  # not hooked (ptflops matches exact classes)


def count(node: Node, graph) -> tuple[sympy.Expr | None, tuple[str, ...]]:
    """(ptflops' count of the node: its module hook's share of the batch plus its patched calls, or None)."""
    source = graph.nodes[node.inputs[0]]
    batch = graph.inputs[0].shape[0]  # len() of the model's first input
    if node.kind in SEQUENCE:
        module, functional = cost_ptflops_sequence.count(node, [graph.nodes[i] for i in node.inputs])
        return (None if module is None else module / batch + functional), ()
    if node.op == "matmul":  # torch.matmul is patched: prod(first shape) x the second's last dim, per batch
        return prod(source.shape) * graph.nodes[node.inputs[1]].shape[-1], ()
    module, functional = _module(node, source), _functional(node, source)
    if module is None and functional is None:
        return None, ()
    return (module or 0) / batch + (functional or 0), ()


def why(node: Node, graph) -> str | None:
    """Why ptflops gives no count: its own hook fails on the node (and ptflops returns None for the model)."""
    if node.kind in SEQUENCE:
        return cost_ptflops_sequence.why(node)
    return None


def _module(node: Node, source: Node):
    kind, family = node.kind, node.spec.family if node.spec is not None else ""
    shape, out, a = source.shape, node.shape, node.args
    if family in ("Conv", "ConvTranspose"):
        kernel = prod(_each(a["kernel_size"], node.spec.nd))
        per_position = kernel * a["in_channels"] * floordiv(a["out_channels"], a["groups"])
        positions = prod((shape if family == "ConvTranspose" else out)[2:])
        bias = shape[0] * prod(out[1:]) if a["bias"] else 0
        return per_position * shape[0] * positions + bias
    if kind == "Linear":
        return (a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0)) * prod(shape[:-1])
    if kind in _ACTIVATION_HOOK:
        return prod(out)
    if family in ("MaxPool", "AvgPool", "AdaptiveMaxPool", "AdaptiveAvgPool"):
        return prod(shape)
    if family in ("BatchNorm", "InstanceNorm") or kind in ("GroupNorm", "LayerNorm"):
        return prod(shape) * (2 if a.get("affine") else 1)
    if kind == "Upsample":
        return prod(out[1:])  # the elements of output[0]
    if kind == "PatchMerging":  # its LayerNorm and Linear children's hooks, per row of the joined quarters
        return prod(out[:-1]) * (4 * a["dim"] + 8 * a["dim"] ** 2)
    return None


def _functional(node: Node, source: Node):
    kind, family = node.kind, node.spec.family if node.spec is not None else ""
    shape, a = source.shape, node.args
    if kind in _FUNCTIONAL or family in ("MaxPool", "AvgPool", "AdaptiveMaxPool", "AdaptiveAvgPool"):
        return prod(shape)
    if kind == "LocalResponseNorm":  # x.mul(x), avg_pool of it padded along C, .mul(alpha), .add(k): patched
        return 3 * prod(shape) + shape[0] * prod(shape[2:]) * (shape[1] + a["size"] - 1)
    if family == "LPPool":  # avg_pool of x**p, F.relu of the pooled, .mul(window)
        return prod(shape) + 2 * prod(node.shape)
    if kind == "ShiftedWindowAttention":  # q.matmul(k^T), attn.matmul(v) and F.softmax, patched (its Linears
        from .layers.swin import window_tokens  # are applied with F.linear, which ptflops leaves unpatched)

        tokens, per_window, c = window_tokens(shape, a)
        return tokens * per_window * (2 * c + a["num_heads"])
    if kind in _UPSAMPLING:  # F.interpolate, nearest or bilinear
        return _interpolate(shape, a["size"], a["scale_factor"], 0)
    if kind != "Upsample":
        return None
    area = prod(shape) if a["mode"] == "area" else 0  # F.interpolate pools with the patched adaptive_avg_pool
    return _interpolate(shape, a["size"], a["scale_factor"], area)


def _interpolate(shape, size, scale, area):
    """ptflops' F.interpolate hook: the output's elements (its own arithmetic on size and scale)."""
    nd = len(shape) - 2
    if size is not None:
        return (prod(size) if isinstance(size, tuple) else size**nd) * shape[0] * shape[1] + area
    if isinstance(scale, tuple) and len(scale) == nd:  # np.prod(scale, dtype=np.int64): each truncated first
        return prod(shape) * prod(int(float(s)) for s in scale) + area
    value = float(scale[0]) if isinstance(scale, tuple) else float(scale)
    return prod(shape) * sympy.Rational(Fraction(value)) ** nd + area


def _each(value, nd: int) -> tuple:
    value = tuple(value) if isinstance(value, tuple) else (value,) * nd
    return value * nd if len(value) == 1 else value


def total(by_layer: dict) -> sympy.Expr:
    """int() of the sum, as ptflops returns it."""
    return sympy.floor(sympy.Add(*by_layer.values()))
