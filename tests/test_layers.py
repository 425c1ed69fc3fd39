"""The package's layers (docs/architecture.md, "Layers").

* the live shell (stream/) imports none of the offline packages (replay/, sim/, evaluate/);
* files/ is neutral: it imports no shell;
* sim/ (simulation) never imports the detector: from the core only the pure helpers
  ``core.regions`` and ``core.timefmt``, and nothing of replay/, evaluate/ or stream/;
* replay/ (the offline drivers) imports neither evaluate/ nor sim/; the one exception is the
  ``replay`` command (``replay/cli_replay.py``), a composition root like every ``cli_*`` module,
  whose ``--truth`` and ``--sweep`` score a run with evaluate/;
* no module imports a command module (``cli_*.py``); spikedetect.cli loads them by name;
* only the commands (``cli*.py``, ``demo.py``) use the click options (``spikedetect.options``): a
  library module takes settings, not flags;
* the packages' import graph, that exception aside, has no cycle, and neither has the
  module-level import graph of sim/, evaluate/, replay/ and files/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import spikedetect

SRC = Path(spikedetect.__file__).parent
OFFLINE = ("replay", "sim", "evaluate")
SIM_MAY_USE_FROM_CORE = {"spikedetect.core.regions", "spikedetect.core.timefmt"}

# (layer, forbidden module prefix); a module is forbidden when it is the prefix or lies under it
RULES: list[tuple[str, str]] = [
    *(("stream", f"spikedetect.{p}") for p in OFFLINE),
    *(("files", f"spikedetect.{p}") for p in (*OFFLINE, "stream")),
    *(("sim", f"spikedetect.{p}") for p in ("replay", "evaluate", "stream")),
    ("replay", "spikedetect.evaluate"),
    ("replay", "spikedetect.sim"),
]
# the replay command wires the drivers to evaluation (--truth, --sweep)
EXEMPT = {("replay/cli_replay.py", "spikedetect.evaluate"), ("replay/cli_replay.py", "spikedetect.sim")}


def imported_modules(path: Path, deep: bool = True) -> set[str]:
    """Every module a file imports, at any depth (deferred imports in functions included) or, with
    ``deep=False``, at module level only."""
    out: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree) if deep else tree.body:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def violations(root: Path) -> list[str]:
    """Every import of the package under ``root`` that breaks a layering rule, as "file: module"."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel, mods = _rel(path, root), imported_modules(path)
        layer = rel.split("/")[0]
        for mod in sorted(mods):
            bad = [p for lay, p in RULES if lay == layer and _under(mod, p) and (rel, p) not in EXEMPT]
            if layer == "sim" and _under(mod, "spikedetect.core") and mod not in SIM_MAY_USE_FROM_CORE:
                bad.append("the detection core beyond regions and timefmt")
            if mod.rsplit(".", 1)[-1].startswith("cli_"):
                bad.append("a command module")
            if _under(mod, "spikedetect.options") and not _is_command(rel):
                bad.append("the commands' click options")
            out += [f"{rel}: {mod} ({why})" for why in bad]
    return out


def _is_command(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name.startswith("cli") or rel == "demo.py"


def package_edges(root: Path) -> set[tuple[str, str]]:
    """(package, package) for each import between top-level subpackages, the exemptions left out."""
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    edges = set()
    for path in root.rglob("*.py"):
        rel = _rel(path, root)
        src = rel.split("/")[0]
        for mod in imported_modules(path):
            parts = mod.split(".")
            if len(parts) < 2 or parts[0] != "spikedetect" or (rel, f"spikedetect.{parts[1]}") in EXEMPT:
                continue
            if src in packages and parts[1] in packages and parts[1] != src:
                edges.add((src, parts[1]))
    return edges


def module_cycle(root: Path, packages: tuple[str, ...]) -> list[str] | None:
    """A cycle of module-level imports among the modules of ``packages``, or None."""
    names = {}
    for pkg in packages:
        for path in (root / pkg).rglob("*.py"):
            dotted = "spikedetect." + _rel(path, root)[:-3].replace("/", ".")
            names[dotted.removesuffix(".__init__")] = path
    graph = {m: sorted(d for d in imported_modules(p, deep=False) if d in names and d != m) for m, p in names.items()}
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> list[str] | None:
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                return [*trail[trail.index(d):], d] if d in trail else [m, d]
            if d not in state and (found := visit(d, [*trail, d])):
                return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m, [m])):
            return found
    return None


