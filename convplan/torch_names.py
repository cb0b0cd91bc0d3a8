"""What convplan says about a torch name it does not have as a layer: a torch.nn class that is not
(yet) a layer kind, and why; a torch function or tensor method, and the layer that does the same
where there is one.

`convplan check` must not import torch, so torch's own names are kept as data: the torch.nn
classes that are not layer kinds are listed here by hand, each with its reason (a test enumerates
torch.nn and fails on any class that is neither a kind nor listed), and torch's public functions
and Tensor methods are generated into `_torch_names.py` by `python -m convplan.torch_names`
(a test compares them with the installed torch of that version).
"""

from __future__ import annotations

from ._torch_names import FUNCTIONAL, FUNCTIONS, METHODS, TORCH_VERSION  # noqa: F401 - the tests read the version

LOSS = "a loss compares a prediction with a target: a plan describes the network, not its training"
CONTAINER = "a container: in convplan a plan or a block holds the layers"
ABSTRACT = "an abstract base class"

# torch.nn classes a plan should be able to use, and why it cannot yet: none left in torch 2.13 (a class a later
# torch adds goes here until it is a kind; the enumeration test names it)
NOT_YET: dict[str, str] = {}

NOT_LAYERS: dict[str, str] = {  # torch.nn classes that are no layer of a plan, and what they are
    "Module": ABSTRACT + " (every layer is a Module)",
    "RNNBase": ABSTRACT + " (of RNN, LSTM and GRU)",
    "RNNCellBase": ABSTRACT + " (of RNNCell, LSTMCell and GRUCell)",
    "Container": CONTAINER + " (deprecated in torch)",
    "Sequential": CONTAINER,
    "ModuleList": CONTAINER,
    "ModuleDict": CONTAINER,
    "ParameterList": CONTAINER,
    "ParameterDict": CONTAINER,
    "DataParallel": "it runs a module on several devices: wrap the built module (plan.build()) instead",
    "AdaptiveLogSoftmaxWithLoss": f"it takes the input and its target: {LOSS}",
    **{f"Lazy{kind}": f"{kind} that reads its input size at the first call; convplan reads every size from the "
                      f"input already: write {kind}(...)"
       for kind in ("Linear", *(f"{f}{nd}d" for f in ("Conv", "ConvTranspose", "BatchNorm", "InstanceNorm")
                                for nd in (1, 2, 3)))},
    **{name: LOSS for name in (
        "L1Loss", "MSELoss", "CrossEntropyLoss", "CTCLoss", "NLLLoss", "NLLLoss2d", "PoissonNLLLoss",
        "GaussianNLLLoss", "KLDivLoss", "BCELoss", "BCEWithLogitsLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
        "MultiLabelMarginLoss", "HuberLoss", "SmoothL1Loss", "SoftMarginLoss", "MultiLabelSoftMarginLoss",
        "CosineEmbeddingLoss", "MultiMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss",
        "LinearCrossEntropyLoss")},
}

# The layer that does what a tensor operation or function does, where one does.
ALTERNATIVES: dict[str, str] = {
    "max": "amax(dim=(2, 3)) takes the maximum over H and W ([N, C, H, W] -> [N, C])",
    "squeeze": "reshape(...) or select(dim, 0) drops a dim of 1",
    "unsqueeze": "reshape(...) or unflatten(dim, (1, size)) adds a dim of 1",
    "pad": "ZeroPad2d, ConstantPad2d, ReflectionPad2d, ReplicationPad2d or CircularPad2d (and their 1d/3d kin)",
    "interpolate": "Upsample(size=..., scale_factor=..., mode=...)",
    "cat": "`cat(dim=1):` with `branch:` bodies, or cat(a, b, dim=1) on named tensors",
    "add": "`residual:` with `shortcut:`, or add(a, b) on named tensors",
    "mul": "mul(a, b) on named tensors",
    "dropout": "Dropout(p)",
    "linear": "Linear(out_features)",
}


def torch_kind(name: str) -> str | None:
    """Where torch has `name`, in words ("torch.nn.LSTM", "torch.permute, Tensor.permute"), or None."""
    if name in NOT_YET or name in NOT_LAYERS:
        return f"torch.nn.{name}"
    places = [f"{where}.{name}" for where, names in (("torch", FUNCTIONS), ("Tensor", METHODS),
                                                     ("torch.nn.functional", FUNCTIONAL)) if name in names]
    return ", ".join(places[:2]) or None


def unknown_layer(name: str, layers) -> tuple[str, list[str]] | None:
    """(message, hints) for a layer name that torch has and convplan does not; `layers`: the kinds there are
    (a function's module twin, `max_pool1d` -> MaxPool1d, is suggested).  None: not a torch name."""
    if name in NOT_YET:
        return f"torch.nn.{name} is not supported yet: {NOT_YET[name]}", []
    if name in NOT_LAYERS:
        return f"torch.nn.{name} is not a layer of a plan: {NOT_LAYERS[name]}", []
    where = torch_kind(name)
    if where is None:
        return None
    twin = next((k for k in layers if k.lower() == name.lower().replace("_", "")), None)
    hint = f"the layer {twin} does this: write {twin}(...)" if twin else ALTERNATIVES.get(name)
    return (f"{name!r} is a tensor operation ({where}) that convplan does not have yet (docs/layers.md lists "
            "the operations it has)", [hint] if hint else [])


def _generate() -> str:
    """The text of `_torch_names.py` from the installed torch."""
    import inspect

    import torch
    import torch.nn.functional

    functions = sorted(n for n in dir(torch) if not n.startswith("_") and n.islower()
                       and callable(getattr(torch, n)) and not inspect.isclass(getattr(torch, n))
                       and not inspect.ismodule(getattr(torch, n)))
    methods = sorted(n for n in dir(torch.Tensor) if not n.startswith("_") and callable(getattr(torch.Tensor, n)))
    functional = sorted(n for n, v in vars(torch.nn.functional).items() if not n.startswith("_") and n.islower()
                        and (inspect.isfunction(v) or inspect.isbuiltin(v)))

    def lines(names):
        out, line = [], ""
        for n in names:
            if len(line) + len(n) + 1 > 110:
                out.append(line)
                line = ""
            line = f"{line} {n}" if line else n
        return "\n".join([*out, line])

    version = torch.__version__.split("+")[0]
    return (f'"""Generated by `python -m convplan.torch_names` from torch {version}: its public functions and '
            f'Tensor\nmethods, so that `convplan check` can name them without importing torch.  Do not edit."""\n\n'
            f"# ruff: noqa\nTORCH_VERSION = {version!r}\n"
            f'FUNCTIONS = frozenset("""\n{lines(functions)}\n""".split())\n'
            f'METHODS = frozenset("""\n{lines(methods)}\n""".split())\n'
            f'FUNCTIONAL = frozenset("""\n{lines(functional)}\n""".split())\n')


if __name__ == "__main__":
    from pathlib import Path

    Path(__file__).with_name("_torch_names.py").write_text(_generate(), encoding="utf-8")
