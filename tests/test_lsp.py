"""`convplan lsp` end to end: a real client over stdio (tests/_lsp_client.py) against the server process.

The published diagnostics are compared with `convplan check --json` run on the same file; inlay hints with
the shapes of `convplan check`'s table; every quick fix is applied as the editor would (LSP positions,
UTF-16) and the file checked again.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytest.importorskip("pygls")

from _lsp_client import ROOT, Client  # noqa: E402

import convplan  # noqa: E402
from convplan import cli  # noqa: E402
from convplan.errors import source_lines  # noqa: E402
from convplan.show import show_shape  # noqa: E402

EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))
GOLDEN = sorted((ROOT / "tests" / "golden" / "errors").glob("*.plan")) + sorted(
    (ROOT / "examples" / "errors").glob("*.plan"))
UNET = ROOT / "examples" / "unet.plan"


@pytest.fixture(scope="module")
def client():
    c = Client()
    yield c
    c.shutdown()


def whole(path: Path) -> dict:
    return {"start": {"line": 0, "character": 0}, "end": {"line": 10_000, "character": 0}}


def check_json(path: Path) -> dict:
    """`convplan check --json FILE`, run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        cli.main(["check", "--json", str(path)])
    return json.loads(out.getvalue())


def utf16(line: str, col: int) -> int:
    """LSP's character offset of the 1-based column `col` of `line`."""
    return len(line[: col - 1].encode("utf-16-le")) // 2


def lsp_key(path_uri: str, d: dict) -> tuple:
    r = d["range"]
    message, *hints = d["message"].split("\nhint: ")
    return (path_uri, r["start"]["line"], r["start"]["character"], r["end"]["line"], r["end"]["character"],
            d["code"], "error" if d["severity"] == 1 else "warning", message, tuple(hints))


def cli_key(d: dict) -> tuple:
    """A diagnostic of `check --json` as the LSP range it should be published at."""
    path = Path(d["file"])
    lines = source_lines(path.read_text(encoding="utf-8-sig")) if path.is_file() else []
    line = lambda k: lines[k - 1] if 0 < k <= len(lines) else ""  # noqa: E731
    return (path.resolve().as_uri(), max(d["line"] - 1, 0), utf16(line(d["line"]), d["column"]),
            max(d["end_line"] - 1, 0), utf16(line(d["end_line"]), d["end_column"]), d["code"], d["severity"],
            d["message"], tuple(d["hints"]))


def published(client: Client, path: Path) -> set:
    """Every diagnostic the server published after opening `path`, in every file."""
    client.open(path)
    found = {lsp_key(uri, d) for uri, ds in client.diagnostics.items() for d in ds}
    client.close(path)
    return found


# -- diagnostics ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES + GOLDEN, ids=lambda p: p.name)
def test_diagnostics_equal_check(client, path):
    expected = check_json(path.resolve())
    found = published(client, path)
    if expected["ok"]:  # `convplan check` shows the warnings of a plan it accepts
        assert found == {cli_key(w) for w in expected["warnings"]}
        return
    errors = {k for k in found if k[6] == "error"}
    shown = {cli_key(d) for d in expected["diagnostics"]}
    assert shown <= errors  # check shows at most 20 errors; the editor gets all of them
    assert len(errors) == len(shown) or len(shown) == 20
    warnings = {cli_key(w.to_dict()) for w in convplan.analyse_file(path.resolve()).warnings}
    assert {k for k in found if k[6] == "warning"} == warnings  # check does not print them for a refused plan


def test_several_errors_at_once(client):
    found = published(client, ROOT / "tests" / "golden" / "errors" / "several_errors.plan")
    assert sorted((k[1], k[5]) for k in found) == [(3, "E100"), (5, "E103"), (7, "E301")]


def test_an_imported_file_is_checked_with_its_importer(client, tmp_path):
    lib, main = tmp_path / "lib.plan", tmp_path / "main.plan"
    lib.write_text("block Head(k):\n    input [N, C, L]\n    Conv1d(k, kernal_size=3)\n", encoding="utf-8")
    main.write_text('from "lib.plan" import Head\nplan P:\n    input [N, 2, L]\n    Head(4)\n', encoding="utf-8")
    client.open(main)
    in_lib = client.diagnostics[lib.resolve().as_uri()]
    assert [d["code"] for d in in_lib] == ["E103"]  # published for the file the error is in
    assert in_lib[0]["relatedInformation"][0]["location"]["uri"] == main.resolve().as_uri()  # the call site
    fixed = "block Head(k):\n    input [N, C, L]\n    Conv1d(k, kernel_size=3)\n"
    client.open(lib)
    count = client.published[main.resolve().as_uri()]
    client.change(lib, fixed)  # unsaved: the change re-checks the open file that imports it, with this text
    client.wait_published(main.resolve().as_uri(), count)
    assert client.diagnostics[lib.resolve().as_uri()] == []
    assert client.diagnostics[main.resolve().as_uri()] == []
    count = client.published[main.resolve().as_uri()]
    client.change(lib, fixed.replace("kernel_size=3", "kernel_size=3, strid=1"), version=3)
    client.wait_published(main.resolve().as_uri(), count)
    assert [d["code"] for d in client.diagnostics[lib.resolve().as_uri()]] == ["E103"]
    count = client.published[main.resolve().as_uri()]
    client.close(lib)  # closed: the file on disk counts again
    client.wait_published(main.resolve().as_uri(), count)
    assert [d["code"] for d in client.diagnostics[lib.resolve().as_uri()]] == ["E103"]
    assert "kernal_size" in client.diagnostics[lib.resolve().as_uri()][0]["message"]
    client.close(main)


