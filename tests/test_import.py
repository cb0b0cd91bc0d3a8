"""`convplan.from_module` and `convplan import`: existing torch models in, plans out (docs/import.md).

torch is the oracle: every import round-trips (model -> plan text -> check -> build, the model's state dict
loaded with strict=True) to identical outputs at three input sizes, so the keys, the shapes, the arguments
and the structure (residuals, concatenations, blocks, repeats) are all what the model computes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import _import_models as models
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import convplan
from convplan.cli import _parser as build_parser
from convplan.cli import main
from convplan.importer import ImportFailure
from convplan.importer.mapping import inferred_value, layer_spec, made, module_args, written
from convplan.layers import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
REFERENCE = json.loads((Path(__file__).resolve().parent / "data" / "torchvision_state_dicts.json").read_text())


def round_trip(model: nn.Module, example, sizes, name=None) -> tuple[str, nn.Module]:
    """Import `model`, build the plan, load the model's weights (strict), compare outputs at each size."""
    model.eval()
    text = convplan.from_module(model, example, name=name)
    built = convplan.parse(text, "<imported>").build()
    theirs, ours = model.state_dict(), built.state_dict()
    assert sorted(theirs) == sorted(ours), set(theirs) ^ set(ours)
    assert {k: v.shape for k, v in theirs.items()} == {k: v.shape for k, v in ours.items()}
    built.load_state_dict(theirs, strict=True)
    built.eval()
    torch.manual_seed(0)
    for size in sizes:
        inputs = tuple(torch.randn(*s) for s in size) if isinstance(size[0], tuple) else (torch.randn(*size),)
        with torch.no_grad():
            want, got = model(*inputs), built(*inputs)
        for w, g in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,),
                        strict=True):
            assert torch.equal(w, g), size
    return text, built


# -- the example plans: plan -> build -> import -> plan -> build ----------------------------

EXAMPLE_SIZES = {
    "resnet18": [(1, 3, 64, 64), (2, 3, 33, 47), (1, 3, 96, 80)],
    "vgg11": [(1, 3, 32, 32), (2, 3, 40, 36), (1, 3, 64, 48)],
    "alexnet": [(1, 3, 63, 63), (2, 3, 80, 70), (1, 3, 100, 120)],
    "unet": [(1, 3, 16, 16), (2, 3, 32, 48), (1, 3, 64, 16)],
    "inception": [(1, 3, 32, 32), (2, 3, 45, 50), (1, 3, 64, 64)],
    "mobilenet_se": [(1, 3, 32, 32), (2, 3, 17, 40), (1, 3, 64, 48)],
    "two_tower": [((1, 40), (1, 24)), ((2, 40), (2, 24)), ((5, 40), (5, 24))],
    "conv3d": [(1, 16, 5, 6, 7), (2, 16, 10, 50, 100), (1, 16, 3, 3, 3)],
    "same_length": [(1, 5, 8), (2, 5, 31), (3, 5, 64)],
    "conv_length": [(1, 1, 8), (2, 1, 31), (3, 1, 64)],
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_SIZES))
def test_an_example_plan_round_trips_through_import(name):
    plan = convplan.load(EXAMPLES / f"{name}.plan")
    sizes = EXAMPLE_SIZES[name]
    first = sizes[0]
    example = tuple(torch.randn(*s) for s in first) if isinstance(first[0], tuple) else torch.randn(*first)
    round_trip(plan.build(), example, sizes)


def test_a_plan_whose_linear_reads_a_flattened_size_keeps_that_size_a_number():
    """CNN1D's Linear has in_features 32*(L//2): its weights fix L, so the imported input writes it."""
    plan = convplan.load(EXAMPLES / "cnn1d.plan")
    text, _ = round_trip(plan.build(L=64), torch.randn(1, 1, 64), [(1, 1, 64), (2, 1, 64), (7, 1, 64)])
    assert "input [N, 1, 64]" in text


