"""cnnlite's modules import one another without a cycle, and never from inside a function (the usual way a cycle is
papered over). The same check as the project's import-graph tool: the source is parsed with `ast`, nothing imported;
a compiled extension (cnnlite._kernels) is a leaf. Imports of optional packages (matplotlib, ...) inside functions
are fine: only cnnlite's own modules count."""
import ast
import os
import pathlib

import cnnlite

ROOT = pathlib.Path(cnnlite.__file__).resolve().parent
PKG = ROOT.name


def modules():
    found = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join((PKG,) + path.relative_to(ROOT).with_suffix("").parts)
        found[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    return found


def imported(node, module, is_package, mods):
    """The cnnlite modules an Import/ImportFrom node names (`from X import a`: X.a when it is a module, else X)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = module.split(".") if is_package else module.split(".")[:-1]
            parts = parts[:len(parts) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                 if f"{base}.{a.name}" in mods or not a.name.startswith("_") or a.name.startswith("__")]
    return {n for n in names if n in mods and n != module}


def graph():
    mods = modules()
    edges, deferred = {m: set() for m in mods}, []
    for m, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges[m] |= imported(node, m, is_package, mods)
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and imported(node, m, is_package, mods):
                        deferred.append(f"{os.path.relpath(path, ROOT.parent)}:{node.lineno}")
    return edges, deferred


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]; counter[0] += 1; stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1; stack.append(w); on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_cycle_between_cnnlite_modules():
    edges, _ = graph()
    assert cycles(edges) == []


def test_no_cnnlite_import_inside_a_function():
    _, deferred = graph()
    assert deferred == []


def test_the_check_sees_a_cycle_and_a_deferred_import():
    """The checks are not vacuous: a two-module cycle and an import in a function body are found."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    mods = {"cnnlite.x": None, "cnnlite.y": None}
    tree = ast.parse("def f():\n    from cnnlite import y\n")
    node = tree.body[0].body[0]
    assert imported(node, "cnnlite.x", False, mods) == {"cnnlite.y"}


def test_saving_knows_no_model_module():
    edges, _ = graph()
    saving = {m for m in edges if m == "cnnlite.saving" or m.startswith("cnnlite.saving.")}
    reached, todo = set(), list(saving)
    while todo:
        m = todo.pop()
        for n in edges[m]:
            if n not in reached:
                reached.add(n)
                todo.append(n)
    assert not reached & {"cnnlite", "cnnlite.models", "cnnlite.engine.training", "cnnlite.callbacks",
                          "cnnlite.layers", "cnnlite.optimizers"}