def test_fixing_a_failed_import_rechecks_the_importer(client, tmp_path):
    lib, main = tmp_path / "lib.plan", tmp_path / "main.plan"
    lib.write_text("block Hed:\n    input [N, C, L]\n    ReLU()\n", encoding="utf-8")
    main.write_text('from "lib.plan" import Head\nplan P:\n    input [N, 2, L]\n    Head()\n', encoding="utf-8")
    assert [d["code"] for d in client.open(main)] == ["E021", "E100"]  # lib.plan has no block Head; its call
    client.open(lib)
    count = client.published[main.resolve().as_uri()]
    client.change(lib, "block Head:\n    input [N, C, L]\n    ReLU()\n")
    assert client.wait_published(main.resolve().as_uri(), count) == []
    client.close(lib)
    client.close(main)


def test_a_failed_import_leaves_the_rest_of_the_file_its_shapes(client, tmp_path):
    main = tmp_path / "main.plan"
    main.write_text('from "gone.plan" import Head\nplan P:\n    input [N, 2, L]\n    Conv1d(8, 3)\n    Head()\n'
                    '    ReLU()\n', encoding="utf-8")
    found = client.open(main)
    assert [(d["code"], d["range"]["start"]["line"]) for d in found] == [("E023", 0), ("E100", 4)]
    assert "its import from gone.plan failed" in found[1]["message"]
    assert found[1]["relatedInformation"][0]["location"]["range"]["start"]["line"] == 0  # the import
    labels = inlay(client, main, keep_open=True)
    assert labels[4] == labels[6] == "[N, 8, L - 2]" and 5 not in labels  # the lines around keep theirs
    # an import whose file has errors of its own: shown in that file, and the rest of this one still checked
    (tmp_path / "gone.plan").write_text("block Head:\n    input [N, C, L]\n    ReLU(\n", encoding="utf-8")
    client.change(main, main.read_text(encoding="utf-8") + "    Conv1d(4, 1)\n")
    assert [d["code"] for d in client.diagnostics[(tmp_path / "gone.plan").resolve().as_uri()]] == ["E014"]
    assert [d["code"] for d in client.diagnostics[main.resolve().as_uri()]] == ["E100"]
    assert inlay(client, main, keep_open=True)[7] == "[N, 4, L - 2]"
    client.close(main)


def test_an_imported_file_changed_on_disk_rechecks_its_importers(tmp_path):
    """Not open in the editor, lib.plan changes on disk (git checkout, another editor): the client reports
    it (workspace/didChangeWatchedFiles, which the server registered for) and main.plan is checked again."""
    watching = {"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}}
    client = Client(capabilities=watching)
    try:
        lib, main = tmp_path / "lib.plan", tmp_path / "main.plan"
        lib.write_text("block Head(k):\n    input [N, C, L]\n    Conv1d(k, kernel_size=3)\n", encoding="utf-8")
        main.write_text('from "lib.plan" import Head\nplan P:\n    input [N, 2, L]\n    Head(4)\n', encoding="utf-8")
        assert client.open(main) == []
        [registration] = [r for q in client.server_requests if q["method"] == "client/registerCapability"
                          for r in q["params"]["registrations"]]
        assert registration["method"] == "workspace/didChangeWatchedFiles"
        assert registration["registerOptions"]["watchers"][0]["globPattern"] == "**/*.plan"
        uri = main.resolve().as_uri()
        for text, kind, codes in [
            ("block Head(k):\n    input [N, C, L]\n    Conv1d(k, kernal_size=3)\n", 2, ["E103"]),  # changed
            (None, 3, ["E023", "E100"]),  # deleted: the import fails, and the call says why
            ("block Head(k):\n    input [N, C, L]\n    Conv1d(k, kernel_size=3)\n", 1, []),  # made again
        ]:
            lib.write_text(text, encoding="utf-8") if text is not None else lib.unlink()
            count = client.published.get(uri, 0)
            client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": lib.resolve().as_uri(),
                                                                           "type": kind}]})
            client.wait_published(uri, count)
            found = [d["code"] for ds in client.diagnostics.values() for d in ds]
            assert sorted(found) == codes
        # a change on disk of a file open in the editor changes nothing: the editor's text counts
        client.open(lib, "block Head(k):\n    input [N, C, L]\n    ReLU()\n")
        lib.write_text("block Head(k):\n    input [N, C, L]\n    Conv1d(k, kernal_size=3)\n", encoding="utf-8")
        client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": lib.resolve().as_uri(), "type": 2}]})
        assert client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {
            "line": 3, "character": 5}}) is not None  # answered after the notification: it was handled
        assert [d["code"] for ds in client.diagnostics.values() for d in ds] == []
    finally:
        client.shutdown()


def test_a_library_shows_the_shapes_of_its_calls(client):
    main = ROOT / "examples" / "mobilenet_se.plan"
    lib = ROOT / "examples" / "lib" / "mobile_blocks.plan"
    client.open(lib)
    assert inlay(client, lib, keep_open=True) == {}  # no plan calls its blocks yet
    client.open(main)
    labels = inlay(client, lib, keep_open=True)
    plan = convplan.load(main)
    lines = {node.span.line for node in plan.graph.nodes if node.file}
    assert lines and lines <= set(labels)
    for node in plan.graph.nodes:
        if node.file:
            assert show_shape(node.shape) in labels[node.span.line] or "more" in labels[node.span.line]
    client.close(main)
    client.close(lib)