def test_the_imported_resnet18_plan_has_torchvisions_keys_and_is_short():
    text, built = round_trip(models.ResNet18(), torch.randn(1, 3, 64, 64),
                             [(1, 3, 64, 64), (2, 3, 57, 71), (1, 3, 112, 96)])
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) < 40, text
    assert "block BasicBlock(" in text and "layer1 = repeat 2:" in text and "layer2 = repeat i in 2:" in text
    assert "residual:" in text and "shortcut:" in text
    reference = REFERENCE["models"]["resnet18"]["state_dict"]
    assert [(k, list(v.shape)) for k, v in built.state_dict().items()] == [(k, s) for k, s in reference]


def test_docs_show_the_plan_the_importer_writes():
    """docs/import.md's ResNet-18 is the importer's output, as it is now."""
    doc = (ROOT / "docs" / "import.md").read_text(encoding="utf-8")
    shown = doc.split("comes out as 32 lines:\n\n```\n", 1)[1].split("```", 1)[0]
    text = convplan.from_module(models.ResNet18().eval(), torch.randn(1, 3, 64, 64))
    assert shown == text
    assert len(text.splitlines()) == 32  # a blank line between the block and the plan


def test_inception_style_branches_become_cat_branches():
    text, _ = round_trip(models.InceptionNet(), torch.randn(1, 3, 33, 33),
                         [(1, 3, 33, 33), (2, 3, 20, 41), (1, 3, 64, 64)])
    assert "cat(dim=1):" in text and text.count("branch:") == 4
    assert text.count("block BasicConv") == 1 and text.count("block InceptionA") == 1


def test_unet_style_skips_become_named_tensors_and_a_two_input_block():
    text, _ = round_trip(models.UNet(), torch.randn(1, 3, 32, 32), [(1, 3, 32, 32), (2, 3, 16, 48), (1, 3, 64, 64)])
    assert "input x1 [N, C, H, W]" in text and "input x2 [N, C2, H2, W2]" in text
    assert "up1 = Up(down2, down1, 16)" in text
    assert "H % 4 == 0" in str(convplan.parse(text).requires[0]) or convplan.parse(text).requires


@pytest.mark.parametrize("model", [models.SENet, lambda: nn.Sequential(nn.Conv2d(3, 16, 3), models.SEClassic(16))],
                         ids=["conv-se", "view-linear-se"])
def test_squeeze_and_excitation_is_a_broadcasting_mul(model):
    m = model()
    if isinstance(m, nn.Sequential):  # the root's children would be numbered: wrap it
        m = Wrapped(m)
    text, _ = round_trip(m, torch.randn(1, 3, 32, 32), [(1, 3, 32, 32), (2, 3, 16, 48), (1, 3, 9, 7)])
    assert "mul:" in text


class Wrapped(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x)


def test_functional_calls_that_are_kinds_map_to_the_kinds():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            x = torch.nn.functional.relu(self.conv(x))
            x = torch.nn.functional.max_pool2d(x, 2)
            x = torch.sigmoid(x) * x
            x = torch.nn.functional.adaptive_avg_pool2d(x, 1)
            x = x.view(x.size(0), -1)
            return torch.nn.functional.log_softmax(self.fc(x), dim=1)

    text, _ = round_trip(Functional(), torch.randn(1, 3, 16, 16), [(1, 3, 16, 16), (2, 3, 9, 13), (1, 3, 32, 8)])
    for written_kind in ("ReLU()", "MaxPool2d(kernel_size=2)", "Sigmoid()", "AdaptiveAvgPool2d(1)", "Flatten()",
                         "LogSoftmax(dim=1)"):
        assert written_kind in text


@pytest.mark.parametrize("name", ["ResNet18", "UNet", "InceptionNet"])
def test_the_generated_code_of_an_imported_model_loads_its_weights(tmp_path, name):
    """The workflow's end: import, generate code, load the model's state dict (strict) into the generated
    class; it computes what the model does."""
    model = getattr(models, name)().eval()
    text = convplan.from_module(model, torch.randn(1, 3, 32, 32))
    path = tmp_path / f"generated_{name.lower()}.py"
    path.write_text(convplan.parse(text).to_source())
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = getattr(module, name)().eval()
    generated.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(generated(x), model(x))


