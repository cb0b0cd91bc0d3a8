"""A block's repeats: a numbered container built in a loop where its iterations are alike
(codeloops.py), unrolled where they are not; a repeat without a container whose count differs between
calls as `add_module` in a `for` (build()'s names: `invertedresidual1`, `invertedresidual2`, ...).
"""

from __future__ import annotations

import re

from . import nodes as n
from .codeclasses import (
    Assign,
    Forward,
    Loop,
    chainable,
    count_of,
    idents,
    layer_head,
    names_in,
)
from .codeexpr import Unmergeable, equal, interp, plain, py
from .codeloops import drop_defaults, fold_iterations, list_name, loop_items
from .graph import Module, Node
from .merges import MERGES
from .ops import OPS
from .pysource import Brackets, Pre, flat, value_source


class RepeatWriter:
    """The repeats of a block's class (a mixin of codeblock.BlockWriter)."""

    def _repeat(self, s: n.Repeat, calls, init, fwd_items, fwd: Forward, seq) -> None:
        each = [1 if s.count is None else count_of(interp(s.count, c.env)) for c in calls]
        counts = set(each)
        if len(counts) > 1 and s.target is None:
            return self._loop(s, calls, each, init, fwd_items, fwd, seq)
        if len(counts) > 1:
            return self._sequence_loop(s, calls, each, init, fwd_items, fwd, seq)
        if len(counts) != 1:
            raise Unmergeable(f"its repeat count differs between calls ({', '.join(map(str, sorted(counts)))}): "
                              "the submodules are numbered per call")
        count = counts.pop()
        if s.target is None:
            return self._unroll(s, count, calls, init, fwd_items, fwd, seq)
        seqs = [c.queues[-1].pop(0) if c.queues[-1] else None for c in calls]
        if any(not isinstance(m, Module) or m.kind != "seq" for m in seqs):
            raise Unmergeable("the statements and the graph do not line up")
        rel = {m.path[len(c.module.path):] for m, c in zip(seqs, calls, strict=True)}
        if len(rel) != 1:
            raise Unmergeable("the submodules' paths differ between calls")
        for m, c in zip(seqs, calls, strict=True):
            c.queues.append(list(self.graph.children(m.path)))
        docs: list = []
        chained = chainable(s.body, self.refs) and count > 0 and not fwd.silent
        entry = fwd.cur
        self.frozen += 1
        fwd.silent += chained
        outer, self.in_repeat = self.in_repeat, True
        try:
            self._unroll(s, count, calls, init, fwd_items, fwd, docs)
        finally:
            self.frozen -= 1
            fwd.silent -= chained
            self.in_repeat = outer
        for c in calls:
            if c.queues.pop():
                raise Unmergeable("the statements and the graph do not line up")
        path = rel.pop()
        doc = self._container(s, count, path, docs, init)
        if seq is not None:
            seq.append(doc)
        else:
            init.append(("code", "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path) + " = ", doc))
        if chained:
            fwd.cur = entry
            target = self._target(s.target, fwd)
            line = seqs[0].span.line
            access = "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path)
            fwd_items.append(Assign(target, Brackets(access, (entry,)), (entry,), f"{self.file}:{line}"))
            fwd.label = path[-1]
            fwd.cur = target
        elif s.target in self.refs and fwd.cur is not None:
            fwd.tensors[s.target] = fwd.cur

    def _container(self, s: n.Repeat, count: int, path: tuple, docs: list, init: list):
        """A repeat's nn.Sequential: built in a `for` where its iterations are alike (codeloops.py)."""
        written = lambda v: value_source(plain(v), self.ctx.expr)  # noqa: E731
        strip = lambda d: drop_defaults(d, self.ctx.defaults, written)  # noqa: E731
        if self.in_repeat:  # no loop inside a loop: the outer repeat's iterations hold it whole
            return Brackets("nn.Sequential", tuple(strip(d) for d in docs))
        var, folded = "_", fold_iterations(docs, count, None)
        if folded is None:
            var = self.local.create(s.var or "i")
            folded = fold_iterations(docs, count, var)
            if folded is None:
                self.local.release(var)
                return Brackets("nn.Sequential", tuple(strip(d) for d in docs))
        name = self.local.create(list_name(path))
        init += loop_items(name, var, str(count), [strip(d) for d in folded])
        return Brackets("nn.Sequential", (f"*{name}",))

    def _loop(self, s: n.Repeat, calls, counts: list[int], init, fwd_items, fwd: Forward, seq) -> None:
        """A repeat whose count differs between calls, of one call (`repeat i in repeats: Block(...)`), as a
        loop: `self.add_module(f"block{i + 1}", Block(...))` in __init__, `getattr(self, f"block{i + 1}")` in
        forward: the submodules keep the names build() gives them."""
        differs = Unmergeable(f"its repeat count differs between calls ({', '.join(map(str, sorted(set(counts))))})"
                              ": the submodules are numbered per call")
        body = [x for x in s.body if not isinstance(x, n.Pass)]
        stmt = body[0] if len(body) == 1 else None
        if seq is not None or fwd.silent or not isinstance(stmt, n.Layer) or stmt.target or stmt.targets or \
                any(a.name is None and isinstance(a.value, n.Name) and a.value.id in fwd.tensors
                    for a in stmt.call.args):
            raise differs
        runs = []
        for c, k in zip(calls, counts, strict=True):
            steps = [self._next_step(c, stmt) for _ in range(k)]
            for st in steps:
                child = c.queues[-1].pop(0) if c.queues[-1] else None
                if st.op not in ("layer", "block") or \
                        (child.module_path if isinstance(child, Node) else getattr(child, "path", None)) != st.path:
                    raise differs
            runs.append(steps)
        numbered = {_numbered(st.path[len(c.module.path):], j) for c, steps in zip(calls, runs, strict=True)
                    for j, st in enumerate(steps)}
        if len(numbered) != 1 or None in numbered:
            raise differs
        prefix, start = numbered.pop()
        var = self.local.create(s.var or "i")
        self.names[s.var or "\0i"], saved = var, set(self.lets)
        self.lets.add(s.var or "\0i")
        try:
            doc = self._loop_child(stmt, calls, runs, var, s.var)
        finally:
            self.lets = saved
        name = f'f"{prefix}{{{var} + {start}}}"' if start else f'f"{prefix}{{{var}}}"'
        init.append(("for", var, self.expr(s.count), [("code", "", Brackets("self.add_module", (name, doc)))]))
        entry = fwd.cur
        target = self._target(None, fwd)
        if target != entry:
            fwd_items.append(Assign(target, entry, (entry,)))
        fvar = fwd.names.create(s.var or "i")
        count = py(s.count, {x: self._forward_name(x) for x in names_in(s.count)})[0]
        call = f'getattr(self, f"{prefix}{{{fvar} + {start}}}")' if start else f'getattr(self, f"{prefix}{{{fvar}}}")'
        fwd_items.append(Loop(fvar, count, [Assign(target, Brackets(call, (target,)), (target,),
                                                   f"{self.file}:{stmt.span.line}")]))
        fwd.cur = target

    def _sequence_loop(self, s: n.Repeat, calls, counts: list[int], init, fwd_items, fwd: Forward, seq) -> None:
        """`units = repeat i in n:` of one call, n differing between calls: `units = []`, a `for` over
        range(n) that appends it, `self.units = nn.Sequential(*units)`; forward calls the container."""
        differs = Unmergeable(f"its repeat count differs between calls ({', '.join(map(str, sorted(set(counts))))})"
                              ": the submodules are numbered per call")
        body = [x for x in s.body if not isinstance(x, n.Pass)]
        stmt = body[0] if len(body) == 1 else None
        if seq is not None or fwd.silent or not isinstance(stmt, n.Layer) or stmt.target or stmt.targets or \
                not chainable(s.body, self.refs) or stmt.call.name in MERGES or stmt.call.name in OPS:
            raise differs
        seqs = [c.queues[-1].pop(0) if c.queues[-1] else None for c in calls]
        if any(not isinstance(m, Module) or m.kind != "seq" for m in seqs) or \
                len({m.path[len(c.module.path):] for m, c in zip(seqs, calls, strict=True)}) != 1:
            raise differs
        runs = []
        for c, m, k in zip(calls, seqs, counts, strict=True):
            children = list(self.graph.children(m.path))
            steps = [self._next_step(c, stmt) for _ in range(k)]
            if [getattr(x, "module_path", None) or x.path for x in children] != [st.path for st in steps] or \
                    any(st.op not in ("layer", "block") or st.path[-1] != str(j) for j, st in enumerate(steps)):
                raise differs
            runs.append(steps)
        var = self.local.create(s.var or "i")
        self.names[s.var or "\0i"], saved = var, set(self.lets)
        self.lets.add(s.var or "\0i")
        try:
            doc = self._loop_child(stmt, calls, runs, var, s.var)
        finally:
            self.lets = saved
        path = seqs[0].path[len(calls[0].module.path):]
        name = self.local.create(list_name(path))
        access = "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path)
        if var not in idents(flat(doc)):  # the same in every iteration: no index
            self.local.release(var)
            var = "_"
        init += [*loop_items(name, var, self.expr(s.count), [doc]),
                 ("code", f"{access} = ", Brackets("nn.Sequential", (f"*{name}",)))]
        entry = fwd.cur
        target = self._target(s.target, fwd)
        fwd_items.append(Assign(target, Brackets(access, (entry,)), (entry,), f"{self.file}:{seqs[0].span.line}"))
        fwd.label = path[-1]
        fwd.cur = target

    def _loop_child(self, stmt: n.Layer, calls, runs: list, var: str, plan_var: str | None):
        """The constructor call of a loop's submodule: each argument as the plan wrote it (with the loop's index),
        else as one value for the first iteration and one for the others (`C if i == 0 else out`)."""
        first = runs[0][0] if runs[0] else next(r[0] for r in runs if r)
        options = stmt.call.args
        written = self._written(stmt, first, options)
        if first.op == "block":
            cls, args = self.ctx.classes[first.item.path]
            if any(self.ctx.classes[st.item.path][0] != cls for r in runs for st in r):
                raise Unmergeable(f"the calls of {first.item.name} here are different classes")
            names = [a for a, _ in args]
            value_of = lambda st, a: dict(self.ctx.classes[st.item.path][1])[a]  # noqa: E731
            defaults = self.ctx.defaults.get(cls, {})
            head, keyword = cls, lambda a, positional: True  # noqa: E731
        else:
            node = first.item
            if any(st.item.kind != node.kind or st.item.given != node.given for r in runs for st in r):
                raise Unmergeable(f"{node.kind} is given different arguments in different calls")
            if node.spec.compose is not None:  # torch builds it from other modules: no one call to fold
                raise Unmergeable(f"{node.kind} is built from other modules")
            order = node.spec.call_args(node.given)
            names = [a for a, _ in order]
            value_of = lambda st, a: st.item.args[a]  # noqa: E731
            defaults, head = {}, layer_head(node)
            keyword = lambda a, positional: not positional  # noqa: E731
            positions = dict(order)
        out = []
        for a in names:
            values = [[value_of(st, a) for st in r] for r in runs]
            if a in defaults and all(equal(v, defaults[a]) for vs in values for v in vs):
                continue
            text = self._loop_value(calls, values, written.get(a), var, plan_var, a,
                                    first.op == "block" and a not in written or first.op == "layer"
                                    and a == first.item.spec.inferred)
            positional = first.op == "layer" and positions[a]
            out.append(Pre(f"{a}=", text) if keyword(a, positional) else text)
        return Brackets(head, tuple(out))

    def _loop_value(self, calls, values: list, written, var: str, plan_var: str | None, hint: str, inferred: bool):
        if written is not None and plan_var is not None:
            try:
                if all(equal(interp(written, {**c.env, plan_var: j}), v)
                       for c, vs in zip(calls, values, strict=True) for j, v in enumerate(vs)):
                    return self.expr(written)
            except (Unmergeable, ArithmeticError, TypeError):
                pass
        head = [(c, vs[0]) for c, vs in zip(calls, values, strict=True) if vs]
        rest = [(c, vs[1]) for c, vs in zip(calls, values, strict=True) if len(vs) > 1]
        if any(not all(equal(v, vs[1]) for v in vs[1:]) for vs in values if len(vs) > 1):
            raise Unmergeable(f"the iterations' {hint} differ otherwise than the first from the others")
        texts = [self.value([c for c, _ in part], [v for _, v in part], written if plan_var is None else None, hint,
                            inferred) for part in (head, rest) if part]
        return texts[0] if len(texts) == 1 or texts[0] == texts[1] else f"{texts[0]} if {var} == 0 else {texts[1]}"

    def _unroll(self, s: n.Repeat, count: int, calls, init, fwd_items, fwd: Forward, seq) -> None:
        saved = self.consts.get(s.var) if s.var else None
        for i in range(count):
            if s.var:
                self.consts[s.var] = i
                for c in calls:
                    c.env[s.var] = i
            self.body(s.body, calls, init, fwd_items, fwd, seq)
        if s.var:
            self.consts.pop(s.var, None)
            if saved is not None:
                self.consts[s.var] = saved


def _numbered(rel: tuple[str, ...], j: int):
    """(`invertedresidual`, 1) for the j-th of `invertedresidual1`, `invertedresidual2`, ...; None otherwise."""

    found = re.fullmatch(r"(.*?[^0-9])([0-9]+)", rel[0]) if len(rel) == 1 else None
    return (found[1], int(found[2]) - j) if found else None
