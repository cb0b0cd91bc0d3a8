"""What autograd saves for backward in training mode, per layer kind: the registry's `LayerSpec.saves` rules.

A rule takes (arguments, input shape, output shape) and returns `Saves`: the tensors the layer's backward
keeps, each the layer's input, its output or a new tensor (statistics, max-pool indices, dropout noise),
and whether its output is its input's storage (a view, or written in place).  Measured on torch 2.13 with
`torch.autograd.graph.saved_tensors_hooks` (tests/test_memory.py):

- a convolution and Linear save their input (for the weight's gradient); with a padding_mode other than
  'zeros' the convolution saves the padded copy instead (made even for a padding of 0), and F.pad saves
  the input for 'reflect' and 'replicate' ('circular' pads by copying slices, which save nothing);
- ReLU, Sigmoid, Tanh, Softmax and LogSoftmax save their output; the other activations their input;
  ReLU, LeakyReLU and ELU in place save their output (the input's storage); the rest in place save a copy;
- BatchNorm, InstanceNorm, GroupNorm and LayerNorm save their input and two statistics (mean and inverse
  std, in the module's dtype: 16-bit for a module converted with .half()) per normalised group;
  InstanceNorm also the weight and the running statistics repeated per sample, where it has them;
- max pools save their input and int64 indices (one per output element; with return_indices=True the
  indices they return); MaxUnpool its indices; average pools their input; fractional max pools as max
  pools: the window samples they draw each call (torch.rand(N, C, nd)) are neither saved nor an output,
  a transient of the call (tests/test_fractional_pool.py)
  (adaptive ones nothing where every output size is 1: torch takes the mean);
- dropout saves its noise (the input's shape; Dropout1d/2d/3d one value per channel; p=1 a zero scalar);
  p=0 returns the input;
- reflection and replication pads save their input; views, constant pads, upsampling and pixel shuffles
  save nothing; Unfold and Fold save nothing, but make their output in a tensor of the input's size
  (`Saves.storage`: max(input, output) elements, which whoever saves the output keeps);
- RReLU (training) saves its input and its random slopes (the input's shape), in place too; Threshold its
  input (in place a copy); CrossMapLRN2d its input and output; the layers torch writes as several
  operations save what each operation saves: LocalResponseNorm its input, the squares padded along the
  channels (size - 1 more channels) and two tensors of the input's shape, LPPool its input, its power (the
  input's shape) and four tensors of the output's shape; FeatureAlphaDropout its noise, one value per
  channel ([N, C, 1, ...]);
- CosineSimilarity (torch's composite) keeps, for each input that requires grad, the input, its norm along
  dim and the norm's clone, and the other input's quotient by its norm; PairwiseDistance the broadcast
  x1 - x2 + eps and the norm (any p).

The sequence kinds' rules are in saves_sequence.py; the tensor operations amax, matmul and
scaled_dot_product_attention in saves_ops.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy

from .shapes.broadcast import broadcast_shape

INPUT, OUTPUT, NEW = "input", "output", "new"
SAME, STATS, INT64 = "same", "stats", "int64"  # dtypes: the activations', the module's (statistics), int64
BYTE = "byte"  # bytes (oneDNN's workspace)
OPMATH = "opmath"  # float32 at least: what torch computes a 16-bit op in (an input: a float32 copy of it)


@dataclass(frozen=True)
class Saved:
    what: str  # INPUT, OUTPUT or NEW
    numel: object = None  # NEW: its elements
    dtype: str = SAME
    # saved only where the layer's tensor `index` requires grad (not for the weights' gradient)
    input_grad_only: bool = False
    scale: object = 1  # 0 or 1, a formula where torch decides by the sizes (adaptive pools to 1 x 1)
    index: int = 0  # INPUT: which of the layer's tensors (LayerSpec.tensors), the chain's first
    # the dtypes it is saved in (torch's CPU kernels differ by dtype: oneDNN's LSTM runs float32 only); () all
    only: tuple[str, ...] = ()
    # NEW: the new tensors of one rule with the same key are one storage (nn.Transformer's memory, which each
    # decoder layer keeps); OUTPUT: index is which of the layer's outputs (MaxPool's indices: 1)
    key: str | None = None


@dataclass(frozen=True)
class Saves:
    items: tuple[Saved, ...] = ()
    aliases: bool = False  # the output is the input's storage (a view, or written in place)
    unmodelled_in: tuple[str, ...] = ()  # dtypes where what torch saves is not modelled (the kind is listed)
    unmodelled: bool = False  # not modelled here, in any dtype (an operand whose strides convplan does not know)
    storage: object = None  # elements of the output's storage where it holds more than the output (Unfold)


def _prod(values) -> sympy.Expr:
    return math.prod(values, start=sympy.Integer(1))


NOTHING = lambda a, shape, out: Saves()  # noqa: E731
VIEW = lambda a, shape, out: Saves(aliases=True)  # noqa: E731
SAVES_INPUT = lambda a, shape, out: Saves((Saved(INPUT),))  # noqa: E731
SAVES_OUTPUT = lambda a, shape, out: Saves((Saved(OUTPUT),))  # noqa: E731
SAVES_INPUT_AND_OUTPUT = lambda a, shape, out: Saves((Saved(INPUT), Saved(OUTPUT)))  # noqa: E731


def input_and_new(a, shape, out):
    """The input and a new tensor of its shape (LogSigmoid's buffer, Softsign's denominator)."""
    return Saves((Saved(INPUT), Saved(NEW, _prod(shape))))


def new_like_input(a, shape, out):
    """A new tensor of the input's shape (Tanhshrink: tanh's output)."""
    return Saves((Saved(NEW, _prod(shape)),))


def rms_norm(a, shape, out):
    """The input and one inverse rms per normalised group (for the input's gradient); with a weight also the
    normalised input (for the weight's).  A 16-bit module computes in float32: the input it keeps is a
    float32 copy, and the rest is float32 too."""
    normalized = a["normalized_shape"]
    groups = _prod(shape[: len(shape) - (len(normalized) if isinstance(normalized, tuple) else 1)])
    items = (Saved(INPUT, dtype=OPMATH, input_grad_only=True), Saved(NEW, groups, OPMATH, input_grad_only=True))
    return Saves(items + ((Saved(NEW, _prod(shape), OPMATH),) if a["elementwise_affine"] else ()))


def activation(saves: str, inplace_keeps_output: bool):
    """An activation that saves its input or its output; in place it either saves its output (the input's
    storage) or a copy of the input it overwrites."""
    def rule(a, shape, out):
        if a.get("inplace") is not True:
            return Saves((Saved(saves),))
        return Saves((Saved(OUTPUT) if inplace_keeps_output else Saved(NEW, _prod(shape)),), aliases=True)
    return rule


def conv(nd: int):
    def rule(a, shape, out):
        lead = 1 if len(shape) == nd + 1 else shape[0]  # F.pad of an unbatched input adds the batch dim
        if a["padding_mode"] == "zeros":
            odd = _odd_same_padding(a, nd)
            if odd:  # torch pads the odd part with F.pad first, and the convolution keeps that copy
                spatial = [x + o for x, o in zip(shape[-nd:], odd, strict=True)]
                return Saves((Saved(NEW, lead * _prod(shape[-nd - 1:-nd]) * _prod(spatial)),))
            return Saves((Saved(INPUT),))
        padded = Saved(NEW, lead * _prod(shape[-nd - 1:-nd]) * _prod(_padded(a, shape[-nd:], nd)))
        if a["padding_mode"] == "circular":  # F.pad's circular mode copies slices: its backward keeps no tensor
            return Saves((padded,))
        return Saves((padded, Saved(INPUT, input_grad_only=True)))  # reflection/replication pads keep their input
    return rule


def _odd_same_padding(a, nd: int) -> list | None:
    """padding='same' where a dim's total padding d*(k-1) is odd: torch's _convolution_same pads that one
    extra position on the right with constant_pad_nd, then convolves the copy.  Per dim 1 or 0; None where
    every total is even (or not a number: then the convolution pads symmetrically as far as is known)."""
    if a["padding"] != "same":
        return None
    totals = [di * (ki - 1) for ki, di in zip(_each(a["kernel_size"], nd), _each(a["dilation"], nd), strict=True)]
    if not all(isinstance(t, int) or getattr(t, "is_Integer", False) for t in totals):
        return None
    odd = [int(t) % 2 for t in totals]
    return odd if any(odd) else None


def _padded(a, spatial, nd: int) -> list:
    pad = a["padding"]
    if pad == "valid":
        return list(spatial)
    if pad == "same":
        k, d = _each(a["kernel_size"], nd), _each(a["dilation"], nd)
        return [x + di * (ki - 1) for x, ki, di in zip(spatial, k, d, strict=True)]
    p = _each(pad, nd)[-nd:]
    return [x + 2 * pi for x, pi in zip(spatial, p, strict=True)]


def _each(value, nd: int) -> tuple:
    value = tuple(value) if isinstance(value, tuple) else (value,) * nd
    return value * nd if len(value) == 1 else value


def max_pool(a, shape, out):
    """The input and int64 indices, one per output element; with return_indices=True these are the indices
    it returns (one storage, counted once where MaxUnpool keeps them too)."""
    if a.get("return_indices") is True:
        return Saves((Saved(INPUT), Saved(OUTPUT, dtype=INT64, index=1)))
    return Saves((Saved(INPUT), Saved(NEW, _prod(out), INT64)))


def max_unpool(a, shape, out, indices, tied):
    """max_unpool keeps only its indices (the backward gathers the gradient at them)."""
    return Saves((Saved(INPUT, dtype=INT64, index=1),))


def _reduced(shape, dim: int) -> sympy.Expr:
    return _prod(shape[:dim]) * _prod(shape[dim + 1:])


def cosine_similarity(a, x1, out, x2, tied):
    """F.cosine_similarity on x1 and x2 broadcast to one shape: for each input that requires grad, torch's
    composite (aten/native/Distance.cpp) keeps the input, its 2-norm along dim (keepdim) and the norm's
    clone (linalg_vector_norm and the division), and the other's quotient (x2 / norm2 for the product)."""
    common = broadcast_shape((x1, x2))
    dim = int(a["dim"]) % len(common)
    numel, norm = _prod(common), _reduced(common, dim)
    items = ()
    for index in (0, 1):
        each = dict(index=index, input_grad_only=True)
        items += (Saved(INPUT, **each), Saved(NEW, norm, **each), Saved(NEW, norm, **each), Saved(NEW, numel, **each))
    return Saves(items)


def pairwise_distance(a, x1, out, x2, tied):
    """torch.pairwise_distance is norm(x1 - x2 + eps, p, -1, keepdim): the norm keeps its input (the
    broadcast difference) and its result, for any p."""
    return Saves((Saved(NEW, _prod(broadcast_shape((x1, x2)))), Saved(NEW, _prod(out))))


def adaptive_avg_pool(nd: int):
    """torch takes the mean where every output size is 1: then nothing is saved."""
    def rule(a, shape, out):
        ones = sympy.And(*(sympy.Eq(d, 1) for d in out[-nd:]))
        return Saves((Saved(INPUT, scale=sympy.Piecewise((0, ones), (1, True))),))
    return rule


def norm(groups):
    """Input, mean and inverse std (`groups(args, shape)` values each)."""
    def rule(a, shape, out):
        stats = Saved(NEW, groups(a, shape), STATS)
        return Saves((Saved(INPUT), stats, stats))
    return rule


def instance_norm(groups):
    """As `norm`, on the input viewed as [1, N*C, ...]: batch_norm also keeps the weight repeated per sample
    (affine) and the running statistics repeated per sample (track_running_stats), N*C values each."""
    def rule(a, shape, out):
        extra = Saved(NEW, groups(a, shape), STATS)
        copies = int(a["affine"] is True) + 2 * int(a["track_running_stats"] is True)
        return Saves(norm(groups)(a, shape, out).items + (extra,) * copies)
    return rule


def dropout(nd: int):
    def rule(a, shape, out):
        inplace = a.get("inplace") is True
        if a["p"] == 0:
            return Saves(aliases=True)
        if a["p"] == 1:
            numel = 1  # torch multiplies by a zero scalar
        elif nd == 0:
            numel = _prod(shape)
        elif len(shape) == nd + 1 and nd == 1 or nd == 3 and len(shape) != 5:
            numel = shape[0]  # Dropout1d/3d add a batch dim to an input of another rank: noise [1, C, 1, ...]
        else:
            numel = shape[0] * shape[1]  # one value per channel: [N, C, 1, ...]
        return Saves((Saved(NEW, numel),), aliases=inplace)
    return rule


def rrelu(a, shape, out):
    """Training draws one slope per element: the slopes and the input (in place: the output's storage)."""
    return Saves((Saved(NEW, _prod(shape)), Saved(INPUT)), aliases=a.get("inplace") is True)


def local_response_norm(a, shape, out):
    """F.local_response_norm: x*x padded by size - 1 along the channels (avg_pool keeps it), then
    (k + alpha*avg)**beta (pow keeps its input and the division its result): two of the input's shape."""
    padded = shape[0] * (shape[1] + a["size"] - 1) * _prod(shape[2:])
    return Saves((Saved(INPUT), Saved(NEW, padded), Saved(NEW, _prod(shape)), Saved(NEW, _prod(shape))))


def lp_pool(a, shape, out):
    """F.lp_poolNd: avg_pool(x**p) keeps x and x**p; sign(y)*relu(|y|), the product and its 1/p power keep
    four tensors of the output's shape."""
    return Saves((Saved(INPUT), Saved(NEW, _prod(shape))) + (Saved(NEW, _prod(out)),) * 4)


def feature_alpha_dropout(a, shape, out):
    """Noise of one value per channel, [N, C, 1, ...] (dim 0 is always the batch); p=1 a zero scalar; p=0
    returns the input."""
    if a["p"] == 0:
        return Saves(aliases=True)
    if a["p"] != 1 and len(shape) < 2:  # torch refuses to train it ("Feature dropout requires at least 2 dimensions")
        return Saves(unmodelled=True)
    numel = 1 if a["p"] == 1 else shape[0] * shape[1]
    return Saves((Saved(NEW, numel),), aliases=a.get("inplace") is True)


def resized(a, shape, out):
    """Saves nothing; torch's im2col and col2im (Unfold, Fold) make their output in a tensor of the input's
    size, resized: the storage holds max(input, output) elements (measured: Unfold(1, stride=2) keeps its
    input's size)."""
    return Saves(storage=sympy.Max(_prod(shape), _prod(out)))


def upsample(a, shape, out):
    if a["mode"] == "area":  # F.interpolate pools adaptively
        return adaptive_avg_pool(len(shape) - 2)(a, shape, out)
    return Saves()

