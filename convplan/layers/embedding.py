"""Embedding and EmbeddingBag: integer indices in, one learned vector per index out.

Their input holds indices (torch refuses a float tensor), which a plan's input is: `LayerSpec.indices`
names the bound (num_embeddings) so that build.example_inputs fills that input with integers in range,
and layercall refuses an Embedding that reads a computed (float) tensor.
"""

# ruff: noqa: B023

from __future__ import annotations

import sympy

from .. import saves_sequence as ss
from ..shapes import at_least
from .spec import BOOL, CONTIGUOUS, FLOAT, OPT_FLOAT, OPT_INT, STR, Arg, LayerSpec, RuleContext, register, show


def _padding_idx(ctx: RuleContext, a) -> None:
    p, n = a["padding_idx"], a["num_embeddings"]
    if p is not None:
        inside = sympy.And(at_least(p + n, 0), at_least(n - 1 - p, 0))
        ctx.require(inside, lambda: f"padding_idx ({show(p)}) must be within num_embeddings ({show(n)}): from "
                    f"-{show(n)} to {show(n)} - 1", "padding_idx")


def _sizes(ctx: RuleContext, a) -> None:
    ctx.positive([a["num_embeddings"]], "num_embeddings")
    ctx.positive([a["embedding_dim"]], "embedding_dim")


def embedding_rule(ctx: RuleContext, shape, a):
    _sizes(ctx, a)
    _padding_idx(ctx, a)
    return (*shape, a["embedding_dim"])


def embedding_bag_rule(ctx: RuleContext, shape, a):
    """A 2-D input is a batch of bags of equal length (offsets=None): one vector per bag.  A 1-D input needs
    the offsets of its bags, a second tensor (not planned)."""
    _sizes(ctx, a)
    _padding_idx(ctx, a)
    if a["mode"] == "max" and a["sparse"]:
        ctx.fail("mode='max' does not support sparse weights", "sparse")
    if a["mode"] == "max" and a["scale_grad_by_freq"]:
        ctx.fail("mode='max' does not support scaling the gradient by the frequency", "scale_grad_by_freq")
    return (shape[0], a["embedding_dim"])


def embedding_count(a):
    return a["num_embeddings"] * a["embedding_dim"]


def register_embeddings() -> None:
    """Embedding and EmbeddingBag, with torch's arguments (its `_weight`/`_freeze` are for loading weights)."""
    norm = (Arg("max_norm", None, OPT_FLOAT), Arg("norm_type", 2.0, FLOAT), Arg("scale_grad_by_freq", False, BOOL))
    register(LayerSpec(
        name="Embedding",
        args=(Arg("num_embeddings"), Arg("embedding_dim"), Arg("padding_idx", None, OPT_INT), *norm,
              Arg("sparse", False, BOOL)),
        rule=embedding_rule, count=embedding_count, short="embedding", indices="num_embeddings",
        layout=CONTIGUOUS,
        saves=ss.embedding,
    ))
    register(LayerSpec(
        name="EmbeddingBag",
        args=(Arg("num_embeddings"), Arg("embedding_dim"), *norm, Arg("mode", "mean", STR, ("sum", "mean", "max")),
              Arg("sparse", False, BOOL), Arg("include_last_offset", False, BOOL), Arg("padding_idx", None, OPT_INT)),
        rule=embedding_bag_rule, count=embedding_count, short="embeddingbag", indices="num_embeddings", ranks=(2,),
        layout=CONTIGUOUS,
        saves=ss.embedding_bag,
    ))
