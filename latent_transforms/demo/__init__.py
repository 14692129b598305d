"""The demo: the library's main job on the built-in bundle, offline, on a CPU (``latent-transforms demo``).

:func:`~latent_transforms.demo.run.run_demo` inverts a few held-out phantom slices, augments them with
StandardDA, SG2Sample and LatentAugment (Tronchin et al. 2023) and writes the figure, the distance table
and a JSON report; :mod:`latent_transforms.demo.command` is its command line. The names below are
served from :mod:`latent_transforms.demo.run` on first access, so the command line's ``--help`` does
not import the job.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent_transforms.demo.run import (
        DEMO_DATA,
        DEMO_GAN,
        DemoResult,
        format_summary,
        held_out_slices,
        policy_distances,
        run_demo,
    )

__all__ = [
    "DEMO_DATA",
    "DEMO_GAN",
    "DemoResult",
    "format_summary",
    "held_out_slices",
    "policy_distances",
    "run_demo",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("latent_transforms.demo.run"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
