"""One layer applied to its input: the rank check, the arguments bound and the inferred one read
from the input, the registry's shape rule run, its conditions kept as requirements and its
warnings reported, and the `->` assertion checked.  The result is a graph node.  The checks that
reason about what the writer meant (rank, torch's order, a batch or a Flatten) are layerchecks.py's."""

from __future__ import annotations

import functools

import sympy

from . import nodes as n
from .arguments import Binder
from .assertions import Assertions
from .errors import did_you_mean, rename_fix
from .graph import Node
from .hints import Suggestion
from .layerchecks import batch_as_weight, check_rank, flatten_missing, torch_order
from .layers import (
    REGISTRY,
    LayerError,
    LayerSpec,
    RuleContext,
    Source,
    Worded,
    same_shape,
)
from .merges import MERGES
from .opcall import fit_targets
from .ops import Several
from .scope import Skip, State, Tensor, new_tensor
from .shapes import numbers_below, pyrepr, to_expr
from .show import show_shape
from .torch_names import unknown_layer
from .viewcheck import merged_view

LONG_KEY = 32  # terms from which a dim is not hashed for the rule cache
MAX_APPLIED = 50_000  # rule results kept (then forgotten all at once): about 40 MB at most
_APPLIED: dict = {}  # kept across checks: an editor checks the same layers on the same shapes at every edit
MAX_DIM_DIGITS = 100  # derived formulas: 250 stride-2 stages make 2**250 (76 digits); str() fails at 4,300
_DIM_LIMIT = 10**MAX_DIM_DIGITS
UNREAD = object()  # `node`'s `literal` where the caller did not read it


