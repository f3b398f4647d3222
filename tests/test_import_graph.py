"""The import graph has no cycles: every module of ours can be read before the modules that import it.

import-linter's contracts (pyproject.toml) keep the stages pointing one way; this test also finds a
cycle inside one app (two modules importing each other, even inside a function).
"""

import grimp

PACKAGES = ("portal", "accounts", "scans", "ml", "reports", "clinic", "imaging")


def strongly_connected_components(edges):
    """Tarjan's algorithm, iteratively (the graph has a few hundred modules)."""
    index, low, on_stack, stack, components, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, neighbours = work[-1]
            advanced = False
            for neighbour in neighbours:
                if neighbour not in index:
                    index[neighbour] = low[neighbour] = counter[0]
                    counter[0] += 1
                    stack.append(neighbour)
                    on_stack.add(neighbour)
                    work.append((neighbour, iter(sorted(edges[neighbour]))))
                    advanced = True
                    break
                if neighbour in on_stack:
                    low[node] = min(low[node], index[neighbour])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph(*PACKAGES)
    modules = {module for module in graph.modules if ".migrations" not in module}
    assert len(modules) > 100, "the graph should hold every module of the project"
    edges = {module: graph.find_modules_directly_imported_by(module) & modules for module in modules}
    cycles = [sorted(component) for component in strongly_connected_components(edges) if len(component) > 1]
    assert not cycles, f"import cycles: {cycles}"
