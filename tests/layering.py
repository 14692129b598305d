"""The library's layers and its import graph, read from the source (no module is imported).

Used by ``tests/test_layering.py`` (imports run one way, no circles, no reaching into private names,
module sizes) and by ``docs/images/draw_architecture.py`` (the picture in ``docs/architecture.md``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "latent_transforms"

#: Bottom to top: a module may import from its own layer's packages and from the layers below.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("errors", "_version", "checks", "files", "image_quality", "lazy", "plotting")),
    ("data", ("data",)),
    ("networks", ("networks",)),
    ("features", ("features",)),
    ("objectives", ("objectives",)),
    ("inversion", ("inversion",)),
    ("measures and tasks", ("metrics", "tasks")),
    ("generative", ("generative",)),
    ("translation", ("translation",)),
    ("transforms", ("transforms",)),
    ("training", ("training",)),
    ("evaluation", ("evaluation",)),
    ("tuning", ("tuning",)),
    ("jobs", ("demo", "export")),
    ("command line", ("cli", "arguments", "commands")),
)
#: What each package holds, for the picture.
ROLES = {
    "foundation": "errors, checks, files, SSIM, lazy names, figures",
    "data": "labelled images, paired datasets, splits, phantom",
    "networks": "StyleGAN2, GanBundle, Hub, converter",
    "features": "feature / perceptual networks, registry",
    "objectives": "LatentAugment's walk and loss terms, dataset statistics",
    "inversion": "projector, encoder, latent cache and lookup",
    "measures and tasks": "FID, precision/recall, statistics; task classifier, utility",
    "generative": "DiffusionBundle on MONAI's UNet and schedulers, sampling",
    "translation": "CycleGAN / DUIIT translators, their trainer and TranslatorBundle",
    "transforms": "LatentAugment, SG2Sample, DiffusionSample, StandardDA, SelectiveFilter",
    "training": "StyleGAN2-ADA and diffusion trainers, ADA, scoring",
    "evaluation": "policies side by side, reading sheet",
    "tuning": "Optuna studies and grids",
    "jobs": "demo, augmented sets on disk",
    "command line": "latent-transforms and each package's command.py",
}
#: Modules over the size limit, with the reason they stay whole.
LONG_MODULES = {
    "data/phantom.py": "one generator of anatomy: the organs, their textures and the MRI/CT contrasts",
    "inversion/cache.py": "one crash-safe on-disk format: index, shards, locking, recovery",
    "inversion/encoder.py": "one network with its training loop and its safetensors round trip",
    "objectives/stats.py": "one class: the dataset means and the closed-form losses they give",
    "transforms/selective_filter.py": "one class whose public methods carry long examples",
    "training/augment.py": "ADA's pipeline and its controller, documented transform by transform",
    "evaluation/run.py": "the evaluation's one pass over policies, with its data preparation",
    "metrics/stats.py": "Friedman, Nemenyi and Wilcoxon with their result tables",
    "features/perceptual.py": "the perceptual network with its per-layer normalisation",
}
MAX_LINES = 600


def module_name(path: Path) -> str:
    """``latent_transforms/a/b.py`` -> ``a/b.py`` (relative to the package)."""
    return path.relative_to(PACKAGE).as_posix()


def package_of(module: str) -> str:
    """The layer package of a module path (``a/b.py`` -> ``a``; command modules -> ``commands``)."""
    parts = module.split("/")
    if parts[-1] == "command.py":
        return "commands"
    if len(parts) == 1:
        return parts[0].removesuffix(".py")
    return parts[0]


def layer_index() -> dict[str, int]:
    """``{package: layer number}`` (0 = the bottom)."""
    return {pkg: i for i, (_, pkgs) in enumerate(LAYERS) for pkg in pkgs}


def _target(node: ast.ImportFrom | ast.Import, module: str) -> list[tuple[str, list[str]]]:
    """``[(imported module path, imported names)]`` inside the package, for one import statement."""
    found: list[tuple[str, list[str]]] = []
    if isinstance(node, ast.ImportFrom):
        if node.level:  # relative imports are not used in the package; resolve anyway
            base = module.split("/")[: -node.level]
            name = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            dotted = "latent_transforms." + name if name else "latent_transforms"
        else:
            dotted = node.module or ""
        if dotted == "latent_transforms":
            for alias in node.names:  # from latent_transforms import image_quality / load_gan
                found.append((_resolve(alias.name), []))
        elif dotted.startswith("latent_transforms."):
            found.append((_resolve(dotted.removeprefix("latent_transforms.")), [a.name for a in node.names]))
    else:
        for alias in node.names:
            if alias.name.startswith("latent_transforms."):
                found.append((_resolve(alias.name.removeprefix("latent_transforms.")), []))
    return found


def _resolve(dotted: str) -> str:
    path = dotted.replace(".", "/")
    if (PACKAGE / f"{path}.py").is_file():
        return f"{path}.py"
    if (PACKAGE / path / "__init__.py").is_file():
        return f"{path}/__init__.py"
    return "__init__.py"  # a name of the top-level package (from latent_transforms import load_gan)


def import_graph() -> dict[str, dict[str, list[str]]]:
    """``{module: {imported module: [names]}}`` for every module of the package."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        edges: dict[str, list[str]] = defaultdict(list)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }  # imports for type hints only: no dependency at run time
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom | ast.Import):
                for target, names in _target(node, module):
                    if target != module:
                        edges[target].extend(names)
        graph[module] = dict(edges)
    return graph


def package_graph() -> dict[str, set[str]]:
    """``{package: {packages it imports}}`` (the top-level ``__init__`` left out: it re-exports)."""
    out: dict[str, set[str]] = defaultdict(set)
    for module, edges in import_graph().items():
        if module == "__init__.py":
            continue
        src = package_of(module)
        for target in edges:
            if target == "__init__.py":
                continue
            dst = package_of(target)
            if dst != src:
                out[src].add(dst)
    return dict(out)
