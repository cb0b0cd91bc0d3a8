"""What autograd saves for backward in training mode for the sequence kinds: embeddings, Bilinear, attention,
the Transformer layers and the recurrent layers and cells (registry: `LayerSpec.saves`; the others: saves.py).
Measured on torch 2.13's CPU kernels with `torch.autograd.graph.saved_tensors_hooks` (tests/test_memory.py):

- Embedding saves its indices (the input, int64); EmbeddingBag over [N, L] bags its flattened indices and
  four int64 tensors of aten::_embedding_bag: the offsets (N), offset2bag (N*L + 1; empty on the fast path:
  mode 'sum', no padding_idx, not float64), the bag sizes (N) and the max indices (N; [N, embedding_dim]
  for mode 'max');
- Bilinear saves both inputs;
- MultiheadAttention and the Transformer layers: see `attention` and `transformer_layer`; the stacks
  (TransformerEncoder, TransformerDecoder, nn.Transformer) their layers' and final norms' (`transformer_stack`).
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from .saves import BYTE, INPUT, INT64, NEW, OPMATH, OUTPUT, STATS, Saved, Saves, _prod
from .shapes import to_expr

# torch's CPU kernels (aten/src/ATen/native/RNN.cpp): a float32 LSTM without projections runs oneDNN's
# kernel (mkldnn_rnn_layer, one call per layer and direction); every other case runs the cells step by step.
ONEDNN = ("float32",)
STEPWISE = ("float64", "float16")  # bfloat16: oneDNN where the CPU has it (not modelled for LSTM)
HALF = ("float16", "bfloat16")


def embedding(a, shape, out):
    return Saves((Saved(INPUT, dtype=INT64),))


def embedding_bag(a, shape, out):
    n, numel = shape[0], _prod(shape)
    fast = a["mode"] == "sum" and a["padding_idx"] is None
    offset2bag = Saved(NEW, numel + 1, INT64, only=("float64",) if fast else ())
    max_indices = n * a["embedding_dim"] if a["mode"] == "max" else n
    return Saves((Saved(INPUT, dtype=INT64), Saved(NEW, n, INT64), offset2bag, Saved(NEW, n, INT64),
                  Saved(NEW, max_indices, INT64)))


def bilinear(a, shape, out, other, tied):
    return Saves((Saved(INPUT), Saved(INPUT, index=1)))


def _when(cond) -> sympy.Expr:
    """1 where `cond` holds at the sizes, else 0 (a number where it is decided)."""
    if isinstance(cond, bool):  # decided in Python (never a string: no sympify on anything here)
        cond = sympy.true if cond else sympy.false
    return sympy.Integer(1) if cond is sympy.true else sympy.Integer(0) if cond is sympy.false else \
        sympy.Piecewise((1, cond), (0, True))


def _dropped(p, numel) -> tuple:
    """F.dropout's saves in training: its noise, and the dropped tensor where the next product keeps it
    (`numel` elements each); p=0 drops nothing, p=1 multiplies by a zero scalar."""
    if p == 0:
        return ()
    return (Saved(NEW, 1 if p == 1 else numel), Saved(NEW, numel))


def attention(a, query, out, key, value, tied):
    """F.multi_head_attention_forward with need_weights=True (nn.MultiheadAttention's default, which a plan
    calls): the projections' inputs, k and v as the two products read them, q scaled, the softmax's output
    (dropout: its noise and the dropped weights) and the heads' output before out_proj."""
    if len(query) == 2:  # unbatched: each is unsqueezed on its own, and no longer the same tensor
        tied = (0, 1, 2)
    return Saves(_projection_inputs(a, query, key, value, tied) + _attended(a, query, key, value, tied)
                 + (Saved(NEW, _prod(query)),) + _weights(a, query, key, a["dropout"]) + (Saved(NEW, _prod(query)),))


def _batch(a, shape):
    """(batch, length) of a [L, N, E] / [N, L, E] / [L, E] tensor (unbatched: a batch of 1)."""
    if len(shape) == 2:
        return sympy.Integer(1), shape[0]
    return (shape[0], shape[1]) if a["batch_first"] else (shape[1], shape[0])


