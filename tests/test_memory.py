"""Memory formulas against the built module: parameter and gradient bytes equal the module's, and the
activation bytes equal the distinct storages an eval-mode forward creates, at several sizes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import test_pair_layers as pair_cases
import test_sequence_layers as sequence_cases
import test_transformer_stacks as stack_cases
import torch
from _torch_oracle import symbolic_plan
from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties import stacks

import convplan
from convplan.build import example_inputs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))
SMALL = {"vgg11", "alexnet"}  # ~130 M weights: measured at their smallest sizes only
SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 2, deadline=None)


def _sizes(plan) -> list[dict]:
    base = plan.smallest_sizes()
    found = []
    for step in (0, 3, 16):
        for batch in (1, 3):
            sizes = {k: batch if k == "N" else v + step if k in ("H", "W", "L", "T") else v for k, v in base.items()}
            if plan.satisfied(sizes) and sizes not in found:
                found.append(sizes)
    return found or [base]


def _created_bytes(bound, dtype) -> int:
    """Bytes of the distinct storages the forward pass makes (not the inputs')."""
    module = bound.build().to(dtype).eval()
    inputs = [t.to(dtype) if t.is_floating_point() else t for t in example_inputs(bound.graph, bound.sizes)]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        values = module.run(*inputs)
    given = {t.untyped_storage().data_ptr() for t in [*inputs, *module.parameters()]}  # a Parameter is no activation
    storages = {}
    for value in values.values():
        storage = value.untyped_storage()
        if storage.data_ptr() not in given:
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_memory_equals_the_built_module(path):
    plan = convplan.load(path)
    memory = plan.memory("float32")
    for sizes in _sizes(plan)[: 1 if path.stem in SMALL else None]:
        bound = plan.bind(**sizes)
        module = bound.build()
        weights = sum(p.numel() * p.element_size() for p in module.parameters())
        assert memory.at(memory.parameters, **sizes) == weights
        assert memory.at(memory.gradients, **sizes) == weights
        assert memory.at(memory.optimizer["adam"], **sizes) == 2 * weights
        assert memory.at(memory.activations, **sizes) == _created_bytes(bound, torch.float32), sizes


def test_in_place_layers_and_views_take_nothing():
    text = ("plan P:\n    input [N, 4, L]\n    Conv1d(8, 3)\n    ReLU(inplace=True)\n    Dropout(0.1)\n"
            "    Flatten()\n    Linear(5)\n    ReLU()\n")
    plan = convplan.parse(text)
    memory = plan.memory("float16")
    assert [name for name, b in memory.by_layer.items() if b == 0] == ["relu1", "dropout1", "flatten1"]
    bound = plan.bind(N=2, L=9)
    created = 2 * (2 * 8 * 7 + 2 * 5 * 2)  # float16: the conv's output and the two Linear/ReLU outputs
    assert memory.at(memory.activations, N=2, L=9) == _created_bytes(bound, torch.float16) == created


def test_training_total_and_errors():
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    memory = plan.memory()
    p = memory.at(memory.parameters, L=20)
    assert memory.at(memory.training("sgd_momentum"), N=1, L=20) == 3 * p + memory.at(memory.saved, N=1, L=20)
    with pytest.raises(ValueError, match="dtypes are"):
        plan.memory("int3")
    with pytest.raises(ValueError, match="depends on L, N"):
        memory.at(memory.activations)
    assert plan.evaluate(plan.total_params, L=20) == 770


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("optimizer", ["sgd", "sgd_momentum", "adam"])
def test_training_is_weights_buffers_gradients_state_and_saved(path, optimizer):
    """Against the module: its parameters (and as many gradients), its buffers, the optimizer's buffers per
    parameter, and what saved_tensors_hooks sees."""
    plan = convplan.load(path)
    memory = plan.memory("float32")
    per_parameter = {"sgd": 2, "sgd_momentum": 3, "adam": 4}[optimizer]
    found = [{**s, "N": s["N"] + 1} if "N" in s else s for s in _sizes(plan)]
    for sizes in [s for s in found if plan.satisfied(s)][:1 if path.stem in SMALL else 2]:
        module = plan.bind(**sizes).build()
        weights = sum(p.numel() * p.element_size() for p in module.parameters())
        kept = sum(b.numel() * b.element_size() for b in module.buffers())
        want = per_parameter * weights + kept + saved_for_backward(plan.bind(**sizes))
        assert memory.at(memory.training(optimizer), **sizes) == want, sizes
        assert memory.at(memory.buffers, **sizes) == kept


PROFILED = [("cnn1d", {"N": 4, "L": 32}), ("two_tower", {"N": 8}), ("resnet18", {"N": 2, "H": 32, "W": 32}),
            ("mobilenet_se", {"N": 2, "H": 32, "W": 32})]


@pytest.mark.parametrize(("name", "sizes"), PROFILED, ids=[n for n, _ in PROFILED])
def test_training_against_the_peak_torch_measures(name, sizes, tmp_path):
    """torch's memory profiler on CPU (export_memory_timeline) over a second Adam step, gradients kept: at
    its start it finds the parameters, gradients and Adam's state as modelled (plus Adam's 4-byte step per
    parameter tensor), and its peak is at least `training("adam")`: everything that formula counts is alive
    when backward starts."""
    import json

    from torch.profiler import ProfilerActivity, profile

    plan = convplan.load(ROOT / "examples" / f"{name}.plan")
    memory = plan.memory("float32")
    bound = plan.bind(**sizes)
    module = bound.build().train()
    optimizer = torch.optim.Adam(module.parameters())
    inputs = [torch.randn(*(int(d) for d in s)) for s in bound.input_shapes.values()]

    def step():
        optimizer.zero_grad(set_to_none=False)
        outputs = module(*inputs)
        sum(o.sum() for o in (outputs if isinstance(outputs, tuple) else (outputs,))).backward()
        optimizer.step()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step()
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                     with_stack=True) as prof:
            step()
        prof.export_memory_timeline(str(tmp_path / "timeline.json"), device="cpu")
    _, by_time = json.loads((tmp_path / "timeline.json").read_text())
    # columns: unknown, then the profiler's categories PARAMETER, OPTIMIZER_STATE, INPUT, TEMPORARY,
    # ACTIVATION, GRADIENT, AUTOGRAD_DETAIL, None (torch/profiler/_memory_profiler.py)
    start = by_time[0]
    steps = 4 * len(list(module.parameters()))
    assert start[1] == memory.at(memory.parameters, **sizes)
    assert start[6] == memory.at(memory.gradients, **sizes)
    assert start[2] == memory.at(memory.optimizer["adam"], **sizes) + steps
    peak = max(sum(row) for row in by_time)
    assert peak >= memory.at(memory.training("adam"), **sizes) + steps