class LayerCalls:
    def __init__(self, st: State, binder: Binder, assertions: Assertions):
        self.st, self.binder, self.assertions, self.diag = st, binder, assertions, st.diag
        self.applied = _APPLIED  # hash of (kind, shape, args) -> (that key, (output shape, RuleContext)): see _apply
        self.bound: dict = {}  # hash of _bind's key -> (that key, (arguments, names given, names written))
        # A call on input shapes it met before, where resolving it reported nothing, is not resolved again (the
        # binding, the inferred arguments, torch's order, the rule): see _call_key
        self.called: dict = {}
        self.reads: dict = {}  # id(call) -> (call, the names its arguments read, or None if one holds a `?`)
        self.same: dict = {}  # (literal arguments, id(input shape), E305's flag) -> (the shape, `called`'s entry)

    def node(self, stmt: n.Layer, prev: Node, others: tuple = (), spec: LayerSpec | None = None,
             literal=UNREAD) -> Node:
        """The layer on `prev` (and `others`, the further tensors of a kind that takes several).  `spec` and
        `literal`: the kind's spec and `literal_key` of the call, where the caller read them (the walker keeps
        them per statement: `Walker._site`)."""
        call = stmt.call
        if spec is None:
            spec = REGISTRY.get(call.name)
            if spec is None:
                self._unknown(call)
                raise Skip
        if literal is UNREAD:
            literal = literal_key(spec, call)
        return self._made(stmt, spec, prev, others, *self._found(spec, call, prev, others, literal))

    def chain(self, stmt: n.Layer, source: Tensor, spec: LayerSpec, facts: tuple, literal: tuple | None) -> Tensor:
        """`node` of a statement on the chain's value alone, that names no output (nearly every statement), and
        the tensor it gives: a stack's line met again on the same shape (or a ReLU's on the same rank) is found
        and made in this one frame.  `facts`: the walker's `_layer_shape` of the kind."""
        st = self.st
        prev = st.nodes[source.id]
        call = stmt.call
        if (st.strided or st.reordered) and spec.views_from:  # a view in torch's forward
            merged_view(st, spec, call, source)
        shape = prev.shape
        kept = same = None
        if literal is not None:  # `_found`'s lookup in `same`, written out
            through = facts[7]
            same = (literal, -len(shape) if through else id(shape), spec.indices and prev.op != "input")
            kept = self.same.get(same)
        if kept is not None and (kept[0] is shape or through):
            args, given, written, out, rule = kept[1]
            args = dict(args)
            if through:
                out = shape
            if spec.last_dim_features:
                flatten_missing(self.st, spec, call, prev)
        else:
            args, given, written, out, rule = self._found(spec, call, prev, (), literal, same)
        if type(out) is not tuple:  # several outputs, not named: `_made` says so
            node = self._made(stmt, spec, prev, (), args, given, written, out, rule)
        else:
            name = st.node_name(spec.short or spec.name.lower(), stmt.target, stmt.target_span)
            if rule.conds or rule.warns or rule.tails:
                self._report(spec, call, rule, name, shape)
            if stmt.expect is not None:
                out = self.assertions.check(stmt, spec, out, shape, args, name)
            node = st.make_layer(name, (prev.id,), out, stmt.span, spec.name, args, given, written)
        laid_out(st, facts, node, source)
        return new_tensor(node.id, source.tainted)

    def _found(self, spec: LayerSpec, call: n.Call, prev: Node, others: tuple, literal: tuple | None,
               missed: tuple | None = None) -> tuple:
        """(arguments (a copy of its own), names given, names written, output shape, RuleContext) of the call on
        `prev` (and `others`): kept from a call met before on the same inputs, else resolved (and kept where
        resolving reported nothing).  `missed`: the key in `same` that `chain` looked up and did not find."""
        shape = prev.shape
        # a stack's next line on the shape object the same line made (or met) before: found by the shape's
        # identity, without hashing its sympy dims (Python code each); the entry keeps the shape, so its id is
        # its own.  A kind whose output is its input (ReLU) and reads nothing of it but its rank is found by the
        # rank (negative: never an id).  The flag: whether the input is a plan input, which E305 reads.
        through = spec.rule is same_shape and not spec.inferred
        at = -len(shape) if through else id(shape)
        if missed is not None:
            same, done = missed, None
        else:
            if others:
                same = None
            elif literal is not None:
                same = (literal, at, spec.indices and prev.op != "input")
            else:  # a block's line on the same shape, its names holding the same value objects: `_named_key`'s
                same = (id(call), at, spec.indices and prev.op != "input", self.diag.frames[-1].file)
            kept = self.same.get(same) if same is not None else None
            done = kept[1] if kept is not None and (kept[0] is shape or through) \
                and (literal is not None or self._same_values(kept, call)) else None
        if done is None:
            # what decides the binding (`_bind`'s key), worked out and hashed once for both caches (a block line's
            # key holds its span and sympy values, whose hashes are Python code)
            bind = literal if literal is not None else self._named_key(spec, call)
            try:
                bound = None if bind is None else hash(bind)
            except TypeError:  # a value that cannot be a key (none is, today)
                bound = None
            shapes = (shape, *[o.shape for o in others]) if others else (shape,)
            sources = self._sources(others) if others and spec.reads_sources else ()
            hashed = _shapes_hash(shapes)  # their sympy dims hash in Python code: once for both caches
            if sources and hashed is not None:
                hashed = _shapes_hash((*shapes, *[s.shape for s in sources if s is not None]))
            key = None if hashed is None or bound is None else self._call_key(spec, prev, shapes, literal, bind,
                                                                              sources)
            if key is not None:
                # kept under the key's hash (made of its parts' hashes), the key beside the entry (as `_apply`)
                h = hash((bound, hashed, key[2]))
                found = self.called.get(h)
                if found is not None and found[0] == key:
                    done = found[1]
            if done is None:
                reports = self.diag.reports
                resolved = self._resolve(spec, call, prev, others, bind, bound, hashed, sources)
                if key is not None and self.diag.reports == reports:
                    args, given, written, out, rule = resolved
                    kept = dict(args), given, written, out, rule
                    self.called[h] = key, kept
                    if same is not None:
                        self.same[same] = (shape, kept) if literal is not None else self._named_entry(shape, kept, call)
                return resolved
            if same is not None:
                self.same[same] = (shape, done) if literal is not None else self._named_entry(shape, done, call)
        args, given, written, out, rule = done
        if spec.last_dim_features:  # reads the layers before: not part of the key
            flatten_missing(self.st, spec, call, prev)
        # the output is this input, whichever shape of that rank the entry was made on
        return dict(args), given, written, shape if through else out, rule

    def _made(self, stmt: n.Layer, spec: LayerSpec, prev: Node, others: tuple, args: dict, given: tuple,
              written: tuple, out, rule: RuleContext) -> Node:
        """The node of the layer `stmt` on `prev` (and `others`) that `_found` gave: its outputs fitted to the
        names the statement gives, its name, its requirements and warnings, its `->` assertion."""
        call = stmt.call
        shape = prev.shape
        targets = stmt.targets
        if targets is not None or type(out) is not tuple:
            fit_targets(self.diag, spec.name, stmt, out)
        first = targets.items[0] if targets else None  # `out, (h, c) = LSTM(...)`: named `out`
        name = self.st.node_name(spec.short or spec.name.lower(), first.id if first else stmt.target,
                                 first.span if first else stmt.target_span)
        if rule.conds or rule.warns or rule.tails:
            self._report(spec, call, rule, name, shape)
        if stmt.expect is not None:
            out = self.assertions.check(stmt, spec, out, shape, args, name)
        inputs = (prev.id, *[o.id for o in others]) if others else (prev.id,)  # no generator for one input
        if isinstance(out, Several):  # LSTM's `out, (h, c)`: the first output's node, an item node per other
            node = Node(len(self.st.nodes), "layer", name, inputs, out, stmt.span, spec.name, args, given,
                        written=written)
            names = [(x.id, x.span) for x in stmt.targets.names()[1:]] if stmt.targets else []
            made = self.st.add_several(node, out, names)
            return self.st.nodes[made[0].id]
        return self.st.make_layer(name, inputs, out, stmt.span, spec.name, args, given, written)

    def _resolve(self, spec: LayerSpec, call: n.Call, prev: Node, others: tuple, bind: tuple | None,
                 bound: int | None, hashed: int | None, sources: tuple = ()) -> tuple:
        """(arguments, names given, names written, output shape, RuleContext) of the call on `prev`'s output
        (and `others`').  `bind`: `_bind`'s key and `bound` its hash, `hashed`: `_shapes_hash` of the input
        shapes (and of the sources' shapes), `sources`: `_sources` of `others`, as `_found` worked them out."""
        shape = prev.shape
        check_rank(self.diag, spec, shape, call)
        if spec.indices and prev.op != "input":
            self.diag.error("E305", f"{spec.name} reads integer indices, and {prev.name}'s output holds floats",
                            call.name_span, hints=[f"give {spec.name} a plan input of indices: `input tokens "
                                                   f"{show_shape(shape)}` then `{spec.name}(tokens, ...)`"])
            raise Skip
        args, given, written = self._bind(spec, call, shape, bind, bound)
        order = order_fix = None
        if spec.inferred:
            args[spec.inferred] = spec.infer(shape, args)
            given = (spec.inferred, *given)
            if spec.infer_others is not None:  # read from the other tensors: Bilinear's in2_features
                args.update(spec.infer_others(tuple(o.shape for o in others), args))
                given = (*given, *spec.infer_more)
            order, order_fix = torch_order(self.st, spec, call, args)
            batch_as_weight(self.diag, spec, call, shape, args[spec.inferred])
        if spec.last_dim_features:
            flatten_missing(self.st, spec, call, prev)
        try:
            out, rule = self._apply(spec, call, shape, args, tuple([o.shape for o in others]) if others else (),
                                    hashed, sources)
        except LayerError as exc:  # an error hides the W320 that explains it: say it here too
            value_fix = Suggestion(exc.hint, exc.arg, exc.value).fix(call, spec.arg_names, self.st.frame.source) \
                if exc.value is not None else None
            self.diag.error("E300", f"{spec.name}: {exc.message}", arg_span(call, exc.arg),
                            hints=[exc.hint, f"the input here is {show_shape(shape)}", order],
                            fixes=[order_fix, value_fix])
            raise Skip from None
        return args, given, written, out, rule

    def _call_key(self, spec: LayerSpec, prev: Node, shapes: tuple, literal: tuple | None, named: tuple | None,
                  sources: tuple = ()) -> tuple | None:
        """What decides `_resolve`'s result, for `called`: the arguments' literals (a stack repeats the same
        line), or else where the call is written (file and span: one call, whatever object the walker made of
        it) with the number of its non-tensor arguments and the values of the names they read (a block's line,
        called again with the same parameters); every input tensor's shape; whether the first is a plan input
        (E305).  None for a call with a `?` (each makes a new unknown).  `literal`: `literal_key` of the call,
        and else `named`: its `_named_key`, as `node` worked them out; `shapes`: the input shapes, none with a
        dim of many terms (`_shapes_hash`); `sources`: where a kind that `reads_sources` got its other tensors."""
        which = literal if literal is not None else named
        if which is None:
            return None
        return (which, shapes, spec.indices and prev.op != "input", *((sources,) if sources else ()))

    def _sources(self, others: tuple) -> tuple:
        """Where each of `others` was made (`RuleContext.sources`): the layer call it is an output of, or None."""
        nodes = self.st.nodes
        out = []
        for o in others:
            index = 0
            if o.op == "item":  # one of several outputs: the call is the node it reads
                index, o = o.args["index"], nodes[o.inputs[0]]
            out.append(Source(o.kind, tuple(o.args.items()), nodes[o.inputs[0]].shape, index, o.name, o.span.line)
                       if o.op == "layer" else None)
        return tuple(out)

    def _named_entry(self, shape: tuple, done: tuple, call: n.Call) -> tuple:
        """`same`'s entry for a call that is not all literals: the shape and `called`'s entry, the call and the
        value objects its names hold now (kept: their ids stay their own)."""
        names = self.diag.frames[-1].names
        read = self.reads[id(call)][1]  # `_named_key` read them, and the key is not None
        return shape, done, call, read, tuple([names.get(name, _MISSING) for name in read])

    def _same_values(self, kept: tuple, call: n.Call) -> bool:
        """Whether the names a call reads hold the very objects they held when `kept` was made (then the
        `_named_key`, made of their types and values, is the same)."""
        names = self.diag.frames[-1].names
        if kept[2] is not call:
            return False
        for name, value in zip(kept[3], kept[4], strict=True):
            if names.get(name, _MISSING) is not value:
                return False
        return True

    def _named_key(self, spec: LayerSpec, call: n.Call) -> tuple | None:
        """What decides a call's arguments where some are not literals: where it is written (file and span: one
        call, whatever object the walker made of it), the number of its arguments and the values of the names
        they read (with their types: 1, 1.0 and True stay apart).  None for a call with a `?`."""
        entry = self.reads.get(id(call))
        if entry is None:
            entry = self.reads[id(call)] = call, _names_read(call)  # the call kept: its id stays its own
        read = entry[1]
        if read is None:
            return None
        frame = self.diag.frames[-1]  # self.st.frame, read once
        names = frame.names
        key = [spec.name, frame.file, call.span, len(call.args)]
        for name in read:  # a loop, not a generator; `_typed` written out but for a tuple
            value = names.get(name, _MISSING)
            key.append((type(value), value) if type(value) is not tuple else _typed(value))
        return tuple(key)

    def _unknown(self, call: n.Call) -> None:
        """E100 for a name that is no layer, merge or block here: a block whose import failed (said as such),
        a torch name (what it is and what to write), else the closest name, as an edit."""
        space = self.st.frame.namespace
        failed = getattr(space, "failed", {}).get(call.name)
        if failed is not None:
            path, span = failed
            self.diag.error("E100", f"unknown block {call.name!r}: its import from {path} failed", call.name_span,
                            hints=[f"fix the import (line {span.line})"], notes=[("the import is here", span)])
            return
        known = [*REGISTRY, *space, *MERGES]
        message, hints = unknown_layer(call.name, REGISTRY) or (f"unknown layer {call.name!r}", [])
        fixes = []
        if not hints:
            hints, fixes = [did_you_mean(call.name, known)], [rename_fix(call.name, known, call.name_span)]
        hints = [*hints, *(f"{path} could not be imported (line {span.line}): its blocks are unknown"
                  for path, span in getattr(space, "broken", ()))]
        self.diag.error("E100", message, call.name_span, hints=hints, fixes=fixes)

    def _bind(self, spec: LayerSpec, call: n.Call, shape: tuple, key: tuple | None, hashed: int | None) \
            -> tuple[dict, tuple[str, ...], tuple]:
        """Binder.layer's result, kept where binding reported nothing, per (kind, arguments) where every argument
        is a literal (a stack repeats the same call), else per call and values of the names it reads (a block's
        line, called again with the same parameters on another input: the input's shape only words errors).
        `key`: `literal_key` of the call, else its `_named_key`; `hashed`: its hash (None: not kept), under which
        the entry is kept with the key beside it."""
        if hashed is not None:
            kept = self.bound.get(hashed)
            if kept is not None and kept[0] == key:
                args, given, written = kept[1]
                return dict(args), given, written
        reported = len(self.diag.diags)
        args, given, written = self.binder.layer(spec, call, shape)
        if hashed is not None and len(self.diag.diags) == reported:
            self.bound[hashed] = key, (dict(args), given, written)
        return args, given, written

    def _apply(self, spec: LayerSpec, call: n.Call, shape: tuple, args: dict, others: tuple = (),
               hashed: int | None = None, sources: tuple = ()) -> tuple[tuple, RuleContext]:
        """The rule's output shape and conditions.  Rules are pure, and real networks repeat the same layer
        on the same shape (a stage of identical blocks), so results are kept per (kind, shape, args), once
        the output is known to be in bounds; kept for the process, so that checking a plan again after an
        edit (the language server) runs the rules only of the layers whose input or arguments changed.
        `hashed`: `_shapes_hash` of (shape, *others), as `node` worked it out (None: not kept); `sources`: where
        a kind that `reads_sources` got the others (part of the key)."""
        if spec.rule is same_shape:  # the output is the input (a ReLU's): running that costs less than the key
            return shape, RuleContext(spec, (shape, *others))
        key = None
        if hashed is not None:
            # Kept under the key's hash, the key beside the result: a new layer's key is hashed once, not again
            # to store it, and its shapes not again at all (their sympy integers and dims hash in Python code).
            # Another key of the same hash only takes the place.
            key = (spec.name, shape, tuple(args.items()), others, *((sources,) if sources else ()))
            try:
                h = hash((spec.name, hashed, key[2]))
            except TypeError:  # an argument value that cannot be a key: just run the rule
                key = None
            else:
                kept = self.applied.get(h)
                if kept is not None and kept[0] == key:
                    return kept[1]
        rule = RuleContext(spec, (shape, *others), sources)
        out = spec.rule(rule, shape, args)
        if type(out) is tuple:
            out = self._bounded_shape(spec, call, out, shape)
        else:
            out = _exprs(out)
            for leaf in _leaves(out):
                self._bounded_shape(spec, call, leaf, shape)
        if key is not None:
            if len(self.applied) >= MAX_APPLIED:
                self.applied.clear()
            self.applied[h] = key, (out, rule)
        return out, rule

    def _report(self, spec: LayerSpec, call: n.Call, rule: RuleContext, name: str, shape) -> None:
        """The rule's conditions become requirements; its warnings are reported, W310 once per layer and
        worded when the requirements are known (requirements.word_tails)."""
        if rule.conds:  # one call for the layer's conditions (they come from one frame), not one each
            kind = spec.name  # a chain rule's words (require_later) are worded where they are read: Worded
            self.st.conds.extend([(cond, f"{kind}: {message}" if type(message) is str else Worded(kind, message), name,
                                   call.name_span if arg is None else arg_span(call, arg), shape)
                                  for cond, message, arg in rule.conds])
        for cond, message, arg, code in rule.warns:  # torch warns, or refuses only in training
            when = "" if cond is sympy.true else f" when {pyrepr(cond)}"
            self.diag.warn(code, f"{spec.name}: {message}{when}", arg_span(call, arg))
        if rule.tails:
            warning = self.diag.warn("W310", f"{spec.name} never reads {rule.tails[0][1]}", call.name_span,
                                     ["torch drops them silently; if that is intended, ignore this, otherwise pad "
                                      "the input or change the stride"])
            self.st.tails.append((warning, spec.name, rule.tails))

    def _bounded_shape(self, spec: LayerSpec, call: n.Call, out: tuple, before: tuple) -> tuple:
        """`out` with every dim a sympy expression (`_exprs`).  Dims whose formulas hold numbers past 100
        digits (an Upsample tower) are refused before printing them costs seconds or str() refuses an integer
        of 4,300 digits.  Dims passed through unchanged were checked at the layer that made them."""
        if out is before:  # a pointwise layer's: its dims were checked where they were made
            return out
        limit = _DIM_LIMIT
        for d in out:
            kind = type(d)
            if kind is sympy.Symbol or kind is sympy.Integer and -limit < d.p < limit:  # most dims: nothing to walk
                continue
            if not isinstance(d, sympy.Basic):  # a rule's int or bool: converted, then checked
                return self._bounded_shape(spec, call, _exprs(out), before)
            for b in before:  # not `in`: that hashes (walks) each new long sum
                if d is b:
                    break
            else:
                if not numbers_below(d, limit) and any(_holds_number_past(a, limit) for a in sympy.Add.make_args(d)):
                    shown = show_shape(out)  # cheap: the first layer past the limit is reported
                    shown = shown if len(shown) <= 160 else shown[:160] + "..."
                    self.diag.error("E008", f"{spec.name} makes a dim whose formula holds a number of more than "
                                    f"{MAX_DIM_DIGITS} digits: {shown}", call.name_span,
                                    hints=["no real tensor is that large: check the scale factors, strides and "
                                           "repeat counts before here"])
                    raise Skip
        return out


