"""No module of Beanpole imports itself back through others (issue 7, part 7).

`make lint`'s acyclic_siblings contract forbids cycles between siblings at every depth; this
test also catches the one shape it cannot see, a package's ``__init__`` and one of its own
modules importing each other. ``TYPE_CHECKING`` imports count: a cycle hidden behind one
still ties the two modules together.
"""

from __future__ import annotations

import grimp


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_the_detector_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg")
    assert sorted(cycles(graph)) == [["pkg", "pkg.c"], ["pkg.a", "pkg.b"]]


def test_beanpole_has_no_import_cycle() -> None:
    assert cycles(grimp.build_graph("beanpole")) == []