def test_diagnostics_follow_edits(client, tmp_path):
    path = tmp_path / "edit.plan"
    text = "plan P:\n    input [N, 1, L]\n    Conv1d(32, kernel_size=3)\n"
    path.write_text(text, encoding="utf-8")
    assert client.open(path) == []
    broken = client.change(path, text.replace("Conv1d", "Conv1D"))
    assert [d["code"] for d in broken] == ["E100"]
    assert client.change(path, text, version=3) == []
    uri, count = path.resolve().as_uri(), client.published[path.resolve().as_uri()]
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 4}, "contentChanges": [
        {"range": {"start": {"line": 2, "character": 11}, "end": {"line": 2, "character": 13}}, "text": "8"}]})
    assert client.wait_published(uri, count) == []  # an incremental change, as editors send them
    hover = client.at("textDocument/hover", path, 2, 6)["contents"]["value"]
    assert "`[N, 8, L - 2]`" in hover
    client.close(path)


def test_a_burst_of_changes_ends_checked_on_its_last_text(client, tmp_path):
    """Typing sends a change per key while a check runs: the server checks the last one (a change is checked
    a moment after it arrives, unless a newer one came), and a request right after the burst is answered
    on the last text, whether or not its check has run."""
    path = tmp_path / "burst.plan"
    text = "plan P:\n    input [N, 1, L]\n    Conv1d({}, kernel_size=3)\n    ReLU()\n"
    path.write_text(text.format(8), encoding="utf-8")
    assert client.open(path) == []
    uri, count = path.resolve().as_uri(), client.published[path.resolve().as_uri()]
    for width in range(9, 21):
        last = text.format(width) + ("    Conv1d(4, kernal_size=1)\n" if width == 20 else "")
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": width},
                                                 "contentChanges": [{"text": last}]})
    hover = client.at("textDocument/hover", path, 2, 6)["contents"]["value"]
    assert "`[N, 20, L - 2]`" in hover  # the last text, though its check may not have been due yet
    found = client.diagnostics[uri]  # published before the hover's answer, and no older check comes after
    assert [d["code"] for d in found] == ["E103"] and found[0]["range"]["start"]["line"] == 4
    assert client.versions[uri] == 20  # the diagnostics say which version of the text they are of
    assert client.published[uri] - count <= 12  # at most once per change; usually once for the whole burst
    client.close(path)


# -- inlay hints -----------------------------------------------------------------------------


def inlay(client: Client, path: Path, keep_open: bool = False) -> dict[int, str]:
    if not keep_open:
        client.open(path)
    hints = client.request("textDocument/inlayHint", {"textDocument": {"uri": path.resolve().as_uri()},
                                                      "range": whole(path)})
    if not keep_open:
        client.close(path)
    return {h["position"]["line"] + 1: h["label"] for h in hints if h["kind"] == 1}


def statement_lines(definition) -> list[int]:
    """The lines of a definition's statements that make a tensor (not `name = expr`, `output`, `pass`)."""
    from convplan import nodes as n

    out = []
    for stmt in definition.body:
        if isinstance(stmt, (n.Let, n.Output, n.Pass)):
            continue
        out.append(stmt.span.line)
        if isinstance(stmt, n.Merge):
            for b in stmt.branches:
                out += statement_lines(b)
        elif isinstance(stmt, n.Repeat):
            out += statement_lines(stmt)
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_inlay_hints_give_every_line_its_shape(client, path):
    from convplan.parser import parse_module

    labels = inlay(client, path)
    plan = convplan.load(path)
    module = parse_module(path.read_text(encoding="utf-8"), str(path))
    lines = statement_lines(module.plans[0])
    for block in module.blocks:
        if any(node.span.line in statement_lines(block) and not node.file for node in plan.graph.nodes):
            lines += statement_lines(block)
    missing = [k for k in lines if k not in labels]
    assert not missing, f"lines without a shape: {missing}"
    # a plan line that makes one layer shows that layer's shape as `convplan check`'s table has it; a call with
    # several outputs every output's, a learnable tensor its own
    several = {i for node in plan.graph.nodes for i in (node.id, *_leaves(node.unpack)) if node.unpack}
    for node in plan.graph.nodes:
        if not node.file and node.span.line in statement_lines(module.plans[0]) and (
                sum(o.span == node.span for o in plan.graph.nodes) == 1 or node.id in several):
            assert show_shape(node.shape) in labels[node.span.line], node.name


def _leaves(unpack: tuple) -> list[int]:
    return [x for item in unpack for x in (_leaves(item) if isinstance(item, tuple) else (item,))]


def test_several_outputs_and_learnable_tensors_show_their_own_shapes(client, tmp_path):
    """Each output named as the statement names it, in torch's order; a Parameter's line its own shape, though
    the chain goes on from the tensor before it; hover lists every output, at the example sizes too."""
    labels = inlay(client, ROOT / "examples" / "speech_lstm.plan")
    lines = (ROOT / "examples" / "speech_lstm.plan").read_text(encoding="utf-8").splitlines()
    lstm = next(k for k, line in enumerate(lines, 1) if "= LSTM(" in line)
    assert labels[lstm] == "frames: [N, (T + 1)//2, 512], h: [4, N, 256], c: [4, N, 256]"
    assert labels[lstm + 1] == "[N, (T + 1)//2, 512]"  # `frames`: the first output
    text = ("# sizes: N=2, L=5\n"
            "block Attend(heads):\n"
            "    input x [N, L, E]\n"
            "    gain = Parameter((E,), init='ones')\n"
            "    out, w = MultiheadAttention(x, x, x, heads, batch_first=True)\n"
            "    out\n"
            "    mul(gain)\n\n"
            "plan P:\n"
            "    input x [N, L, 8]\n"
            "    pos = Parameter((1, 7, 8))\n"
            "    Attend(2)\n"
            "    a, b = chunk(2, dim=2)\n")
    path = tmp_path / "several.plan"
    path.write_text(text, encoding="utf-8")
    labels = inlay(client, path)
    assert labels[4] == "[8]" and labels[11] == "[1, 7, 8]"
    assert labels[5] == "out: [N, L, 8], w: [N, L, L]"
    assert labels[12] == "[N, L, 8]" and labels[13] == "a: [N, L, 4], b: [N, L, 4]"
    client.open(path)
    hover = client.at("textDocument/hover", path, 4, 20)["contents"]["value"]  # 0-based: line 5, on the call
    assert "**outputs** `out` `[N, L, 8]`, `w` `[N, L, L]`" in hover and "MultiheadAttention" in hover
    assert "**at L=5, N=2** `[2, 5, 8]`, `[2, 5, 5]`" in hover
    hover = client.at("textDocument/hover", path, 10, 15)["contents"]["value"]
    assert "torch.nn.Parameter" in hover and "**output** `[1, 7, 8]`" in hover and "**parameters** `56`" in hover
    client.close(path)