def laid_out(st: State, facts: tuple, node: Node, source: Tensor) -> None:
    """The strides of a layer's node (and its other outputs) from its input's, where they need working out.
    `facts`: the walker's `_layer_shape` of the kind."""
    # a kind that always makes a contiguous tensor leaves the layout as it is, and so does any kind where
    # nothing is strided yet (most plans: no view, slice or permute)
    if not facts[4] and (facts[3] or st.strided or st.reordered):
        st.layout([node.id, *range(node.id + 1, len(st.nodes))], [source.id], facts[2] or
                  node.args.get("inplace") is True, reorders=facts[3])
    if facts[5] and node.args.get("batch_first") is True and len(node.shape) == 3:
        st.layout([node.id], [source.id], False, reorders=True)  # a transpose of [L, N, H]: view needs proof


def _shapes_hash(shapes: tuple) -> int | None:
    """The hash of a layer's input shapes, for the keys of `called` and `applied`; None where a dim is a sum of
    many terms (named unknowns): it recurs rarely, and hashing it walks it."""
    for s in shapes:  # a loop, not any() of a generator: this runs for every layer
        for d in s:
            if type(d) is _ADD and len(d._args) >= LONG_KEY:
                return None
    try:
        return hash(shapes)
    except TypeError:  # a dim that cannot be a key (none is, today)
        return None