def has_cycle(edges: set[tuple[str, str]]) -> bool:
    nodes = {n for e in edges for n in e}
    while nodes:
        sinks = {n for n in nodes if not any(a == n and b in nodes for a, b in edges)}
        if not sinks:
            return True
        nodes -= sinks
    return False


def test_no_module_breaks_a_layering_rule() -> None:
    for layer in ("stream", "files", *OFFLINE):
        assert sorted((SRC / layer).rglob("*.py")), layer
    assert violations(SRC) == []


def test_the_packages_import_graph_has_no_cycle() -> None:
    edges = package_edges(SRC)
    assert ("evaluate", "replay") in edges and ("evaluate", "sim") in edges  # the check sees real edges
    assert not has_cycle(edges), sorted(edges)


def test_the_offline_modules_import_no_cycle() -> None:
    assert module_cycle(SRC, ("sim", "evaluate", "replay", "files")) is None


# -- the checks themselves: each fails when the import it forbids is added ----------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "spikedetect"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize(("layer", "forbidden"), RULES)
def test_each_rule_catches_a_forbidden_import(tmp_path: Path, layer: str, forbidden: str) -> None:
    root = _package(tmp_path, {f"{layer}/m.py": f"def g():\n    import {forbidden}.x\n"})
    assert violations(root) == [f"{layer}/m.py: {forbidden}.x ({forbidden})"]


@pytest.mark.parametrize("mod", ["spikedetect.core", "spikedetect.core.scorer", "spikedetect.core.detector"])
def test_sim_may_not_import_the_detector(tmp_path: Path, mod: str) -> None:
    root = _package(tmp_path, {"sim/m.py": f"from {mod} import X\nfrom spikedetect.core.regions import depth\n"})
    assert violations(root) == [f"sim/m.py: {mod} (the detection core beyond regions and timefmt)"]


def test_only_the_replay_command_may_use_evaluation(tmp_path: Path) -> None:
    text = "from spikedetect.evaluate.score import evaluate\nfrom spikedetect.sim.truth import load_truth\n"
    root = _package(tmp_path, {"replay/cli_replay.py": text, "replay/runner.py": text})
    assert violations(root) == ["replay/runner.py: spikedetect.evaluate.score (spikedetect.evaluate)",
                                "replay/runner.py: spikedetect.sim.truth (spikedetect.sim)"]


def test_no_module_may_import_a_command(tmp_path: Path) -> None:
    root = _package(tmp_path, {"demo.py": "from spikedetect.evaluate.cli_evaluate import render\n"})
    assert violations(root) == ["demo.py: spikedetect.evaluate.cli_evaluate (a command module)"]


def test_only_commands_may_use_the_click_options(tmp_path: Path) -> None:
    text = "from spikedetect.options import option\n"
    root = _package(tmp_path, {"evaluate/sweep.py": text, "evaluate/cli_report.py": text, "demo.py": text})
    assert violations(root) == ["evaluate/sweep.py: spikedetect.options (the commands' click options)"]


def test_the_cycle_checks_see_a_cycle(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "sim/__init__.py": "", "sim/a.py": "from spikedetect.sim.b import x\n",
        "sim/b.py": "import spikedetect.sim.a\nx = 1\n",
        "evaluate/__init__.py": "", "evaluate/c.py": "def f():\n    from spikedetect.sim.a import x\n",
        "replay/__init__.py": "", "replay/cli_replay.py": "from spikedetect.evaluate.c import f\n",
    })  # fmt: skip
    assert module_cycle(root, ("sim",)) in (["spikedetect.sim.a", "spikedetect.sim.b", "spikedetect.sim.a"],
                                            ["spikedetect.sim.b", "spikedetect.sim.a", "spikedetect.sim.b"])
    edges = package_edges(root)
    assert edges == {("evaluate", "sim")}  # the replay command's edge left out
    assert not has_cycle(edges) and has_cycle(edges | {("sim", "evaluate")})


def test_the_check_sees_a_deferred_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from spikedetect.sim.truth import load_truth\n    return load_truth\n")
    assert "spikedetect.sim.truth" in imported_modules(f)
    assert "spikedetect.sim.truth" not in imported_modules(f, deep=False)