# -- what cannot be planned: reported per node, located ------------------------------------


def test_a_data_dependent_branch_is_reported_with_its_module_and_line():
    with pytest.raises(ImportFailure) as info:
        convplan.from_module(models.DataDependent(), torch.randn(1, 3, 16, 16))
    (problem,) = info.value.problems
    assert problem.module == "gate" and problem.cls == "Gate"
    assert "data-dependent control flow" in problem.message
    source = Path(models.__file__).read_text().splitlines()
    line = int(problem.source.rpartition(":")[2])
    assert problem.source.startswith(models.__file__) and "if x.sum() > 0" in source[line - 1]


def test_every_unplannable_node_is_reported_never_dropped():
    with pytest.raises(ImportFailure) as info:
        convplan.from_module(models.Unplannable(), torch.randn(1, 3, 8, 8))
    found = {(p.module, p.node): p.message for p in info.value.problems}
    text = info.value.render()
    assert any("self.scale directly" in m for m in found.values()), text
    assert any("clamp" in m and "not a layer kind" in m for m in found.values()), text
    assert any("a tensor and a number" in m for m in found.values()), text
    assert any(p.module == "unused" and "never called" in p.message for p in info.value.problems), text
    assert any(p.module == "rnn" and "never called" in p.message for p in info.value.problems), text
    assert all(p.source.startswith(models.__file__) for p in info.value.problems if p.node), text


def test_a_module_called_twice_is_shared_weights_and_refused():
    with pytest.raises(ImportFailure) as info:
        convplan.from_module(models.Shared(), torch.randn(1, 4, 8, 8))
    assert "called 2 times" in info.value.render()


def test_a_torch_module_that_is_no_kind_is_named():
    class WithLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.loss = nn.L1Loss(reduction="none")  # torch.nn, and no layer of a plan (torch_names.NOT_LAYERS)

        def forward(self, x):
            return self.loss(x, x)

    with pytest.raises(ImportFailure) as info:
        convplan.from_module(WithLoss(), torch.randn(1, 4, 8, 8))
    assert "self.loss is a L1Loss, which is not a layer kind" in info.value.render()


def test_api_misuse_is_a_type_error():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        convplan.from_module("resnet", torch.randn(1))
    with pytest.raises(TypeError, match="tensor"):
        convplan.from_module(nn.ReLU(), [1, 2])
    # a 0-d example was "zip() argument 2 is shorter than argument 1", a 0-size one "<import>:1:6: E205"
    for example in (torch.tensor(3.0), torch.randn(0, 3)):
        with pytest.raises(ValueError, match="at least one dim and no dim of size 0"):
            convplan.from_module(nn.ReLU(), example)


def test_one_layer_with_weights_as_the_model_is_one_problem_with_the_fix():
    """`from_module(nn.Conv2d(3, 4, 3), x)` traced into Conv2d's own forward: three problems about reading
    self.weight and torch.conv2d() not being a kind.  Its keys (`weight`) name no layer: one problem says so
    and how to wrap it; the wrapped layer imports, a layer without state (ReLU) as it did."""
    with pytest.raises(ImportFailure) as failed:
        convplan.from_module(nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8))
    [problem] = failed.value.problems
    assert "one Conv2d layer" in problem.message and "self.layer = nn.Conv2d(...)" in problem.message

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.layer(x)

    assert "layer = Conv2d(4, kernel_size=3)" in convplan.from_module(Wrapped(), torch.randn(1, 3, 8, 8))
    assert "ReLU()" in convplan.from_module(nn.ReLU(), torch.randn(2, 3))


# -- the registry: every kind imports with its arguments -----------------------------------

