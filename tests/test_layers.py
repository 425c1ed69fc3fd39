"""The package's layers: the live shell (stream/) does not import the offline shell (replay/);
what both read files with lives in the neutral spikedetect.files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import spikedetect

SRC = Path(spikedetect.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (deferred imports in functions included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


@pytest.mark.parametrize(("layer", "forbidden"), [("stream", "spikedetect.replay"), ("files", "spikedetect.replay"),
                                                  ("files", "spikedetect.stream")])
def test_a_layer_does_not_import_another(layer: str, forbidden: str) -> None:
    sources = sorted((SRC / layer).rglob("*.py"))
    assert sources, layer
    bad = {str(p.relative_to(SRC)): sorted(m for m in imported_modules(p) if m == forbidden or m.startswith(forbidden + "."))
           for p in sources}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_check_sees_a_deferred_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from spikedetect.replay.faults import Fault\n    return Fault\n")
    assert "spikedetect.replay.faults" in imported_modules(f)
