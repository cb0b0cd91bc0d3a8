"""The layer registry: every torch layer kind convplan knows, declared once (`spec.LayerSpec`).

The kinds live by family in this package's modules (conv, pool, norm, activation, reshape, resample, pad,
linear); `spec` holds the types and the helpers their rules share.  Registration runs here, in one order
(torch's: the 1d/2d/3d members of each family first, then the rest as they were added), because the
registry's order is what docs/layers.md, completion and the editor grammar list.
"""

from .activation import dropout_family, more_activations, register_activations
from .attention import register_attention, register_stacks
from .conv import conv_family, conv_transpose_family
from .embedding import register_embeddings
from .linear import register_linear
from .norm import batch_norm_family, instance_norm_family, more_norms, register_group_and_layer_norm
from .pad import circular_pad_family, pad_family
from .pairs import register_pairs
from .pool import adaptive_pool_family, avg_pool_family, fractional_max_pool_family, lp_pool_family, max_pool_family
from .recurrent import register_recurrent
from .resample import SCALE_CHECKED, _scale_search, register_upsample, register_upsampling, scale_ratio  # noqa: F401 (tests reach them here)
from .reshape import more_reshaping, register_flatten, register_pixel_shuffle
from .spec import (  # noqa: F401 (the registry's public names)
    BATCH_FIRST,
    BATCH_FIRST_IN_TRAINING,
    BOOL,
    CONTIGUOUS,
    DIMS,
    FLOAT,
    GLOBAL,
    INT,
    LIKE_INPUT,
    OPT_FLOAT,
    OPT_INT,
    OPT_SIZE,
    PAD,
    PADS,
    POINTWISE,
    REGISTRY,
    REQUIRED,
    SCALE,
    SIZE,
    STR,
    Arg,
    LayerError,
    LayerSpec,
    RuleContext,
    SizeRule,
    Source,
    Worded,
    asymmetric_pad,
    member,
    ntuple,
    prod,
    register,
    same_shape,
    worded,
)
from .swin import register_swin
from .torchvision import register_torchvision

for _nd in (1, 2, 3):  # the 1d members first, as torch lists them
    for _family in (conv_family, conv_transpose_family, max_pool_family, avg_pool_family, adaptive_pool_family,
                    batch_norm_family, instance_norm_family, dropout_family, pad_family):
        _family(_nd)
register_activations()
register_group_and_layer_norm()
register_flatten()
register_linear()
register_upsample()
register_pixel_shuffle()
more_activations()
more_norms()
more_reshaping()
register_upsampling()
for _nd in (1, 2, 3):
    lp_pool_family(_nd)
    circular_pad_family(_nd)
register_embeddings()
register_attention()
register_stacks()
register_recurrent()
register_pairs()
register_torchvision()
register_swin()
for _nd in (2, 3):  # torch has no FractionalMaxPool1d
    fractional_max_pool_family(_nd)

# Hints suggest it before a layer that wants the dims after the batch merged into one
FLATTEN = REGISTRY["Flatten"]
