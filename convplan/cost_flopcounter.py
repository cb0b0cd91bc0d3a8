"""The "flopcounter" cost convention: what `torch.utils.flop_counter.FlopCounterMode` reports for the built
module, as formulas: 2 per multiply-accumulate of the matrix products and convolutions it sees.

The count is of the module as the tests (and inference) run it: on the CPU, in eval mode, under
`torch.no_grad()`, in float32.  There torch picks fused kernels that FlopCounterMode has no formula for
(they count 0), by rules read in torch 2.13 and measured (tests/test_cost.py):

- LSTM without projections runs oneDNN's fused kernel (aten::mkldnn_rnn_layer): nothing is seen; with
  `proj_size` torch falls back to its own loop, whose matrix products are seen.  GRU, RNN and the cells
  always run that loop: W_ih times every step's input (one addmm over the whole sequence), W_hh times
  each step's state, W_hr times the new state (projecting LSTM): 2 x the "macs" convention.
- MultiheadAttention takes torch's fast path (aten::_native_multi_head_attention: nothing seen) when
  query, key and value are one tensor, batched, batch_first, with an even number of heads, biases and
  neither add_bias_kv nor add_zero_attn.  Otherwise F.multi_head_attention_forward runs: the
  projections and, since the module is called with need_weights=True, both products of attention as
  bmm: 2 x "macs".  Its batch-first output is contiguous on the fast path and a transpose off it, which
  decides the kernel of an attention after it (below): layouts.py reads the same rule (LayerSpec.fast_path).
- TransformerEncoderLayer takes its fast path (aten::_transformer_encoder_layer_fwd: nothing seen) on a
  batched input with batch_first, biases and an even number of heads; otherwise its self-attention
  (need_weights=False) runs scaled_dot_product_attention in the CPU flash kernel (0), so only the
  projections and the feed-forward count.
- TransformerDecoderLayer has no fast path of its own: its self-attention takes MultiheadAttention's
  fast path under the encoder's conditions, its cross-attention (query and key differ) never does;
  both attentions' products run in the flash kernel (0).
- The stacks (TransformerEncoder, TransformerDecoder, nn.Transformer) are the sum of their layers, each as
  above: the encoder's own "sparsity" fast path only turns the input into a nested tensor where a
  src_key_padding_mask is given, and a plan gives no mask (nor is_causal); the final LayerNorms have no
  product.  An encoder whose layers all take the fast path counts nothing (listed); nn.Transformer's
  decoder always counts (its cross-attention's projections).

A kind that counts nothing on the CPU is listed under `uncounted`, not counted as 0; a condition that
depends on a symbol (an even number of heads) becomes a Piecewise.
"""

from __future__ import annotations

import sympy

from .graph import Graph, Node
from .layers import prod
from .layers.attention import fast_path
from .layouts import graph_layouts

# FlopCounterMode sees no matrix product in Bilinear: it runs aten::bilinear
UNSEEN = frozenset({"Bilinear"})


def count(node: Node, graph: Graph) -> tuple:
    """(FlopCounterMode's count of the node, or None where it sees nothing; no operators skipped)."""
    if node.kind in UNSEEN:
        return None, ()
    rule = _SEQUENCE.get(node.kind)
    if rule is not None:
        return rule(node, graph), ()
    macs = node.meta["macs"] if node.meta["macs"] is not None else node.meta.get("products")
    if macs is not None and node.op == "scaled_dot_product_attention":
        macs = _unless_cpu_flash(node, graph, macs)
    return (None if macs is None else 2 * macs), ()


_FUSED = {"Bilinear": "as aten::bilinear", "LSTM": "in oneDNN's fused kernel (aten::mkldnn_rnn_layer)",
          "MultiheadAttention": "on its attention fast path (aten::_native_multi_head_attention)",
          "TransformerEncoderLayer": "on its encoder fast path (aten::_transformer_encoder_layer_fwd)",
          "TransformerEncoder": "layer by layer on the encoder fast path (aten::_transformer_encoder_layer_fwd)"}


def why(node: Node, graph: Graph) -> str | None:
    """Why a node is left out: the kernel torch runs it in has no flop formula, or (attention) which kernel
    runs depends on strides convplan does not follow."""
    if node.kind in _FUSED:
        return f"on the CPU torch runs it {_FUSED[node.kind]}, which FlopCounterMode has no formula for (it reports 0)"
    if node.op == "scaled_dot_product_attention":
        return ("convplan does not follow the strides of its operands (layouts.py), and torch runs it in the CPU "
                "flash kernel (counted 0) only where each last dim has stride 1, else in two counted products")
    return None


