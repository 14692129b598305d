"""Documentation: every public name has a docstring with an example, the examples run, the site builds."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import latent_transforms

ROOT = Path(__file__).resolve().parent.parent


def _modules():
    for info in pkgutil.walk_packages(latent_transforms.__path__, "latent_transforms."):
        yield importlib.import_module(info.name)


@pytest.mark.parametrize("name", [n for n in latent_transforms.__all__ if not n.startswith("__")])
def test_public_names_have_docstrings_with_examples(name):
    obj = getattr(latent_transforms, name)
    doc = obj.__doc__ or ""
    assert doc.strip(), f"{name} has no docstring"
    if callable(obj) and not (isinstance(obj, type) and issubclass(obj, Exception)):
        assert "Example" in doc, f"{name}'s docstring has no example"


def test_docstring_examples_run():
    failures = 0
    for module in _modules():
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        failures += result.failed
    assert failures == 0


@pytest.mark.skipif(
    shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists(),
    reason="mkdocs not installed (pip install -e '.[docs]')",
)
def test_documentation_site_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs") or str(Path(sys.executable).parent / "mkdocs")
    run = subprocess.run(
        [mkdocs, "build", "--strict", "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").read_text().count("load_gan") > 3