# A non-default configuration of each kind (the inferred argument included, as torch takes it)
CONFIGS = {
    "Conv": lambda nd: dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, dilation=1, groups=2,
                            bias=False, padding_mode="reflect"),
    "ConvTranspose": lambda nd: dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1,
                                     output_padding=1, groups=2, bias=False, dilation=1),
    "MaxPool": lambda nd: dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True),
    "MaxUnpool": lambda nd: dict(kernel_size=3, stride=2, padding=1),
    "AvgPool": lambda nd: dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False,
                               **({"divisor_override": 2} if nd > 1 else {})),
    "AdaptiveAvgPool": lambda nd: dict(output_size=2),
    "AdaptiveMaxPool": lambda nd: dict(output_size=2),
    "LPPool": lambda nd: dict(norm_type=2.0, kernel_size=2, stride=1, ceil_mode=True),
    "FractionalMaxPool": lambda nd: dict(kernel_size=3, output_ratio=(0.5, 0.75, 0.25)[:nd], return_indices=True),
    "BatchNorm": lambda nd: dict(num_features=4, eps=1e-3, momentum=0.2, affine=False),
    "InstanceNorm": lambda nd: dict(num_features=4, eps=1e-3, affine=True, track_running_stats=True),
    "Dropout": lambda nd: dict(p=0.3),
    "ZeroPad": lambda nd: dict(padding=(1, 2) * nd),
    "ConstantPad": lambda nd: dict(padding=2, value=0.5),
    "ReflectionPad": lambda nd: dict(padding=1),
    "ReplicationPad": lambda nd: dict(padding=(2, 1) * nd),
    "CircularPad": lambda nd: dict(padding=1),
}
OTHERS = {
    "LeakyReLU": dict(negative_slope=0.2), "ELU": dict(alpha=0.5), "GELU": dict(approximate="tanh"),
    "ReLU": dict(inplace=True), "Softmax": dict(dim=1), "LogSoftmax": dict(dim=1), "Softmin": dict(dim=1),
    "GroupNorm": dict(num_groups=2, num_channels=4, eps=1e-3, affine=False),
    "LayerNorm": dict(normalized_shape=(4, 5), eps=1e-3, bias=False), "Flatten": dict(start_dim=2),
    "Unflatten": dict(dim=1, unflattened_size=(2, 2)), "Linear": dict(in_features=5, out_features=3, bias=False),
    "Upsample": dict(scale_factor=2.0, mode="bilinear", align_corners=True), "PixelShuffle": dict(upscale_factor=2),
    "PixelUnshuffle": dict(downscale_factor=2), "CELU": dict(alpha=2.0), "Hardtanh": dict(min_val=-2.0, max_val=3.0),
    "RReLU": dict(lower=0.1, upper=0.2), "Softplus": dict(beta=2.0, threshold=10.0),
    "Threshold": dict(threshold=0.1, value=20.0), "Hardshrink": dict(lambd=0.3), "Softshrink": dict(lambd=0.3),
    "PReLU": dict(num_parameters=4), "GLU": dict(dim=1), "AlphaDropout": dict(p=0.2),
    "FeatureAlphaDropout": dict(p=0.2), "RMSNorm": dict(normalized_shape=5, eps=1e-3, elementwise_affine=False),
    "LocalResponseNorm": dict(size=3, alpha=2e-4, beta=0.5, k=2.0), "CrossMapLRN2d": dict(size=3, alpha=2e-4),
    "SyncBatchNorm": dict(num_features=4, eps=1e-3), "ChannelShuffle": dict(groups=2),
    "Unfold": dict(kernel_size=2, dilation=1, padding=1, stride=2),
    "Fold": dict(output_size=(4, 5), kernel_size=2, stride=1),
    "UpsamplingNearest2d": dict(scale_factor=2.0), "UpsamplingBilinear2d": dict(size=(6, 7)),
    "Bilinear": dict(in1_features=4, in2_features=5, out_features=3),
    "Embedding": dict(num_embeddings=10, embedding_dim=4, padding_idx=0),
    "EmbeddingBag": dict(num_embeddings=10, embedding_dim=4, mode="sum"),
    "RNN": dict(input_size=4, hidden_size=6, num_layers=2, batch_first=True),
    "LSTM": dict(input_size=4, hidden_size=6, num_layers=2, bidirectional=True),
    "GRU": dict(input_size=4, hidden_size=6, batch_first=True),
    "RNNCell": dict(input_size=4, hidden_size=6), "LSTMCell": dict(input_size=4, hidden_size=6),
    "GRUCell": dict(input_size=4, hidden_size=6),
    "MultiheadAttention": dict(embed_dim=8, num_heads=2),
    "TransformerEncoderLayer": dict(d_model=8, nhead=2, dim_feedforward=16, batch_first=True),
    "TransformerDecoderLayer": dict(d_model=8, nhead=2, dim_feedforward=16, batch_first=True),
    "TransformerEncoder": dict(encoder_layer=nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), num_layers=2,
                               enable_nested_tensor=False),
    "TransformerDecoder": dict(decoder_layer=nn.TransformerDecoderLayer(8, 2, 16, batch_first=True), num_layers=2),
    "Transformer": dict(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=16),
}
TORCHVISION = {name for name, spec in REGISTRY.items() if spec.module != "torch.nn"}  # torchvision's: no nn class


