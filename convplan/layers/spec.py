"""The layer registry: ONE place where each torch layer kind declares

- its arguments, in torch's positional order, with torch's defaults (`Arg`),
- which argument the input decides (`inferred`: in_channels, in_features, ...),
- the input ranks it accepts,
- its shape rule (symbolic, torch-exact, with the conditions under which torch raises),
- its parameter count.

The torch constructor and the generated code both use `name` (torch.nn's class name) and
the resolved arguments, so nothing else in convplan special-cases a layer kind: what a rule
or a hint needs to know about a kind is a field of its spec.  Rules receive a `RuleContext`
context and return the output shape; a condition that may fail goes through
`ctx.require(cond, message)`, which turns it into an error, a requirement or nothing.

This module holds the spec types and the helpers rules share; the kinds are registered by family in the
other modules of the package, in the order `__init__` gives."""

# Messages are lambdas (printing sympy is slow) that RuleContext.require calls at once, never later:
# ruff: noqa: B023

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import sympy

from ..shapes import affine, at_least, mod, offset, pyrepr, to_expr

REQUIRED = object()  # marks an argument without a default


# Argument kinds: how a value written in a plan is validated (see check.py `_coerce`).
INT = "int"  # an integer expression


SIZE = "size"  # an int or an nd-tuple of ints


PAD = "pad"  # SIZE, or one of the strings in `choices` ('same', 'valid')


BOOL = "bool"


FLOAT = "float"


STR = "str"


OPT_INT = "int or None"


OPT_SIZE = "size or None"  # adaptive pools: None entries keep that dim


PADS = "pads"  # an int or a tuple of 2*nd ints (ZeroPad & co.)


DIMS = "dims"  # an int or a tuple of ints (LayerNorm, Unflatten)


SCALE = "scale"  # a float or a tuple of floats


OPT_FLOAT = "float or None"  # BatchNorm's momentum: None is a cumulative average


# Output layouts (LayerSpec.layout), torch 2.13 on the CPU as `.stride()` measures them: tests/test_layouts.py.
# The third, the default "", is contiguous where every input is, and may keep a permuted input's order otherwise
# (a convolution keeps channels-last).  The walker reads them (may `view` read the output?), layouts.py too.
CONTIGUOUS = "contiguous"  # a new contiguous tensor whatever the input's layout (Linear's matmul, softmax's kernel)
LIKE_INPUT = "like input"  # elementwise: TensorIterator lays the output out as a dense input is
# With batch_first=True a 3-D first output is a transpose of a contiguous [L, N, H]: the recurrent layers' in every
# mode; MultiheadAttention's in training and off its no-grad fast path (contiguous there).  Else as "".
BATCH_FIRST = "transposed with batch_first"
BATCH_FIRST_IN_TRAINING = "transposed with batch_first, in training"


@dataclass(frozen=True)
class Arg:
    name: str
    default: object = REQUIRED
    kind: str = INT
    choices: tuple = ()  # for STR


@dataclass(frozen=True)
class SizeRule:
    """torch's output size of one spatial dim, `numerator//divisor + 1` (no division where divisor is None),
    for explaining it: `text` as torch's documentation writes it (`x`: the input size), `terms(x, v)` the
    numerator's terms with one dim's argument values `v` put in, `divisor(v)`."""

    text: str
    terms: Callable
    divisor: Callable | None = None


CONV_SIZE = SizeRule("(x + 2*padding - dilation*(kernel_size - 1) - 1)//stride + 1",
                     lambda x, v: [x, 2 * v["padding"], -v["dilation"] * (v["kernel_size"] - 1), -1],
                     lambda v: v["stride"])


AVG_POOL_SIZE = SizeRule("(x + 2*padding - kernel_size)//stride + 1",
                         lambda x, v: [x, 2 * v["padding"], -v["kernel_size"]], lambda v: v["stride"])


CONV_T_SIZE = SizeRule("(x - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1",
                       lambda x, v: [(x - 1) * v["stride"], -2 * v["padding"], v["dilation"] * (v["kernel_size"] - 1),
                                     v["output_padding"]])