def test_readme_budget_examples_are_the_real_output(monkeypatch):
    import doctest

    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False)
    assert result.attempted >= 7 and result.failed == 0


def unpacked(packed):
    """The hooks' unpack, which no backward here calls.  Their pack returns None, not the tensor: an output
    autograd saves (a ReLU's, a softmax's) would hold its own graph through the packed tensor, a cycle through
    C++ that Python's collector cannot see, and every forward's activations would stay (15 GB by the end of
    this file).  A plain list keeps the saved tensors alive instead, until the forward is measured."""
    raise AssertionError("saved_for_backward's graphs are never run backward")


def saved_for_backward(bound, dtype=torch.float32) -> int:
    """Bytes of the distinct storages autograd saves in a training-mode forward of the built module (the
    input does not require grad; parameters and buffers are the module's own, not counted)."""
    module = bound.build().to(dtype).train()
    state = {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}
    storages, kept = {}, []

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in state:
            storages[storage.data_ptr()] = storage.nbytes()
        kept.append(tensor)  # alive until the forward ends, so that no later storage takes its address
        return None  # not the tensor: see `unpacked`

    inputs = [t.to(dtype) if t.is_floating_point() else t for t in example_inputs(bound.graph, bound.sizes)]
    with warnings.catch_warnings(), torch.autograd.graph.saved_tensors_hooks(pack, unpacked):
        warnings.simplefilter("ignore")
        outputs = module(*inputs)
    del outputs, kept[:]
    return sum(storages.values())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_saved_for_backward_equals_what_autograd_saves(path):
    plan = convplan.load(path)
    memory = plan.memory("float32")
    assert memory.unmodelled == ()
    measured = 0
    # batches of 2 and 3: BatchNorm refuses to train on one value per channel
    found = [{**s, "N": s["N"] + 1} if "N" in s else s for s in _sizes(plan)]
    for sizes in found[: 2 if path.stem in SMALL else None]:
        if not plan.satisfied(sizes):
            continue
        assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes)), sizes
        measured += 1
    spatial = {"H", "W", "L", "D", "T"} & set(plan.symbols)
    assert measured >= (1 if not plan.symbols else 2 if path.stem in SMALL or not spatial else 4), found
    assert memory.saved == sum(memory.saved_by_layer.values())


@given(stacks())
@SETTINGS
def test_saved_for_backward_on_random_stacks(case):
    shape, layers = case
    found = symbolic_plan(shape, layers)
    if found is None:
        return
    plan, sizes = found
    memory = plan.memory("float64")
    assert memory.unmodelled == ()  # every kind has its rule (test_every_kind_has_a_saves_rule)
    assert_saved_as_torch(plan, memory, sizes, plan.source)


def assert_saved_as_torch(plan, memory, sizes: dict, text: str) -> None:
    """The float64 saved bytes at `sizes` are what autograd saves, unless torch refuses to train the plan there."""
    try:
        want = saved_for_backward(plan.bind(**sizes), torch.float64)
    except ValueError as exc:  # BatchNorm on one value per channel: torch refuses to train it
        assert "more than 1 value per channel" in str(exc)
        return
    assert memory.at(memory.saved, **sizes) == want, f"at {sizes}:\n{text}"