def test_unknowns_show_their_value(client):
    path = ROOT / "examples" / "same_length.plan"
    client.open(path)
    hints = client.request("textDocument/inlayHint", {"textDocument": {"uri": path.resolve().as_uri()},
                                                      "range": whole(path)})
    client.close(path)
    plan = convplan.load(path)
    values = [h["label"] for h in hints if h["kind"] == 2]
    assert values and sorted(values) == sorted(f"= {v}" for v in plan.unknowns.values())
    lines = source_lines(path.read_text(encoding="utf-8"))
    for h in hints:
        if h["kind"] == 2:  # right after the `?` it solves
            assert lines[h["position"]["line"]][: h["position"]["character"]].rstrip().endswith("?") or \
                re.search(r"\?\w+$", lines[h["position"]["line"]][: h["position"]["character"]])


def test_unet_shows_every_shape_and_derives_h_mod_16(client):
    text = UNET.read_text(encoding="utf-8")
    assert text.count("MaxPool2d(kernel_size=2)") == 4 and text.count("    Up(") == 4  # four levels
    assert "ignore" not in text.lower()  # nothing suppressed
    labels = inlay(client, UNET)
    plan_start = next(i for i, ln in enumerate(source_lines(text), 1) if ln.startswith("plan "))
    body = [i for i, ln in enumerate(source_lines(text), 1) if i > plan_start and ln.strip()]
    assert all(k in labels for k in body)
    assert labels[body[-1]] == "[N, 2, H, W]"
    client.open(UNET)
    up = next(i for i in body if source_lines(text)[i - 1].strip().startswith("Up(enc4"))
    hover = client.at("textDocument/hover", UNET, up - 1, 6)["contents"]["value"]
    assert "H % 16 == 0" in hover and "W % 16 == 0" in hover
    cat = next(i for i, ln in enumerate(source_lines(text)) if ln.strip().startswith("cat("))
    hover = client.at("textDocument/hover", UNET, cat, 6)["contents"]["value"]  # inside block Up: each call
    assert "H % 16 == 0" in hover and hover.count("→") == 4
    use = source_lines(text)[up - 1].index("enc4")  # a named tensor where it is used: its shape
    hover = client.at("textDocument/hover", UNET, up - 1, use + 1)["contents"]["value"]
    assert "tensor `enc4`" in hover and "`[N, 512, H//8, W//8]`" in hover
    width = source_lines(text)[up - 1].index("width")
    assert "`width` = `64`" in client.at("textDocument/hover", UNET, up - 1, width + 1)["contents"]["value"]
    h = source_lines(text)[plan_start].index("H")  # the input's H
    hover = client.at("textDocument/hover", UNET, plan_start, h)["contents"]["value"]
    assert "H % 16 == 0" in hover and "H >= 16" in hover
    client.close(UNET)


# -- hover -----------------------------------------------------------------------------------


def test_hover_on_a_layer(client, tmp_path):
    path = tmp_path / "cnn.plan"
    text = (ROOT / "examples" / "cnn1d.plan").read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    lines = source_lines(text)
    conv = next(i for i, ln in enumerate(lines) if "Conv1d(" in ln)
    pool = next(i for i, ln in enumerate(lines) if "MaxPool1d(" in ln)
    client.open(path)
    value = client.at("textDocument/hover", path, conv, 6)["contents"]["value"]
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    node = plan.node("conv1")
    assert "torch.nn.Conv1d" in value and "Conv1d(1, 32, 3, stride=1, padding=1)" in value
    assert f"`{show_shape(node.shape)}`" in value
    assert f"**parameters** `{node.params}`" in value
    macs = plan.cost("macs").by_layer["conv1"]
    assert f"**MACs** `{macs}`" in value.replace("(", "").replace(")", "") or str(macs) in value
    value = client.at("textDocument/hover", path, pool, 6)["contents"]["value"]
    assert "L >= 2" in value  # the requirement this layer adds, and why
    assert "**at" not in value
    client.change(path, "# sizes: L=20, N=8\n" + text)
    value = client.at("textDocument/hover", path, pool + 1, 6)["contents"]["value"]
    assert "**at L=20, N=8** `[8, 32, 10]`" in value
    client.close(path)


