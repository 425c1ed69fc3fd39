"""The core does no I/O (h11's rule): no Kafka, Faust, asyncio or sockets, no files, no clock."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import spikedetect.core

CORE = Path(spikedetect.core.__file__).parent
SOURCES = sorted(CORE.rglob("*.py"))

# must never be loaded by importing the core
NOT_LOADED = [
    "faust",
    "aiokafka",
    "kafka",
    "asyncio",
    "socket",
    "mode",
    "spikedetect.stream",
    "spikedetect.replay",
    "spikedetect.sim",
    "spikedetect.evaluate",
]
# may never be imported by core modules: I/O, processes, clocks, randomness, unpickling, the shells
FORBIDDEN_IMPORTS = {
    "faust",
    "mode",
    "aiokafka",
    "kafka",
    "asyncio",
    "socket",
    "ssl",
    "select",
    "selectors",
    "threading",
    "multiprocessing",
    "concurrent",
    "subprocess",
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "glob",
    "time",
    "random",
    "secrets",
    "uuid",
    "urllib",
    "http",
    "requests",
    "sqlite3",
    "pickle",
    "shelve",
    "marshal",
    "logging",
    "rocksdict",
    "importlib",
}
FORBIDDEN_PACKAGES = (
    "spikedetect.stream",
    "spikedetect.replay",
    "spikedetect.sim",
    "spikedetect.evaluate",
    "spikedetect.cli",
    "spikedetect.kafka_local",
)
FORBIDDEN_CALLS = {"open", "print", "input", "eval", "exec", "__import__", "breakpoint"}
FORBIDDEN_ATTRS = {  # (object name, attribute): clocks and unseeded randomness
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("time", "time_ns"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("np", "random"),
    ("numpy", "random"),
}

PROBE = """
import importlib, json, pkgutil, sys
import spikedetect.core as core
names = [m.name for m in pkgutil.walk_packages(core.__path__, "spikedetect.core.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": [m for m in %r if m in sys.modules]}))
"""


def test_core_modules_exist() -> None:
    assert len(SOURCES) >= 15
    assert (CORE / "detector.py") in SOURCES


def test_importing_every_core_module_loads_no_io_framework() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE % (NOT_LOADED,)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    expected = {
        "spikedetect.core." + str(p.relative_to(CORE).with_suffix("")).replace("/", ".")
        for p in SOURCES
        if p.name != "__init__.py"
    }
    assert expected <= set(got["modules"])  # the probe really imported every module
    assert got["loaded"] == []


def _imported(tree: ast.AST) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(CORE)))
def test_source_has_no_io_imports_or_calls(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for module in _imported(tree):
        assert module.split(".")[0] not in FORBIDDEN_IMPORTS, f"{path.name} imports {module}"
        assert not module.startswith(FORBIDDEN_PACKAGES), f"{path.name} imports {module}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {node.func.id}()"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            pair = (node.value.id, node.attr)
            assert pair not in FORBIDDEN_ATTRS, f"{path.name}:{node.lineno} uses {'.'.join(pair)}"


def test_the_scan_catches_what_it_should() -> None:
    # the negative control: the rules above do fire on code that breaks them
    bad = ast.parse(
        "import asyncio\nfrom os import path\nopen('x')\nimport time\ntime.time()\n"
        "from datetime import datetime\ndatetime.now()\n"
    )
    assert {m.split(".")[0] for m in _imported(bad)} & FORBIDDEN_IMPORTS == {"asyncio", "os", "time"}
    calls = {n.func.id for n in ast.walk(bad) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "open" in calls & FORBIDDEN_CALLS
    attrs = {
        (n.value.id, n.attr)
        for n in ast.walk(bad)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }
    assert {("time", "time"), ("datetime", "now")} <= attrs & FORBIDDEN_ATTRS
