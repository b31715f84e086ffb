"""The package's import graph (every import statement, module level or inside a function): no cycles,
the CLI (``talkbench._cli``) imported only by the CLI, and layers pointing one way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("talkbench", "cals", "baselines")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules imported by ``path`` (``from a.b import c`` counts as ``a.b.c`` when that is a module)."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        out.update(t for t in targets if t in known and t != name)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {n: _imports(p, n, known) for n, p in mods.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return [*stack[stack.index(m):], m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_import_graph_has_no_cycle() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_one() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_cli_imports_the_cli() -> None:
    cli = ("talkbench._cli", "talkbench.cli")
    bad = sorted(f"{n} imports {m}" for n, deps in _graph().items() if not n.startswith(cli)
                 and not n.endswith(".cli") and not n.endswith("_cli")
                 for m in deps if m.startswith("talkbench._cli"))
    assert not bad, bad


# Lower layers never import higher ones (types -> io/faces/critics -> metrics/methods -> runner ->
# results/report -> CLI). Each entry: a module prefix and the prefixes it must not import.
FORBIDDEN = {
    "talkbench.types": ("talkbench.",),
    "talkbench.errors": ("talkbench.",),
    "talkbench.weights": ("talkbench.io", "talkbench.faces", "talkbench.critics", "talkbench.metrics",
                          "talkbench.methods", "talkbench.runner", "talkbench.results", "talkbench.report"),
    "talkbench.io": ("talkbench.faces", "talkbench.critics", "talkbench.metrics", "talkbench.methods",
                     "talkbench.runner", "talkbench.report", "talkbench.results"),
    "talkbench.faces": ("talkbench.critics", "talkbench.metrics", "talkbench.methods", "talkbench.runner",
                        "talkbench.report", "talkbench.results"),
    "talkbench.critics": ("talkbench.metrics", "talkbench.methods", "talkbench.runner", "talkbench.report",
                          "talkbench.results"),
    "talkbench.metrics": ("talkbench.methods", "talkbench.runner", "talkbench.report", "talkbench.experiments",
                          "talkbench.compare"),
    "talkbench.methods": ("talkbench.metrics", "talkbench.runner", "talkbench.report", "talkbench.experiments"),
    "talkbench.runner": ("talkbench.report", "talkbench.experiments", "talkbench.compare"),
    "talkbench.results": ("talkbench.report", "talkbench.experiments", "talkbench.compare", "talkbench.runner"),
    "talkbench.report": ("talkbench.runner",),
}


def test_layers_point_one_way() -> None:
    bad = []
    for n, deps in _graph().items():
        for layer, banned in FORBIDDEN.items():
            if n == layer or n.startswith(layer + "."):
                bad += [f"{n} imports {m}" for m in deps if m.startswith(banned) and not m.startswith(layer)
                        and m not in ("talkbench.types", "talkbench.errors")]
    assert not bad, "\n".join(sorted(bad))