def _fused(a) -> sympy.Expr:
    """1 where torch projects q, k and v with one packed weight (kdim and vdim equal embed_dim)."""
    return _when(sympy.And(sympy.Eq(a["kdim"], a["embed_dim"]), sympy.Eq(a["vdim"], a["embed_dim"])))


def _projection_inputs(a, query, key, value, tied) -> tuple:
    """Each in-projection's linear keeps its input.  batch_first transposes a batched input to [L, N, E]:
    linear then keeps a contiguous copy, unless the batch or the length is 1 (the transposed view is
    contiguous).  Where query is key is value (self-attention) one linear projects them all, where key is
    value one projects both (when the weight is packed)."""
    tensors = (query, key, value)
    if len(query) == 2 or not a["batch_first"]:
        return tuple(Saved(INPUT, index=i) for i in range(3))
    items = []
    for i, shape in enumerate(tensors):
        n, length = _batch(a, shape)
        items.append((i, shape, _when(sympy.Or(sympy.Eq(n, 1), sympy.Eq(length, 1)))))
    return _copies(a, items, tied, _fused(a))


def _copies(a, items, tied, fused) -> tuple:
    """The saved inputs of the in-projections under batch_first: how many linears torch runs depends on
    which tensors are one and whether the weight is packed."""
    self_attention, key_is_value = tuple(tied) == (0, 0, 0), tied[2] == tied[1]
    out = []
    for i, shape, view in items:
        if i == 0:
            runs = sympy.Integer(1)
        elif self_attention:
            runs = 1 - fused  # packed: the query's linear projected all three
        elif key_is_value and i == 2:
            runs = 1 - fused  # packed: the key's linear projected the value too
        else:
            runs = sympy.Integer(1)
        if runs == 0:
            continue
        out += [Saved(NEW, _prod(shape), scale=runs * (1 - view)), Saved(INPUT, index=i, scale=runs * view)]
    return tuple(out)


def _attended(a, query, key, value, tied) -> tuple:
    """k and v as the products read them: the packed projection's storage (all of q, k, v for
    self-attention, k and v where key is value), each projection's, or new tensors where add_bias_kv or
    add_zero_attn concatenate a position."""
    e = a["embed_dim"]
    n, _ = _batch(a, query)
    _, s = _batch(a, key)
    _, lq = _batch(a, query)
    extra = int(bool(a["add_bias_kv"])) + int(bool(a["add_zero_attn"]))
    if extra:
        return (Saved(NEW, n * (s + extra) * e),) * 2
    fused = _fused(a)
    if tuple(tied) == (0, 0, 0):
        return (Saved(NEW, 3 * n * lq * e),)
    if tied[2] == tied[1]:
        return (Saved(NEW, 2 * n * s * e, scale=fused), Saved(NEW, n * s * e, scale=1 - fused),
                Saved(NEW, n * s * e, scale=1 - fused))
    return (Saved(NEW, n * s * e),) * 2


def _weights(a, query, key, p) -> tuple:
    n, lq = _batch(a, query)
    _, s = _batch(a, key)
    s = s + int(bool(a["add_bias_kv"])) + int(bool(a["add_zero_attn"]))
    return (Saved(NEW, n * a["num_heads"] * lq * s),) + _dropped(p, n * a["num_heads"] * lq * s)


def _copy_or_input(a, shape, index: int) -> tuple:
    """A linear's saved input where it is the layer's tensor `index`: batch_first transposes a batched one to
    [L, N, E], which linear copies, unless the batch or the length is 1."""
    if len(shape) == 2 or not a["batch_first"]:
        return (Saved(INPUT, index=index),)
    n, length = _batch(a, shape)
    view = _when(sympy.Or(sympy.Eq(n, 1), sympy.Eq(length, 1)))
    return (Saved(NEW, _prod(shape), scale=1 - view), Saved(INPUT, index=index, scale=view))


