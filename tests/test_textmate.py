"""The VS Code TextMate grammar, run by VS Code's own engine (vscode-textmate + vscode-oniguruma under
node, installed by `tests/setup.sh`), scopes every keyword, layer kind,
name, number, string and comment of every example and golden plan as Lark's lexer cuts it (the oracle
in _plan_tokens.py), over exactly its characters, and so does random token soup.  The committed
grammar is what editors/make_grammar.py writes from the registries."""

from __future__ import annotations

import json
import os
import random
import re
import runpy
import shutil
import subprocess

import pytest
from _plan_tokens import PIECES, PLANS, ROOT, tokens

EDITORS = ROOT / "editors"
GRAMMAR = EDITORS / "vscode" / "syntaxes" / "plan.tmLanguage.json"
NODE_MODULES = EDITORS / "test" / "node_modules"
SEED = int(os.environ.get("FUZZ_SEED", "20261204"))

EXPECTED = {  # oracle kind -> the innermost scope it may get
    "keyword": ("keyword.control.", "keyword.operator.logical.", "storage.type."),
    "constant": ("constant.language.",),
    "kind": ("support.class.layer.", "variable.parameter.", "variable.other.assignment."),  # `Conv2d = ...`
    "merge": ("support.function.merge.", "variable.", "entity.name."),
    "name": ("variable.other.", "variable.parameter.", "entity.name."),
    "int": ("constant.numeric.integer.",),
    "float": ("constant.numeric.float.",),
    "string": ("string.quoted.",),
    "unknown": ("variable.language.unknown.",),
    "comment": ("comment.line.",),
}