def _config(name: str) -> dict:
    spec = REGISTRY[name]
    if spec.family in CONFIGS:
        return CONFIGS[spec.family](spec.nd)
    return OTHERS.get(name, {})


@pytest.mark.parametrize("name", sorted(set(REGISTRY) - TORCHVISION))
def test_every_registered_kind_reads_back_its_arguments(name):
    """torch's module -> the plan's arguments -> torch's module again (as build() makes it: a stack through its
    layer module): the same module (extra_repr), and only the arguments that differ from the defaults are
    written."""
    spec = REGISTRY[name]
    cls = getattr(nn, name)
    module = cls(**_config(name))
    assert layer_spec(module) is spec
    args = module_args(module, spec)
    inferred = {k: inferred_value(module, spec, k) for k in (spec.inferred, *spec.infer_more)
                if k is not None and k not in args}  # what the input gives
    given = written(spec, args)  # what a plan writes
    again = made(spec, {a.name: given.get(a.name, a.default) for a in spec.args}, inferred)
    assert _reprs(again) == _reprs(module)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in module.state_dict().items()}


def _reprs(module: nn.Module) -> dict:
    return {q: (type(m).__name__, m.extra_repr()) for q, m in module.named_modules()}


def test_every_registered_kind_is_a_configured_case():
    missing = [n for n in set(REGISTRY) - TORCHVISION
               if REGISTRY[n].family not in CONFIGS and n not in OTHERS and REGISTRY[n].args
               and any(a.default is convplan.layers.REQUIRED for a in REGISTRY[n].args)]
    assert not missing


class TwoInputs(nn.Module):
    """Bilinear of two projections of one input: a layer of two tensors inside a chain."""

    def __init__(self, d, a, b, out, bias):
        super().__init__()
        self.left, self.right = nn.Linear(d, a), nn.Linear(d, b)
        self.bil = nn.Bilinear(a, b, out, bias=bias)

    def forward(self, x):
        return torch.relu(self.bil(self.left(x), self.right(x)))


class EncoderDecoder(nn.Module):
    def __init__(self, d, heads, ff, batch_first, norm_first, activation, bias, eps, layers):
        super().__init__()
        kw = dict(dim_feedforward=ff, batch_first=batch_first, norm_first=norm_first, activation=activation,
                  bias=bias, layer_norm_eps=eps, dropout=0.2)
        self.encoder = nn.Sequential(*(nn.TransformerEncoderLayer(d, heads, **kw) for _ in range(layers)))
        self.decoder = nn.TransformerDecoderLayer(d, heads, **kw)

    def forward(self, src, tgt):
        return self.decoder(tgt, self.encoder(src))