def _sdpa(a, query, key, self_attention: bool) -> tuple:
    """The Transformer layers' attention, need_weights=False: scaled_dot_product_attention.  Without dropout
    torch's CPU flash kernel keeps q, k and v (the projections' storages), its output and logsumexp (float32
    at least, [N, heads, L]); with dropout the math kernel keeps q and k scaled, the softmax's output, the
    noise and the dropped weights, and v (its projection's storage); then out_proj keeps the heads' output."""
    e, p, heads = a["d_model"], a["dropout"], a["nhead"]
    n, lq = _batch(a, query)
    _, s = _batch(a, key)
    if len(query) == 2:  # unbatched: q, k and v are unsqueezed apart, each projected on its own
        q, k, v = (Saved(NEW, n * lq * e),), (Saved(NEW, n * s * e),), (Saved(NEW, n * s * e),)
    elif self_attention:  # one projection's storage holds q, k and v
        q, k, v = (), (), (Saved(NEW, 3 * n * lq * e),)
    else:  # key is value: one projection for both
        q, k, v = (Saved(NEW, n * lq * e),), (), (Saved(NEW, 2 * n * s * e),)
    if p == 0:
        return q + k + v + (Saved(NEW, n * heads * lq, OPMATH), Saved(NEW, n * lq * e))
    # the math kernel computes a 16-bit attention in float32: v's float32 copy instead of v's storage
    weights, wide = n * heads * lq * s, ("float32", "float64")
    v = tuple(Saved(NEW, item.numel, only=wide) for item in v) + (Saved(NEW, n * s * e, OPMATH, only=HALF),)
    return (v + (Saved(NEW, n * lq * e, OPMATH), Saved(NEW, n * s * e, OPMATH), Saved(NEW, weights, OPMATH))
            + tuple(Saved(NEW, item.numel, OPMATH) for item in _dropped(p, weights)) + (Saved(NEW, n * lq * e),))


def _noise(p, numel) -> tuple:
    """A dropout whose output only a sum reads: its noise."""
    return _dropped(p, numel)[:1]


def _normed(a, numel, groups) -> tuple:
    """A LayerNorm of a new tensor: it, its mean and its inverse std."""
    return (Saved(NEW, numel), Saved(NEW, groups, STATS), Saved(NEW, groups, STATS))


def _feedforward(a, numel_f) -> tuple:
    """linear1 -> activation -> dropout -> linear2: relu keeps its output, gelu its input (linear1's);
    linear2 keeps the dropped tensor (without dropout the activation's output, relu's already kept)."""
    p = a["dropout"]
    kept = (Saved(NEW, numel_f),)
    if p == 0:
        return kept if a["activation"] == "relu" else kept * 2
    return kept + _dropped(p, numel_f)


def transformer_layer(a, shape, out, memory=None, tied=None):
    """TransformerEncoderLayer / TransformerDecoderLayer in training (no fast path): each block (self-attention,
    the decoder's attention to memory, the feedforward) as F.multi_head_attention_forward, the dropouts and
    the LayerNorms compute it; the norms keep their inputs (the residual sums, or the layer's input and the
    sums with norm_first) and statistics (N*L each); a block's input where its first linear keeps it."""
    n, length = _batch(a, shape)
    x, groups = n * length * a["d_model"], n * length
    p = a["dropout"]
    first = _sdpa(a, shape, shape, True) + _noise(p, x)
    blocks = [first]
    if memory is not None:
        blocks.append(_copy_or_input(a, memory, 1) + _sdpa(a, shape, memory, False) + _noise(p, x))
    blocks.append(_feedforward(a, n * length * a["dim_feedforward"]) + _noise(p, x))
    items = []
    if a["norm_first"]:  # x + block(norm(x)): each norm keeps its input (the layer's, then the sums)
        items += [Saved(INPUT), Saved(NEW, groups, STATS), Saved(NEW, groups, STATS)]
        for k, block in enumerate(blocks):
            items += [Saved(NEW, x)] + list(block)  # the norm's output, which the block's first linear keeps
            if k + 1 < len(blocks):
                items += _normed(a, x, groups)  # the sum, normed again
        return Saves(tuple(items))
    items += _copy_or_input(a, shape, 0)  # norm(x + block(x)): the first block reads the layer's input
    for k, block in enumerate(blocks):
        if k:
            items.append(Saved(NEW, x))  # the norm's output, which this block's first linear keeps
        items += list(block) + list(_normed(a, x, groups))
    return Saves(tuple(items))


