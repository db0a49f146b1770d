"""The package's dependencies point one way: cli -> features -> runtime -> plan, formats, weights -> config.

Built from the source with ``ast`` (every import statement, inside functions too), so a cycle cannot
hide behind a lazy import, and no module the runtime can reach imports Keras or TensorFlow at module
level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import squeezekit

ROOT = Path(squeezekit.__file__).parent

# Each unit (a subpackage, or a top-level module) and its layer; a unit may import only units of a
# lower layer (or, within a layer, units it does not form a cycle with).
LAYERS = {
    0: {"errors", "_progress", "_outputs", "_schema", "config"},
    1: {"_resources", "_cache", "graph"},
    2: {"labels", "samples", "weights"},
    3: {"registry", "preprocessing", "formats"},
    4: {"runtime", "evaluation", "models", "data"},
    5: {"opener", "reports"},
    6: {"export", "compression", "training", "explore", "benchmark", "serve"},
    7: {"cli", "__main__"},
}
RANK = {unit: layer for layer, units in LAYERS.items() for unit in units}
HEAVY = ("keras", "tensorflow", "jax", "torch")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(("squeezekit",) + (parts[:-1] if parts[-1] == "__init__" else parts))


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found += [(name, id(node) in top_level) for name in names]
    return found


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def unit_graph() -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        source = _unit(name)
        for imported, _ in _imports(path):
            target = _unit(imported) if imported.startswith("squeezekit.") else None
            if source and target and target != source and f"squeezekit.{target}" in modules:
                edges.setdefault(source, set()).add(target)
    return edges


def test_every_unit_has_a_layer():
    units = {_unit(name) for name in _modules()} - {None}
    assert units - set(RANK) == set(), "add new subpackages and modules to LAYERS"


def test_no_cycles_and_no_upward_imports():
    edges = unit_graph()
    upward = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets if RANK[b] > RANK[a])
    assert upward == []

    def reaches(start: str, goal: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            for nxt in edges.get(stack.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    assert sorted(f"{a} <-> {b}" for a in edges for b in edges[a] if reaches(b, a)) == []


def test_nothing_the_runtime_reaches_imports_a_framework_at_module_level():
    modules = _modules()
    reached, stack = set(), [m for m in modules if m.startswith("squeezekit.runtime")]
    while stack:
        name = stack.pop()
        if name in reached:
            continue
        reached.add(name)
        for imported, _ in _imports(modules[name]):
            for candidate in (imported, imported.rpartition(".")[0]):
                if candidate in modules and candidate not in reached:
                    stack.append(candidate)
    offenders = sorted(f"{name} imports {imported}" for name in reached for imported, top in _imports(modules[name])
                       if top and imported.split(".")[0] in HEAVY)
    assert offenders == []
    # And the runtime reaches no Keras-side unit at all, lazily or not.
    assert {_unit(name) for name in reached} & {"models", "training", "export", "compression", "opener"} == set()


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
    """The graph builder is not vacuous: a lazy import inside a function counts."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from squeezekit.models import squeezenet\n")
    assert ("squeezekit.models", False) in _imports(path)