_ADD = sympy.Add


def _exprs(out):
    """A rule's output shape with every dim a sympy expression; a rule giving several (ops.Several), each."""
    if isinstance(out, Several):
        return Several(_exprs(s) for s in out)
    if type(out) is tuple:
        for d in out:  # most rules give sympy dims already: the tuple as it is
            if not isinstance(d, sympy.Basic):
                break
        else:
            return out
    return tuple(to_expr(d) for d in out)


def _leaves(out) -> list:
    return [leaf for s in out for leaf in _leaves(s)] if isinstance(out, Several) else [out]


_LITERALS = (n.Num, n.Float, n.Str, n.Const)


def literal_key(spec: LayerSpec, call: n.Call) -> tuple | None:
    """A key for a call whose arguments are all literals; None otherwise.  The node type is in it (1, 1.0
    and True are equal keys in Python), and a float as its repr (0.0 and -0.0 too)."""
    key = [spec.name]
    for a in call.args:
        value = a.value
        kind = type(value)
        if kind not in _LITERALS:
            return None
        key.append((a.name, kind, repr(value.value) if kind is n.Float else value.value))
    return tuple(key)


_MISSING = object()
_PARTS = {n.BinOp: ("left", "right"), n.BoolOp: ("left", "right"), n.Neg: ("operand",), n.Not: ("operand",),
          n.IfExp: ("cond", "then", "orelse")}
