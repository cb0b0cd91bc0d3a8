"""What the importer knows about a model between its stages: per traced module a `Body` of `Op`s (in the
order torch ran them), and every `Problem` found, each located in the model."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """Something of the model that cannot become plan text: where it is (the submodule's qualified name and
    class, the fx node, the Python source line when fx recorded one) and why."""

    module: str  # qualified name ("" for the model itself)
    cls: str
    message: str
    node: str = ""  # the fx node's name
    source: str = ""  # "file.py:42" of the line that made the node

    def render(self) -> str:
        where = f"{self.module or '<model>'} ({self.cls})"
        if self.node:
            where += f", node {self.node}"
        if self.source:
            where += f", {self.source}"
        return f"{where}: {self.message}"


class ImportFailure(Exception):
    """The model cannot be turned into a plan: every problem found, each located."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], headline: str = ""):
        self.problems = tuple(problems)
        self.headline = headline or f"cannot import the model: {len(self.problems)} problem(s)"
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join([self.headline, *("  " + p.render() for p in self.problems)])


@dataclass
class Op:
    """One value of a body: an input, a layer (a torch.nn layer kind, or a functional call mapped to one), a
    block call (a submodule of a user class), or a merge (add, mul, cat)."""

    id: int
    what: str  # "input" | "layer" | "block" | "merge"
    kind: str  # layer kind, block class key, or merge name
    inputs: tuple[int, ...]  # tensor operands, in order
    shape: tuple[int, ...]  # at the example input
    path: tuple[str, ...] = ()  # submodule path relative to the body's module; () for a functional call
    args: dict = field(default_factory=dict)  # layer: torch arguments (all of them); merge: {"dim": d}
    instance: str = ""  # block: the submodule's qualified name (its own body)
    name: str = ""  # the fx node's name: a tensor name for a functional call
    flag: str = ""  # set by fold: the block parameter that turns this op on


@dataclass
class Body:
    """A traced module: its inputs (the first ops), what it computes, what it returns."""

    qualname: str
    cls: str  # class key: blocks of one class share a definition
    ops: list[Op]
    outputs: tuple[int, ...]
    input_names: tuple[str, ...]

    @property
    def inputs(self) -> list[Op]:
        return [op for op in self.ops if op.what == "input"]
