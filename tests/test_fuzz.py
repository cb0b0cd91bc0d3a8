"""Fuzzing the front end: any text gives a Plan or a located PlanError, fast, and no plan text
reaches sympy's string parser.

Three generators, each seeded and cheap enough for every CI run:
- a random walk over the grammar's own rules (thousands of cases, mostly near-valid plans),
- hypothesis' `from_lark` over the same grammar (fewer cases: its generation is slow),
- mutations of every example and golden plan: characters and tokens deleted, duplicated,
  swapped or inserted.
Most generated text is refused: the property is "parses or PlanError", never "generated
means valid".  A failing case prints its seed and text.  FUZZ_SCALE=10 runs ten times more.
"""

from __future__ import annotations

import gc
import os
import random
import re
import signal
import time
import traceback
from pathlib import Path

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

import convplan
from convplan.errors import PlanError
from convplan.parser import _grammar_path

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
SEED = int(os.environ.get("FUZZ_SEED", "20261127"))
CPU_LIMIT_S = 1.0  # per case: pathological input is refused in well under a second
HANG_LIMIT_S = 10  # wall clock, so that a hang fails instead of stalling CI

NAMES = ["N", "C", "L", "H", "W", "x", "y", "k", "width", "Conv1d", "Conv2d", "Linear", "ReLU", "MaxPool1d",
         "Flatten", "BatchNorm1d", "kernel_size", "padding", "stride", "groups", "add", "cat", "B", "eval",
         "__import__", "class", "Conv2D", "kernal_size"]
TERMINALS = {
    "NAME": NAMES,
    "INT": ["0", "1", "2", "3", "8", "32", "1_000", "999999999999999999", "99999999999999999999"],
    "FLOAT": ["0.5", "1e3", "1e999", ".5", "2."],
    "STRING": ["'same'", "'valid'", '"zeros"', "'reflect'", "'x'", "''", "'__import__(\"os\")'"],
    "UNKNOWN": ["?", "?p", "?k", "?__class__"],
    "COMPARE": ["==", "<", ">=", "!="],
}


# -- the property ----------------------------------------------------------------------


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def _importing() -> bool:
    """sympy parses strings of its own while importing a module lazily (unit prefixes): not plan text."""
    return any(frame.filename.startswith("<frozen importlib") for frame in traceback.extract_stack())


@pytest.fixture(autouse=True)
def no_string_parsing(monkeypatch):
    """Plan text never reaches sympy's parser: `sympy.sympify` of a str, or parse_expr, fails the test."""
    real = sympy.sympify
    convplan.load(ROOT / "examples" / "same_length.plan")  # sympy's lazy imports happen before the guard

    def guarded(a, *args, **kwargs):
        assert not isinstance(a, str), f"sympify got a string: {a!r}"
        return real(a, *args, **kwargs)

    real_parse = sympy.parsing.sympy_parser.parse_expr

    def parse(s, *args, **kwargs):
        assert _importing(), f"parse_expr called with {s!r}"
        return real_parse(s, *args, **kwargs)

    monkeypatch.setattr(sympy, "sympify", guarded)
    monkeypatch.setattr("sympy.parsing.sympy_parser.parse_expr", parse)


