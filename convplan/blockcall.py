"""A block called: its input tensors matched against its `input` patterns (a new name binds the caller's
dim, a known one must agree: a requirement where it cannot be decided), its arguments bound where the
call is, its body walked by the walker in a frame of its own, whose node names, submodule and notes say
where the block was called.  The result is the block's output tensor."""

from __future__ import annotations

import weakref
from dataclasses import replace
from typing import NamedTuple

import sympy

from . import nodes as n
from .assertions import Named
from .scope import BlockSource, Frame, Skip, Tensor, check_name, checked_names
from .shapes import equal_condition, pyrepr
from .show import show_shape

MAX_BLOCK_DEPTH = 32  # nested block calls (recursion included)


class _Facts(NamedTuple):
    """What a block call reads of its definition alone."""

    block: n.BlockDef  # held, so that its id stays its own
    wanted: int  # its input statements
    inputs: tuple  # their names
    params: tuple  # its parameters' names, in order
    base: str  # its node names' base
    note: str  # the note on a call's diagnostics


class BlockCalls:
    def __init__(self, walker):
        # the walker owns this part: a strong reference back would make every check a cycle (nogc.py)
        self.walker, self.st, self.diag = weakref.proxy(walker), walker.st, walker.diag
        self.values, self.binder, self.assertions = walker.values, walker.binder, walker.assertions
        self.facts: dict = {}  # id(block) -> its _Facts, read once a definition
        self.patterns: dict = {}  # id(input statement) -> (statement, its dim names, or None): see `input`

    def call(self, stmt: n.Layer, inputs: list, src: BlockSource) -> Tensor:
        """The block `stmt` calls (`src`: the caller's namespace's entry for it), on `inputs` (the chain's value
        first where it names fewer): its arguments bound, its body walked in a frame of its own; its output."""
        call, caller = stmt.call, self.diag.frames[-1]  # self.st.frame
        block = src.definition
        facts = self.facts.get(id(block))  # facts found are this block's: they hold it, so its id stays its own
        if facts is None:
            names = tuple(s.name or "x" for s in block.body if isinstance(s, n.Input))
            facts = self.facts[id(block)] = _Facts(block, len(names), names, tuple(p.name for p in block.params),
                                                   block.name.lower(), f"in block {block.name}, called here")
        wanted = facts.wanted
        if wanted == 0:
            self.diag.error("E210", f"block {block.name} has no input statement", call.name_span,
                            notes=[(f"block {block.name} is defined here", block.name_span, src.file, src.source)])
            raise Skip
        inputs = self.walker.with_current(inputs, wanted, call)
        if len(inputs) != wanted:
            self.diag.error("E211", f"block {block.name} takes {wanted} tensor{'s' * (wanted != 1)}, "
                            f"got {len(inputs)}", call.span)
            raise Skip
        if len(self.diag.frames) > MAX_BLOCK_DEPTH:
            self.diag.error("E260", f"blocks nest more than {MAX_BLOCK_DEPTH} deep (does {block.name} call itself "
                            "without end?)", call.name_span)
            raise Skip
        given = self.binder.block(block, call)
        prefix = self.st.node_name(facts.base, stmt.target, stmt.target_span) + "_"
        module = self.st.open_module("block", prefix[:-1], stmt.target_span or call.span, block, facts.inputs)
        note = (facts.note, call.span, caller.file, caller.source)
        # every parameter given, in order (the usual call): the frame's names are the arguments as they are
        complete = len(given) == len(facts.params) and tuple(given) == facts.params
        frame = Frame(given if complete else {}, src.namespace, src.file, src.source, prefix, (note, *caller.notes),
                      block, list(inputs), containers=[module])
        self.diag.frames.append(frame)
        try:
            for p in block.params if not complete else ():  # a default is evaluated after those before it
                frame.names[p.name] = given[p.name] if p.name in given else self.values.eval(p.default, p.name)
            self.walker.body(block.body)
        finally:
            self.diag.frames.pop()
        current = frame.current
        result = frame.outputs[0] if frame.outputs else current
        if result is None:
            raise Skip
        self.st.close_block(module, tuple([t.id for t in inputs]), result.id, frame.names)
        if (current is not None and current.tainted) or any([t.tainted for t in inputs]):
            result = replace(result, tainted=True)
        if stmt.expect is not None:
            self.assertions.check(stmt, Named(block.name), self.st.nodes[result.id].shape)
        return result

    def input(self, stmt: n.Input, f: Frame) -> None:
        """A block's `input` statement: the next of the caller's tensors, its shape matched to the pattern.
        `f`: the block call's frame (self.st.frame)."""
        tensor = f.pending.pop(0)
        shape = self.st.nodes[tensor.id].shape
        kept = self.patterns.get(id(stmt))  # found: this statement's, which it holds (its id stays its own)
        if kept is None:
            kept = self.patterns[id(stmt)] = stmt, _fresh_names(stmt.shape)
        fresh, names = kept[1], f.names
        # `input [N, C, H, W]` whose names are all new here (the usual pattern): each binds its dim, as
        # _bind_pattern would bind them one by one, without working out the pattern again
        if fresh is not None and len(fresh) == len(shape) and names.keys().isdisjoint(fresh) and checked_names(fresh):
            names.update(zip(fresh, shape, strict=True))
        else:
            self._bind_pattern(stmt.shape, shape, f.block)
        if stmt.name is not None:
            self.walker.bind(stmt.name, tensor, stmt.span)
        f.current = tensor

    def _bind_pattern(self, pattern: n.Shape, shape: tuple, block: n.BlockDef) -> None:
        """Match the caller's input shape against `input [N, C, H, W]`: new names bind, others must agree."""
        dims = pattern.dims
        rest = [i for i, d in enumerate(dims) if isinstance(d, n.Ellipsis_)]
        if len(rest) > 1:
            self.diag.error("E207", "an input pattern has at most one `...`", dims[rest[1]].span)
            raise Skip
        if rest:
            head, tail = dims[: rest[0]], dims[rest[0] + 1:]
            fits = len(shape) >= len(head) + len(tail)
            pairs = [*zip(head, shape, strict=False), *zip(tail, shape[len(shape) - len(tail):], strict=False)]
        else:
            fits = len(shape) == len(dims)
            pairs = list(zip(dims, shape, strict=False))
        if not fits:
            want = f"{'at least ' if rest else ''}{len(dims) - len(rest)}-D"
            self.diag.error("E212", f"block {block.name} expects a {want} input, got {len(shape)}-D "
                            f"{show_shape(shape)}", pattern.span)
            raise Skip
        for d, actual in pairs:
            self._bind_dim(d, actual, shape, block)

    def _bind_dim(self, d, actual, shape, block: n.BlockDef) -> None:
        names = self.diag.frames[-1].names  # self.st.frame's
        if isinstance(d, n.Name) and d.id not in names:
            check_name(self.diag, d.id, d.span, "dim name")
            names[d.id] = actual
            return
        want = self.values.int(d, "an input dim")
        cond = equal_condition(want, actual)
        if cond is sympy.false:
            self.diag.error("E213", f"block {block.name} expects this dim to be {pyrepr(want)}, got "
                            f"{pyrepr(actual)} (the input is {show_shape(shape)})", d.span)
            raise Skip
        if cond is not sympy.true:
            self.st.conds.append((cond, f"{block.name}: the input dim {pyrepr(actual)} must be {pyrepr(want)}",
                                  block.name, d.span, shape))


def _fresh_names(pattern: n.Shape) -> tuple[str, ...] | None:
    """The dims of an input pattern that names each dim once (no `...`, no expression); None otherwise."""
    ids = tuple(d.id for d in pattern.dims if type(d) is n.Name)
    return ids if len(ids) == len(pattern.dims) == len(set(ids)) else None
