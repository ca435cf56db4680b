"""Structure checks in plain Python over the package's own imports.

* The library never imports the command line: `keras_lnca.commands` and
  `keras_lnca.cli` depend on the library, never the reverse.
* No module imports another package's private names (`_name`) or private
  modules; a private module or name is shared only inside its own package.
* `keras_lnca.models` never imports `keras_lnca.training`.
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
    assert allowed("keras_lnca.data", "keras_lnca.data._cache.find_pairs")
    assert not allowed("keras_lnca", "keras_lnca.data._cache.find_pairs")


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
