"""The package's import graph, read with `ast` (imports inside functions included):
no import circle, the library never imports the tools or the benches, and flags
live only in the binaries' `__main__.py`."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("deeplab_dpc", "tfrecords_tools")


def _module_name(path):
    rel = os.path.relpath(path, ROOT)[:-len(".py")].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _modules():
    """{module name: path} of every .py file of the project's packages."""
    found = {}
    for package in PACKAGES:
        for folder, _, names in os.walk(os.path.join(ROOT, package)):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    found[_module_name(path)] = path
    return found


def imports_of(path, modules):
    """Every module `path` imports (at any depth of the file), as dotted names; a
    `from X import name` counts as importing `X.name` when that is a module."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                out.add(child if child in modules else node.module)
    return out


def with_packages(deps, module, modules):
    """Importing `a.b.c` runs `a/__init__` and `a/b/__init__` first: those are imports
    too, except of the importer's own parent packages (already running)."""
    out = set(deps)
    for dep in deps:
        parts = dep.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts))
                   if ".".join(parts[:i]) in modules)
    return {d for d in out if d != module and not module.startswith(d + ".")}


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: with_packages(imports_of(path, modules), name, modules)
            for name, path in modules.items()}, modules


def find_cycle(edges):
    """One import circle as a list of modules, or None (iterative DFS, three colours)."""
    state, parent = {}, {}
    for root in edges:
        if root in state:
            continue
        stack = [(root, iter(sorted(edges[root])))]
        state[root] = "open"
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = "done"
                stack.pop()
            elif child in edges and state.get(child) == "open":
                cycle, at = [node], node
                while at != child:
                    at = parent[at]
                    cycle.append(at)
                return cycle[::-1] + [child]
            elif child in edges and child not in state:
                state[child], parent[child] = "open", node
                stack.append((child, iter(sorted(edges[child]))))
    return None


def test_the_finder_sees_a_circle_and_imports_inside_functions(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    probe = tmp_path / "probe.py"
    probe.write_text("import os\n\ndef f():\n    from deeplab_dpc.data import synthetic\n")
    modules = {"deeplab_dpc": "", "deeplab_dpc.data": "", "deeplab_dpc.data.synthetic": ""}
    assert imports_of(str(probe), modules) == {"os", "deeplab_dpc.data.synthetic"}
    # A circle through a package's __init__: spec -> layers.ops runs layers/__init__,
    # which imports layers.dpc, which imports spec.
    deps = with_packages({"deeplab_dpc.layers.ops"}, "deeplab_dpc.spec",
                         {"deeplab_dpc", "deeplab_dpc.layers", "deeplab_dpc.layers.ops"})
    assert deps == {"deeplab_dpc.layers", "deeplab_dpc.layers.ops"}
    assert with_packages({"deeplab_dpc.layers.ops"}, "deeplab_dpc.layers.dpc",
                         {"deeplab_dpc", "deeplab_dpc.layers", "deeplab_dpc.layers.ops"}) == {
        "deeplab_dpc.layers.ops"}


def uses_absl_flags(path):
    """Whether a file imports absl's flags in any form, or reads a FLAGS object."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "absl.flags" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (
                node.module == "absl.flags" or node.module == "absl" and any(
                    a.name == "flags" for a in node.names)):
            return True
        if isinstance(node, ast.Name) and node.id == "FLAGS":
            return True
    return False


def test_the_flag_finder_sees_every_form(tmp_path):
    for source, found in (("from absl import app, flags\n", True),
                          ("import absl.flags\n", True),
                          ("def f():\n    return FLAGS.x\n", True),
                          ("from absl import app, logging\n", False)):
        probe = tmp_path / "probe.py"
        probe.write_text(source)
        assert uses_absl_flags(str(probe)) is found, source


def test_no_import_circle(graph):
    edges, _ = graph
    project = {m: {i for i in deps if i in edges} for m, deps in edges.items()}
    assert len(project) > 50
    assert find_cycle(project) is None, " -> ".join(find_cycle(project))


def test_the_library_imports_neither_tools_nor_benches(graph):
    edges, _ = graph
    bad = sorted((m, i) for m, deps in edges.items() if m.startswith("deeplab_dpc")
                 for i in deps if i.split(".")[0] in ("tfrecords_tools", "bench"))
    assert not bad, bad


def test_flags_live_only_in_binaries(graph):
    """A binary is `NAME/__main__.py`, nothing imports one, no other module of the
    library touches absl flags, and no module shares its name with a package."""
    edges, modules = graph
    for name, deps in edges.items():
        assert not any(d.endswith("__main__") for d in deps), name
        if name.startswith("deeplab_dpc.") and not name.endswith("__main__") and \
                name != "deeplab_dpc.cli":
            assert not uses_absl_flags(modules[name]), f"{name} uses absl flags"
    binaries = sorted(m[:-len(".__main__")] for m in edges if m.endswith(".__main__"))
    assert binaries == ["deeplab_dpc.analyze", "deeplab_dpc.cache_features", "deeplab_dpc.eval",
                        "deeplab_dpc.export",
                        "deeplab_dpc.import_tf1_checkpoint",
                        "deeplab_dpc.predict", "deeplab_dpc.rerank", "deeplab_dpc.search",
                        "deeplab_dpc.stats",
                        "deeplab_dpc.train", "deeplab_dpc.vis"]
    for folder, subfolders, names in os.walk(os.path.join(ROOT, "deeplab_dpc")):
        assert not {f"{d}.py" for d in subfolders} & set(names), folder
