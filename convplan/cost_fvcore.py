"""The "fvcore" cost convention: what fvcore's `FlopCountAnalysis(module, inputs).total()` reports for the
built module, as formulas.

fvcore traces the module with `torch.jit.trace` and counts each aten operator of the trace with a
handler (fvcore/nn/flop_count.py, jit_handles.py); one multiply-add is one "flop".  Per operator:

- `aten::_convolution`: batch x prod(weight shape) x prod(output spatial dims) (transposed: of the
  input's spatial dims): the multiply-accumulates, as the "macs" convention.  A convolution written
  with `padding='same'` or `'valid'` traces to `aten::_convolution_mode`, which fvcore does not count;
- `aten::linear`: prod(input shape) x out_features (the multiply-accumulates);
- `aten::batch_norm`: elements x 2 with an affine, x 1 without, in eval mode; where the module
  normalises with the batch's statistics (`track_running_stats=False`) fvcore's norm rule applies:
- `aten::group_norm`, `aten::layer_norm`, `aten::instance_norm`: elements x 5 with an affine, x 4 without;
- `aten::adaptive_avg_pool2d`: the input's elements (also `Upsample(mode='area')` on a 4-D input);
- `aten::upsample_nearest2d`: the output's elements; `aten::upsample_bilinear2d`: 4 per output element.

- MultiheadAttention and the Transformer layers: their projections and feed-forward (aten::linear), the
  products of attention where they run as aten::bmm (the module's need_weights=True), 5 per element of each
  LayerNorm; torch's attention fast path (aten::_native_multi_head_attention) and
  aten::scaled_dot_product_attention are skipped;
- RNN, LSTM, GRU trace to one operator each (aten::lstm, ...), skipped; the cells to aten::linear.

Like the "flopcounter" convention, this is the count of the module in eval mode under torch.no_grad(),
where torch takes MultiheadAttention's fast path (the tests count so).

fvcore ignores some operators by design (a fixed list: relu, dropout, flatten, cat, ...): their layers
are listed as uncounted here, without a warning.  It skips every other operator with a warning
("Unsupported operator aten::max_pool2d encountered 1 time(s)"): those are listed in `skipped`, by kind.
fvcore itself fails (an AssertionError) on a norm layer whose input has fewer than 2 or more than 5
dims; the formulas here count those as its handlers are written.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy

from .graph import Node
from .layers import prod
from .shapes import even

_ACTIVATIONS = {  # kind -> the aten operator it traces to (in place: with a trailing `_`)
    "ReLU6": "hardtanh", "LeakyReLU": "leaky_relu", "ELU": "elu", "GELU": "gelu", "SiLU": "silu", "Mish": "mish",
    "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid", "Sigmoid": "sigmoid", "Tanh": "tanh",
    "Softmax": "softmax", "LogSoftmax": "log_softmax", "PixelShuffle": "pixel_shuffle",
    "PixelUnshuffle": "pixel_unshuffle", "Unflatten": "unflatten",
    "CELU": "celu", "SELU": "selu", "Hardtanh": "hardtanh", "RReLU": "rrelu", "Softplus": "softplus",
    "Threshold": "threshold", "Hardshrink": "hardshrink", "Softshrink": "softshrink", "LogSigmoid": "log_sigmoid",
    "PReLU": "prelu", "GLU": "glu", "Softmax2d": "softmax", "RMSNorm": "rms_norm", "ChannelShuffle": "channel_shuffle",
    "Unfold": "im2col", "Fold": "col2im",
}
_COMPOSITE = {  # kind -> the operators its Python forward traces to, all skipped (measured with fvcore 0.1.5)
    "Softsign": ("aten::abs", "aten::add", "aten::div"),  # x / (1 + |x|)
    "Tanhshrink": ("aten::tanh", "aten::sub"),
    "Softmin": ("aten::neg", "aten::softmax"),
    "CrossMapLRN2d": ("prim::PythonOp.CrossMapLRN2d",),  # an autograd Function: fvcore cannot see inside
    # eval mode: F.alpha_dropout returns its input through the out-of-place operator even with inplace=True
    "AlphaDropout": ("aten::alpha_dropout",),
    "FeatureAlphaDropout": ("aten::feature_alpha_dropout",),
}
_IGNORED = {"ReLU", "Flatten", "Identity", "cat"}  # aten::relu(_), flatten, cat are on fvcore's ignore list; none
# The operations (ops.py): those whose aten operator is on fvcore's ignore list, and the operators of the rest
_IGNORED |= {"permute", "transpose", "reshape", "view", "flatten", "expand", "narrow", "select", "contiguous", "chunk",
             "split", "stack",
             "Permute", "StochasticDepth"}  # torchvision's: aten::permute (ignored); the identity in eval
_OPS_SKIPPED = {"unflatten": "aten::unflatten", "mean": "aten::mean", "sum": "aten::sum", "amax": "aten::amax",
                "softmax": "aten::softmax", "scaled_dot_product_attention": "aten::scaled_dot_product_attention"}
_MERGES = {"add": "aten::add", "mul": "aten::mul"}


def numel(shape) -> sympy.Expr:
    return prod(shape)


def count(node: Node, graph) -> tuple[sympy.Expr | None, tuple[str, ...]]:
    """(fvcore's count of the node, or None where it gives none; the operators it skips with a warning)."""
    source = graph.nodes[node.inputs[0]]
    kind = node.kind or node.op
    if kind in _IGNORED:
        return None, ()
    if kind in _MERGES:
        return None, (_MERGES[kind],)
    if kind in _OPS_SKIPPED:
        return None, (_OPS_SKIPPED[kind],)
    if kind == "matmul":  # matmul_flop_jit: prod(first shape) x the second's last dim
        return numel(source.shape) * graph.nodes[node.inputs[1]].shape[-1], ()
    if kind in _COMPOSITE:
        return None, _COMPOSITE[kind]
    if kind in _ACTIVATIONS:
        return None, (f"aten::{_ACTIVATIONS[kind]}" + ("_" if node.args.get("inplace") is True else ""),)
    spec = node.spec
    rule = _FAMILIES.get(spec.family if spec is not None and spec.family else kind)
    if rule is None:
        raise ValueError(f"the fvcore convention has no rule for {kind} yet (convplan/cost_fvcore.py)")
    others = [graph.nodes[i] for i in node.inputs[1:]]  # Bilinear's second input, attention's key and value
    if rule in (_attention, _transformer_layer):  # they look at the graph: what reaches an output
        return rule(node, source, *others, graph=graph)
    return rule(node, source, *others)


def _conv(node: Node, source: Node):
    skipped = () if node.args["padding_mode"] == "zeros" else ("aten::pad",)
    if isinstance(node.args["padding"], str) and not skipped:  # F.conv2d(padding='same'): _convolution_mode
        return None, ("aten::_convolution_mode",)
    return node.meta["macs"], skipped


def _norm(node: Node, source: Node):
    affine = node.args.get("affine", node.args.get("elementwise_affine"))
    return numel(source.shape) * (5 if affine else 4), ()


def _batch_norm(node: Node, source: Node):
    if not node.args["track_running_stats"]:  # eval mode without running statistics normalises like training
        return _norm(node, source)
    return numel(source.shape) * (2 if node.args["affine"] else 1), ()


def _dropout(node: Node, source: Node):
    """nn.Dropout traces to aten::dropout (ignored) or, in place, aten::dropout_ (skipped); Dropout1d/2d/3d
    to aten::feature_dropout(_), skipped; Dropout1d/3d in place on an unbatched input add and remove the batch
    dim in place too (aten::unsqueeze_ is ignored, aten::squeeze_ skipped)."""
    nd, inplace = node.spec.nd, node.args.get("inplace") is True
    if nd == 0:
        return None, ("aten::dropout_",) if inplace else ()
    unbatched = nd in (1, 3) and len(source.shape) == nd + 1
    return None, ("aten::feature_dropout_",) + (("aten::squeeze_",) if unbatched else ()) if inplace \
        else ("aten::feature_dropout",)


def _skip(op: str) -> Callable:
    """A family fvcore skips: its operator, `{nd}` filled in."""
    return lambda node, source, *others: (None, (f"aten::{op.format(nd=node.spec.nd)}",))


def _adaptive_avg(node: Node, source: Node):
    if node.spec.nd == 2:
        return numel(source.shape), ()
    return None, (f"aten::adaptive_avg_pool{node.spec.nd}d",)


_UPSAMPLE_OPS = {"nearest": "upsample_nearest{nd}d", "linear": "upsample_linear1d", "bilinear": "upsample_bilinear2d",
                 "bicubic": "upsample_bicubic2d", "trilinear": "upsample_trilinear3d",
                 "nearest-exact": "_upsample_nearest_exact{nd}d", "area": "adaptive_avg_pool{nd}d"}


def _upsample(node: Node, source: Node):
    nd, mode = len(node.shape) - 2, node.args["mode"]
    # area: F.interpolate multiplies the traced sizes by the scale (aten::mul, skipped) before pooling
    extra = ("aten::mul",) if mode == "area" and node.args["size"] is None else ()
    return _interpolate(nd, mode, node, source, extra)


def _interpolate(nd: int, mode: str, node: Node, source: Node, extra: tuple):
    op = "aten::" + _UPSAMPLE_OPS[mode].format(nd=nd)
    if op == "aten::upsample_nearest2d":
        return numel(node.shape), extra
    if op == "aten::upsample_bilinear2d":
        return 4 * numel(node.shape), extra
    if op == "aten::adaptive_avg_pool2d":
        return numel(source.shape), extra
    return None, (op, *extra)


def _local_response_norm(node: Node, source: Node):
    """F.local_response_norm: x*x, padded, averaged (avg_pool2d on a 3-D input, else avg_pool3d over a view),
    times alpha, plus k, to the beta, and x divided by that."""
    pool = "aten::avg_pool2d" if len(source.shape) == 3 else "aten::avg_pool3d"
    return None, ("aten::mul", "aten::pad", pool, "aten::add", "aten::pow", "aten::div")


def _lp_pool(node: Node, source: Node):
    """avg_pool of x**p, then sign(out) * relu(|out|) times the window size, to the 1/p."""
    return None, ("aten::pow", f"aten::avg_pool{node.spec.nd}d", "aten::sign", "aten::abs", "aten::mul")


def _upsampling(node: Node, source: Node):
    """UpsamplingNearest2d / UpsamplingBilinear2d: F.interpolate's nearest / bilinear (align_corners), whose
    operator follows the input's rank as Upsample's does."""
    mode = "nearest" if node.kind == "UpsamplingNearest2d" else "bilinear"
    return _interpolate(len(node.shape) - 2, mode, node, source, ())


def _embedding(node: Node, source: Node):
    """A lookup: no count.  With max_norm the looked-up rows are renormalised first, an operator of its own."""
    renorm = ("aten::embedding_renorm_",) if node.args["max_norm"] is not None else ()
    return None, (*renorm, "aten::embedding")


def _fast_attention(a, batched: bool, heads, one_tensor: bool):
    """Whether torch runs MultiheadAttention on its fast path under fvcore's trace (eval, no_grad): one tensor
    for query, key and value, batched, batch_first, biases, an even number of heads, neither add_bias_kv nor
    add_zero_attn (the Transformer layers' own fast path is not taken while tracing).  A condition where the
    number of heads is a symbol."""
    return bool(one_tensor and batched and a["batch_first"] and a["bias"] and not a.get("add_bias_kv")
                and not a.get("add_zero_attn")) and even(heads)


def _either(fast, path: Callable):
    """`path(fast)`: (count, skipped operators); where `fast` is a condition of the sizes (a symbolic number of
    heads), the count of each path under its condition and the operators either path skips."""
    if fast is True or fast is False:
        return path(fast)
    (quick, skipped), (slow, more) = path(True), path(False)
    count = sympy.Piecewise((sympy.Integer(0) if quick is None else quick, fast), (slow, True))
    return count, tuple(dict.fromkeys(skipped + more))


def _attention_ops(batched: bool, packed: bool, need_weights: bool, bias_kv: bool = False) -> tuple[str, ...]:
    """The operators F.multi_head_attention_forward traces to that fvcore skips: the scaling (div, mul), the
    softmax (need_weights: as aten::softmax; without: inside aten::scaled_dot_product_attention), the key and
    value biases' repeat, and, where key is value (one tensor, batched: an unbatched input is unsqueezed per
    argument), the packed projection's unflatten."""
    ops = ["aten::div", "aten::mul", "aten::softmax" if need_weights else "aten::scaled_dot_product_attention"]
    ops += ["aten::repeat"] if bias_kv else []
    return (*ops, *(("aten::unflatten",) if batched and packed else ()))


def _attention(node: Node, source: Node, key: Node, value: Node, graph=None):
    """The projections (aten::linear) and the two batched products (aten::bmm): the multiply-accumulates;
    on torch's fast path one aten::_native_multi_head_attention, skipped.  The average of the heads' weights
    (aten::mean) is traced only where the weights reach an output of the plan."""
    a = node.args
    batched = len(source.shape) == 3
    fast = _fast_attention(a, batched, a["num_heads"], source.id == key.id == value.id)
    return _either(fast, lambda quick: _attention_path(node, key, value, graph, batched, quick))


def _attention_path(node: Node, key: Node, value: Node, graph, batched: bool, fast: bool):
    a = node.args
    if fast:
        return None, ("aten::_native_multi_head_attention",)
    packed = key.id == value.id and a["kdim"] == a["vdim"] == a["embed_dim"]
    ops = _attention_ops(batched, packed, True, a["add_bias_kv"])
    weights = node.unpack[1] if node.unpack else None
    if weights is not None and graph is not None and _reaches_output(graph, weights):
        ops += ("aten::mean",)
    return node.meta["macs"], ops


def _reaches_output(graph, node_id: int) -> bool:
    """Whether a node is an output of the plan or feeds one (a traced module drops every other operator)."""
    needed, todo = set(), list(graph.outputs)
    while todo:
        i = todo.pop()
        if i == node_id:
            return True
        if i not in needed:
            needed.add(i)
            todo.extend(graph.nodes[i].inputs)
    return False


def _transformer_layer(node: Node, source: Node, memory: Node | None = None, graph=None):
    """The projections and the feed-forward Linears (multiply-accumulates) and 5 per element per LayerNorm;
    attention runs as aten::scaled_dot_product_attention (skipped), its self-attention on torch's fast path
    (aten::_native_multi_head_attention, skipped, its projections uncounted) where MultiheadAttention's
    conditions hold; the residual adds and GELU are skipped."""
    decoder = node.kind == "TransformerDecoderLayer"
    return _layer_cost(node.args, source, prod(memory.shape[:-1]) if decoder else 0, decoder)


def _layer_cost(a, source: Node, memory, decoder: bool):
    """One encoder or decoder layer over `source` (and `memory` tokens for a decoder's cross-attention)."""
    batched = len(source.shape) == 3
    fast = _fast_attention(a, batched, a["nhead"], True)
    return _either(fast, lambda quick: _layer_path(a, source, memory, decoder, batched, quick))


def _layer_path(a, source: Node, memory, decoder: bool, batched: bool, fast: bool):
    e, f = a["d_model"], a["dim_feedforward"]
    tokens = prod(source.shape[:-1])
    skipped = ["aten::_native_multi_head_attention"] if fast else list(_attention_ops(batched, True, False))
    linear = tokens * 2 * e * f + (0 if fast else tokens * 4 * e * e)
    norms = 2
    if decoder:  # cross-attention: query and memory differ, never the fast path
        linear += tokens * 2 * e * e + memory * 2 * e * e
        skipped += _attention_ops(batched, True, False)
        norms = 3
    skipped.append("aten::add")
    if a["activation"] == "gelu":
        skipped.append("aten::gelu")
    return linear + norms * tokens * e * 5, tuple(dict.fromkeys(skipped))


def _stack(node: Node, source: Node, memory: Node | None = None):
    """num_layers layers (as `_transformer_layer`) and the final LayerNorm, where there is one."""
    a, tokens = node.args, prod(source.shape[:-1])
    decoder = node.kind == "TransformerDecoder"
    count, skipped = _layer_cost(a, source, prod(memory.shape[:-1]) if decoder else 0, decoder)
    return a["num_layers"] * count + (tokens * a["d_model"] * 5 if a["norm"] else 0), skipped


def _transformer(node: Node, src: Node, tgt: Node):
    """nn.Transformer: its encoder over src, its decoder over tgt and the encoder's output, a final LayerNorm
    each."""
    a, source, target = node.args, prod(src.shape[:-1]), prod(tgt.shape[:-1])
    encoder, skipped = _layer_cost(a, src, 0, False)
    decoder, more = _layer_cost(a, tgt, source, True)
    return (a["num_encoder_layers"] * encoder + a["num_decoder_layers"] * decoder
            + (source + target) * a["d_model"] * 5), tuple(dict.fromkeys(skipped + more))


_CELL_OPS = {  # measured with fvcore 0.1.5: the elementwise operators of each cell's step
    "LSTMCell": ("aten::unsafe_chunk", "aten::sigmoid_", "aten::tanh_", "aten::mul", "aten::tanh"),
    "GRUCell": ("aten::unsafe_chunk", "aten::sigmoid_", "aten::mul_", "aten::add", "aten::tanh_", "aten::sub"),
    "RNNCell": ("aten::tanh",),
}


def _cell(node: Node, source: Node, *hx: Node):
    """The input's and the state's matrix products (multiply-accumulates); the gates' arithmetic skipped."""
    a = node.args
    gate = {"LSTMCell": 4, "GRUCell": 3, "RNNCell": 1}[node.kind] * a["hidden_size"]
    ops = _CELL_OPS[node.kind] if node.kind != "RNNCell" or a["nonlinearity"] == "tanh" else ()
    return prod(source.shape[:-1]) * gate * (a["input_size"] + a["hidden_size"]), ("aten::add_", *ops)


def _window_attention(node: Node, source: Node):
    """The projections and the two products per window (aten::linear, aten::matmul: the multiply-accumulates);
    the padding, scaling, bias and softmax skipped, and where a window shifts the mask's operators too
    (measured with fvcore 0.1.5).  Whether a shift happens can depend on the sizes (a map no larger than
    its window is not shifted): where the plan does not decide it, a shift is assumed."""
    from .layers.swin import shifts

    shifted = ("aten::fill_", "aten::ne", "aten::sub") if shifts(source.shape, node.args) is not False else ()
    return node.meta["macs"], ("aten::rsub", "aten::pad", "aten::mul", "aten::pow", "aten::add",
                               "aten::softmax", *shifted)


def _patch_merging(node: Node, source: Node):
    """The reduction (aten::linear) and the LayerNorm (5 per element of the joined quarters); F.pad skipped."""
    return node.meta["macs"] + 5 * prod(node.shape[:-1]) * 4 * node.args["dim"], ("aten::pad",)


_FAMILIES: dict[str, Callable] = {
    "ShiftedWindowAttention": _window_attention,
    "PatchMerging": _patch_merging,
    "Embedding": _embedding,
    "LSTMCell": _cell,
    "GRUCell": _cell,
    "RNNCell": _cell,
    "Bilinear": _skip("bilinear"),
    "MultiheadAttention": _attention,
    "TransformerEncoderLayer": _transformer_layer,
    "TransformerDecoderLayer": _transformer_layer,
    "TransformerEncoder": _stack,
    "TransformerDecoder": _stack,
    "Transformer": _transformer,
    "MaxUnpool": _skip("max_unpool{nd}d"),  # fvcore's trace of max_unpool fails in torch 2.13: a guess, untested
    "CosineSimilarity": _skip("cosine_similarity"),
    "PairwiseDistance": _skip("pairwise_distance"),
    "LSTM": _skip("lstm"),
    "GRU": _skip("gru"),
    "RNN": lambda node, source, *h0: (None, (f"aten::rnn_{node.args['nonlinearity']}",)),
    "EmbeddingBag": lambda node, source: (None, ("aten::numel", "aten::embedding_bag")),  # numel: its bag count
    "LocalResponseNorm": _local_response_norm,
    "LPPool": _lp_pool,
    "CircularPad": _skip("pad"),
    "SyncBatchNorm": lambda node, source: _batch_norm(node, source),
    "UpsamplingNearest2d": _upsampling,
    "UpsamplingBilinear2d": _upsampling,
    "Conv": _conv,
    "ConvTranspose": lambda node, source: (node.meta["macs"], ()),
    "Linear": lambda node, source: (node.meta["macs"], ()),
    "BatchNorm": _batch_norm,
    "InstanceNorm": _norm,
    "GroupNorm": _norm,
    "LayerNorm": _norm,
    "MaxPool": _skip("max_pool{nd}d"),
    "AvgPool": _skip("avg_pool{nd}d"),
    "AdaptiveMaxPool": _skip("adaptive_max_pool{nd}d"),
    # F.fractional_max_poolNd draws its windows' places with torch.rand: fvcore skips both (measured, 0.1.5)
    "FractionalMaxPool": lambda node, source: (None, ("aten::rand", f"aten::fractional_max_pool{node.spec.nd}d")),
    "AdaptiveAvgPool": _adaptive_avg,
    "Dropout": _dropout,
    "ZeroPad": _skip("pad"),
    "ConstantPad": _skip("pad"),
    "ReflectionPad": _skip("pad"),
    "ReplicationPad": _skip("pad"),
    "Upsample": _upsample,
}


def known(kind: str, family: str = "") -> bool:
    """Whether the convention has a rule for this kind (every registry kind should)."""
    return kind in _IGNORED or kind in _MERGES or kind in _OPS_SKIPPED or kind == "matmul" or kind in _ACTIVATIONS \
        or kind in _COMPOSITE \
        or (family or kind) in _FAMILIES
