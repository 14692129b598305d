"""Names of a package imported on first use (PEP 562), so that ``import latent_transforms`` and the
``latent-transforms`` command start without importing torch.

A package lists where each of its public names lives in one ``_SOURCES`` mapping (name -> module) and
asks :func:`lazy_exports` for its module-level ``__getattr__`` and ``__dir__``; its ``TYPE_CHECKING``
imports (for type checkers and editors) must name the same things, which ``tests/test_lazy_exports.py``
checks for every package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, sources: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: a name of ``sources`` is imported from its module on
    first access and kept in ``namespace`` (the package's ``globals()``), so later accesses are plain.

    Args:
        package: the package's ``__name__`` (for the error message).
        sources: public name -> the module that defines it.
        namespace: the package's ``globals()``.

    Example:
        >>> getattr_, dir_ = lazy_exports("pkg", {"sqrt": "math"}, ns := {})
        >>> getattr_("sqrt")(9.0), "sqrt" in ns, "sqrt" in dir_()
        (3.0, True, True)
        >>> getattr_("cbrt")
        Traceback (most recent call last):
        AttributeError: module 'pkg' has no attribute 'cbrt'
    """

    def __getattr__(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *sources})

    return __getattr__, __dir__