def tokenise(texts: list[str]) -> list[dict[int, tuple[int, str]]]:
    """Per text: start offset (in characters) -> (end offset, innermost scope), from vscode-textmate."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "vscode-textmate").is_dir():
        pytest.fail("the TextMate test runs VS Code's engine under node: install node 20 and run "
                    "`npm install --prefix editors/test --no-package-lock` (tests/setup.sh does)")
    run = subprocess.run([node, str(EDITORS / "test" / "tokenise.js")], capture_output=True, text=True, check=False,
                         input=json.dumps({"grammar": str(GRAMMAR), "texts": texts}), timeout=120,
                         env={**os.environ, "NODE_PATH": str(NODE_MODULES)}, encoding="utf-8")
    assert run.returncode == 0, run.stderr
    return [_offsets(text, lines) for text, lines in zip(texts, json.loads(run.stdout), strict=True)]


def _offsets(text: str, lines: list) -> dict[int, tuple[int, str]]:
    out, base = {}, 0
    for line, toks in zip(text.split("\n"), lines, strict=True):
        units = [0]  # UTF-16 offset -> character offset (a character past U+FFFF takes two units)
        for i, ch in enumerate(line):
            units.extend([i + 1] * (2 if ord(ch) > 0xFFFF else 1))
        for start, end, *scopes in toks:
            if end > start:
                out[base + units[start]] = (base + units[end], scopes[-1])
        base += len(line) + 1
    return out


def agree(text: str, got: dict) -> list[str]:
    wrong = []
    for tok in tokens(text):
        if tok.kind == "other":  # may share a token with the spaces around it: only its scope counts
            scope = next(sc for start, (end, sc) in got.items() if start <= tok.start < end)
            if scope != "source.plan":
                wrong.append(f"{tok.text!r} at {tok.start}, outside the language, got scope {scope}")
            continue
        end, scope = got.get(tok.start, (None, None))
        if end != tok.end or scope is None or not scope.startswith(EXPECTED[tok.kind]):
            wrong.append(f"{tok.kind} {tok.text!r} at {tok.start}: scope {scope} up to {end}")
    return wrong


def test_the_committed_grammar_is_generated_from_the_registries():
    made = runpy.run_path(str(EDITORS / "make_grammar.py"))["text"]()
    assert GRAMMAR.read_text(encoding="utf-8") == made, "run: python editors/make_grammar.py"


def test_every_example_and_golden_plan_is_scoped_as_the_grammar_cuts_it():
    texts = [p.read_text(encoding="utf-8") for p in PLANS]
    assert len(texts) >= 90
    for path, text, got in zip(PLANS, texts, tokenise(texts), strict=True):
        wrong = agree(text, got)
        assert not wrong, f"{path.relative_to(ROOT)}:\n" + "\n".join(wrong[:10])


def test_random_token_soup_is_scoped_as_the_grammar_cuts_it():
    rng = random.Random(SEED)
    texts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40))) for _ in range(400)]
    for text, got in zip(texts, tokenise(texts), strict=True):
        wrong = agree(text, got)
        assert not wrong, f"FUZZ_SEED={SEED}: {text!r}\n" + "\n".join(wrong[:10])


def test_a_declared_name_spelled_as_a_layer_kind_or_merge_is_a_name():
    texts = ["plan Conv2d", "plan Conv2d:\n    input [N, 3, H, W]\n", "block add(x):\n    pass\n", "plan\tReLU",
             "plan \\\nConv2d"]
    for text, got in zip(texts, tokenise(texts), strict=True):
        wrong = agree(text, got)
        assert not wrong, f"{text!r}\n" + "\n".join(wrong[:10])


def test_the_extension_declares_the_language_grammar_and_server():
    manifest = json.loads((EDITORS / "vscode" / "package.json").read_text())
    (language,) = manifest["contributes"]["languages"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert language["extensions"] == [".plan"] and grammar["language"] == language["id"]
    assert (EDITORS / "vscode" / grammar["path"]).resolve() == GRAMMAR
    assert json.loads(GRAMMAR.read_text())["scopeName"] == grammar["scopeName"] == "source.plan"
    config = json.loads((EDITORS / "vscode" / language["configuration"]).read_text())
    assert config["comments"]["lineComment"] == "#"
    assert manifest["main"] == "./extension.js" and "vscode-languageclient" in manifest["dependencies"]


def test_the_extension_starts_convplan_lsp_over_stdio():
    """extension.js run under node with stand-ins for the `vscode` and `vscode-languageclient` modules (only VS
    Code has the real ones): it starts `convplan lsp` over stdio for plan documents, and stops it."""
    node = shutil.which("node")
    assert node is not None, "node 20 is needed for the editor tests"
    run = subprocess.run([node, str(EDITORS / "test" / "activate.js")], capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["server"] == {"command": "convplan", "args": ["lsp"], "transport": "stdio"}
    assert {"scheme": "file", "language": "plan"} in seen["documentSelector"]
    assert seen["started"] and seen["stopped"]
    # the server reads example sizes from initializationOptions and from the `convplan` settings section
    assert seen["initializationOptions"] == {"sizes": {}} and seen["configurationSection"] == "convplan"
    custom = seen["custom"]
    assert custom["server"] == {"command": "/opt/venv/bin/convplan", "args": ["lsp", "--x"], "transport": "stdio"}
    assert custom["initializationOptions"] == {"sizes": {"H": 224}}


def test_enter_after_a_colon_indents_exactly_where_a_body_opens():
    """language-configuration.json's increaseIndentPattern (a JavaScript regex that Python's re reads the
    same) matches every line that opens a body in the examples, and no other line.  A line that leaves a
    bracket open (a header continued on the next line) is the editor's bracket rules' business, not this one's."""
    config = json.loads((EDITORS / "vscode" / "language-configuration.json").read_text())
    opens = re.compile(config["indentationRules"]["increaseIndentPattern"])
    checked = 0
    for path in ROOT.glob("examples/**/*.plan"):
        lines = [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
        depth, start = 0, None  # start: the indent of the line a continued statement began on
        for line, after in zip(lines, lines[1:], strict=False):
            code = line.split("#", 1)[0]
            start = len(line) - len(line.lstrip()) if start is None else start
            depth += code.count("(") + code.count("[") - code.count(")") - code.count("]")
            if depth > 0:  # continued inside a bracket
                assert not opens.match(line), f"{path.name}: {line!r}"
                continue
            deeper = len(after) - len(after.lstrip()) > start
            start = None
            assert bool(opens.match(line)) == deeper, f"{path.name}: {line!r}"
            checked += deeper
    assert checked > 30
