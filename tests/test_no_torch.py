"""`convplan check` and `convplan.parse` never import torch (it costs more than a check).

Each case runs in a fresh interpreter: in this one pytest or another test has torch loaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))
REFUSED = sorted((ROOT / "examples" / "errors").glob("*.plan"))


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def probe(code: str) -> subprocess.CompletedProcess:
    """Run `code`, then fail (exit 1) if any torch module is loaded."""
    body = f"import sys\n{code}\nloaded = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n" \
           "assert not loaded, f'torch was imported: {loaded[:5]}'\nprint('NO-TORCH-OK')\n"
    return run_python(body)


def assert_no_torch(code: str) -> subprocess.CompletedProcess:
    result = probe(code)
    assert result.returncode == 0, result.stderr
    assert "NO-TORCH-OK" in result.stdout, result.stderr
    return result


@pytest.mark.parametrize("extra", [[], ["--json"]], ids=["table", "json"])
def test_cli_check_does_not_import_torch(extra):
    argv = ["check", "examples/cnn1d.plan", *extra]
    result = assert_no_torch(f"import convplan.cli\nrc = convplan.cli.main({argv!r})\nassert rc == 0, rc")
    assert "32*(L//2)" in result.stdout  # it really checked the plan


def test_cli_check_of_a_refused_plan_does_not_import_torch():
    plan = "examples/errors/conv2d_on_volume.plan"
    result = assert_no_torch(f"import convplan.cli\nrc = convplan.cli.main(['check', {plan!r}, '--json'])\n"
                             "assert rc == 1, rc")
    assert '"ok": false' in result.stdout


def test_parse_of_every_example_does_not_import_torch():
    paths = [p.relative_to(ROOT).as_posix() for p in EXAMPLES + REFUSED]
    code = ("import convplan\nfrom pathlib import Path\nshapes = []\n"
            f"for path in {paths!r}:\n"
            "    try:\n"
            "        shapes.append(convplan.parse(Path(path).read_text(), path).output_shape)\n"
            "    except convplan.PlanError as exc:\n"
            "        shapes.append(exc.render())\n"
            "print(len(shapes))\n")
    result = assert_no_torch(code)
    assert str(len(paths)) in result.stdout.split()
    assert len(EXAMPLES) >= 5


def test_the_probe_catches_torch():
    # the tests above would pass vacuously if the probe could not see torch
    result = probe("import convplan\nconvplan.load('examples/notebook_conv1d.plan').build()")
    assert result.returncode == 1 and "torch was imported" in result.stderr


def test_verify_without_torch_is_a_usage_error_not_a_traceback():
    code = ("import sys; sys.modules['torch'] = None\n"  # as if torch were not installed
            "from convplan.cli import main\n"
            "sys.exit(main(['verify', 'examples/cnn1d.plan']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert "pip install 'convplan[torch]'" in done.stderr and "Traceback" not in done.stderr


def test_verify_without_numpy_prints_no_torch_warning():
    """torch's CPU wheel runs without numpy but warns about it on import; convplan needs no numpy."""
    code = ("import sys; sys.modules['numpy'] = None\n"  # as if numpy were not installed
            "from convplan.cli import main\n"
            "sys.exit(main(['verify', 'examples/cnn1d.plan', '--set', 'L=8']))")
    done = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "NumPy" not in done.stderr and "verified" in done.stdout