def transformer_stack(a, shape, out, memory=None, tied=None):
    """TransformerEncoder / TransformerDecoder in training: num_layers layers, each as `transformer_layer`,
    each after the first on its predecessor's output (a new tensor: what the first keeps of the stack's input,
    the others keep of a new one), then the final LayerNorm (norm=True): the last layer's output and its
    statistics.  A decoder's memory is the stack's own tensor for every layer."""
    items = []
    for k in range(int(a["num_layers"])):
        layer = transformer_layer(a, shape, out, memory).items
        items += layer if k == 0 else [_renamed(item, {0: Saved(NEW, _prod(shape))}) for item in layer]
    if a["norm"]:
        n, length = _batch(a, out)
        items += _normed(a, _prod(out), n * length)
    return Saves(tuple(items))


def transformer(a, src, out, tgt, tied=None):
    """nn.Transformer(src, tgt): the encoder stack over src, then the decoder stack over tgt, both with their
    final LayerNorm; the decoder's memory is the encoder's normed output, one storage every decoder layer
    keeps (`key`)."""
    encoder = transformer_stack({**a, "num_layers": a["num_encoder_layers"], "norm": True}, src, src).items
    decoder = transformer_stack({**a, "num_layers": a["num_decoder_layers"], "norm": True}, tgt, out, src).items
    memory = Saved(NEW, _prod(src), key="memory")
    return Saves(tuple(encoder) + tuple(_renamed(item, {0: Saved(INPUT, index=1), 1: memory}) for item in decoder))


def _renamed(item: Saved, inputs: dict) -> Saved:
    """`item`, where it is the layer's tensor `index` in `inputs`, as that tensor (its scale and dtypes kept)."""
    if item.what != INPUT or item.index not in inputs:
        return item
    return replace(inputs[item.index], scale=item.scale, only=item.only)


# -- recurrent layers and cells ----------------------------------------------------------------------------


def recurrent(kind: str):
    def rule(a, shape, out, *others, tied=None):
        """RNN, LSTM, GRU: the first layer's input (a copy where batch_first transposes it, unless the batch or
        the length is 1), h0 (the plan's, or zeros; an LSTM's c0 zeros), each layer and direction's saved
        tensors and, between layers, the layer's output (the next layer's input: dropout's noise and the
        dropped output where dropout is on)."""
        batched = len(shape) == 3
        n, length = _batch(a, shape) if batched else (sympy.Integer(1), shape[0])
        d, h, layers, p = 2 if a["bidirectional"] else 1, a["hidden_size"], int(a["num_layers"]), a["dropout"]
        proj = a.get("proj_size", 0)
        h_out = proj or h
        onednn = kind == "LSTM" and not proj
        items = _first_input(a, shape, d, onednn)
        items.append(Saved(INPUT, index=1) if others else Saved(NEW, d * layers * n * h_out))
        if kind == "LSTM":
            items.append(Saved(NEW, d * layers * n * h))
        for layer in range(layers):
            features = shape[-1] if layer == 0 else d * h_out
            per = _onednn_layer(length, n, features, h, a["bias"]) if onednn else ()
            per += tuple(Saved(NEW, numel, only=STEPWISE if onednn else ())
                         for numel in _steps(kind, length, n, h, proj))
            items += list(per) * d
            if layer + 1 < layers:
                between = length * n * d * h_out
                if p != 0:
                    items += _dropped(p, between)
                else:
                    # the next layer's input-to-hidden linear keeps the directions' concatenation, or the
                    # steps' outputs stacked (RNN.cpp's FullLayer); oneDNN's one direction: its output, above
                    items.append(Saved(NEW, between, only=STEPWISE if onednn and d == 1 else ()))
        return Saves(tuple(items), unmodelled_in=("bfloat16",) if onednn else ())
    return rule