def test_every_kind_has_a_saves_rule():
    """Nothing else is `unmodelled`: each kind's rule is measured in this file (the one-tensor kinds below, the
    rest through the examples and the random stacks)."""
    from convplan.layers import REGISTRY

    assert [name for name, spec in REGISTRY.items() if spec.saves is None] == []


IN_PLACE = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "Dropout", "Dropout2d"]


@given(st.sampled_from(IN_PLACE), st.booleans(), st.sampled_from(["BatchNorm2d()", "Sigmoid()", "Identity()"]),
       st.sampled_from([0.0, 0.5, 1.0]), st.integers(1, 3), st.integers(2, 9))
@settings(max_examples=40, deadline=None)
def test_in_place_layers_change_what_is_kept(kind, inplace, before, p, batch, size):
    """Conv -> (BatchNorm | Sigmoid) -> an activation or dropout, in place or not, -> Linear."""
    args = f"p={p}, inplace={inplace}" if kind.startswith("Dropout") else f"inplace={inplace}"
    text = (f"plan P:\n    input [N, 2, H, W]\n    Conv2d(3, 3, padding=1)\n    {before}\n    {kind}({args})\n"
            "    Flatten()\n    Linear(4)\n")
    plan = convplan.parse(text)
    memory = plan.memory("float32")
    sizes = {"N": batch, "H": size, "W": size + 1}
    assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes)), text


ONE_TENSOR_SAVES = [  # (input, the layer): kinds of the rest of torch.nn whose saved tensors are modelled
    ("[N, C, L]", "CELU()"), ("[N, C, L]", "CELU(inplace=True)"), ("[N, C, L]", "SELU(inplace=True)"),
    ("[N, C, L]", "Hardtanh()"), ("[N, C, L]", "Hardtanh(inplace=True)"), ("[N, C, L]", "Softplus()"),
    ("[N, C, L]", "Hardshrink()"), ("[N, C, L]", "Softshrink()"), ("[N, C, L]", "LogSigmoid()"),
    ("[N, C, L]", "Softsign()"), ("[N, C, L]", "Tanhshrink()"), ("[N, C, L]", "PReLU()"), ("[N, C, L]", "GLU(1)"),
    ("[N, C, L]", "Softmin(1)"), ("[N, C, H, W]", "Softmax2d()"), ("[N, C, L]", "AlphaDropout()"),
    ("[N, C, L]", "AlphaDropout(0.0)"), ("[N, C, L]", "AlphaDropout(1.0, inplace=True)"),
    ("[N, C, L]", "AlphaDropout(inplace=True)"), ("[N, C, L]", "RMSNorm(L)"),
    ("[N, C, L]", "RMSNorm((C, L), elementwise_affine=False)"), ("[N, C, L]", "SyncBatchNorm()"),
    ("[N, C, H, W]", "SyncBatchNorm(affine=False)"), ("[N, C, H, W]", "ChannelShuffle(2)"),
    ("[N, C, H, W]", "Unfold(3)"), ("[N, C, H, W]", "UpsamplingNearest2d(scale_factor=2)"),
    ("[N, C, H, W]", "UpsamplingBilinear2d(size=(5, 7))"), ("[N, C, L]", "CircularPad1d(1)"),
    ("[N, C, H, W]", "CircularPad2d((1, 0, 2, 1))"),
    ("[N, C, L]", "RReLU()"), ("[N, C, H, W]", "RReLU(0.1, 0.3, inplace=True)"), ("[N, C, L]", "Threshold(0.1, 2.0)"),
    ("[N, C, L]", "Threshold(0.1, 2.0, inplace=True)"), ("[N, C, L]", "LocalResponseNorm(2)"),
    ("[N, C, H, W]", "LocalResponseNorm(3)"), ("[N, C, H, W]", "LocalResponseNorm(1)"),
    ("[N, C, H, W]", "CrossMapLRN2d(3)"), ("[N, C, L]", "LPPool1d(2.0, 2)"),
    ("[N, C, H, W]", "LPPool2d(3.0, (2, 3), stride=1)"), ("[N, C, H, W]", "LPPool2d(1.0, 2, ceil_mode=True)"),
    ("[N, C, H, W]", "FeatureAlphaDropout(0.3)"), ("[N, C, H, W]", "FeatureAlphaDropout(0.3, inplace=True)"),
    ("[N, C, L]", "FeatureAlphaDropout(0.0)"), ("[N, C, L]", "FeatureAlphaDropout(1.0)"),
    ("[N, C, H, W]", "InstanceNorm2d()"), ("[N, C, H, W]", "InstanceNorm2d(affine=True)"),
    ("[N, C, H, W]", "InstanceNorm2d(track_running_stats=True)"),
    ("[N, C, L]", "InstanceNorm1d(affine=True, track_running_stats=True)"),
]