@dataclass(frozen=True)
class LayerSpec:
    name: str  # torch.nn class name, also the name used in plans
    args: tuple[Arg, ...]  # the arguments a plan may write, in torch's positional order
    rule: Callable  # (ctx, shape, args) -> output shape
    count: Callable = lambda a: 0  # (args) -> number of parameters
    macs: Callable | None = None  # (input shape, output shape, args) -> multiply-accumulates with the weights
    # In eval mode the output is the input's storage (a view, or the input itself): it takes no memory.
    # A kind with an `inplace` argument writes into its input when that is True.
    aliases_input: bool = False
    layout: str = ""  # its output's strides: CONTIGUOUS, LIKE_INPUT, BATCH_FIRST(_IN_TRAINING) or "" (above)
    # LIKE_INPUT whose kernel makes its output with empty_like (ReLU6's hardtanh): a dense input's strides exactly,
    # dims of size 1 included, where TensorIterator's own output is contiguous wherever torch calls the input so
    like_input_exactly: bool = False
    # A kind that `aliases_input` in eval, whose output in training is laid out otherwise at dims of size 1:
    # (args, shape, input strides) -> its output's strides there (layouts.py); None: the input's, as in eval
    trained_strides: Callable | None = None
    # What autograd saves for backward in training (saves.py): (args, input shape, output shape) -> Saves;
    # None: not modelled (memory lists the kind instead of counting it as nothing).
    saves: Callable | None = None
    # How output positions read input positions (receptive.py): POINTWISE, GLOBAL, or (args, nd) -> one
    # (extent, stride, left padding) per spatial dim of the window it slides; None: not modelled.
    window: Callable | str | None = None
    # A kind that only moves its input's elements between dims as the tensor operation of this name does
    # (receptive_axes.OPS: "permute", "reshape"): the receptive field follows its spatial dims to their new axes
    moves_axes: str | None = None
    # torch's documented output size of one spatial dim, in its argument names (`x`: the input size), for
    # `convplan explain`: SizeRule(text, numerator, divisor, addend) of one dim's values, or None.
    size_rule: SizeRule | None = None
    inferred: str | None = None  # torch's name of the argument read from the input
    infer: Callable | None = None  # (shape, args) -> value of `inferred`
    ranks: tuple[int, ...] | None = None  # accepted input ranks; None = any >= min_rank
    min_rank: int = 1
    inferred_at: int = 0  # its place in torch's constructor: GroupNorm(num_groups, num_channels) has it second
    nd: int = 0  # spatial dims of a 1d/2d/3d family member
    family: str = ""  # e.g. "Conv" for Conv1d/2d/3d: used to suggest the right member
    short: str = ""  # base of submodule names (conv1, pool2, ...)
    kernel_within_input: bool = False  # torch refuses a kernel larger than the unpadded input (AvgPool3d)
    pad_mode: str = ""  # padding layers: F.pad's mode ("constant", "reflect", "replicate"), which sets the limits
    # It mixes the last dim only (Linear): after a conv/pool that is a spatial dim, and a Flatten() was probably
    # left out (W340)
    last_dim_features: bool = False
    # Its input holds integer indices below the argument so named (Embedding: num_embeddings): it reads a
    # plan input, which build/verify fill with indices in range (build.example_inputs)
    indices: str = ""
    # The tensors it takes (torch's forward arguments): the first is the chain's; the rest are named in the
    # call (`Bilinear(other, 16)`, `TransformerDecoderLayer(memory, ...)`); the rule reads all in ctx.inputs
    tensors: tuple[str, ...] = ("input",)
    optional_tensors: int = 0  # of the last ones: GRU's h0
    # The optional tensors go to torch as one tuple, written as one in a plan: LSTM's `LSTM(x, (h0, c0), 32)`
    state_pair: bool = False
    # Further arguments read from the other tensors (Bilinear's in2_features, MultiheadAttention's kdim/vdim),
    # placed right after `inferred` in torch's order: (shapes of the other tensors, args) -> {name: value}
    infer_more: tuple[str, ...] = ()
    infer_others: Callable | None = None
    order: tuple[str, ...] = ()  # torch's constructor order, where `infer_more` does not follow `inferred` there
    # Where the class lives: torch.nn, or torchvision.ops for the few kinds torchvision's models need that
    # convplan carries a copy of (convplan/modules.py: build() uses it, generated code includes it)
    module: str = "torch.nn"
    # Where torch builds it from other modules (TransformerEncoder from a layer module and num_layers), those
    # modules from its arguments: (call, value, args, given) -> call(class name, positional values, keyword
    # values) of torch.nn's classes, `value(argument)` each value as build() or codegen writes it
    compose: Callable | None = None
    # (args) -> (floating-point elements, int64 elements) of buffers its module holds besides a norm's running
    # statistics (memory.py): ShiftedWindowAttention's relative_position_index
    buffers: Callable | None = None
    # (args, input shape, output shape, dtype) -> elements of the storage its output lives in, where that can be
    # more than the output's (memory.py): ShiftedWindowAttention's crop of its padded map, a view where contiguous;
    # ConvTranspose3d's output, resized from a tensor of its input's size where torch runs its own kernel
    storage: Callable | None = None
    # Arguments a plan writes in the call that torch takes in forward, not in the constructor (MaxUnpool's
    # output_size): build() and codegen pass them with the tensors, their sizes read from the tensors at hand
    forward_args: tuple[str, ...] = ()
    # Its forward `view`s an elementwise copy of its input (TensorIterator's layout) with the dims from this one on
    # merged into one (F.local_response_norm: 3), which torch refuses where they do not hold one another
    # contiguously (a permute's): the walker refuses that layout too (viewcheck.py).  0: no such view.
    views_from: int = 0
    # Whether torch's inference fast path runs (eval mode, no gradients): (args, output shape, input node ids) ->
    # True, False or a condition.  MultiheadAttention's, whose batch-first output is contiguous there and a transpose
    # off it (layouts.py), and whose products FlopCounterMode then does not see (cost_flopcounter.py).
    fast_path: Callable | None = None
    # A kind that returns indices (the max pools): (args, input shape, output shape) -> per spatial dim the last
    # position any of its windows reads, the largest coordinate an index can point at there (MaxUnpool checks its
    # output holds every such index: `RuleContext.sources`)
    reach: Callable | None = None
    # Its rule reads where its other tensors were made (`RuleContext.sources`): MaxUnpool, whose indices are flat
    # positions in the input of the pool that gave them
    reads_sources: bool = False

    @functools.cached_property  # read on every layer call
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    @functools.cached_property  # read on every new layer that infers an argument (layerchecks.torch_order)
    def required_count(self) -> int:
        """How many of its arguments have no default."""
        return sum(1 for a in self.args if a.default is REQUIRED)

    @functools.cached_property  # the same
    def float_where_inferred(self) -> bool:
        """Whether the argument in the place torch's order has the inferred one is a float (eps of a norm)."""
        return self.inferred_at < len(self.args) and self.args[self.inferred_at].kind in (FLOAT, OPT_FLOAT)

    def call_args(self, given) -> list[tuple[str, bool]]:
        """The arguments a constructor call writes (those in `given`, but `forward_args`), in torch's order, each
        with whether it goes by position: torch's leading required ones, up to the first left out; the rest by
        keyword."""
        required = {a.name for a in self.args if a.default is REQUIRED} | {self.inferred} | set(self.infer_more)
        out, positional = [], True
        for name in self.torch_order():
            if name in self.forward_args:
                continue
            positional = positional and name in required and name in given
            if name in given:
                out.append((name, positional))
        return out

    def torch_order(self) -> tuple[str, ...]:
        """torch's constructor argument order, the inferred argument included."""
        if self.order:
            return self.order
        names = self.arg_names
        if self.inferred is None or self.inferred in names:  # LayerNorm's is written or defaulted
            return names
        return names[: self.inferred_at] + (self.inferred, *self.infer_more) + names[self.inferred_at :]


