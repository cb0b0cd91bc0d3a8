"""`convplan import module.path:factory`: load the user's model (this runs their code, by design: the module
named on the command line is imported, through pkgutil.resolve_name; no plan text ever reaches it), turn it
into plan text, write it.  Every failure is one located message, never a traceback: exit 1 for the model
(cannot import, the factory raises, something cannot be planned), 2 for the command line."""

from __future__ import annotations

import ast
import os
import pkgutil
import sys
import traceback
from pathlib import Path

from ..errors import did_you_mean
from .ir import ImportFailure


class CommandError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message, self.code = message, code


def parse_target(text: str) -> tuple[str, str]:
    module, sep, attr = text.partition(":")
    if not sep or not module or not attr or not all(p.isidentifier() for p in module.split(".")) \
            or not all(p.isidentifier() for p in attr.split(".")):
        raise CommandError(f"expected module.path:factory_or_class (as in torchvision.models:resnet18), got {text!r}",
                           2)
    return module, attr


def parse_input(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise CommandError(f"--input expects sizes such as 1,3,224,224, got {text!r}", 2) from None
    if not dims or any(not 1 <= d <= 1 << 20 for d in dims):
        raise CommandError(f"--input sizes must be between 1 and {1 << 20}, got {text!r}", 2)
    return dims


def parse_arg(text: str) -> tuple[str, object]:
    """`k=v`: v as a Python literal (10, 0.5, True, (1, 2), 'x'), else as the text itself."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise CommandError(f"--arg expects NAME=VALUE, got {text!r}", 2)
    try:
        return key.strip(), ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return key.strip(), value.strip()


def load_model(target: str, kwargs: dict):
    """Import the module (the current directory first on the path, as `python -m` does), find the factory or
    class, call it with `kwargs`: the model."""
    import torch

    module_name, attr = parse_target(target)
    sys.path.insert(0, os.getcwd())
    try:
        module = pkgutil.resolve_name(module_name + ":")  # the module itself
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CommandError(f"cannot import {module_name!r}: no module named {exc.name!r} (run from the "
                               "directory that holds it, or install it)") from None
        raise CommandError(f"importing {module_name!r} failed: {_exception(exc)}") from None
    except Exception as exc:  # the user's module raised while importing
        raise CommandError(f"importing {module_name!r} failed: {_exception(exc)}") from None
    except SystemExit as exc:  # a script that parses its arguments or exits when imported
        raise CommandError(f"importing {module_name!r} exited: {_exception(exc)}; a script's own part belongs "
                           "under `if __name__ == \"__main__\":`") from None
    finally:
        sys.path.pop(0)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            hint = did_you_mean(part, names)
            raise CommandError(f"{module_name} has no attribute {attr!r}" + (f"; {hint}" if hint else ""))
        obj = getattr(obj, part)
    if isinstance(obj, torch.nn.Module):
        model = obj
    elif callable(obj):
        try:
            model = obj(**kwargs)
        except (Exception, SystemExit) as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise CommandError(f"{target}({shown}) raised {_exception(exc)}") from None
    else:
        raise CommandError(f"{target} is a {type(obj).__name__}, neither a model nor a factory or class that makes "
                           "one")
    if not isinstance(model, torch.nn.Module):
        raise CommandError(f"{target} gave a {type(model).__name__}, not a torch.nn.Module")
    return model, getattr(module, "__file__", None)


def _exception(exc: BaseException) -> str:
    """`ValueError: message (file.py:12)`: the innermost line of the user's code that raised."""
    own = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(own)
              and "importlib" not in f.filename]
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


def _example(torch, shape: tuple[int, ...]):
    """A random tensor of `shape`; one too large to allocate is the command line's fault, not a traceback."""
    try:
        return torch.randn(*shape)
    except (RuntimeError, MemoryError) as exc:
        raise CommandError(f"--input {','.join(map(str, shape))}: cannot allocate the example input "
                           f"({_exception(exc)}); give smaller sizes", 2) from None


def run(target: str, inputs: list[str], args: list[str], output: str | None, force: bool, name: str | None) -> str:
    """The plan text, written to `output` (None or `-`: returned for stdout)."""
    import torch

    from . import from_module

    shapes = [parse_input(t) for t in inputs] or [(1, 3, 224, 224)]
    kwargs = dict(parse_arg(a) for a in args)
    path = None
    if output not in (None, "-"):
        path = Path(output)
        if path.suffix.lower() == ".py":
            raise CommandError(f"refusing to write a plan to {output}: a .py file is code (write model.plan)", 2)
        if path.exists() and not force:
            raise CommandError(f"refusing to overwrite {output}: it exists (--force replaces it)", 2)
    model, source = load_model(target, kwargs)
    if path is not None and source and path.resolve() == Path(source).resolve():
        raise CommandError(f"refusing to write the plan over {output}: it is the model's own source", 2)
    example = tuple(_example(torch, s) for s in shapes)
    try:
        text = from_module(model, example if len(example) > 1 else example[0], name)
    except ImportFailure as exc:
        raise CommandError(exc.render()) from None
    if path is not None:
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {(exc.strerror or 'error').lower()}") from None
    return text