@pytest.mark.parametrize(("shape", "call"), ONE_TENSOR_SAVES, ids=[c for _, c in ONE_TENSOR_SAVES])
def test_saved_for_backward_of_each_one_tensor_kind(shape, call):
    """After a convolution (so that autograd records the layer), in float32 and float64, at two sizes."""
    conv = "Conv1d(C, 1)" if shape.count(",") == 2 else "Conv2d(C, 1)"
    plan = convplan.parse(f"plan T:\n    input {shape}\n    {conv}\n    {call}\n")
    assert plan.memory("float32").unmodelled == ()
    for sizes in ({"N": 2, "C": 4, "L": 8, "H": 8, "W": 9}, {"N": 3, "C": 6, "L": 5, "H": 7, "W": 6}):
        sizes = {k: v for k, v in sizes.items() if k in plan.symbols}
        for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
            memory = plan.memory(name)
            assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes), dtype), (sizes, name)


@pytest.mark.parametrize("kernel", [2, 3, 4, "(2, 3)"])
@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("shape", ["[N, C, H, W]", "[C, H, W]"])
def test_a_same_convolution_with_odd_total_padding_keeps_the_padded_copy(kernel, dilation, shape):
    """torch pads the odd part of padding='same' with constant_pad_nd first: the convolution saves that copy."""
    plan = convplan.parse(f"plan T:\n    input {shape}\n    Conv2d(3, kernel_size={kernel}, padding='same', "
                          f"dilation={dilation})\n    ReLU()\n")
    _assert_saved_at(plan, {"N": 2, "C": 3, "H": 7, "W": 8}, {"N": 1, "C": 2, "H": 9, "W": 6})


@pytest.mark.parametrize("mode", ["circular", "reflect", "replicate"])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("shape", ["[N, C, H, W]", "[C, H, W]"])
def test_a_padding_mode_convolution_keeps_what_its_pad_keeps(mode, padding, shape):
    """With padding_mode other than 'zeros' the convolution keeps F.pad's copy (even of a padding of 0), and the
    pad keeps its input for 'reflect' and 'replicate', not for 'circular' (slices copied).  The conv's input
    requires grad (a Conv1x1 before it), or the pad would keep nothing anyway."""
    plan = convplan.parse(f"plan T:\n    input {shape}\n    Conv2d(2, 1)\n    ReLU6()\n"
                          f"    Conv2d(3, 3, padding={padding}, padding_mode='{mode}')\n    ReLU()\n")
    _assert_saved_at(plan, {"N": 2, "C": 3, "H": 7, "W": 8}, {"N": 1, "C": 1, "H": 3, "W": 4})


def _assert_saved_at(plan, *sizes: dict) -> None:
    """The float32 saved bytes equal autograd's at each of `sizes` (only the plan's own symbols read)."""
    memory = plan.memory("float32")
    for each in sizes:
        each = {k: v for k, v in each.items() if k in plan.symbols}
        assert memory.at(memory.saved, **each) == saved_for_backward(plan.bind(**each)), each


HALF_NORMS = [("[N, C, H, W]", "BatchNorm2d()"), ("[N, C, H, W]", "GroupNorm(2)"),
              ("[N, C, H, W]", "InstanceNorm2d(affine=True, track_running_stats=True)"), ("[N, C, L]", "LayerNorm(L)"),
              ("[N, C, L]", "RMSNorm(L)"), ("[N, C, L]", "BatchNorm1d(affine=False)")]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize(("shape", "call"), HALF_NORMS, ids=[c for _, c in HALF_NORMS])
def test_a_half_precision_module_saves_its_statistics_in_16_bits(shape, call, dtype):
    """A module converted with .half() / .to(torch.bfloat16) (no autocast): the saved mean and inverse std
    are in the module's dtype too (measured on CPU), and so are the running statistics."""
    conv = "Conv1d(C, 1)" if shape.count(",") == 2 else "Conv2d(C, 1)"
    plan = convplan.parse(f"plan T:\n    input {shape}\n    {conv}\n    {call}\n    ReLU()\n")
    memory = plan.memory(dtype)
    for sizes in ({"N": 2, "C": 4, "L": 8, "H": 8, "W": 9}, {"N": 3, "C": 6, "L": 5, "H": 7, "W": 6}):
        sizes = {k: v for k, v in sizes.items() if k in plan.symbols}
        module = plan.bind(**sizes).build().to(getattr(torch, dtype))
        assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes), getattr(torch, dtype))
        assert memory.at(memory.buffers, **sizes) == sum(b.numel() * b.element_size() for b in module.buffers())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["cnn1d", "resnet18", "mobilenet_se", "inception", "two_tower"])
def test_half_precision_examples(name, dtype):
    plan = convplan.load(ROOT / "examples" / f"{name}.plan")
    memory = plan.memory(dtype)
    sizes = plan.smallest_sizes(N=2)
    assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes), getattr(torch, dtype))


PRODUCTS = [  # a product of 3 or 4 operands, broadcasting, some of them not requiring grad (the input x)
    "a = Conv2d(C, 1)\n    s = AdaptiveAvgPool2d(1)\n    t = Sigmoid()\n    mul(x, a, s)",
    "a = Conv2d(C, 1)\n    s = AdaptiveAvgPool2d(1)\n    mul(s, a, x, s)",
    "a = Conv2d(C, 1)\n    b = Conv2d(C, 1)\n    s = AdaptiveAvgPool2d(1)\n    mul(s, x, a, b)",
    "s = AdaptiveAvgPool2d(1)\n    a = Conv2d(C, 1)\n    mul(x, s, a)",
]


