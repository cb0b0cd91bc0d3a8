"""What autograd saves for backward in training mode for the sequence kinds: embeddings, Bilinear, attention,
the Transformer layers and the recurrent layers and cells (registry: `LayerSpec.saves`; the others: saves.py).
Measured on torch 2.13's CPU kernels with `torch.autograd.graph.saved_tensors_hooks` (tests/test_memory.py):

- Embedding saves its indices (the input, int64); EmbeddingBag over [N, L] bags its flattened indices and
  four int64 tensors of aten::_embedding_bag: the offsets (N), offset2bag (N*L + 1; empty on the fast path:
  mode 'sum', no padding_idx, not float64), the bag sizes (N) and the max indices (N; [N, embedding_dim]
  for mode 'max');
- Bilinear saves both inputs.
"""

from __future__ import annotations

from .saves import INPUT, INT64, NEW, Saved, Saves, _prod


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
