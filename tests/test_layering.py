"""The shape of the library: imports run one way through the layers, no circles, no module reaches into
another's private names, and modules stay small unless a reason is written down."""

from __future__ import annotations

from tests.layering import LAYERS, LONG_MODULES, MAX_LINES, PACKAGE, import_graph, layer_index, package_of


def test_every_package_has_a_layer():
    known = layer_index()
    packages = {package_of(m) for m in import_graph()} - {"__init__"}
    assert packages <= set(known), f"packages without a layer: {sorted(packages - set(known))}"


def test_imports_never_run_up_a_layer():
    layer = layer_index()
    upward = []
    for module, edges in import_graph().items():
        if module == "__init__.py":
            continue
        for target in edges:
            if target == "__init__.py":
                upward.append((module, "latent_transforms (the top-level package)"))
            elif layer[package_of(target)] > layer[package_of(module)]:
                upward.append((module, target))
    assert not upward, f"imports that run up a layer: {upward}"


def test_no_circle_between_modules():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, {}):
            if nxt.endswith("__init__.py"):
                continue  # packages' __init__ re-export; their own imports are checked as modules
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in graph:
        if module not in state and not module.endswith("__init__.py"):
            visit(module, [module])
    assert not cycles, f"import circles: {cycles}"


def test_no_module_imports_another_modules_private_names():
    reaching = [
        (module, target, name)
        for module, edges in import_graph().items()
        for target, names in edges.items()
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not reaching, f"private names imported across modules: {reaching}"


def test_modules_stay_under_the_size_limit_or_say_why():
    long = {
        p.relative_to(PACKAGE).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    unexplained = sorted(set(long) - set(LONG_MODULES))
    assert not unexplained, f"modules over {MAX_LINES} lines without a stated reason: {unexplained}"
    stale = sorted(set(LONG_MODULES) - set(long))
    assert not stale, f"reasons kept for modules that are short now: {stale}"


def test_the_layer_table_names_each_package_once():
    names = [pkg for _, pkgs in LAYERS for pkg in pkgs]
    assert len(names) == len(set(names))


def test_the_architecture_page_lists_every_module():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [
        rel
        for p in sorted(PACKAGE.rglob("*.py"))
        if not (rel := p.relative_to(PACKAGE).as_posix()).endswith("__init__.py") and f"`{rel}`" not in page
    ]
    assert not missing, f"docs/architecture.md does not list {missing}"


def test_examples_and_benchmarks_use_only_public_names():
    import ast

    bad = []
    for folder in ("examples", "benchmarks"):
        for path in sorted((PACKAGE.parent / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                    "latent_transforms"
                ):
                    continue
                depth = node.module.count(".")
                command_module = node.module == "latent_transforms.cli" or node.module.endswith(".command")
                private = [a.name for a in node.names if a.name.startswith("_")]
                if (depth > 1 and not command_module) or private:
                    bad.append(f"{path.relative_to(PACKAGE.parent)}: from {node.module} import ...")
    assert not bad, "import from the package or its sub-packages, not from their modules:\n" + "\n".join(bad)