@pytest.mark.parametrize("body", PRODUCTS)
def test_a_product_of_three_or_more_saves_the_partial_products(body):
    """torch folds a * b * c left to right: (a * b) is a new tensor, saved for c's gradient."""
    plan = convplan.parse(f"plan P:\n    input [N, C, H, W]\n    {body}\n")
    memory = plan.memory("float32")
    for sizes in ({"N": 2, "C": 3, "H": 5, "W": 4}, {"N": 1, "C": 4, "H": 6, "W": 7}):
        assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes)), sizes


# -- the sequence kinds: random configurations and sizes against torch ----------------------------------------

SEQUENCE_SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 4, deadline=None)


def _sequence_plan(case, grad: int, tie: str = ""):
    """(plan, sizes) for a case of test_sequence_layers, every dim a symbol; the inputs picked by the bits of
    `grad` first go through a Linear (so that they require grad); `tie` passes one tensor as several
    (MultiheadAttention(q, q, q): 'self', (q, k, k): 'kv', Transformer(x, x): 'pair').  None where convplan
    refuses it."""
    kind, inputs, _, args, outputs = case
    text, sizes = sequence_cases.plan_for(inputs, kind, args, outputs, True)
    lines = text.rstrip("\n").split("\n")
    tail = [lines.pop()] if lines[-1].lstrip().startswith("output ") else []  # every output named an output
    *head, call = lines
    names = list(inputs)
    for k, name in enumerate(names):
        if grad >> k & 1:
            head.append(f"    {name}g = Linear({name}, {inputs[name][-1]})")
            names[k] = f"{name}g"
    if tie == "self":
        names = [names[0]] * 3
    elif tie == "pair":
        names = [names[0]] * 2
    elif tie == "kv":
        names = [names[0], names[1], names[1]]
    lhs, rest = call.split(" = ", 1)
    keywords = rest[rest.index("(") + 1:-1].split(", ")[len(inputs):]
    call = f"{lhs} = {kind}({', '.join(names + keywords)})"
    try:
        plan = convplan.parse("\n".join([*head, call, *tail]) + "\n")
        plan.bind(**sizes)
    except convplan.PlanError:
        return None
    return plan, sizes


def _check_sequence(found, dtypes=("float32", "float64")):
    if found is None:
        return
    plan, sizes = found
    for dtype in dtypes:
        memory = plan.memory(dtype)
        assert memory.unmodelled == ()
        want = saved_for_backward(plan.bind(**sizes), getattr(torch, dtype))
        assert memory.at(memory.saved, **sizes) == want, f"{dtype} at {sizes}:\n{plan.source}"


@st.composite
def _with_dropout(draw, cases):
    kind, inputs, inferred, args, outputs = draw(cases)
    if kind != "Bilinear" and not kind.endswith("Cell"):
        args = {**args, "dropout": draw(st.sampled_from([0.0, 0.0, 0.5, 1.0]))}
    return kind, inputs, inferred, args, outputs


def _sequence_cases(name):
    return _with_dropout(getattr(sequence_cases, name)())


@given(st.data())
@SEQUENCE_SETTINGS
def test_saved_for_backward_of_recurrent_layers(data):
    """RNN, LSTM (oneDNN's kernel in float32, the cells step by step in float64 and float16; bfloat16 is
    listed as unmodelled, below), GRU: layers, directions, projections, batch_first, h0, dropout between
    layers, unbatched."""
    case = data.draw(_sequence_cases("recurrent_case"))
    _check_sequence(_sequence_plan(case, data.draw(st.integers(0, 3))), ("float32", "float64", "float16"))


def test_a_stacked_lstm_step_by_step_keeps_each_layers_stacked_output():
    """Found by CI: in float64 (the cells step by step, not oneDNN) the second layer's input-to-hidden linear
    keeps the first layer's steps stacked, one element here (128 bytes, not 120)."""
    plan = convplan.parse("plan T:\n    input x [N0, L1]\n    out, (h, c) = LSTM(x, hidden_size=1, num_layers=2)\n")
    memory = plan.memory("float64")
    assert memory.at(memory.saved, N0=1, L1=1) == 128
    _check_sequence((plan, {"N0": 1, "L1": 1}), ("float64", "float16", "float32"))
    _check_sequence((plan, {"N0": 3, "L1": 2}), ("float64", "float16", "float32"))


@pytest.mark.parametrize("then", ["    y = Linear(h, 3)\n", "    t = transpose(h, 0, 1)\n    y = matmul(h, t)\n"])
@pytest.mark.parametrize("cell", ["RNNCell(x, hidden_size=2, bias=False)",
                                  "RNNCell(x, hidden_size=2, nonlinearity='relu')"])
