"""The package's wings import only downward (docs/architecture.md#wings): data and models at
the bottom, then training, serving, the method's jobs, and the entry-point helpers on top.
Every import counts, including the ones inside functions."""
import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tinybert")
LEVELS = {
    "errors": 0,
    "runtime": 1, "settings": 1, "paths": 1,
    "data": 2, "models": 2,
    "training": 3,
    "serving": 4,
    "distillation": 5, "augmentation": 5,
    "report": 6, "cli": 6, "api": 6, "tools": 6,
    "commands": 7,
}


def package_modules():
    for folder, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                yield path, rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported(path: str, module: str, is_package: bool):
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target == "tinybert":
                for alias in node.names:  # from . import x: x may be a module
                    yield node.lineno, f"{target}.{alias.name}"
            else:
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def test_every_module_belongs_to_a_known_wing():
    unknown = sorted({wing(m) for _, m in package_modules() if m != "tinybert" and wing(m) not in LEVELS})
    assert not unknown, f"add these to LEVELS and docs/architecture.md: {unknown}"


def test_imports_only_run_downward_between_wings():
    upward = []
    for path, module in package_modules():
        if module == "tinybert":  # the package's lazy API re-exports everything by design
            continue
        source = wing(module)
        for line, target in imported(path, module, path.endswith("__init__.py")):
            if not target.startswith("tinybert.") or target == "tinybert.__version__":
                continue
            destination = wing(target)
            if destination == source:
                continue
            if LEVELS.get(destination, 99) >= LEVELS[source]:
                upward.append(f"{os.path.relpath(path, ROOT)}:{line} {source} -> {destination}")
    assert not upward, "imports that run upward or sideways: " + ", ".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The walk above must resolve relative imports: an upward one in a fake module is found."""
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from ..serving.export import export\n")
    found = list(imported(str(fake), "tinybert.training.fake", False))
    assert found == [(2, "tinybert.serving.export")]


def test_every_class_fits_on_one_screen():
    """The house rule (docs/architecture.md): a class reads in one screen, about 150 lines with
    its docstrings; a longer one is split by concept, not by hiding code in helpers."""
    long = []
    for path, module in package_modules():
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 150:
                long.append(f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long, long


def test_no_two_modules_import_each_other():
    """Imports run one way between modules too (a cycle hidden in a function-level import is
    still a cycle): e.g. data.features is below data.store, which is below data.task_data."""
    modules = dict((module, path) for path, module in package_modules())
    graph = {module: set() for module in modules}
    for module, path in modules.items():
        for _, target in imported(path, module, path.endswith("__init__.py")):
            while target and target not in modules:
                target = target.rpartition(".")[0]  # from .x import name: the module x
            if target and target != module and target != "tinybert" and module != "tinybert":
                graph[module].add(target)
    cycles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if a < b and a in graph.get(b, ()))
    assert not cycles, cycles