@pytest.mark.parametrize(("call", "help_text"), [
    ("Conv2D(16, 3)", "hint: did you mean Conv2d?"),  # a typo: the closest name
    ("MSELoss()", "torch.nn.MSELoss is not a layer of a plan: a loss"),  # torch's name: what it is
    ("Head()", "its import from gone.plan failed"),  # a block whose import failed
])
def test_hover_on_an_unknown_layer_gives_its_help(client, tmp_path, call, help_text):
    path = tmp_path / "p.plan"
    text = f'from "gone.plan" import Head\nplan P:\n    input [N, 3, H, W]\n    {call}\n    ReLU()\n'
    path.write_text(text, encoding="utf-8")
    diags = client.open(path)
    value = client.at("textDocument/hover", path, 3, 6)["contents"]["value"]
    [e100] = [d for d in diags if d["code"] == "E100"]
    assert value.startswith("**error[E100]** ") and help_text in value
    assert e100["message"].split("\nhint: ")[0] in value  # the diagnostic's own words
    assert "**output** `[N, 3, H, W]`" in client.at("textDocument/hover", path, 4, 6)["contents"]["value"]
    client.close(path)


def test_hover_uses_the_workspace_sizes():
    c = Client(init_options={"sizes": {"L": 64}})
    try:
        path = ROOT / "examples" / "cnn1d.plan"
        c.open(path)
        line = next(i for i, ln in enumerate(source_lines(path.read_text())) if "MaxPool1d(" in ln)
        assert "**at L=64** `[N, 32, 32]`" in c.at("textDocument/hover", path, line, 6)["contents"]["value"]
        count = c.published[path.resolve().as_uri()]
        c.notify("workspace/didChangeConfiguration", {"settings": {"convplan": {"sizes": {"L": 128}}}})
        c.wait_published(path.resolve().as_uri(), count)  # checked again with the new settings
        assert "**at L=128** `[N, 32, 64]`" in c.at("textDocument/hover", path, line, 6)["contents"]["value"]
    finally:
        c.shutdown()


def test_hover_on_a_solved_unknown(client):
    path = ROOT / "examples" / "same_length.plan"
    lines = source_lines(path.read_text(encoding="utf-8"))
    line = next(i for i, ln in enumerate(lines) if "=?" in ln)
    client.open(path)
    value = client.at("textDocument/hover", path, line, lines[line].index("?"))["contents"]["value"]
    client.close(path)
    assert "(solved)" in value and any(f"**{v}**" in value for v in convplan.load(path).unknowns.values())


# -- completion ------------------------------------------------------------------------------


def labels_at(client: Client, path: Path, text: str, line: int, character: int) -> list[str]:
    client.change(path, text)
    found = client.at("textDocument/completion", path, line, character)
    return [item["label"] for item in found["items"]]


def test_completion(client, tmp_path):
    path = tmp_path / "c.plan"
    base = ('block Stem(width):\n    input [N, C, H, W]\n    Conv2d(width, kernel_size=3)\n'
            'plan P(classes=10):\n    input [N, 3, H, W]\n    feat = Stem(16)\n    ReLU()\n')
    path.write_text(base, encoding="utf-8")
    client.open(path)
    start = labels_at(client, path, base + "    \n", 7, 4)  # a new statement
    assert {"Conv2d", "Linear", "BatchNorm2d", "add", "cat", "Stem", "residual:", "feat"} <= set(start)
    inside = labels_at(client, path, base + "    Conv2d(16, \n", 7, 16)  # keyword arguments from the registry
    assert {"kernel_size=", "padding=", "padding_mode=", "classes"} <= set(inside)
    assert "in_channels=" not in inside and "out_channels=" in inside
    mode = labels_at(client, path, base + "    Conv2d(16, 3, padding_mode=\n", 7, 32)
    assert {"'zeros'", "'reflect'", "'replicate'", "'circular'"} <= set(mode)
    merge = labels_at(client, path, base + "    add(\n", 7, 8)  # tensors in scope for a merge
    assert "feat" in merge
    client.close(path)


def test_completion_of_imported_names(client):
    path = ROOT / "examples" / "mobilenet_se.plan"
    text = path.read_text(encoding="utf-8")
    m = re.search(r'from "([^"]+)" import', text)
    client.open(path)
    line = text[: m.start()].count("\n")
    items = labels_at(client, path, text.replace(m.group(0), m.group(0) + " ", 1), line, len(m.group(0)) + 1)
    from convplan.parser import parse_module

    lib = ROOT / "examples" / m.group(1)
    assert set(items) == {b.name for b in parse_module(lib.read_text(encoding="utf-8"), str(lib)).blocks}
    plan_line = next(i for i, ln in enumerate(source_lines(text)) if ln.startswith("plan "))
    client.change(path, text)
    start = client.at("textDocument/completion", path, plan_line + 2, 4)
    imported = {n.id for imp in parse_module(text, str(path)).imports for n in imp.names or ()}
    assert imported <= {i["label"] for i in start["items"]}
    client.close(path)


# -- navigation ------------------------------------------------------------------------------


