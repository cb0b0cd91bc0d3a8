"""No code from plan text: nothing in convplan can evaluate a string.

ruff's S307 (eval) and S102 (exec) run over the package, and an AST check of our own refuses
the other doors: sympy's string parsers (`parse_expr`, `sympify`/`S` of a string literal or of
a formatted string, `lambdify`), `compile`, `__import__` and `importlib`.  `sympy.sympify` of
values that are already sympy objects or ints stays allowed; test_fuzz.py checks at run time
that no string ever reaches it.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "convplan"
FORBIDDEN_NAMES = {"parse_expr", "lambdify", "parse_latex", "eval", "exec", "compile", "__import__", "importlib",
                   "evaluate_expr", "sympy_parser"}
STRING_PARSERS = {"sympify", "S", "simplify", "nsimplify"}  # these parse a str as Python code


def _ruff() -> list[str]:
    exe = shutil.which("ruff")
    return [exe] if exe else [sys.executable, "-m", "ruff"]


def test_ruff_refuses_eval_and_exec():
    result = subprocess.run([*_ruff(), "check", "--no-cache", "--select", "S307,S102", "--output-format",
                             "concise", str(PACKAGE)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_catches_what_it_should(tmp_path):
    """The rule set is live: a file with eval and exec is flagged."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f(s):\n    eval(s)\n    exec(s)\n")
    result = subprocess.run([*_ruff(), "check", "--no-cache", "--isolated", "--select", "S307,S102",
                             "--output-format", "concise", str(bad)], capture_output=True, text=True)
    assert "S307" in result.stdout and "S102" in result.stdout


def problems(source: str, filename: str) -> list[str]:
    """Uses of string-evaluating functions in Python source (method definitions named eval are fine)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name and any(part in FORBIDDEN_NAMES for part in name.split(".")):
                    found.append(f"{filename}:{node.lineno}: imports {name}")
        elif isinstance(node, ast.Call):
            name = _called(node.func)
            if name in FORBIDDEN_NAMES and not _is_method_on_object(node.func):
                found.append(f"{filename}:{node.lineno}: calls {name}")
            if name in STRING_PARSERS and node.args and _stringy(node.args[0]):
                found.append(f"{filename}:{node.lineno}: {name} of a string")
        elif isinstance(node, ast.Attribute) and node.attr in ("parse_expr", "lambdify", "parse_latex"):
            found.append(f"{filename}:{node.lineno}: uses {node.attr}")
    return found


def _called(func) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _is_method_on_object(func) -> bool:
    """`module.eval()` (torch's train/eval switch) is not the builtin: allowed unless it is `builtins.eval`."""
    return (isinstance(func, ast.Attribute) and func.attr in ("eval", "compile")
            and not (isinstance(func.value, ast.Name) and func.value.id == "builtins"))


def _stringy(arg) -> bool:
    if isinstance(arg, ast.Constant):
        return isinstance(arg.value, str)
    if isinstance(arg, ast.JoinedStr):
        return True
    if isinstance(arg, ast.Call) and _called(arg.func) in ("str", "format", "join", "repr"):
        return True
    return isinstance(arg, ast.BinOp) and (_stringy(arg.left) or _stringy(arg.right))


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_string_evaluation_in_the_package(path):
    assert problems(path.read_text(encoding="utf-8"), path.name) == []


@pytest.mark.parametrize("snippet", [
    "eval(text)",
    "exec(code)",
    "import importlib",
    "from sympy.parsing.sympy_parser import parse_expr",
    "sympy.parsing.sympy_parser.parse_expr(t)",
    "sympy.sympify('x + 1')",
    "sympy.sympify(f'{name} + 1')",
    "sympy.S(str(x))",
    "sympy.nsimplify('x*2')",
    "f = sympy.lambdify(x, e)",
    "__import__('os')",
    "builtins.eval(s)",
    "compile(src, 'f', 'exec')",
])
def test_the_check_catches(snippet):
    assert problems(snippet, "snippet.py")


@pytest.mark.parametrize("snippet", [
    "module.eval()",
    "sympy.sympify(d)",
    "sympy.Integer(3)",
    "sympy.Symbol(name, integer=True)",
    "sympy.Symbol('_fix', integer=True)",
    "class F(sympy.Function):\n    @classmethod\n    def eval(cls, a):\n        return a",
])
def test_the_check_allows(snippet):
    assert problems(snippet, "snippet.py") == []
