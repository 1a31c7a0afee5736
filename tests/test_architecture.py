"""Data flows one way (DESIGN.md §1): these tests keep the import direction honest."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

FORBIDDEN: dict[str, set[str]] = {
    # the core imports none of the other packages, and never torch (training only)
    "habitus": {"service", "worker", "model_export", "torch"},
    # service and worker share the job contract in habitus and Redis, not each other
    "service": {"worker", "model_export", "torch"},
    "worker": {"service", "model_export", "torch"},
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_forbidden_packages(package: str) -> None:
    offences = [
        f"{path.relative_to(REPO_ROOT)} imports {sorted(bad)}"
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if (bad := imported_roots(path) & FORBIDDEN[package])
    ]
    assert not offences, "\n".join(offences)


def test_import_scanner_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import worker.app\nfrom service.api import x\nfrom . import y\n")
    assert imported_roots(sample) == {"worker", "service"}


# every import counts, also inside functions: a deferred import still ties two modules into
# one unit; only imports under ``if TYPE_CHECKING:`` (never run) are left out
GRAPH_PACKAGES = ("habitus", "service", "worker", "model_export")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def repository_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in GRAPH_PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes of ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    nodes: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return nodes


def _owner(name: str, modules: set[str]) -> str | None:
    """The repository module that ``name`` (a module or a name inside one) lives in."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if (candidate := ".".join(parts[:end])) in modules:
            return candidate
    return None


def imported_modules(module: str, path: Path, modules: set[str]) -> set[str]:
    """The repository modules that ``module`` (the file ``path``) imports."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str | None] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(_owner(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from a import b`` imports the module a.b when there is one, else a name of a
            targets.update(_owner(f"{base}.{alias.name}", modules) for alias in node.names)
    return {t for t in targets if t is not None and t != module}


def import_graph() -> dict[str, set[str]]:
    modules = repository_modules()
    names = set(modules)
    return {name: imported_modules(name, path, names) for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while (member := stack.pop()) != node:
                component.add(member)
            components.append(component | {node})

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(min(c), c, graph) for c in components if len(c) > 1]


def _cycle_through(start: str, component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``component`` (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while start not in previous:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    path = [start]
    while len(path) == 1 or path[-1] != start:
        path.append(previous[path[-1]])
    return path[::-1]


def test_no_import_cycles() -> None:
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_import_graph_resolves_relative_and_from_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "a.py", "b.py", "sub/__init__.py", "sub/c.py"):
        (package / name).write_text("")
    sample = package / "sub" / "d.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "import pkg.a\n"
        "from pkg import b\n"
        "from . import c\n"
        "from ..a import name\n"
        "from .c import other\n"
        "if TYPE_CHECKING:\n"
        "    import pkg.sub\n"
        "def f() -> None:\n"
        "    from pkg.sub import c\n"
    )
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.sub.d"}
    assert imported_modules("pkg.sub.d", sample, modules) == {"pkg.a", "pkg.b", "pkg.sub.c"}


def test_cycles_are_found_and_named() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


# The layers of the core (DESIGN.md §1), lowest first: a unit (a subpackage of habitus, or a
# top-level module) imports only units before it in this list, so data flows from files to
# volumes, labels, landmarks, measurements and outputs, and never back.
CORE_LAYERS = (
    "errors",
    "labels",
    "uids",
    "volume",
    "progress",
    "redis_keys",
    "config",  # the core's settings
    "nodes",  # the PACS nodes (HABITUS_DICOM_NODES), named by the job contract and the settings
    "jobs",  # the job contract of the service and the worker
    "settings",  # the product's settings: the core's, the service's and the worker's
    "liveness",
    "dicom",  # files -> a CT volume
    "segment",  # a CT volume -> a label map
    "anatomy",  # labels -> landmarks, levels, body parts
    "metrics",  # landmarks + labels -> measurements
    "patient",
    "pet",  # the PET of the study, measured per tissue
    "outputs",  # SEG, SR, report, preview
    "phantoms",  # synthetic studies, written with the outputs' and the readers' conventions
    "pipeline",
    "cli",
    "models",  # bundled model files (data)
)


def core_unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "habitus" and len(parts) > 1 else None


def layer_violations(graph: dict[str, set[str]], layers: tuple[str, ...]) -> list[str]:
    rank = {unit: position for position, unit in enumerate(layers)}
    offences = []
    for module, imports in sorted(graph.items()):
        if (unit := core_unit(module)) is None:
            continue
        for target in sorted(imports):
            other = core_unit(target)
            if other is None or other == unit:
                continue
            if unit not in rank or other not in rank or rank[other] > rank[unit]:
                offences.append(f"{module} ({unit}) imports {target} ({other})")
    return offences


def test_core_layers_import_only_downward() -> None:
    offences = layer_violations(import_graph(), CORE_LAYERS)
    assert not offences, "imports against the core's layers:\n" + "\n".join(offences)


def test_every_core_unit_has_a_layer() -> None:
    units = {unit for module in repository_modules() if (unit := core_unit(module))}
    assert units <= set(CORE_LAYERS), f"units without a layer: {sorted(units - set(CORE_LAYERS))}"


def test_layer_violations_are_found() -> None:
    graph = {
        "habitus.metrics.a": {"habitus.segment.b"},
        "habitus.segment.b": {"habitus.metrics.a", "habitus.segment.c"},
        "habitus.segment.c": set(),
    }
    assert layer_violations(graph, ("segment", "metrics")) == [
        "habitus.segment.b (segment) imports habitus.metrics.a (metrics)"
    ]
