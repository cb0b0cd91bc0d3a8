"""The fast parsers (convplan/descent.py's recursive descent, then lalr.py's loop where it is not sure) give exactly
what Lark's own parser and tree give.

`parser.parse_tree` is the reference: `Lark.parse` with propagated positions, then the same node
builders.  For every example, every golden plan, random sentences of the grammar and mutations of
the examples: where the fast loop answers, its nodes (spans included) equal the reference's; where
Lark accepts a text, the fast loop accepts it too (a fallback would be correct but slow); where it
stops (a syntax error), Lark refuses the text as well.
"""

from __future__ import annotations

import random
import re
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark.exceptions import UnexpectedInput
from test_fuzz import SCALE, SEED, SEEDS, Walker, _grammar, _lark_strategy, mutate
from test_nodes_fast import slotted

from convplan import descent, lalr, nodebuilders, parser
from convplan.errors import PlanError, Span

ROOT = Path(__file__).resolve().parent.parent
PLANS = sorted([*ROOT.glob("examples/*.plan"), *ROOT.glob("tests/**/*.plan")])


def fast(text: str):
    """The fast loop's module, or "bail" where it hands the text to Lark."""
    body = text if text.endswith("\n") else text + "\n"
    nodes = nodebuilders.NodeBuilders("x.plan", body)
    tables = parser._tables()
    try:
        return lalr.parse(body, tables, lalr.callbacks(tables, nodes), nodes, parser.PlanIndenter)
    except lalr.Bail:
        return "bail"


def descended(text: str):
    """The recursive descent's module, or "bail" where it hands the text to the LALR loop."""
    body = text if text.endswith("\n") else text + "\n"
    try:
        return descent.parse(body, nodebuilders.NodeBuilders("x.plan", body))
    except descent.Bail:
        return "bail"


def reference(text: str):
    try:
        return parser.parse_tree(text, "x.plan")
    except (UnexpectedInput, parser._DedentError):
        return "refused"
    except nodebuilders.TreeError:  # a literal too large, nesting too deep: found by the node builders
        return "builder error"


def depths(node) -> list:
    """Every node's `_depth` (the builders' count of nesting, which decides E006 and no field shows), depth first."""
    found = []

    def walk(x):
        if isinstance(x, tuple):
            for item in x:
                walk(item)
        elif hasattr(x, "_field_names"):
            found.append((type(x).__name__, getattr(x, "_depth", None)))
            for name in x._field_names:
                walk(getattr(x, name))

    walk(node)
    return found


def same(text: str) -> str:
    """Assert the fast paths agree with Lark on `text`; returns which way it went."""
    try:
        got = fast(text)
    except nodebuilders.TreeError:  # parse_module then asks Lark, so that a syntax error later in the file comes first
        got = "builder error"
    want = reference(text)
    try:
        descends = descended(text)
    except nodebuilders.TreeError:
        descends = "builder error"
    if descends != "bail":  # where the descent answers, it answers as Lark (a builder's error where Lark has one)
        if want == "refused":
            assert descends == "builder error", f"the descent accepted text Lark refuses:\n{text!r}"
        else:
            assert descends == want, f"the descent's nodes differ for\n{text!r}"
            if want != "builder error":
                assert depths(descends) == depths(want), f"the descent's nesting counts differ for\n{text!r}"
    if want == "refused":
        assert got in ("bail", "builder error"), f"the fast loop accepted text Lark refuses:\n{text!r}"
    elif want == "builder error":
        assert got == want, f"the fast loop missed a builder error:\n{text!r}"
    else:
        assert got != "bail", f"the fast loop handed text Lark accepts to the slow path:\n{text!r}"
        assert got == want, f"different nodes for\n{text!r}"
        assert depths(got) == depths(want), f"different nesting counts for\n{text!r}"
        return "ok"
    return want


def test_the_fast_loop_is_used():
    assert parser._tables() is not None, "this Lark's internals were not understood"