_ITEMS = {n.Tuple: "items", n.Compare: "operands"}


def _names_read(call: n.Call) -> tuple[str, ...] | None:
    """The names a call's arguments read, in order (repeats kept); None where one holds a `?` or syntax this
    does not know (nothing to key on)."""
    names: list[str] = []
    return tuple(names) if all(_read(a.value, names) for a in call.args) else None


def _read(expr, names: list) -> bool:
    kind = type(expr)
    if kind in _LITERALS:
        return True
    if kind is n.Name:
        names.append(expr.id)
        return True
    if kind is n.Call:  # max(), min(), a def: its value depends on its arguments alone
        return all(_read(a.value, names) for a in expr.args)
    if kind in _PARTS:
        return all(_read(getattr(expr, part), names) for part in _PARTS[kind])
    if kind in _ITEMS:
        return all(_read(item, names) for item in getattr(expr, _ITEMS[kind]))
    return False  # a `?` (n.Unknown), or anything new


def _typed(value):
    """A value with its type, for a key: 1, 1.0 and True are equal in Python (and sympy's 1 equals 1.0)."""
    if type(value) is tuple:
        return tuple, tuple(_typed(v) for v in value)
    return type(value), value


def arg_span(call: n.Call, arg: str | None):
    """Where to point for a problem with argument `arg`: the argument if written, else the call."""
    if arg is None:
        return call.name_span
    for a in call.args:
        if a.name == arg:
            return a.span
    names = REGISTRY[call.name].arg_names
    positional = [a for a in call.args if a.name is None]
    if arg in names and names.index(arg) < len(positional):
        return positional[names.index(arg)].span
    return call.name_span


@functools.lru_cache(maxsize=4096)  # the terms of a sum recur in the next layer's sums
def _holds_number_past(e, limit: int) -> bool:
    """Whether a number in `e` reaches `limit` (a plain walk: sympy's atoms() builds sets, and this runs on
    every term of every new dim)."""
    if e.is_Rational:
        return abs(e.p) >= limit or abs(e.q) >= limit
    return any(_holds_number_past(a, limit) for a in e.args)