def test_a_layer_after_an_rnn_cell_keeps_the_cells_output_once(cell, then):
    """Found by test_layouts' drawn matmul after an RNNCell: the step output the cell keeps is its output's
    storage, so a Linear (or matmul) after it that keeps its input adds nothing (144 bytes at N=3, not 192)."""
    plan = convplan.parse(f"plan T:\n    input x [N, C]\n    h = {cell}\n{then}")
    memory = plan.memory("float64")
    for sizes in ({"N": 3, "C": 2}, {"N": 1, "C": 1}):
        assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes), torch.float64), sizes


@given(st.data())
@SEQUENCE_SETTINGS
def test_saved_for_backward_of_cells(data):
    case = data.draw(_sequence_cases("cell_case"))
    _check_sequence(_sequence_plan(case, data.draw(st.integers(0, 3))))


@given(st.data())
@SEQUENCE_SETTINGS
def test_saved_for_backward_of_attention(data):
    """MultiheadAttention: kdim/vdim, add_bias_kv, add_zero_attn, batch_first, bias, dropout, unbatched, and
    query, key and value one tensor or two (torch projects them together)."""
    kind, inputs, inferred, args, outputs = data.draw(_sequence_cases("attention_case"))
    tie = data.draw(st.sampled_from(["", "self", "kv"]))
    if tie:
        inputs = dict(list(inputs.items())[: 1 if tie == "self" else 2])
    _check_sequence(_sequence_plan((kind, inputs, inferred, args, outputs), data.draw(st.integers(0, 7)), tie),
                    ("float32", "float64", data.draw(st.sampled_from(["float16", "bfloat16"]))))


@given(st.data())
@SEQUENCE_SETTINGS
def test_saved_for_backward_of_transformer_layers(data):
    """Encoder and decoder layers: norm_first, activation, bias, batch_first, dropout (0: torch's flash
    kernel; otherwise the math kernel, in float32 for a 16-bit module), unbatched."""
    case = data.draw(_sequence_cases("transformer_case"))
    _check_sequence(_sequence_plan(case, data.draw(st.integers(0, 3))),
                    ("float32", "float64", data.draw(st.sampled_from(["float16", "bfloat16"]))))


@given(st.data())
@SEQUENCE_SETTINGS
def test_saved_for_backward_of_transformer_stacks(data):
    """TransformerEncoder and TransformerDecoder: num_layers, the final norm, and each layer's arguments as for
    the single layers (norm_first, activation, bias, batch_first, dropout, unbatched); the memory one tensor
    for every decoder layer."""
    case = data.draw(_with_dropout(stack_cases.stack_case()))
    _check_sequence(_sequence_plan(case, data.draw(st.integers(0, 3))),
                    ("float32", "float64", data.draw(st.sampled_from(["float16", "bfloat16"]))))


@given(st.data())
@SEQUENCE_SETTINGS
def test_saved_for_backward_of_transformer(data):
    """nn.Transformer: the encoder and decoder stacks with their final norms; the encoder's output is the
    memory every decoder layer keeps (one storage); src and tgt one tensor or two."""
    kind, inputs, inferred, args, outputs = data.draw(_with_dropout(stack_cases.transformer_case()))
    tie = data.draw(st.booleans()) and inputs["src"] == inputs["tgt"]
    if tie:
        inputs = {"src": inputs["src"]}
    found = _sequence_plan((kind, inputs, inferred, args, outputs), data.draw(st.integers(0, 3)), "pair" * tie)
    _check_sequence(found, ("float32", "float64", data.draw(st.sampled_from(["float16", "bfloat16"]))))


@st.composite
def _embedding_case(draw):
    bag = draw(st.booleans())
    args = {"padding_idx": draw(st.sampled_from([None, 0, 2]))}
    if bag:
        args["mode"] = draw(st.sampled_from(["sum", "mean", "max"]))
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 5)))
    if not bag and draw(st.booleans()):
        shape = shape[:1] if draw(st.booleans()) else (*shape, 2)
    args["max_norm"] = draw(st.sampled_from([None, None, 1.0]))
    return "EmbeddingBag" if bag else "Embedding", shape, draw(st.integers(3, 9)), draw(st.integers(1, 6)), args


@given(_embedding_case(), st.sampled_from(["float32", "float64", "float16", "bfloat16"]))
@SEQUENCE_SETTINGS
def test_saved_for_backward_of_embeddings(case, dtype):
    """Embedding keeps its int64 indices; EmbeddingBag also _embedding_bag's int64 tensors (offset2bag only
    off the fast path: mode 'sum' without padding_idx, in a dtype other than float64)."""
    kind, shape, count, dim, args = case
    dims = ", ".join(f"S{k}" for k in range(len(shape)))
    call = ", ".join([str(count), str(dim), *(f"{k}={v!r}" for k, v in args.items())])
    plan = convplan.parse(f"plan T:\n    input t [{dims}]\n    e = {kind}(t, {call})\n    Linear(3)\n")
    sizes = {f"S{k}": v for k, v in enumerate(shape)}
    _check_sequence((plan, sizes), (dtype,))