def _unless_cpu_flash(node: Node, graph: Graph, macs):
    """torch 2.13 on the CPU runs attention on 4-D inputs with equal head dims, no dropout and each last dim of
    stride 1 in one fused kernel (_scaled_dot_product_flash_attention_for_cpu) that FlopCounterMode has no
    formula for: 0 there; elsewhere the math path's two matrix products (measured, tests/test_ops_cost.py).
    The strides are layouts.py's; where it does not follow an operand's, which path torch takes is not known:
    None (listed as uncounted), never a guessed stride."""
    q, _, v = (graph.nodes[i].shape for i in node.inputs)
    same = sympy.Eq(q[-1], v[-1])
    if len(q) != 4 or node.args["dropout_p"] != 0 or same is sympy.false:
        return macs
    known = graph_layouts(graph, inference=True)
    if any(known[i] is None for i in node.inputs):
        return None
    return sympy.Piecewise((0, sympy.And(same, *(sympy.Eq(known[i][-1], 1) for i in node.inputs))), (macs, True))


def _unless(fast, count):
    """`count`, or None (nothing seen) where the fast path runs: a Piecewise with 0 for a symbolic condition."""
    if fast is True:
        return None
    if fast is False:
        return count
    return sympy.Piecewise((0, fast), (count, True))


def _rnn(node: Node, graph: Graph):
    if node.kind == "LSTM" and node.args["proj_size"] == 0:
        return None  # oneDNN's fused LSTM
    return 2 * node.meta["macs"]


def _mha(node: Node, graph: Graph):
    return _unless(node.spec.fast_path(node.args, node.shape, node.inputs), 2 * node.meta["macs"])


def _encoder(node: Node, graph: Graph):
    return _encoder_layer(node.args, graph.nodes[node.inputs[0]].shape)


def _decoder(node: Node, graph: Graph):
    shape, memory = (graph.nodes[i].shape for i in node.inputs[:2])
    return _decoder_layer(node.args, shape, memory)


def _encoder_layer(a, shape):
    e, f = a["d_model"], a["dim_feedforward"]
    fast = fast_path(a, len(shape) == 3, a["nhead"])
    return _unless(fast, 2 * prod(shape[:-1]) * (4 * e * e + 2 * e * f))


def _decoder_layer(a, shape, memory):
    e, f = a["d_model"], a["dim_feedforward"]
    tokens = prod(shape[:-1])
    self_attention = _unless(fast_path(a, len(shape) == 3, a["nhead"]), tokens * 4 * e * e)
    rest = tokens * (2 * e * e + 2 * e * f) + prod(memory[:-1]) * 2 * e * e  # cross-attention, feed-forward
    return 2 * ((0 if self_attention is None else self_attention) + rest)


def _times(k, count):
    return None if count is None else k * count


def _encoder_stack(node: Node, graph: Graph):
    """Its layers in turn, each as one TransformerEncoderLayer: without a padding mask (a plan gives none) the
    stack never makes a nested tensor, and the final LayerNorm has no product."""
    return _times(node.args["num_layers"], _encoder(node, graph))


def _decoder_stack(node: Node, graph: Graph):
    return _times(node.args["num_layers"], _decoder(node, graph))


def _transformer(node: Node, graph: Graph):
    """nn.Transformer: its encoder's layers over src (on the fast path: nothing seen), its decoder's over tgt
    with the encoder's output (src's shape) as memory."""
    a = node.args
    src, tgt = (graph.nodes[i].shape for i in node.inputs[:2])
    encoder = _times(a["num_encoder_layers"], _encoder_layer(a, src))
    return (0 if encoder is None else encoder) + a["num_decoder_layers"] * _decoder_layer(a, tgt, src)


_SEQUENCE = {"LSTM": _rnn, "GRU": _rnn, "RNN": _rnn, "LSTMCell": _rnn, "GRUCell": _rnn, "RNNCell": _rnn,
             "MultiheadAttention": _mha, "TransformerEncoderLayer": _encoder, "TransformerDecoderLayer": _decoder,
             "TransformerEncoder": _encoder_stack, "TransformerDecoder": _decoder_stack, "Transformer": _transformer}
