"""Every package that imports its names on first use lists each one once and the same way: its
``_SOURCES`` mapping, its ``TYPE_CHECKING`` imports (what type checkers and editors see) and ``__all__``
agree, and every name resolves to the object its typed import names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "latent_transforms"
LAZY_PACKAGES = sorted(
    ".".join(("latent_transforms", *p.parent.relative_to(ROOT).parts))
    for p in ROOT.rglob("__init__.py")
    if "_SOURCES" in p.read_text()
)


def _typed_imports(package: str) -> dict[str, str]:
    """name -> module of the imports under ``if TYPE_CHECKING:``."""
    path = ROOT.joinpath(*package.split(".")[1:], "__init__.py")
    out: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for sub in node.body:
                assert isinstance(sub, ast.ImportFrom) and sub.module
                for alias in sub.names:
                    out[alias.asname or alias.name] = sub.module
    return out


def test_the_packages_that_load_on_first_use_are_found():
    assert "latent_transforms" in LAZY_PACKAGES and "latent_transforms.training" in LAZY_PACKAGES


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_sources_typed_imports_and_all_name_the_same_things(package):
    module = importlib.import_module(package)
    sources = module._SOURCES
    typed = _typed_imports(package)
    assert set(typed) == set(sources), set(typed) ^ set(sources)
    if hasattr(module, "__all__"):
        assert set(module.__all__) - {"__version__"} == set(sources)
    for name, source in sources.items():
        value = getattr(module, name)
        assert value is getattr(importlib.import_module(source), name), name
        assert value is getattr(importlib.import_module(typed[name]), name), name
    assert set(sources) <= set(dir(module))
    with pytest.raises(AttributeError, match="has no attribute 'not_a_name'"):
        module.not_a_name  # noqa: B018