@settings(max_examples=8, deadline=None)
@given(d=st.integers(1, 6), a=st.integers(1, 5), b=st.integers(1, 5), out=st.integers(1, 4), bias=st.booleans(),
       lead=st.lists(st.integers(1, 4), min_size=0, max_size=2))
def test_bilinear_reads_both_feature_sizes_and_round_trips(d, a, b, out, bias, lead):
    """in1_features and in2_features come from the two inputs, checked against the module's."""
    model = TwoInputs(d, a, b, out, bias)
    sizes = [(*lead, 3, d), (*lead, 1, d), (*lead, 5, d)]
    text, _ = round_trip(model, torch.randn(*sizes[0]), sizes)
    assert f"Bilinear(left, right, {out}{'' if bias else ', bias=False'})" in text


@settings(max_examples=6, deadline=None)
@given(heads=st.sampled_from([1, 2, 4]), per_head=st.integers(1, 3), ff=st.integers(1, 24), batch_first=st.booleans(),
       norm_first=st.booleans(), activation=st.sampled_from(["relu", "gelu"]), bias=st.booleans(),
       eps=st.sampled_from([1e-5, 1e-6]), layers=st.integers(1, 3))
def test_transformer_layers_read_their_arguments_from_their_submodules(heads, per_head, ff, batch_first, norm_first,
                                                                       activation, bias, eps, layers):
    """d_model, nhead, dim_feedforward, dropout, activation, eps, batch_first, norm_first, bias: read from the
    layer's attention, linears, norms and dropout; encoder layers of a Sequential and a decoder layer reading
    the encoder's output as memory, at three sequence lengths and batch sizes."""
    d = heads * per_head
    model = EncoderDecoder(d, heads, ff, batch_first, norm_first, activation, bias, eps, layers)

    def pair(n, s, t):
        return ((n, s, d), (n, t, d)) if batch_first else ((s, n, d), (t, n, d))

    sizes = [pair(2, 5, 3), pair(1, 7, 7), pair(3, 2, 4)]
    text, built = round_trip(model, tuple(torch.randn(*s) for s in sizes[0]), sizes)
    assert "TransformerEncoderLayer(" in text and "TransformerDecoderLayer(tgt, encoder" in text


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: setattr(m.norm2, "eps", 1e-3), "norm2.eps is 0.001 where torch makes 1e-05"),
    (lambda m: setattr(m, "activation", torch.tanh), "activation is tanh"),
    (lambda m: setattr(m, "dropout1", nn.Dropout(0.5)), "dropout1.p is 0.5 where torch makes 0.1"),
])
def test_a_transformer_layer_changed_after_construction_is_refused(change, message):
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    change(layer)
    with pytest.raises(ImportFailure) as info:
        convplan.from_module(Wrapped(layer), torch.randn(2, 5, 8))
    (problem,) = info.value.problems
    assert problem.node == "body" and message in problem.message, info.value.render()


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 5), stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2),
       groups=st.sampled_from([1, 2]), bias=st.booleans(), mode=st.sampled_from(["zeros", "reflect", "circular"]),
       pool=st.sampled_from(["max", "avg", "adaptive", None]), size=st.integers(12, 20))
def test_random_conv_stacks_round_trip(k, stride, padding, dilation, groups, bias, mode, pool, size):
    """Random convolution configurations and a pool: the imported plan computes what torch does, at the
    example size and at two others."""
    layers = [nn.Conv2d(4, 6, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias,
                        padding_mode=mode), nn.BatchNorm2d(6, momentum=None), nn.ReLU()]
    if pool == "max":
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    elif pool == "avg":
        layers.append(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False))
    elif pool == "adaptive":
        layers.append(nn.AdaptiveMaxPool2d((2, 3)))
    model = Wrapped(nn.Sequential(*layers))
    round_trip(model, torch.randn(1, 4, size, size), [(1, 4, size, size), (2, 4, size + 3, size + 1),
                                                       (1, 4, size + 8, size + 5)])