def _saved_or_refused(plan, sizes, dtype):
    """What autograd saves at `sizes`, or None where torch refuses the indices (an unpool whose geometry is not
    its pool's can point outside its output: the data's problem, not the shapes')."""
    try:
        return saved_for_backward(plan.bind(**sizes), getattr(torch, dtype))
    except RuntimeError as exc:
        assert "invalid max index" in str(exc), exc
        return None


@given(pair_cases.unpool_case(), st.booleans(), st.booleans(), st.sampled_from(["float32", "float64", "float16"]))
@SEQUENCE_SETTINGS
def test_saved_for_backward_of_max_unpool(case, before, between, dtype):
    """MaxUnpool keeps its indices: MaxPool's (return_indices=True) own storage, which the pool keeps too where
    it records (a PReLU before it), counted once; the unpool records where its input requires grad (a PReLU
    between), else nothing is kept."""
    nd, shape, pool, unpool = case
    sizes: dict = {}
    args = lambda a: ", ".join(f"{k}={v!r}" for k, v in a.items())  # noqa: E731
    text = (f"plan T:\n    input x {pair_cases.dims(shape, True, sizes, 'D')}\n"
            + ("    x = PReLU(x)\n" if before else "")
            + f"    y, idx = MaxPool{nd}d(x, {args(pool)}, return_indices=True)\n"
            + ("    y = PReLU(y)\n" if between else "")
            + f"    out = MaxUnpool{nd}d(y, idx, {args(unpool)})\n")
    try:
        plan = convplan.parse(text)
        plan.bind(**sizes)
    except convplan.PlanError:
        return
    memory = plan.memory(dtype)
    assert memory.unmodelled == ()
    want = _saved_or_refused(plan, sizes, dtype)
    if want is not None:
        assert memory.at(memory.saved, **sizes) == want, f"{dtype} at {sizes}:\n{text}"


@given(pair_cases.distance_case(), st.integers(0, 3), st.booleans(), st.sampled_from(["float32", "float64", "float16"]))
@SEQUENCE_SETTINGS
def test_saved_for_backward_of_distances(case, grad, tied, dtype):
    """CosineSimilarity (dim, eps, broadcasting) and PairwiseDistance (p, keepdim), either input requiring grad
    (through a PReLU) or not, or one tensor compared with itself."""
    kind, first, second, args = case
    sizes: dict = {}
    lines = [f"    input a {pair_cases.dims(first, True, sizes, 'A')}"]
    names = ["a", "a"] if tied else ["a", "b"]
    if not tied:
        lines.append(f"    input b {pair_cases.dims(second, True, sizes, 'B')}")
    for k in (0, 1)[: 1 if tied else 2]:
        if grad >> k & 1:
            lines.append(f"    {names[k]} = PReLU({names[k]})")
    if tied:
        sizes = {k: v for k, v in sizes.items() if k.startswith("A")}
    call = ", ".join([*names, *(f"{k}={v!r}" for k, v in args.items())])
    try:
        plan = convplan.parse("plan T:\n" + "\n".join(lines) + f"\n    out = {kind}({call})\n")
        plan.bind(**sizes)
    except convplan.PlanError:
        return
    _check_sequence((plan, sizes), (dtype,))


@given(st.data())
@SEQUENCE_SETTINGS
def test_saved_for_backward_of_bilinear(data):
    case = data.draw(sequence_cases.bilinear_case())
    _check_sequence(_sequence_plan(case, data.draw(st.integers(0, 3))))


@given(st.sampled_from([1, 2, (1, 1), (1, 2), (2, 1)]), st.sampled_from([1, 2, (2, 1), (1, 3)]),
       st.sampled_from([0, 1, (2, 0)]), st.sampled_from([1, 2]), st.booleans(),
       st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(3, 7), st.integers(3, 7)))
@settings(max_examples=40, deadline=None)
def test_an_unfold_keeps_a_storage_of_its_inputs_size_at_least(kernel, stride, padding, dilation, batched, sizes):
    """PReLU -> Unfold -> ReLU6: ReLU6 keeps its input, Unfold's output, whose storage torch's im2col makes
    max(input, output) elements large (found by the random stacks: Unfold(kernel_size=1, stride=2) kept 32
    bytes where the output is 24).  Saved and eval-mode activation bytes, against torch."""
    shape = "[N, C, H, W]" if batched else "[C, H, W]"
    plan = convplan.parse(f"plan T:\n    input {shape}\n    PReLU()\n    Unfold({kernel!r}, stride={stride!r}, "
                          f"padding={padding!r}, dilation={dilation})\n    ReLU6()\n")
    values = dict(zip("NCHW", sizes, strict=True)) if batched else dict(zip("CHW", sizes[1:], strict=True))
    if not plan.satisfied(values):
        return
    memory = plan.memory("float64")
    bound = plan.bind(**values)
    assert memory.at(memory.saved, **values) == saved_for_backward(bound, torch.float64), values
    assert memory.at(memory.activations, **values) == _created_bytes(bound, torch.float64), values


