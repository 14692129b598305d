"""The demo: the library's main job on the built-in bundle, offline, on a CPU (``latent-transforms demo``).

:func:`run_demo` inverts a few held-out phantom slices, augments them with StandardDA, SG2Sample and
LatentAugment (Tronchin et al. 2023) and writes the figure, the distance table and a JSON report;
:mod:`latent_transforms.demo.command` is its command line.
"""

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
