"""docs/layers.md is generated from the registry (`python -m convplan.docs`) and must be current."""

from __future__ import annotations

from convplan import docs
from convplan.layers import REGISTRY
from convplan.torch_names import NOT_LAYERS, NOT_YET


def test_layers_md_is_current():
    assert docs.PATH.read_text(encoding="utf-8") == docs.render(), "run `python -m convplan.docs`"


def test_every_kind_and_every_missing_class_is_listed_with_its_arguments():
    text = docs.PATH.read_text(encoding="utf-8")
    for spec in REGISTRY.values():
        assert f"| `{docs.signature(spec)}` |" in text
        assert all(a.name in docs.signature(spec) for a in spec.args)
    assert docs.signature(REGISTRY["Conv2d"]) == ("Conv2d(out_channels, kernel_size, stride=1, padding=0, dilation=1, "
                                                  "groups=1, bias=True, padding_mode='zeros')")
    for name in (*NOT_YET, *NOT_LAYERS):
        assert f"| `{name}` |" in text


def test_every_operation_and_merge_is_listed():
    from convplan.merges import MERGES
    from convplan.ops import OPS

    text = docs.PATH.read_text(encoding="utf-8")
    for spec in OPS.values():
        assert f"| `{docs.operation(spec)}` |" in text
        assert all(a.name in docs.operation(spec) for a in spec.args)
    assert docs.operation(OPS["permute"]) == "permute(x, *dims)"
    for name in MERGES:
        assert f"| `{name}(a, b, ..." in text