@pytest.mark.parametrize("path", PLANS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_plan_file(path):
    same(path.read_text(encoding="utf-8"))


def test_spans_from_the_fast_loop():
    text = "plan A(k=3):\n    input [N, 2, L]\n    y = Conv1d(4, kernel_size=(k + 1) * 2, padding=-(-k))\n"
    module = fast(text)
    layer = module.plans[0].body[1]
    kernel = layer.call.args[1]
    assert (layer.span.line, layer.span.col, layer.span.end_col) == (3, 5, 58)
    assert (layer.call.span.col, layer.call.span.end_col) == (9, 58)
    # kernel_size=(k + 1) * 2: the product starts at its bracket, the sum inside it at `k`
    assert (kernel.span.col, kernel.value.span.col, kernel.value.span.end_col) == (19, 31, 42)
    assert (kernel.value.left.span.col, kernel.value.left.span.end_col) == (32, 37)
    padding = layer.call.args[2].value
    assert (padding.span.col, padding.span.end_col, padding.operand.operand.span.col) == (52, 57, 55)


def test_errors_still_come_from_lark():
    with pytest.raises(PlanError) as info:
        parser.parse_module("plan A:\n    input [N, 2, L]\n    Conv1d(4, 3\n", "bad.plan")
    assert info.value.diagnostics[0].file == "bad.plan"
    assert info.value.diagnostics[0].code.startswith("E0")


def test_an_integer_with_thousands_of_leading_zeros():
    # Python's int() refuses strings of 4301+ digits whatever their value: a ValueError escaped both paths
    text = f"plan A:\n    input [N, 2, L]\n    x = {'0' * 5000}7\n    y = {'0_' * 3000}1_2\n"
    assert same(text) == "ok"
    body = parser.parse_module(text).plans[0].body
    assert (body[1].value.value, body[2].value.value) == (7, 12)


def test_grammar_walk():
    rng = random.Random(SEED)
    walker = Walker(_grammar(), rng)
    seen = {same(walker.sentence()) for _ in range(int(1500 * SCALE))}
    assert "ok" in seen  # grammar sentences: every one the fast loop's to accept


@settings(max_examples=int(150 * SCALE), deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(_lark_strategy())
def test_from_lark(text):
    same(text)


def test_mutations():
    rng = random.Random(SEED)
    sources = [p.read_text(encoding="utf-8") for p in SEEDS]
    seen = {same(mutate(rng.choice(sources), rng)) for _ in range(int(2000 * SCALE))}
    assert {"ok", "refused"} <= seen


# -- repeated lines, at changing depths, with comments, blank lines, CRLF, tabs and continuation lines ----------
# (the LALR loop once recorded and replayed them: these texts stay, as plans of every kind of line)


def repeated(text: str, rng: random.Random, times: int | None = None) -> str:
    """`text` with some of its lines written `times` times in a row (in place; 3 to 7 times if None)."""
    out = []
    for line in text.splitlines(keepends=True):
        out += [line] * ((times or rng.randint(3, 7)) if rng.random() < 0.5 else 1)
    return "".join(out)


REPEATS = [
    "plan A:\n    input [N, 2, L]\n" + "    Conv1d(4, 3, padding=1)\n" * 5,
    "plan A:\n    input [N, 2, L]\n" + "    Conv1d(4, 3, padding=1)  # a comment\n" * 4 + "    ReLU()\n" * 3,
    "plan A:\r\n    input [N, 2, L]\r\n" + "    Conv1d(4, 3, padding=1)\r\n" * 4,
    "plan A:\n    input [N, 2, L]\n" + "    x = Conv1d(4, 3) -> [N, 4, L - 2]\n" * 3 + "    y = x\n" * 3,
    "block B(k):\n    input [N, C, L]\n" + "    Conv1d(C, k, padding=k // 2)\n" * 3
    + "plan A:\n    input [N, 2, L]\n" + "    Conv1d(C, k, padding=k // 2)\n" * 3
    + "    cat(dim=1):\n        branch:\n" + "            Conv1d(C, k, padding=k // 2)\n" * 3
    + "        branch:\n            pass\n",
    "plan A:\n    input [N, 2, L]\n" + "    Conv1d(4,\n           3)\n" * 4 + "    ReLU()\n" * 3,
    "plan A:\n    input [N, 2, L]\n" + "    Conv1d(4, 3) \\\n        -> [N, 4, L - 2]\n" * 3,
    "plan A:\n    input [N, 2, L]\n    repeat 2:\n" + "        ReLU()\n" * 3 + "    ReLU()\n" * 3,
    "plan A:\n    input [N, 2, L]\n" + "    ReLU()\n" * 3 + "    ReLU()\n" * 3 + "  ReLU()\n",  # a bad dedent
    "plan A:\n    input [N, 2, L]\n" + "    ReLU()\n" * 3 + "    ReLU(\n",  # unclosed
    "plan A:\n    input [N, 2, L]\n" + "    output x\n" * 3 + "    x = 1\n" * 3 + "    pass\n" * 3,
    "plan A:\n    input [N, 2, L]\n" + f"    x = {'9' * 30}\n" * 3,  # a builder error
    # the same tokens, other texts, the statement before each spanning from its keyword
    "plan A:\n    input [N, 2, L]\n" + "".join(f"    output x{i // 3}\n    pass\n" for i in range(9)),
    "plan A:\n    input [N, 2, L]\n" + "    Conv1d(4, 3, padding=1)\n    ReLU()\n" * 4  # recorded the 3rd time
    + "".join(f"    Conv1d({i}, {i % 3 + 1}, padding={i // 2})\n    ReLU()\n" for i in range(9)),
]


@pytest.mark.parametrize("text", REPEATS)
def test_repeated_lines(text):
    same(text)


def test_repeated_lines_have_nodes_of_their_own():
    """Lines of the same text share no node, span or list (a node is frozen, but one shared across lines would be a
    trap for a later change that is not)."""
    module = parser.parse_module(REPEATS[0])
    layers = module.plans[0].body[1:]
    seen: dict = {}
    for layer in layers:
        for obj in _objects(layer):
            assert seen.setdefault(id(obj), layer) is layer, f"{obj!r} is in two lines"


def _objects(node):
    """`node` and every node and span in it (a span is slotted: it has no `__dict__`)."""
    yield node
    if isinstance(node, Span):
        return
    for value in vars(node).values():
        if isinstance(value, tuple):
            for item in value:
                if hasattr(item, "__dict__") or isinstance(item, Span):
                    yield from _objects(item)
        elif hasattr(value, "__dict__") or isinstance(value, Span):
            yield from _objects(value)


CONTENTS = ["Conv2d(32, 3, padding=1)", "ReLU()", "x = Conv2d(8, 3) -> [N, 8, H - 2, W - 2]", "y = x", "x",
            "Conv2d(32, 3, padding=1)  # a comment", "Linear(4, bias=True)", "output x", "pass", "z = (k + 2) * 3",
            "Conv2d(32,\n  3)", "Conv2d(32, 3) \\\n    -> [N, 32, H, W]", "Conv2d(?c, 3)", "Upsample(scale_factor=2.0)",
            "Dropout(p=0.5)", "a, b = chunk(2, dim=1)", "t = 'text'", "n = -k if k > 1 else (1, 2)",
            "Conv2d(k, 3, padding=k // 2)", "h = Conv2d(C, 1)", "Conv2d(32, 3, padding=1)\t", "output x, y",
            "Conv2d(32, 3, padding=1) -> [N, 32, H, W]", "Linear(8)",
            # the same tokens as lines above, other texts: numbers, names and spacing that differ
            "Conv2d(128, 5, padding=22)", "Conv2d( 7,3 ,  padding = 0 )", "Conv2d(C, k, padding=1)", "Linear(1024)",
            "Linear(C)", "Conv2d(8, 1, padding=0)  # another", "Dropout(p=0.25)", "x = Conv2d(16, 1) -> [N, 16, H, W]",
            "xx = Conv2d(8, 3) -> [N, 8, H - 4, W]", "Conv2d(k, 3, padding=k // 4)", "Conv2d(16, 3, padding=2)\t",
            "output y", "output z, x", "output h"]  # (a statement whose span starts at its keyword, on the line before)
ERRORS = ["ReLU(", "ReLU())", "Conv2d(32, $)", "x = 9999999999999999999999", "Conv2d(32 3)", "x = ((((1))))" * 20]
OPENERS = ["repeat 2:", "repeat i in 3:", "cat(dim=1):", "residual:", "if k > 1:", "y = sequential:"]
BREAKS = ["\n"] * 6 + ["\r\n", "\n\n", "\n    # a comment\n", "\n  \n", "  # trailing\n", "\n# flush left\n"]
UNITS = ["    ", "    ", "\t", "  ", " \t"]


@settings(max_examples=int(300 * SCALE), deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_random_plans_of_repeated_lines(seed):
    """Plans of lines (or groups of two or three) written 1 to 8 times in a row, at changing depths (`repeat`,
    `cat`, `if`...), with comments, blank lines, CRLF, tabs, continuation lines and syntax errors: every node and
    span as Lark's."""
    same(repeated_plan(random.Random(seed)))


def repeated_plan(rng: random.Random) -> str:
    unit = rng.choice(UNITS)
    out = [f"plan A(k=3):\n{unit}input [N, 3, H, W]\n"]
    steps = [1]  # the levels each opener added
    for _ in range(rng.randint(1, 12)):
        indent = unit * sum(steps)
        if rng.random() < 0.15:
            opener = rng.choice(OPENERS)
            out.append(indent + opener + "\n")
            if opener.startswith("cat"):
                out.append(indent + unit + "branch:\n")
            steps.append(2 if opener.startswith("cat") else 1)
        elif len(steps) > 1 and rng.random() < 0.3:
            steps.pop()
        if rng.random() < 0.05:  # an inconsistent indentation
            indent = unit * sum(steps) + " "
        else:
            indent = unit * sum(steps)
        group = [indent + rng.choice(ERRORS if rng.random() < 0.05 else CONTENTS) + rng.choice(BREAKS)
                 for _ in range(rng.choice([1, 1, 1, 2, 3]))]  # a line, or two or three in turn (conv, relu, ...)
        out.append("".join(group) * rng.choice([1, 1, 2, 3, 4, 5, 6, 8, 16, 20]))
    return "".join(out)


@pytest.mark.parametrize("content", CONTENTS)
def test_every_line_repeated(content):
    """Each kind of line written many times, at two depths: every node and span as Lark's."""
    times = 20
    text = ("plan A(k=3):\n    input [N, 3, H, W]\n" + f"    {content}\n" * times
            + "    repeat 2:\n" + f"        {content}\n" * times)
    assert same(text) == "ok"


@pytest.mark.parametrize("seed", range(40))
def test_pinned_repeated_plans(seed):
    same(repeated_plan(random.Random(seed)))


def test_grammar_walk_with_repeated_lines():
    rng = random.Random(SEED + 1)
    walker = Walker(_grammar(), rng)
    seen = {same(repeated(walker.sentence(), rng)) for _ in range(int(800 * SCALE))}
    assert "ok" in seen


def test_mutations_with_repeated_lines():
    rng = random.Random(SEED + 1)
    sources = [p.read_text(encoding="utf-8") for p in SEEDS]
    seen = {same(repeated(mutate(rng.choice(sources), rng), rng)) for _ in range(int(1000 * SCALE))}
    assert {"ok", "refused"} <= seen


@pytest.mark.parametrize("word", ["Nonesuch", "Truely", "False_", "None1", "TrueFalse"])
def test_a_name_that_starts_with_a_constant_is_a_name(word):
    # True/False/None are whole words: `k = Nonesuch` is the name Nonesuch, not None then `such`
    text = f"plan P({word}=4):\n    input [N, {word}]\n    Linear({word}, bias=True)\n"
    same(text)
    layer = parser.parse_module(text).plans[0].body[1]
    assert layer.call.args[0].value.id == word
    assert layer.call.args[1].value.value is True


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_the_parsers_spans_are_spans(line, col, end_line, end_col):
    """nodes.new_span (the parser's) makes a Span without its __init__: the same value, hash, repr and frozenness."""
    made, built = lalr.new_span(line, col, end_line, end_col), Span(line, col, end_line, end_col)
    assert type(made) is Span and made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert made.to(built) == built.to(made) == built and slotted(made) == slotted(built)
    with pytest.raises(FrozenInstanceError):
        made.line = 0


@given(st.text(alphabet="ab \t\r\n#", max_size=60))
def test_the_builders_line_starts(text):
    """NodeBuilders' line starts (summed in C) are one after each newline, as re.finditer gives them."""
    assert nodebuilders.NodeBuilders("x.plan", text)._lines == [0] + [m.end() for m in re.finditer("\n", text)]


# -- the recursive descent (descent.py): parse_module's first try ---------------------------------------------


@pytest.mark.parametrize("path", PLANS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_descent_reads_every_plan_lark_accepts(path):
    """No example or golden plan that Lark accepts is handed on to the LALR loop: the descent is the fast path (and a
    golden plan with a syntax error is handed on, or stopped by a node builder)."""
    text = path.read_text(encoding="utf-8")
    want = reference(text)
    try:
        got = descended(text)
    except nodebuilders.TreeError:
        got = "builder error"
    if want == "refused":
        assert got in ("bail", "builder error")
    else:
        assert got == want


def test_parse_module_descends(monkeypatch):
    monkeypatch.setattr(lalr, "parse", lambda *a: pytest.fail("the LALR loop ran"))
    module = parser.parse_module((ROOT / "examples" / "resnet18.plan").read_text(encoding="utf-8"))
    assert module.plans


@pytest.mark.parametrize("text", [
    "plan A:\n    input [N, 2, L]\n    Conv1d(4,\n           3)  # brackets over lines\n    Linear(\n  8,\n)\n",
    "plan A:\n    input [N, 2,\n    L]\n    x = (1,\n# a comment inside\n 2)\n",
    "plan A:\r\n    input [N, 2, L]\r\n    Conv1d(4, 3)\r\n",
    "plan A:\n\tinput [N, 2, L]\n\tif 1 > 0:\n\t    pass\n\telse:\n\t\tpass\n",
])
def test_the_descent_reads_lines_the_indenter_joins_or_measures(text):
    assert descended(text) != "bail"
    assert same(text) == "ok"


KEYWORD_NAMES = sorted(descent.EXPRESSION_WORDS | {"plan", "block", "def", "import", "from", "input", "residual",
                                                   "shortcut", "branch", "repeat", "sequential", "output", "pass",
                                                   "return"})


@pytest.mark.parametrize("text", [
    "plan A:\n    input [N, 2, L]\n    block = sequential:\n        ReLU()\n    block\n",  # (convnext_tiny.plan)
    "plan A:\n    input [N, 2, L]\n    Conv1d(input=2, output=4)\n    a, plan = chunk(2, dim=1)\n",
    "plan A:\n    input [N, 2, L]\n    Conv1d(in=2)\n",  # a word Lark lexes as a name here: the LALR loop reads it
    "plan A:\n    input [N, 2, L]\n    x = 1 if True elsewhere\n",  # Lark lexes `else` `where` here (no name fits)
    "planeA:\n    input [N, 2, L]\n",  # `plan` `eA`: where no name fits, Lark's lexer takes the keyword's text
])
def test_words_of_the_grammar_as_names(text):
    same(text)


@settings(max_examples=int(300 * SCALE), deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_random_words_of_the_grammar_as_names(seed):
    """A name of an example (a layer, a target, an argument, a parameter...) replaced by a word of the grammar, or
    run into it (`planet`): where the descent answers, it answers as Lark."""
    rng = random.Random(seed)
    text = rng.choice(SEEDS).read_text(encoding="utf-8")
    for _ in range(rng.randint(1, 3)):
        names = list(re.finditer(r"(?<![A-Za-z0-9_.'\"#?])[A-Za-z_][A-Za-z0-9_]*", text))
        if not names:
            break
        m = rng.choice(names)
        word = rng.choice(KEYWORD_NAMES)
        new = rng.choice([word, word, word + m.group(), m.group() + word])
        text = text[:m.start()] + new + text[m.end():]
    same(text)


@pytest.mark.parametrize("text", [
    "plan A:\n    input [N, 2, L]\n    Conv1d(in=2)\n",  # a word of the grammar as a name
    "plan A:\n    input [N, 2, L]\n    Conv1d(4, 3) \\\n        -> [N, 4, L - 2]\n",  # a continued line
    "plan A:\n    input [N, 2, L]\n    Conv1d(4, 3)\r    ReLU()\n",  # a lone carriage return
])
def test_parse_module_reads_what_the_descent_hands_on(text, monkeypatch):
    """Where the descent bails, parse_module's LALR loop reads the text, as Lark does (or refuses it, as Lark)."""
    ran = []
    real = lalr.parse
    monkeypatch.setattr(lalr, "parse", lambda *a: ran.append(1) or real(*a))
    assert descended(text) == "bail"
    want = reference(text)
    if want == "refused":
        with pytest.raises(PlanError):
            parser.parse_module(text, "x.plan")
    else:
        assert parser.parse_module(text, "x.plan") == want
    assert ran


@pytest.mark.parametrize("text", [
    "plan A(k=.):\n    pass\n", "plan A:\n    input [N, .]\n", "plan A:\n    x = .\n", "plan A:\n    f(a=..)\n",
    "import '\n", "from ' import a\n", "plan A:\n    x = \"\n", "plan A:\n    input [N, ']\n",
    "plan A:\r\n    Linear(8,\r\r\n           16)\r\n", "plan A:\n    x = (1\r)\n",
    "plan A:\n    x = True:\n        branch:\n            pass\n        branch:\n            pass\n",
    "import 'a'\n\0junk\n",
])
def test_what_lark_refuses_the_descent_refuses(text):
    """Texts an adversarial run found the descent accepting (or raising on): a `.` alone, a quote alone, a lone
    carriage return inside brackets, a constant as a merge head, a NUL read as the end."""
    assert reference(text) == "refused"
    assert descended(text) == "bail"
    same(text)
    if "\0" not in text:
        with pytest.raises(PlanError):
            parser.parse_module(text, "x.plan")


@pytest.mark.parametrize("text", ["plan A:\n    input [N, 2, L]\n    f(() + x)\n    g(x=() < H)\n    h(a, ())\n",
                                  "plan A:\n    input [(), N]\n"])
def test_an_empty_tuple_then_an_operator_is_read(text):
    assert descended(text) != "bail"
    assert same(text) == "ok"


@pytest.mark.parametrize("calls", [62, 63, 64, 65])
@pytest.mark.parametrize("inner", ["1", "x", "k=1", "(1)", "1, -x"])
def test_calls_nested_to_the_limit(calls, inner):
    """A call's nesting counts its arguments' (the descent makes the calls of names and digits itself): calls
    nested past MAX_DEPTH are refused as Lark's builders refuse them, and no sooner."""
    text = f"plan A:\n    input [N, 2, L]\n    {'f(' * calls}{inner}{')' * calls}\n"
    try:
        assert descended(text) != "bail"
    except nodebuilders.TreeError:
        assert calls > 62
    refused_from = 63 if inner == "1, -x" else 64  # `-x` nests one level deeper than a name or a number
    assert same(text) == ("ok" if calls < refused_from else "builder error")


POSITIONS = ["plan A(k={}):\n    pass\n", "plan A:\n    input [N, {}]\n", "plan A:\n    x = {}\n",
             "plan A:\n    f(a={}, b)\n", "import {}\n"]


@settings(max_examples=int(300 * SCALE), deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(POSITIONS), st.text(alphabet="'\"#\\ a1_.eE+-\r\n?()[],=", max_size=5))
def test_short_texts_in_every_position(position, piece):
    """Every short run of the characters tokens are made of, where an expression or a name goes: the descent
    answers as Lark, and parse_module raises nothing but a PlanError (an adversarial run found a `.` alone raising
    ValueError, and a quote alone read as a string)."""
    text = position.format(piece)
    same(text)
    try:
        parser.parse_module(text, "x.plan")
    except PlanError:
        pass