# -- the command line -------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convplan", *args], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent, env={"PYTHONPATH": str(ROOT), "PATH": ""})


def cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """`convplan ARGS` in this process (run from tests/, where _import_models is): status, stdout, stderr."""
    monkeypatch.chdir(Path(__file__).resolve().parent)
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_imports_a_factory_with_arguments_to_stdout():
    out = run_cli("import", "_import_models:resnet18", "--input", "1,3,64,64", "--arg", "num_classes=10")
    assert out.returncode == 0, out.stderr
    assert "plan ResNet18:" in out.stdout and "fc = Linear(10)" in out.stdout and not out.stderr


def test_cli_writes_a_file_only_over_nothing_unless_forced(tmp_path, capsys, monkeypatch):
    target = tmp_path / "se.plan"
    args = ("import", "_import_models:SENet", "--input", "1,3,16,16", "-o", str(target))
    assert cli(capsys, monkeypatch, *args)[0] == 0
    assert convplan.load(target).name == "SENet"
    target.write_text("# mine\n")
    code, _, err = cli(capsys, monkeypatch, *args)
    assert code == 2 and "exists (--force replaces it)" in err and target.read_text() == "# mine\n"
    assert cli(capsys, monkeypatch, *args, "--force")[0] == 0 and convplan.load(target).name == "SENet"
    code, out, _ = cli(capsys, monkeypatch, "import", "_import_models:SENet", "--input", "1,3,16,16", "-o", "-")
    assert code == 0 and out == target.read_text()


@pytest.mark.parametrize(("args", "code", "message"), [
    (["nowhere_at_all:Model"], 1, "no module named 'nowhere_at_all'"),
    (["_import_models:ResNet19"], 1, "has no attribute 'ResNet19'; did you mean"),
    (["_import_models:broken_factory"], 1, "raised ValueError: this factory is broken (" ),
    (["_import_models:DataDependent", "--input", "1,3,16,16"], 1, "gate (Gate)"),
    (["_import_models:Unplannable", "--input", "1,3,8,8"], 1, "5 problem(s)"),
    (["_import_models"], 2, "expected module.path:factory_or_class"),
    (["_import_models:SENet", "--input", "1,3,x"], 2, "--input expects sizes"),
    (["_import_models:SENet", "-o", "_import_models.py"], 2, "a .py file is code"),
    (["_import_models:SENet", "--input", "1,3"], 1, "does not run on the example input"),
    # sizes each within the limit whose product cannot be allocated were torch's RuntimeError, a traceback
    (["_import_models:SENet", "--input", "1048576,1048576,1048576,1048576"], 2, "cannot allocate the example input"),
    # a --name the plan cannot take was "the written plan does not check (a bug of the importer)"
    (["_import_models:SENet", "--input", "1,3,16,16", "--name", "class"], 2, "'class' is a Python keyword"),
    (["_import_models:SENet", "--input", "1,3,16,16", "--name", "input"], 2, "'input' shadows a Python builtin"),
])
def test_cli_errors_are_located_messages_without_a_traceback(capsys, monkeypatch, args, code, message):
    got, out, err = cli(capsys, monkeypatch, "import", *args, "--color", "never")
    assert got == code, err
    assert message in err and "Traceback" not in err and not out


def test_a_module_that_exits_when_imported_is_a_message(tmp_path, capsys, monkeypatch):
    """A training script that parses its arguments (or calls sys.exit) at import raised SystemExit past the
    command: exit 3 or argparse's usage of the user's script, and no word from convplan."""
    (tmp_path / "exits_when_imported.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.chdir(tmp_path)
    code = main(["import", "exits_when_imported:Model", "--color", "never"])
    err = capsys.readouterr().err
    assert code == 1 and "importing 'exits_when_imported' exited: SystemExit: 3" in err and "__main__" in err


def test_cli_help_says_import_runs_user_code(capsys, monkeypatch):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["import", "--help"])
    assert "runs your code" in " ".join(capsys.readouterr().out.split())