def test_definition_and_references(client):
    text = UNET.read_text(encoding="utf-8")
    lines = source_lines(text)
    client.open(UNET)
    call = next(i for i, ln in enumerate(lines) if "enc1 = DoubleConv" in ln)
    found = client.at("textDocument/definition", UNET, call, lines[call].index("DoubleConv") + 2)
    block = next(i for i, ln in enumerate(lines) if ln.startswith("block DoubleConv"))
    assert found[0]["range"]["start"] == {"line": block, "character": lines[block].index("DoubleConv")}
    enc4 = next(i for i, ln in enumerate(lines) if "enc4 = " in ln)
    refs = client.at("textDocument/references", UNET, enc4, 5, context={"includeDeclaration": True})
    assert sorted(r["range"]["start"]["line"] for r in refs) == [enc4, next(i for i, ln in enumerate(lines)
                                                                            if "Up(enc4" in ln)]
    calls = client.at("textDocument/references", UNET, block, lines[block].index("DoubleConv"),
                      context={"includeDeclaration": False})
    assert len(calls) == sum(ln.count("DoubleConv(") for ln in lines) - 1  # every call, not the definition
    up_input = next(i for i, ln in enumerate(lines) if "input x [N, C, H, W]" in ln)  # a size of block Up
    refs = client.at("textDocument/references", UNET, up_input, lines[up_input].index("C"),
                     context={"includeDeclaration": True})
    uses = [i for i, ln in enumerate(lines) if "C // 2" in ln]
    assert sorted(r["range"]["start"]["line"] for r in refs) == [up_input, *uses]
    outline = client.request("textDocument/documentSymbol", {"textDocument": {"uri": UNET.resolve().as_uri()}})
    assert [s["name"] for s in outline] == ["DoubleConv", "Up", "UNet"]
    assert {"enc1", "enc4", "head"} <= {c["name"] for c in outline[2]["children"]}
    client.close(UNET)


def test_definition_of_an_imported_block(client):
    path = ROOT / "examples" / "mobilenet_se.plan"
    text = path.read_text(encoding="utf-8")
    lines = source_lines(text)
    client.open(path)
    at = next(i for i, ln in enumerate(lines) if ln.startswith("from "))
    name = re.search(r"import\s+(\w+)", lines[at])
    found = client.at("textDocument/definition", path, at, name.start(1) + 1)
    lib = (path.parent / re.search(r'"([^"]+)"', lines[at]).group(1)).resolve()
    assert found[0]["uri"] == lib.as_uri()
    lib_lines = source_lines(lib.read_text(encoding="utf-8"))
    assert lib_lines[found[0]["range"]["start"]["line"]].startswith(f"block {name.group(1)}")
    client.close(path)


def test_references_of_a_block_in_every_file_that_sees_it(tmp_path):
    """A block's references: its definition, and the imports and calls in every open or workspace file whose
    name resolves to it (directly, by `import "..."`, from a sub-folder); not a block of the same name
    defined elsewhere, nor a file that does not import it."""
    files = {
        "lib.plan": "block Head(k):\n    input [N, C, L]\n    Conv1d(k, kernel_size=3)\n",
        "a.plan": 'from "lib.plan" import Head\nplan A:\n    input [N, 2, L]\n    Head(4)\n    Head(8)\n',
        "b.plan": 'import "lib.plan"\nplan B:\n    input [N, 2, L]\n    x = Head(4)\n',
        "sub/d.plan": 'from "../lib.plan" import Head\nplan D:\n    input [N, 2, L]\n    Head(2)\n',
        "c.plan": "block Head:\n    input [N, C, L]\n    ReLU()\nplan C:\n    input [N, 2, L]\n    Head()\n",
        "e.plan": "plan E:\n    input [N, 2, L]\n    Head(3)\n",  # no import: an unknown layer, not the block
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    unsaved = tmp_path / "new.plan"  # open in the editor, never saved
    client = Client(root=tmp_path)
    try:
        a = tmp_path / "a.plan"
        client.open(a)
        client.open(unsaved, 'from "lib.plan" import Head\nplan U:\n    input [N, 2, L]\n    Head(1)\n')

        def where(found):
            return sorted((Path(unquote(urlparse(x["uri"]).path)).relative_to(tmp_path).as_posix(),
                           x["range"]["start"]["line"], x["range"]["start"]["character"]) for x in found)

        expected = [("a.plan", 0, 23), ("a.plan", 3, 4), ("a.plan", 4, 4), ("b.plan", 3, 8), ("lib.plan", 0, 6),
                    ("new.plan", 0, 23), ("new.plan", 3, 4), ("sub/d.plan", 0, 26), ("sub/d.plan", 3, 4)]
        refs = client.at("textDocument/references", a, 3, 5, context={"includeDeclaration": True})
        assert where(refs) == expected
        refs = client.at("textDocument/references", a, 0, 24, context={"includeDeclaration": False})  # the import
        assert where(refs) == [x for x in expected if x[0] != "lib.plan"]
        # from the definition, in the library (not open): the same places
        lib = tmp_path / "lib.plan"
        client.open(lib)
        assert where(client.at("textDocument/references", lib, 0, 7, context={"includeDeclaration": True})) == \
            expected
        # and from c.plan's own Head: only c.plan's
        c = tmp_path / "c.plan"
        client.open(c)
        assert where(client.at("textDocument/references", c, 5, 5, context={"includeDeclaration": True})) == [
            ("c.plan", 0, 6), ("c.plan", 5, 4)]
        # go to definition from a call in a file that imports it through `import "..."`
        b = tmp_path / "b.plan"
        client.open(b)
        [found] = client.at("textDocument/definition", b, 3, 9)
        assert found["uri"] == lib.resolve().as_uri() and found["range"]["start"] == {"line": 0, "character": 6}
    finally:
        client.shutdown()


# -- quick fixes ------------------------------------------------------------------------------


def apply_lsp(text: str, edits: list[dict]) -> str:
    """TextEdits applied as an editor does (positions in UTF-16 code units)."""
    lines = text.split("\n")

    def offset(pos):
        line = lines[pos["line"]] if pos["line"] < len(lines) else ""
        units, k = 0, 0
        while k < len(line) and units < pos["character"]:
            units += len(line[k].encode("utf-16-le")) // 2
            k += 1
        return sum(len(x) + 1 for x in lines[: pos["line"]]) + k

    for e in sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]),
                    reverse=True):
        text = text[: offset(e["range"]["start"])] + e["newText"] + text[offset(e["range"]["end"]):]
    return text


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_every_quick_fix_removes_its_diagnostic(client, path, tmp_path):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    text = copy.read_text(encoding="utf-8")
    diags = client.open(copy)
    uri = copy.resolve().as_uri()
    tried = 0
    for d in diags:
        actions = client.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": d["range"],
                                                             "context": {"diagnostics": [d]}})
        for action in actions or ():
            if action["diagnostics"][0]["range"] != d["range"] or action["diagnostics"][0]["code"] != d["code"]:
                continue
            tried += 1
            fixed = apply_lsp(text, action["edit"]["changes"][uri])
            shift = fixed.count("\n") - text.count("\n")
            after = client.change(copy, fixed, version=tried + 1)
            assert not [a for a in after if a["code"] == d["code"] and
                        a["range"]["start"]["line"] == d["range"]["start"]["line"] + shift], action["title"]
            copy.write_text(fixed, encoding="utf-8")
            result = check_json(copy)  # the other errors may stay; none appears that the fixed one hid
            before = Counter(x["code"] for x in diags if x["severity"] == 1)
            before[d["code"]] -= d["severity"] == 1
            assert Counter(x["code"] for x in result.get("diagnostics", ())) <= before, (action["title"], result)
            copy.write_text(text, encoding="utf-8")
            client.change(copy, text, version=tried + 100)
    client.close(copy)
    expected = sum(len(d.fixes) for d in convplan.analyse_file(path).diagnostics)
    assert tried == expected


