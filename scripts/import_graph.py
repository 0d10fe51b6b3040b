"""Draw the package's import graph and check its layers: no import goes up a layer, no module cycle.

    python scripts/import_graph.py            # the layers, the imports between subpackages, any violation
    python scripts/import_graph.py --dot      # the module graph in Graphviz's dot language

Every ``import`` and ``from ... import`` of every module counts, those inside functions too. Layers, bottom up:
data, theory, model, io, training, studies, book; the package root (the public API) sits on top. Exits 1 on an
upward import or a cycle.
"""
from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "sdl_paper"
LAYERS = ["data", "theory", "model", "io", "training", "studies", "book"]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the package modules it imports} over every module under ``root``."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, name, path.name == "__init__.py")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            out |= {t for t in targets if t in modules and t != name}
        graph[name] = out
    return graph


def layer(module: str) -> int:
    """0 for data ... 6 for book; the root package and its top-level modules: above every layer."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where the imported module sits in a higher layer."""
    return sorted((a, b) for a, deps in graph.items() for b in deps if layer(b) > layer(a))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(argv: list[str]) -> int:
    graph = imports()
    if "--dot" in argv:
        print("digraph sdl_paper {")
        for a in sorted(graph):
            for b in sorted(graph[a]):
                print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    edges = Counter((a.split(".")[1] if "." in a else "(root)", b.split(".")[1] if "." in b else "(root)")
                    for a, deps in graph.items() for b in deps)
    for i, name in enumerate(LAYERS):
        uses = sorted({b for (a, b), _ in edges.items() if a == name and b != name}, key=LAYERS.index)
        print(f"{i} {name:9s} {sum(1 for m in graph if layer(m) == i):3d} modules; imports {', '.join(uses) or '-'}")
    bad, loops = upward(graph), cycles(graph)
    for a, b in bad:
        print(f"upward import: {a} -> {b}")
    for c in loops:
        print(f"cycle: {' -> '.join(c)}")
    print(f"{len(bad)} upward imports, {len(loops)} cycles")
    return 1 if bad or loops else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
