"""Layer kinds whose torch forward `view`s their input (LayerSpec.views_from: F.local_response_norm's
`div.view(N, 1, C, H, -1)`): torch refuses a layout whose merged dims do not hold one another contiguously, so the
walker refuses it too, where layouts.py follows the strides.  Where it does not (a convolution's or a norm's output
from a permuted input: torch keeps it contiguous or channels-last, both of which the view takes), the call is taken,
not refused on a guess."""

from __future__ import annotations

from . import layouts, strides
from . import nodes as n
from .layers import LayerSpec
from .scope import Skip, State, Tensor
from .shapes import pyrepr
from .show import show_shape


def merged_view(st: State, spec: LayerSpec, call: n.Call, source: Tensor) -> None:
    """Refuse (E300) the layer on `source` where torch's view of its dims from `spec.views_from` on would fail."""
    start, node = spec.views_from, st.nodes[source.id]
    shape = node.shape
    if source.tainted or len(shape) <= start + 1:  # one dim from `start` on (LocalResponseNorm's 4-D): any layout
        return
    found = layouts.strides_at(st.nodes, source.id)
    out = strides.elementwise(shape, found) if found is not None else None
    if out is None or strides.merges(shape, out, start):
        return
    where = st.made_at(source)
    shown = ", ".join(pyrepr(s) for s in out[start:])
    st.diag.error("E300", f"{spec.name}: torch's forward views dims {start} to {len(shape) - 1} of its input as one, "
                  f"which its layout does not allow: their strides are ({shown}) for sizes {show_shape(shape[start:])} "
                  f"(the input comes from {where.strip(' ()')}, through a permute, transpose, expand or slice)",
                  call.name_span,
                  hints=[f"call contiguous() before {spec.name}", f"input is {show_shape(shape)}{where}"])
    raise Skip