@dataclass(frozen=True)
class Source:
    """Where a tensor a rule reads was made (`RuleContext.sources`): output `index` of a layer call of kind `kind`
    with arguments `args` ((name, value) pairs) on an input of shape `shape`; `name` and `line` say which node."""

    kind: str
    args: tuple
    shape: tuple
    index: int
    name: str
    line: int


class LayerError(Exception):
    """Raised by a rule: the layer is refused.  `arg` names the argument to point at; `value`, where given, is
    the text of a value of it that fits, which the hint suggests (a quick fix writes it)."""

    def __init__(self, message: str, arg: str | None = None, hint: str | None = None, value: str | None = None):
        super().__init__(message)
        self.message, self.arg, self.hint, self.value = message, arg, hint, value


class Worded:
    """A condition's message, worded when it is read (str()): the kind's name and `RuleContext.require_later`'s
    words."""

    __slots__ = ("kind", "words")

    def __init__(self, kind: str, words: Callable[[], str]):
        self.kind, self.words = kind, words

    def __str__(self) -> str:
        return f"{self.kind}: {self.words()}"


def worded(message) -> str:
    """A rule's condition message as text: a str, or `RuleContext.require_later`'s words."""
    return message if type(message) is str else message()


class RuleContext:
    """What a shape rule sees besides the shape and the arguments.  A plain class with slots, not a dataclass:
    one is made for every new layer, and the dataclass's __init__ with its three list factories was a tenth of
    a ReLU's whole rule."""

    __slots__ = ("spec", "conds", "warns", "tails", "inputs", "sources")

    def __init__(self, spec: LayerSpec, inputs: tuple = (), sources: tuple = ()):
        self.spec = spec
        self.conds: list = []  # (condition, message, arg)
        self.warns: list = []  # (condition, message, arg, code): torch warns, or fails in training
        self.tails: list = []  # (condition, message): positions a strided window never reads
        self.inputs = inputs  # the shape of every tensor it takes (LayerSpec.tensors), the first one included
        # where a kind that `reads_sources` got each tensor after the first: a `Source`, or None (not a layer's output;
        # also where the rule runs without the graph, as a hint's does: then empty)
        self.sources = sources

    def require(self, cond, message: str | Callable[[], str], arg: str | None = None) -> None:
        """A condition torch checks.  False refuses the layer at once (later arithmetic may rely on it);
        a symbolic one becomes a requirement.  `message` may be a lambda: printing sympy is slow."""
        if cond is sympy.true:
            return
        text = message() if callable(message) else message
        if cond is sympy.false:
            raise LayerError(text, arg)
        self.conds.append((cond, text, arg))

    def require_later(self, cond, words: Callable[[], str], arg: str | None = None) -> None:
        """`require`, its message worded only where it is read (`Worded`): the layers of a stack find the same
        bound (`H >= 17`) again and again, and the requirements word only the first finding of each.  `words` must
        read nothing that changes after the call (no loop variable): the chain rules pass their own arguments."""
        if cond is sympy.true:
            return
        if cond is sympy.false:
            raise LayerError(words(), arg)
        self.conds.append((cond, words, arg))

    def warn(self, cond, message: str | Callable[[], str], arg: str | None = None, code: str = "W300") -> None:
        """Something torch accepts in eval mode but warns about, or refuses in training, when `cond` holds."""
        if cond is not sympy.false:
            self.warns.append((cond, message() if callable(message) else message, arg, code))

    def tail(self, x, m, s, hi, ext) -> None:
        """Warn (W310) when, for some sizes, the last window stops before the end of the input.

        With m = x + lo + hi - ext, the last window ends (m % s) - hi positions short of it: torch
        silently never reads them.  A stride wider than the window skips samples everywhere by design,
        and a constant size either drops or not, so both are left alone."""
        if type(s) is int and type(hi) is int and type(ext) is int:  # a plain conv's: compared as ints
            if s > ext or s - 1 <= hi or not x.free_symbols:
                return
            s, hi = sympy.Integer(s), sympy.Integer(hi)
        else:
            s, hi, ext = to_expr(s), to_expr(hi), to_expr(ext)
            if not (s.is_Integer and hi.is_Integer and ext.is_Integer) or s > ext or s - 1 <= hi \
                    or not x.free_symbols:
                return  # (free_symbols last: it walks the whole of x)
        short = offset(mod(m, s), -int(hi))  # without Add.flatten (tested equal)
        # A number where x's form fixes the residue (x = 2*H); else it runs through every residue as x grows
        # and so is never decided (sympy's own try is slow): compared unevaluated.
        dropped = sympy.Gt(short, 0) if short.is_Number else sympy.Gt(short, 0, evaluate=False)
        if dropped is not sympy.false:
            self.tails.append((dropped, f"the last {show(short)} position(s) of {show(x)}"))

    def chain_tail(self, x: affine.Chain, m: affine.Chain, s: int, hi: int, ext: int) -> None:
        """`tail` for a conv/pool chain dim `x` (shapes.affine) and m, with whole s, hi and ext: in ints."""
        if s > ext or s - 1 <= hi:
            return
        dropped, short = affine.tail(m, s, hi)
        self.tails.append((dropped, f"the last {short} position(s) of {affine.text(x)}"))

    def fail(self, message: str, arg: str | None = None, hint: str | None = None, value: str | None = None):
        raise LayerError(message, arg, hint, value)

    def positive(self, values, arg: str) -> None:
        for v in values:
            self.require(at_least(v, 1), lambda: f"{arg} must be positive, got {show(v)}", arg)

    def nonneg(self, values, arg: str) -> None:
        for v in values:
            self.require(at_least(v, 0), lambda: f"{arg} must not be negative, got {show(v)}", arg)


