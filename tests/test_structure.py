"""Structure checks in plain Python over the package's own imports.

* The library never imports the command line: `keras_lnca.commands` and
  `keras_lnca.cli` depend on the library, never the reverse.
* No module imports another package's private names (`_name`) or private
  modules; a private module or name is shared only inside its own package.
* `keras_lnca.models` and `keras_lnca.layers` never import `training`,
  `commands`, `benchmarks` or the CLI; no module of the library imports
  `keras_lnca` as a whole (only the package's own `__init__` gathers it).
* No circle between modules of the library, counting imports inside
  functions too.
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_lnca"


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        yield name, package, ast.parse(path.read_text())


def imports(tree):
    """`(module, name)` for every `from keras_lnca... import name` / `import keras_lnca...`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keras_lnca"):
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("keras_lnca"):
                    yield alias.name, None


def _private(part):
    return part.startswith("_") and not part.startswith("__")


def test_the_library_does_not_import_the_command_line():
    bad = []
    for name, _, tree in modules():
        if name.startswith(("keras_lnca.commands", "keras_lnca.cli")):
            continue
        for module, _ in imports(tree):
            if module.startswith(("keras_lnca.commands", "keras_lnca.cli")):
                bad.append(f"{name} imports {module}")
    assert not bad, bad


def test_the_models_do_not_import_training():
    """`keras_lnca.models` stands on its own: `training` runs recipes on top of it."""
    bad = []
    for name, _, tree in modules():
        if name.startswith("keras_lnca.models"):
            bad += [f"{name} imports {m}" for m, _ in imports(tree) if m.startswith("keras_lnca.training")]
    assert not bad, bad


LOWER_FLOORS = ("keras_lnca.models", "keras_lnca.layers")
UPPER_FLOORS = ("keras_lnca.training", "keras_lnca.commands", "keras_lnca.benchmarks", "keras_lnca.cli")


def floor_violations(module_imports):
    """`module imports target` lines where a lower floor reaches up (or imports the whole package)."""
    bad = []
    for name, targets in module_imports.items():
        if name == "keras_lnca":
            continue
        for target in targets:
            if target == "keras_lnca" or (name.startswith(LOWER_FLOORS) and target.startswith(UPPER_FLOORS)):
                bad.append(f"{name} imports {target}")
    return bad


def imported_modules():
    """`{module: {imported module}}` over the library, each import resolved to a
    module where `from package import module` names one."""
    names = {name for name, _, _ in modules()}
    graph = {}
    for name, _, tree in modules():
        targets = set()
        for module, imported in imports(tree):
            submodule = f"{module}.{imported}"
            targets.add(submodule if submodule in names else module)
        graph[name] = targets - {name}
    return graph


def circles(graph):
    """The strongly connected groups of more than one module (Tarjan), sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_lower_floors_never_reach_up():
    assert not floor_violations(imported_modules())


def test_no_circle_between_modules():
    """Package `__init__`s that gather their members are left out: importing
    `keras_lnca.models.lnca` runs `keras_lnca/models/__init__.py` anyway."""
    graph = {
        name: {t for t in targets if not _is_package(t)}
        for name, targets in imported_modules().items()
        if not _is_package(name)
    }
    assert not circles(graph), circles(graph)


def _is_package(name):
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def test_the_floor_and_circle_checks_see_a_violation():
    planted = {
        "keras_lnca.models.lnca": {"keras_lnca.training.recipe", "keras_lnca.layers.nca"},
        "keras_lnca.layers.nca": {"keras_lnca"},
        "keras_lnca.a": {"keras_lnca.b"},
        "keras_lnca.b": {"keras_lnca.c"},
        "keras_lnca.c": {"keras_lnca.a"},
        "keras_lnca.d": {"keras_lnca.a"},
    }
    assert floor_violations(planted) == [
        "keras_lnca.models.lnca imports keras_lnca.training.recipe",
        "keras_lnca.layers.nca imports keras_lnca",
    ]
    assert circles(planted) == [["keras_lnca.a", "keras_lnca.b", "keras_lnca.c"]]


def private_owner(target):
    """The module or package that owns the first private part of a dotted name, or None."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            return ".".join(parts[:i])
    return None


def allowed(package, target):
    owner = private_owner(target)
    return owner is None or package == owner or package.startswith(owner + ".")


def test_no_private_names_across_packages():
    bad = []
    for name, package, tree in modules():
        for module, imported in imports(tree):
            target = module if imported is None else f"{module}.{imported}"
            if not allowed(package, target):
                bad.append(f"{name} imports {target}")
    assert not bad, bad


def test_the_checks_see_a_violation():
    """The checks above can fail: a synthetic module that breaks both rules is caught."""
    tree = ast.parse("from keras_lnca.commands.demo import run\nfrom keras_lnca.evaluation import _x\n")
    found = list(imports(tree))
    assert ("keras_lnca.commands.demo", "run") in found
    assert not allowed("keras_lnca.benchmarks", "keras_lnca.evaluation._x")
    assert not allowed("keras_lnca.models", "keras_lnca.models.nca_model._mse")
    assert allowed("keras_lnca.data", "keras_lnca.data._folders.find_pairs")
    assert not allowed("keras_lnca", "keras_lnca.data._folders.find_pairs")


MAX_MODULE_LINES = 600


def test_no_module_over_600_lines():
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_every_package_is_in_the_wheel():
    """pyproject.toml lists packages explicitly: a new sub-package must be added there."""
    import tomllib

    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(PACKAGE.parent).parts)
        for path in PACKAGE.rglob("__init__.py")
    }
    assert not found - listed, sorted(found - listed)


def test_the_top_level_namespace_lists_only_public_names():
    """`dir(keras_lnca)` is what tab completion offers: public names that resolve,
    not the standard-library modules the package itself uses."""
    import types

    import keras_lnca

    names = dir(keras_lnca)
    assert {"LNCA", "PixelNCA", "presets", "layers", "register"} <= set(names)
    for name in names:
        assert not name.startswith("_"), name
        value = getattr(keras_lnca, name)
        if isinstance(value, types.ModuleType):
            assert value.__name__.startswith("keras_lnca."), (name, value.__name__)


def _call_paths_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("call_paths", PACKAGE.parent / "tools" / "call_paths.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_call_paths_counts_steps_into_visited_files():
    """`tools/call_paths.py` (the figures of docs/architecture.md): a step into a file the
    path has already visited is a return, and each distinct step counts once."""
    tool = _call_paths_tool()
    path = [("cli.py", "a.py"), ("a.py", "b.py"), ("b.py", "a.py"), ("cli.py", "c.py"), ("c.py", "b.py")]
    assert tool.returns(path) == [("b.py", "a.py"), ("c.py", "b.py")]
    import keras_lnca
    from keras_lnca.degradations import parse

    root = pathlib.Path(keras_lnca.__file__).parent
    once = tool.file_steps(lambda: parse("gaussian:25"), root)
    steps = tool.file_steps(lambda: [parse("gaussian:25") for _ in range(3)], root)
    assert once and steps == once  # a loop's steps count once
    assert all(not pathlib.Path(f).is_absolute() and (root / f).is_file() for step in steps for f in step)