# -- torchvision, where it imports -----------------------------------------------------------


def test_torchvision_resnet18_imports_where_torchvision_loads():
    tv = pytest.importorskip("torchvision.models", exc_type=ImportError)
    try:
        model = tv.resnet18()
    except Exception as exc:  # its C++ extension may not load against the CPU torch
        pytest.skip(f"torchvision cannot build resnet18 here: {exc}")
    text, _ = round_trip(model, torch.randn(1, 3, 64, 64), [(1, 3, 64, 64), (2, 3, 80, 72), (1, 3, 96, 96)])
    assert len([ln for ln in text.splitlines() if ln.strip()]) < 40


# -- modules torch.fx cannot trace: read from a run (hooks), judged by torch.export ------------


def test_something_with_a_non_traceable_branch_round_trips():
    """Input checks fx cannot trace (`if x.dim() != 4: raise`, an assert on a size) in the model and in its
    blocks: torch.export finds one graph at the example, hooks read the submodules' calls, and the plan
    computes what the model does at three sizes with its weights."""
    text, _ = round_trip(models.Untraceable(), torch.randn(1, 3, 16, 16),
                         [(1, 3, 16, 16), (2, 3, 23, 17), (1, 3, 40, 32)])
    assert "block CheckedConv(" in text and "stage = repeat i in 2:" in text


def test_what_a_run_cannot_read_is_reported_at_its_line():
    with pytest.raises(ImportFailure) as info:
        convplan.from_module(models.HiddenArithmetic(), torch.randn(1, 3, 8, 8))
    (problem,) = info.value.problems
    assert problem.node == "b" and "computes itself" in problem.message
    line = int(problem.source.rpartition(":")[2])
    assert "# the line the report names" in Path(models.__file__).read_text().splitlines()[line - 1]


def test_a_branch_on_a_size_is_reported_not_imported():
    with pytest.raises(ImportFailure) as info:
        convplan.from_module(models.SizeBranch(), torch.randn(1, 3, 16, 16))
    (problem,) = info.value.problems
    assert "other submodules at another input size" in problem.message
    line = int(problem.source.rpartition(":")[2])
    assert "if x.shape[-1] % 2 == 0" in Path(models.__file__).read_text().splitlines()[line - 1]


# -- the same model gives the same text -----------------------------------------------------------

DETERMINISTIC = ["ResNet18", "UNet", "InceptionNet", "SENet", "Untraceable"]


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_importing_twice_gives_the_same_text(name):
    """The same module twice, and the same architecture built again (other weights): one text."""
    model = getattr(models, name)().eval()
    first = convplan.from_module(model, torch.randn(1, 3, 32, 32))
    assert convplan.from_module(model, torch.randn(1, 3, 32, 32)) == first
    torch.manual_seed(7)
    assert convplan.from_module(getattr(models, name)().eval(), torch.randn(1, 3, 32, 32)) == first


def test_the_text_does_not_depend_on_the_process():
    """Other hash seeds (set and dict order of strings) and another import order: the same bytes."""
    script = ("import sys, torch, convplan, _import_models as m\n"
              "names = sys.argv[1:]\n"
              "out = {n: convplan.from_module(getattr(m, n)().eval(), torch.randn(1, 3, 32, 32)) for n in names}\n"
              "print(repr(sorted(out.items())))\n")
    runs = []
    for seed, names in (("1", DETERMINISTIC), ("2", DETERMINISTIC[::-1])):
        out = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True, timeout=600,
                             cwd=Path(__file__).resolve().parent,
                             env={"PYTHONPATH": f"{ROOT}{':'}{Path(__file__).resolve().parent}", "PATH": "",
                                  "PYTHONHASHSEED": seed})
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(out.stdout)
    assert runs[0] == runs[1]