POINTWISE = "pointwise"  # output position i reads input position i only (activations, eval-mode BatchNorm)


GLOBAL = "global"  # every output position reads every input position (statistics over the input, Flatten)


REGISTRY: dict[str, LayerSpec] = {}


def register(spec: LayerSpec) -> LayerSpec:
    REGISTRY[spec.name] = spec
    return spec


def show(v) -> str:
    """A value for a message, in Python syntax (`L//2`, not `FloorDiv(L, 2)`)."""
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(show(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return pyrepr(v) if isinstance(v, sympy.Basic) else str(v)


def ntuple(value, nd: int) -> tuple:
    return tuple(value) if isinstance(value, tuple) else (value,) * nd


def per_dim(ctx: RuleContext, value, nd: int, arg: str, broadcast: bool = True) -> tuple:
    """An int, or a tuple of nd values (of 1 value when torch broadcasts it): nd values, else refused."""
    if not isinstance(value, tuple):
        return (value,) * nd
    if len(value) == nd:
        return value
    if broadcast and len(value) == 1:
        return value * nd
    counts = f"{nd} value{'s' if nd > 1 else ''}" + (" (or 1)" if broadcast and nd > 1 else "")
    ctx.fail(f"{arg} must be an int or a tuple of {counts} for {ctx.spec.name}, got {show(value)}", arg,
             hint=f"torch builds {ctx.spec.name} with it but fails when it runs")


def whole(value) -> int | None:
    """A size argument as a Python int where it is a whole number (not a bool), else None."""
    if type(value) is int:
        return value
    return value.p if isinstance(value, sympy.Integer) else None  # .p: int() is a Python call


def whole_dims(value, nd: int, broadcast: bool = True) -> tuple[int, ...] | None:
    """per_dim's nd values as Python ints, or None where per_dim would refuse the value or one is not whole."""
    kind = type(value)
    if kind is int:  # most: a default or a number written once (whole's test, without its call)
        return (value,) * nd
    if kind is not tuple:
        return (value.p,) * nd if isinstance(value, sympy.Integer) else None
    if not (len(value) == nd or broadcast and len(value) == 1):
        return None
    values = tuple(whole(v) for v in value)
    return None if None in values else values * (nd // len(values))


def prod(values):
    return math.prod(values, start=sympy.Integer(1))


def split_channels(shape, nd):
    """(leading dims, channels, spatial dims) of a [.., C, *spatial] input."""
    return shape[: -nd - 1], shape[-nd - 1], shape[-nd:]


def nonempty(ctx: RuleContext, out) -> tuple:
    """torch returns empty tensors where a size reaches 0; a plan's dims are positive, so refuse those."""
    for i, d in enumerate(out):
        ctx.require(at_least(d, 1), lambda: f"output dim {i} would be {show(d)}: empty tensors are not planned", None)
    return tuple(out)


def dims_of(value, nd: int) -> tuple:
    """An int or a tuple of nd values (or of one, which torch broadcasts): nd values."""
    value = ntuple(value, nd)
    return value * nd if len(value) == 1 else value


def same_shape(ctx, shape, a):
    return tuple(shape)


def member_of(family: str, nd: int, *, rule: Callable, count: Callable | None = None, macs: Callable | None = None,
            **fields) -> LayerSpec:
    """Register `<family><nd>d`, whose rule, count and macs see `nd`; it takes an unbatched or a
    batched input unless `ranks` says otherwise."""
    fields.setdefault("ranks", (nd + 1, nd + 2))
    if count is not None:
        fields["count"] = lambda a: count(a, nd)
    if macs is not None:
        fields["macs"] = lambda shape, out, a: macs(shape, out, a, nd)
    return register(LayerSpec(name=f"{family}{nd}d", family=family, nd=nd,
                              rule=lambda ctx, shape, a: rule(ctx, shape, a, nd), **fields))


def member(family: str, nd: int) -> LayerSpec | None:
    """The `nd` member of a 1d/2d/3d family: ("Conv", 2) -> Conv2d's spec."""
    spec = REGISTRY.get(f"{family}{nd}d")
    return spec if spec is not None and spec.family == family else None


def asymmetric_pad(nd: int) -> LayerSpec | None:
    """The layer that pads each side of each dim by its own amount, with zeros (a hint puts it
    before a layer whose symmetric padding would have to be half an integer)."""
    return member("ZeroPad", nd)


def channels_at(nd: int) -> Callable:
    return lambda shape, a: shape[-nd - 1]  # the dim before the spatial ones: unbatched inputs too


INPLACE = (Arg("inplace", False, BOOL),)


def float_check(ctx: RuleContext, ok: bool, message: str, arg: str) -> None:
    """A float argument torch refuses (its constructor asserts, or the kernel raises at once)."""
    if not ok:
        ctx.fail(message, arg)


def dim_index(ctx: RuleContext, shape, dim, arg):
    r = len(shape)
    if not isinstance(dim, (int, sympy.Integer)) or not -r <= int(dim) < r:
        ctx.fail(f"{arg}={show(dim)} is out of range for a {r}-D input (expected {show(-r)} to {show(r - 1)})", arg)
    return int(dim) % r