@pytest.mark.parametrize("path", [p for p in GOLDEN if any(d.fixes for d in convplan.analyse_file(p).diagnostics)],
                         ids=lambda p: p.name)
def test_quick_fixes_in_turn_end_in_a_plan_that_checks(client, path, tmp_path):
    """As a user does it: take a quick fix, let the server check again, take the next; `convplan check`
    then accepts the file."""
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    uri = copy.resolve().as_uri()
    text, diags = copy.read_text(encoding="utf-8"), client.open(copy)
    for version in range(2, 22):
        actions = [a for d in diags for a in client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [d]}}) or ()]
        if not actions:
            break
        text = apply_lsp(text, actions[0]["edit"]["changes"][uri])
        diags = client.change(copy, text, version=version)
    client.close(copy)
    copy.write_text(text, encoding="utf-8")
    assert check_json(copy)["ok"], text


# -- formatting --------------------------------------------------------------------------------------


def test_formatting_gives_the_canonical_layout(client, tmp_path):
    from convplan.formatter import format_text

    path = tmp_path / "messy.plan"
    text = "plan P(a = 1):\n  input [N,3, L]  # é\n\n\n  Conv1d(8,kernel_size = 3)->[N, 8, L - 2]\n  ReLU()"
    path.write_text(text, encoding="utf-8")
    client.open(path)
    uri = path.resolve().as_uri()
    options = {"tabSize": 2, "insertSpaces": True}  # the layout is canonical: 4 spaces whatever the editor's
    edits = client.request("textDocument/formatting", {"textDocument": {"uri": uri}, "options": options})
    formatted = apply_lsp(text, edits)
    assert formatted == format_text(text) and formatted.splitlines()[1] == "    input [N, 3, L]  # é"
    client.change(path, formatted)
    assert client.request("textDocument/formatting", {"textDocument": {"uri": uri}, "options": options}) == []
    client.change(path, "plan P:\n  input [N, 3 L]\n", version=3)  # does not parse: left as it is
    assert client.request("textDocument/formatting", {"textDocument": {"uri": uri}, "options": options}) is None
    client.close(path)


def test_requests_about_documents_not_open_read_no_device_and_answer(tmp_path):
    """A request may name a document the editor has not opened (a race with didClose, a client's mistake): the
    server reads such a file as `convplan check` does.  It read any path to its end with pygls (a FIFO blocked the
    server for good, /dev/zero filled the memory) and formatting answered a missing file with a traceback; a
    FIFO named *.plan in the workspace blocked `references` the same way."""
    import os

    fifo = tmp_path / "pipe.plan"
    os.mkfifo(fifo)
    (tmp_path / "lib.plan").write_text("block Unit(c):\n    input [N, C, L]\n    Conv1d(c, kernel_size=1)\n")
    plan = tmp_path / "m.plan"
    plan.write_text('from "lib.plan" import Unit\nplan M:\n    input [N, 3, L]\n    Unit(4)\n')
    c = Client(root=tmp_path)
    try:
        options = {"tabSize": 4, "insertSpaces": True}
        assert c.at("textDocument/hover", fifo, 0, 0) is None  # once blocked for good
        assert c.request("textDocument/formatting", {"textDocument": {"uri": fifo.as_uri()}, "options": options},
                         timeout=10) is None
        ghost = (tmp_path / "ghost.plan").as_uri()  # no such file: was a FileNotFoundError traceback
        assert c.request("textDocument/formatting", {"textDocument": {"uri": ghost}, "options": options},
                         timeout=10) is None
        c.open(plan)
        found = c.at("textDocument/references", plan, 3, 5, context={"includeDeclaration": True})
        assert {Path(unquote(urlparse(loc["uri"]).path)).name for loc in found} == {"m.plan", "lib.plan"}
    finally:
        c.proc.kill()
        c.proc.wait()
        c.stderr.close()


# -- every position, every file: an answer, never an exception; never torch ------------------------