def _first_input(a, shape, d: int, onednn: bool) -> list:
    """The first layer's input, which its input-to-hidden linear keeps.  batch_first transposes a batched
    input to [L, N, F]: not contiguous unless the batch or the length is 1, so each direction's linear keeps
    a copy of its own (oneDNN's LSTM one copy for both)."""
    if len(shape) == 2 or not a["batch_first"]:
        return [Saved(INPUT)]
    n, length = _batch(a, shape)
    view = _when(sympy.Or(sympy.Eq(n, 1), sympy.Eq(length, 1)))
    copy = Saved(NEW, _prod(shape), scale=1 - view, only=STEPWISE if onednn else ())
    copies = [copy] * d + ([Saved(NEW, _prod(shape), scale=1 - view, only=ONEDNN)] if onednn else [])
    return [Saved(INPUT, scale=view)] + copies


def _steps(kind: str, length, n, h, proj) -> tuple:
    """What one layer and direction keeps, step by step (elements): RNN each step's output (which the next
    step's linear keeps too); GRU the hidden gates (3h), the two copies its in-place products keep, the new
    gate, and each step's output but the last; LSTM the gates (4h), tanh of the cell state, the cell state
    and the output of each step but the last (with proj_size the unprojected output of every step, which
    the projection keeps)."""
    if kind == "RNN":
        return (length * n * h,)
    if kind == "GRU":
        return (length * n * 6 * h, (length - 1) * n * h)
    hidden = (length * n * h, (length - 1) * n * proj) if proj else ((length - 1) * n * h,)
    return (length * n * 5 * h, (length - 1) * n * h) + hidden


def _onednn_layer(length, n, features, h, bias: bool) -> tuple:
    """mkldnn_rnn_layer keeps its output, h_n and c_n, and oneDNN's workspace (bytes): the gates, the
    hidden states, three tensors of the layer's states and two of the cell states, each over every step
    (length + 1 with the initial state) and each starting on a 4096-byte page (oneDNN's rnn_utils:
    set_workspace_sizes, set_offsets; leading dims rounded by get_good_ld).  Without biases it keeps
    copies of the two weights as well."""
    wide = _good_ld(sympy.Max(h, features))
    pages = (_pages(length * n * _good_ld(4 * h) * 4) + _pages(length * n * _good_ld(h) * 4)
             + 3 * _pages(2 * (length + 1) * n * wide * 4) + 2 * _pages(2 * (length + 1) * n * h * 4))
    weights = () if bias else (Saved(NEW, 4 * h * features, only=ONEDNN), Saved(NEW, 4 * h * h, only=ONEDNN))
    return (Saved(NEW, length * n * h, only=ONEDNN), Saved(NEW, n * h, only=ONEDNN),
            Saved(NEW, n * h, only=ONEDNN), Saved(NEW, pages, BYTE, only=ONEDNN)) + weights


def _good_ld(dim):
    """oneDNN's get_good_ld for float32: rounded up to 16 elements (64 bytes), 16 more where that is a
    multiple of 256."""
    ld = sympy.ceiling(to_expr(dim) / 16) * 16
    return ld + 16 * _when(sympy.Eq(sympy.Mod(ld, 256), 0))


def _pages(nbytes):
    return sympy.ceiling(to_expr(nbytes) / 4096) * 4096


def cell(kind: str):
    def rule(a, shape, out, *others, tied=None):
        """RNNCell, LSTMCell, GRUCell: the input (the input-to-hidden linear's), hx (the plan's, or zeros:
        an LSTMCell's h and c are one zeros tensor) and one step's tensors (`_steps`, the last step)."""
        n = shape[0] if len(shape) == 2 else sympy.Integer(1)
        h = a["hidden_size"]
        state = Saved(INPUT, index=1) if others else Saved(NEW, n * h)
        if kind == "RNN":  # its one step's output is the cell's output (a layer after it that keeps it keeps one)
            return Saves((Saved(INPUT), state, Saved(OUTPUT)))
        return Saves((Saved(INPUT), state) + tuple(Saved(NEW, x) for x in _steps(kind, 1, n, h, 0) if x != 0))
    return rule