@pytest.mark.parametrize("fold", ["Fold((2, L + 1), 2)", "Fold((1, L), 1)", "Fold((2, 2 * L), 2, stride=2)"])
def test_a_fold_keeps_a_storage_of_its_inputs_size_at_least(fold):
    """col2im, like im2col, resizes a tensor of the input's size: overlapping blocks make a smaller output."""
    plan = convplan.parse(f"plan T:\n    input [N, 4, L]\n    PReLU()\n    {fold}\n    ReLU6()\n")
    memory = plan.memory("float32")
    for sizes in ({"N": 2, "L": 3}, {"N": 1, "L": 5}):
        bound = plan.bind(**sizes)
        assert memory.at(memory.saved, **sizes) == saved_for_backward(bound), sizes
        assert memory.at(memory.activations, **sizes) == _created_bytes(bound, torch.float32), sizes


def test_an_lstm_in_bfloat16_is_listed_as_unmodelled():
    """oneDNN runs a bfloat16 LSTM where the CPU supports it, the cells step by step elsewhere: not counted
    as anything, but listed; a GRU in bfloat16 (always step by step) is modelled."""
    plan = convplan.parse("plan T:\n    input x [L, N, 4]\n    out, (h, c) = LSTM(x, 5)\n    g, hg = GRU(out, 3)\n")
    assert plan.memory("bfloat16").unmodelled == ("LSTM",)
    assert plan.memory("float32").unmodelled == plan.memory("float16").unmodelled == ()
    memory = plan.memory("bfloat16")
    assert "lstm1" not in memory.saved_by_layer  # not counted, listed
    gru = convplan.parse("plan T:\n    input x [L, N, 4]\n    g, hg = GRU(x, 3, num_layers=2)\n")
    memory = gru.memory("bfloat16")
    assert memory.at(memory.saved, L=3, N=2) == saved_for_backward(gru.bind(L=3, N=2), torch.bfloat16)


@pytest.mark.parametrize("sizes", [{"N": 2, "C": 2}, {"N": 3, "C": 5}])
def test_dropout3d_on_a_2d_input_saves_one_value_per_row(sizes):
    """torch's dropout3d unsqueezes every input that is not 5-D (a 2-D [N, C] becomes [1, N, C]): its noise is
    [1, N, 1], N values, not N*C (CI drew this after a BatchNorm1d)."""
    plan = convplan.parse("plan T:\n    input [N, C]\n    BatchNorm1d()\n    Dropout3d()\n")
    memory = plan.memory("float64")
    assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes), torch.float64)


def test_a_pools_indices_are_found_beside_the_pool_not_by_a_scan_of_the_graph():
    """What a max pool with return_indices saves includes its indices, the item node that names its second
    output: found by a scan of every node from the first, once per pool, quadratic in a plan of many (1000
    pools: 1.1-1.4 s of memory, now 0.6-0.7 s).  Counted here: the nodes read to find it, and the bytes against
    autograd's."""
    from convplan.memory import _item
    from convplan.saves import OUTPUT

    body = "".join(f"    x = Conv2d(x, 2, kernel_size=1)\n    x, i{k} = MaxPool2d(x, 1, return_indices=True)\n"
                   for k in range(30))
    plan = convplan.parse("plan P:\n    input x [N, C, L, W]\n" + body)
    nodes = plan.graph.nodes
    read = []

    class Counted(tuple):
        def __getitem__(self, i):
            read.append(i)
            return tuple.__getitem__(self, i)

        def __iter__(self):
            for i in range(len(self)):
                yield self[i]

    pool = next(n for n in reversed(nodes) if n.op == "layer" and n.kind == "MaxPool2d")
    item = next(i for i in pool.spec.saves(pool.args, nodes[pool.inputs[0]].shape, pool.shape).items
                if i.what == OUTPUT and i.index)
    key, nbytes, _ = _item(item, pool, [nodes[pool.inputs[0]]], {}, "float32", Counted(nodes))
    assert key == pool.id + 1 and len(read) <= 2
    sizes = {"N": 2, "C": 3, "L": 4, "W": 5}
    memory = plan.memory()
    assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes))


def test_memory_of_feature_alpha_dropout_on_one_dim_lists_it_as_torch_refuses_to_train_it():
    """Drawn by test_layouts' random stacks: `Flatten(start_dim=0)` then FeatureAlphaDropout made `plan.memory()`
    raise IndexError (its saves rule read a channel dim).  torch refuses to train it on a 1-D input (p = 1 and
    p = 0 excepted, which it takes): memory lists the kind instead, and counts the two that run."""
    text = "plan T:\n    input [N, C]\n    Flatten(start_dim=0)\n    FeatureAlphaDropout(p={p})\n"
    assert convplan.parse(text.format(p=0.5)).memory("float64").unmodelled == ("FeatureAlphaDropout",)
    for p in (0.0, 1.0):
        plan = convplan.parse(text.format(p=p))
        memory = plan.memory("float64")
        assert memory.unmodelled == ()
        assert_saved_as_torch(plan, memory, {"N": 2, "C": 3}, text)