SWEEP = '''
import sys
from pathlib import Path
from convplan.serve import actions, complete, hover, inlay, navigate
from convplan.serve.document import analyse_document

count = 0
for path in PATHS:
    path = Path(path).resolve()
    doc = analyse_document(path.as_uri(), path.read_text(encoding="utf-8"))
    inlay.hints(doc, 1, 10_000) if doc.plan is not None else None
    navigate.outline(doc)
    actions.quick_fixes(doc, 1, 10_000)
    for number, line in enumerate(doc.lines.lines, 1):
        for col in range(1, len(line) + 2):
            hover.hover(doc, number, col)
            navigate.definition(doc, number, col)
            navigate.references(doc, number, col)
            if col % 4 == 1:
                complete.complete(doc, doc, number, col)
            count += 1
print("positions", count)
'''


def test_every_position_answers_without_torch():
    from test_no_torch import assert_no_torch

    paths = [str(p) for p in [*EXAMPLES, *GOLDEN, ROOT / "examples" / "lib" / "mobile_blocks.plan"]]
    result = assert_no_torch(f"PATHS = {paths!r}\n{SWEEP}\nimport convplan.serve.server\n"
                             "convplan.serve.server.make_server()")
    assert int(result.stdout.split("positions")[1].split()[0]) > 5000


# -- the shape at example sizes: the plan's own evaluation (tested against torch elsewhere) -------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 64), h=st.integers(1, 40), w=st.integers(1, 40))
def test_hover_sizes_are_the_plans_values(n, h, w):
    from convplan.serve import hover
    from convplan.serve.document import analyse_document

    h, w = 16 * h, 16 * w  # the U-Net's requirements: multiples of 16
    text = f"# sizes: N={n}, H={h}, W={w}\n" + UNET.read_text(encoding="utf-8")
    doc = analyse_document((UNET.parent / "sized.plan").as_uri(), text)
    plan = convplan.load(UNET)
    sizes = {"N": n, "H": h, "W": w}
    for made in doc.made.values():
        for m in made:
            node = doc.plan.graph.nodes[m.result]
            shown = hover._at_sizes(doc, node.shape)
            assert shown.endswith(f"`{show_shape(plan.evaluate(node.shape, **sizes))}`"), (node.name, shown)


def test_positions_count_utf16_units(client, tmp_path):
    path = tmp_path / "emoji.plan"
    text = "plan P:\n    input [N, 1, L]\n    Conv1d(32, padding_mode='😀é', kernal_size=3)\n"
    path.write_text(text, encoding="utf-8")
    diags = [d for d in client.open(path) if d["code"] == "E103"]
    line = source_lines(text)[2]
    col = line.index("kernal_size") + 1
    assert diags[0]["range"]["start"] == {"line": 2, "character": utf16(line, col)}
    assert utf16(line, col) == col  # col - 1 characters before it, the emoji 2 UTF-16 units of them
    actions = client.request("textDocument/codeAction", {"textDocument": {"uri": path.resolve().as_uri()},
                                                         "range": diags[0]["range"],
                                                         "context": {"diagnostics": diags}})
    fixed = apply_lsp(text, actions[0]["edit"]["changes"][path.resolve().as_uri()])
    assert "kernel_size=3" in fixed and "😀é" in fixed
    client.close(path)


def test_a_lone_surrogate_in_the_text_is_one_utf16_unit():
    """JSON may carry a lone surrogate ("\\ud800"), which an editor's text (JavaScript's UTF-16) can hold: counting
    positions encoded the line strictly, a UnicodeEncodeError, so the document's diagnostics were never published."""
    from convplan.serve import diagnostics
    from convplan.serve.document import analyse_document

    text = "plan A:\n    input [N, 3]  # \udc80\n    Linear(\ud800, x)\n"
    for encoding, width in (("utf-16", 1), ("utf-8", 3), ("utf-32", 1)):
        doc = analyse_document("untitled:1", text, None, encoding)
        found = diagnostics.by_file(doc)["untitled:1"]
        assert found[0].code == "E013" and found[0].range.start == lsp_position(2, 11)
        assert doc.lines.position(3, 13).character == 11 + width  # after the surrogate


def lsp_position(line: int, character: int):
    from lsprotocol import types

    return types.Position(line, character)


def test_mutated_plans_always_get_an_answer():
    """rust-analyzer's rule: every query answers on whatever text the editor holds (test_fuzz's mutations)."""
    import random

    from test_fuzz import SEED, SEEDS, mutate

    from convplan.serve import actions, complete, diagnostics, hover, inlay, navigate
    from convplan.serve.document import analyse_document

    rng = random.Random(SEED)
    sources = [p.read_text(encoding="utf-8") for p in SEEDS]
    answered = 0
    for _ in range(150):
        text = mutate(rng.choice(sources), rng)
        doc = analyse_document((ROOT / "examples" / "mutant.plan").as_uri(), text)
        diagnostics.by_file(doc)
        inlay.hints(doc, 1, 10_000) if doc.plan is not None else None
        navigate.outline(doc)
        actions.quick_fixes(doc, 1, 10_000)
        lines = doc.lines.lines or [""]
        for _ in range(10):
            line = rng.randrange(len(lines)) + 1
            col = rng.randrange(len(lines[line - 1]) + 1) + 1
            answered += hover.hover(doc, line, col) is not None
            complete.complete(doc, doc, line, col)
            navigate.definition(doc, line, col)
            navigate.references(doc, line, col)
    assert answered > 0


def test_without_pygls_the_command_says_what_to_install():
    import subprocess
    import sys

    code = "import sys\nsys.modules['pygls'] = None\nfrom convplan.cli import main\nsys.exit(main(['lsp']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "pip install 'convplan[lsp]'" in result.stderr and "Traceback" not in result.stderr