def check_text(text: str, context: str = "") -> str:
    """Plan or PlanError with every diagnostic inside the file; returns 'ok' or the first code."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_LIMIT_S)
    gc.disable()  # a full collection of the whole run's garbage is not this case's time
    start = time.process_time()
    try:
        convplan.parse(text, "fuzz.plan")
        result = "ok"
    except PlanError as exc:
        lines = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        for d in exc.diagnostics:
            assert 1 <= d.span.line <= lines and d.span.col >= 1, f"{context}: {d} outside\n{text!r}"
            assert d.message and re.fullmatch(r"[EW]\d{3}", d.code), f"{context}: {d}"
        str(exc)  # rendering never fails either
        result = exc.diagnostics[0].code
    except _Hang:
        pytest.fail(f"{context}: no answer in {HANG_LIMIT_S} s for\n{text!r}")
    except Exception as exc:  # anything but PlanError is a bug: show the input that found it
        raise AssertionError(f"{context}: {type(exc).__name__}: {exc} for\n{text!r}") from exc
    finally:
        spent = time.process_time() - start
        gc.enable()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert spent < CPU_LIMIT_S, f"{context}: {spent:.2f} s of CPU for\n{text!r}"
    return result


# -- 1. a random walk over the grammar -------------------------------------------------


def _grammar() -> Lark:
    return Lark(_grammar_path().read_text(), parser="lalr", start=["start"])


class Walker:
    """Random sentences of the grammar: rules expanded at random, the shortest expansion once deep.

    Indentation is written as markers (\\x01 in, \\x02 out) and laid out afterwards, since a
    context-free walk cannot track the indentation level."""

    def __init__(self, grammar: Lark, rng: random.Random, max_depth: int = 14):
        terminals, rules, _ = grammar.grammar.compile(["start"], ())
        self.literal = {t.name: t.pattern.value for t in terminals if t.pattern.type == "str"}
        self.rules: dict[str, list] = {}
        for r in rules:
            self.rules.setdefault(r.origin.name, []).append(r.expansion)
        self.rng, self.max_depth = rng, max_depth
        self.size = self._min_sizes()

    def _min_sizes(self) -> dict[str, int]:
        """Tokens in the shortest sentence of each rule (a fixed point; recursion makes it infinite at first)."""
        size = {name: float("inf") for name in self.rules}
        changed = True
        while changed:
            changed = False
            for name, expansions in self.rules.items():
                best = min(sum(size.get(s.name, 1) for s in e) for e in expansions)
                if best < size[name]:
                    size[name], changed = best, True
        return size

    def sentence(self) -> str:
        out: list[str] = []
        self._expand("start", 0, out)
        return layout("".join(out))

    def _expand(self, name: str, depth: int, out: list[str]) -> None:
        if name not in self.rules:
            out.append(self._terminal(name))
            return
        options = self.rules[name]
        if depth > self.max_depth:
            options = [min(options, key=lambda e: sum(self.size.get(s.name, 1) for s in e))]
        for sym in self.rng.choice(options):
            self._expand(sym.name, depth + 1, out)

    def _terminal(self, name: str) -> str:
        if name == "_NL":
            return self.rng.choice(["\n", "\n", "  # note\n"])
        if name in ("_INDENT", "_DEDENT"):
            return "\x01" if name == "_INDENT" else "\x02"
        if name in TERMINALS:
            return self.rng.choice(TERMINALS[name]) + " "
        return self.literal.get(name, "") + " "


def layout(text: str) -> str:
    """Replace the \\x01 / \\x02 markers by 4-space indentation at each line start."""
    out, level, at_start = [], 0, True
    for ch in text:
        if ch in "\x01\x02":
            level = level + 1 if ch == "\x01" else max(0, level - 1)
        elif ch == "\n":
            out.append(ch)
            at_start = True
        elif at_start and ch == " ":
            continue
        else:
            if at_start:
                out.append("    " * level)
                at_start = False
            out.append(ch)
    return "".join(out)


def test_grammar_walk():
    rng = random.Random(SEED)
    print(f"grammar walk seed {SEED}")
    walker = Walker(_grammar(), rng)
    results: dict[str, int] = {}
    for i in range(int(5000 * SCALE)):
        text = walker.sentence()
        code = check_text(text, f"walk seed {SEED} case {i}")
        results[code] = results.get(code, 0) + 1
    assert len(results) >= 8, results  # the walk reaches many different checks, not one early refusal


# -- 2. hypothesis from_lark -----------------------------------------------------------


def _lark_strategy():
    grammar = _grammar()
    explicit = {name: st.sampled_from(values).map(lambda s: s + " ") for name, values in TERMINALS.items()}
    explicit["_NL"] = st.sampled_from(["\n", "  # c\n"])
    explicit["_INDENT"], explicit["_DEDENT"] = st.just("\x01"), st.just("\x02")
    for t in grammar.terminals:
        if t.pattern.type == "str" and t.name not in explicit:
            explicit[t.name] = st.just(t.pattern.value + " ")  # a space after each token, so words stay apart
        elif t.name.startswith("__IGNORE"):
            explicit[t.name] = st.just(" ")
    return from_lark(grammar, start="start", explicit=explicit).map(layout)


@settings(max_examples=int(300 * SCALE), deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(_lark_strategy())
def test_from_lark(text):
    check_text(text, "from_lark")


@settings(max_examples=int(300 * SCALE), deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.text(alphabet=st.sampled_from(list("plan input()[]:,=->?#'\"\n\t _/*+%.0123456789LNCx\\é\0")),
               max_size=200))
def test_any_text(text):
    check_text(text, "text")


@settings(max_examples=int(100 * SCALE), deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300))
def test_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "x.plan"
    path.write_bytes(data)
    try:
        convplan.load(path)
    except PlanError as exc:
        assert all(d.span.line >= 1 for d in exc.diagnostics)


# -- 3. mutations of the examples ------------------------------------------------------

SEEDS = sorted([*ROOT.glob("examples/*.plan"), *ROOT.glob("tests/golden/errors/*.plan")])
TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|\d+|->|//|\*\*|.", re.S)
INSERTS = ["(", ")", "[", "]", ",", ":", "=", "->", "?", "//", "%", "-", "*", "\n", "    ", "\t", "#", "'", "\\\n",
           "999999999999999999999", "1e999", "Conv2D", "padding=?", "-> [N, 3, L]", "repeat 3:", "__import__",
           "plan X:", "input [N, 1, L]", "(" * 40, "-(" * 80, "\0", "é", "\r\n"]


def mutate(text: str, rng: random.Random) -> str:
    tokens = TOKEN.findall(text) or [""]
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        i = rng.randrange(len(tokens))
        j = rng.randrange(len(tokens))
        if op == 0:
            del tokens[i]
            tokens = tokens or [""]
        elif op == 1:
            tokens.insert(i, tokens[j])
        elif op == 2:
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == 3:
            tokens.insert(i, rng.choice(INSERTS))
        else:  # the same at character level
            flat = "".join(tokens)
            k = rng.randrange(len(flat) + 1)
            m = min(len(flat), k + rng.randint(1, 6))
            flat = {4: flat[:k] + flat[m:], 5: flat[:k] + flat[k:m] * 2 + flat[m:],
                    6: flat[:k] + flat[m:] + flat[k:m], 7: flat[:k] + rng.choice(INSERTS) + flat[k:]}[op]
            tokens = TOKEN.findall(flat) or [""]
    return "".join(tokens)


def test_mutations():
    rng = random.Random(SEED)
    print(f"mutation seed {SEED}")
    sources = [p.read_text(encoding="utf-8") for p in SEEDS]
    assert len(sources) >= 40
    accepted = 0
    for i in range(int(6000 * SCALE)):
        text = mutate(rng.choice(sources), rng)
        accepted += check_text(text, f"mutation seed {SEED} case {i}") == "ok"
    assert accepted > 0  # some mutants stay valid: the checker behind the parser is exercised too


def test_the_guard_works():
    with pytest.raises(AssertionError):
        sympy.sympify("1 + 1")
    with pytest.raises(AssertionError):
        sympy.parsing.sympy_parser.parse_expr("width + 1")
