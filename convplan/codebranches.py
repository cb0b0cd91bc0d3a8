"""A block's `if`: decided per call, each branch written from the calls that took it under a flag
set in `__init__` (`self.use_downsample = stride != 1 or C != planes`); a branch no call takes is
written from its syntax (codeuntaken.py).  Where an `if` shifts the automatic names of what follows,
Shifted names the calls' names and `culprit` the `if` whose branches take the statements after it.
"""

from __future__ import annotations

from . import nodes as n
from .codeclasses import (
    Assign,
    Forward,
    If,
    label,
    names_in,
)
from .codeexpr import Unmergeable, interp
from .codeuntaken import Untaken, write_untaken


class Shifted(Unmergeable):
    """The calls name a submodule differently: an `if` before it shifted the automatic names."""

    def __init__(self, message: str, paths: dict):
        super().__init__(message)
        self.paths = paths  # id of a call -> the submodule's name in it


def culprit(ifs: list, paths: dict, room: dict, absorb: dict) -> int | None:
    """The `if` whose branches should take one more statement: the last one with statements left to take
    whose branches each name the submodule one way; else (two `if`s shift the names together) the last
    one with statements left, so that an earlier `if` takes the later one into its branches in turn."""
    open_ = [key for key, _, _ in ifs if absorb.get(key, 0) < room.get(key, 0)]
    for key, yes, no in reversed(ifs):
        if key in open_ and all(len({paths[c] for c in group if c in paths}) <= 1 for group in (yes, no)):
            return key
    return open_[-1] if open_ else None


class BranchWriter:
    """The `if`s of a block's class (a mixin of codeblock.BlockWriter)."""

    def _if(self, s: n.If, calls, init, fwd_items, fwd: Forward, seq, key: int) -> None:
        taken = []
        for c in calls:
            try:
                taken.append(bool(interp(s.cond, c.env)))
            except (ArithmeticError, TypeError) as exc:
                raise Unmergeable("a condition it cannot decide") from exc
        static = names_in(s.cond) <= set(self.consts)
        if static or len(calls) == 0:
            branch = s.body if (taken and taken[0]) else s.orelse
            return self.body(branch, calls, init, fwd_items, fwd, seq)
        if seq is not None or fwd.silent:
            raise Unmergeable("an `if` inside a numbered container")
        cond = self.expr(s.cond)
        yes = [c for c, t in zip(calls, taken, strict=True) if t]
        no = [c for c, t in zip(calls, taken, strict=True) if not t]
        entry, tensors, pinned = fwd.cur, dict(fwd.tensors), set(fwd.pinned)
        reusable = entry is not None and entry not in pinned and entry not in tensors.values()
        phi = entry if reusable else fwd.names.create("out" if fwd.names.taken("x") else "x")
        lets = set(self.lets)
        parts = []
        for branch, group in ((s.body, yes), (s.orelse, no)):
            init_b, fwd_b = [], []
            fwd.cur, fwd.tensors, fwd.pinned = phi, dict(tensors), set(pinned)
            self.lets = set(lets)
            if group:
                self.body(branch, group, init_b, fwd_b, fwd, None)
                last = fwd_b[-1] if fwd_b else None
                if isinstance(last, Assign) and last.target == fwd.cur and not last.several and \
                        fwd.cur not in tensors.values() and fwd.cur not in pinned and fwd.cur not in last.reads:
                    last.target = fwd.cur = phi  # `x = torch.cat(...)`, not `out = ...` and then `x = out`
                if fwd.cur != phi:
                    fwd_b.append(Assign(phi, fwd.cur, (fwd.cur,)))
                    self.var_nodes.setdefault(phi, {}).update({k: v for k, v in self.var_nodes.get(fwd.cur, {}).items()
                                                               if k in {id(c) for c in group}})
            elif any(not isinstance(x, (n.Pass, n.Let)) for x in branch):
                try:  # no call takes it: written from its syntax, for the calls that would
                    write_untaken(self, branch, calls, init_b, fwd_b, fwd)
                    if fwd.cur != phi:
                        fwd_b.append(Assign(phi, fwd.cur, (fwd.cur,)))
                except (Untaken, Unmergeable):
                    line = branch[0].span.line
                    init_b, fwd_b = [("raise", f"{self.class_name} cannot write this branch, which none of the "
                                               f"plan's calls takes ({self.file}:{line})")], []
            parts.append((init_b, fwd_b))
        fwd.tensors, fwd.pinned, self.lets = tensors, pinned, lets
        if yes and no:
            self.ifs.append((key, {id(c) for c in yes}, {id(c) for c in no}))
        (init_yes, fwd_yes), (init_no, fwd_no) = parts
        if fwd_yes or fwd_no:
            flag = self.flags.create("use_" + (label(s.body) or label(s.orelse) or "branch"))
            init.append(("code", f"self.{flag} = ", cond))
            if init_yes or init_no:
                init.append(("if", f"self.{flag}", init_yes, init_no))
            if phi != entry:
                fwd_items.append(Assign(phi, entry, (entry,)))
            fwd_items.append(If(f"self.{flag}", fwd_yes, fwd_no))
            fwd.cur = phi
        else:
            if init_yes or init_no:
                init.append(("if", cond, init_yes, init_no))
            if phi != entry:
                fwd.names.release(phi)
            fwd.cur = entry
