"""The import graph runs one way, down the layers of STYLE.md, and has no cycle.

Every ``import`` of the package's own modules (at module level or inside a function,
where the optional libraries are imported lazily) is read from the source with ``ast``:

    public (``__init__``, the command line) > ``_api`` > ``_validate`` > ``_backends``
    (the adapters) > ``_autodiff``/``_damped`` (derivative rules) > ``_engine`` >
    ``_methods`` > ``_kernels``

``_tolerance`` and ``_finite`` are leaves that any layer may use and that import
nothing of the package. A module may import its own layer's siblings (``_cli`` its
readers, an adapter another adapter, a method another method) but nothing above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "pseudoinverse"
LAYERS = [
    ("", "__init__", "__main__", "_cli", "_cli_io", "_cli_checks", "_cli_solve", "_cli_sparse"),
    ("_api", "_operator"),
    ("_validate",),
    ("_backends",),
    ("_autodiff", "_damped"),
    ("_engine",),
    ("_methods",),
    ("_kernels",),
]
LEAVES = ("_tolerance", "_finite")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (dotted, relative to the package)."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = [*base, *(node.module.split(".") if node.module else [])]
            if node.module:
                found.add(".".join(target))
            for alias in node.names:  # from . import _engine: a module of the package
                candidate = [*target, alias.name]
                if _exists(candidate):
                    found.add(".".join(candidate))
                elif not node.module:
                    found.add(".".join(target))
        elif isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
            names = (
                [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            for full in names:
                if full and full.split(".")[0] == "pseudoinverse":
                    found.add(".".join(full.split(".")[1:]))
    return found


def _exists(parts: list[str]) -> bool:
    p = ROOT.joinpath(*parts)
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def _layer(module: str) -> int | None:
    head = module.split(".")[0] if module else ""
    if head in LEAVES:
        return None
    for i, names in enumerate(LAYERS):
        if head in names:
            return i
    raise AssertionError(f"module {module!r} is in no layer of this test: add it")


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_down(module):
    own = _layer(module)
    for target in _imports(MODULES[module]):
        if target == module:
            continue
        layer = _layer(target)
        if own is None:  # a leaf imports nothing of the package
            raise AssertionError(f"leaf {module} imports {target}")
        if layer is None:
            continue
        assert layer >= own, f"{module} (layer {own}) imports {target} (layer {layer}): up"


def test_no_cycle():
    graph = {m: {t for t in _imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_the_graph_is_read():
    """The parser sees real edges (else the tests above would pass vacuously)."""
    assert "_engine" in _imports(MODULES["_backends._torch"])
    assert "_methods.spectral" in _imports(MODULES["_engine"])
    assert "_validate" in _imports(MODULES["_api"])
