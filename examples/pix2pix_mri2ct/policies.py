"""The augmentation policies of the benchmark, built from the library's public transforms.

Each policy is a :class:`Policy` (a name, what it is, its ``p``) that :func:`build_transform` turns into
a batch transform for :class:`latent_transforms.GPUAugment`: ``None`` (Baseline), ``StandardDA``,
``SG2Sample`` or ``LatentAugment``. ``p`` is the probability that a training sample is augmented: the
paper's ``p_aug`` (the probability of keeping the real image) is ``1 - p``. The defaults are the paper's
picks (Tronchin et al. 2023, §V-B): Standard DA ``p_aug = 0.9`` with xflip, rotate ±3°, translate ±5 %
and elastic deformation; Standard SG2 DA ``p_aug = 0.7``; LatentAugment F1 preset ``p_aug = 0.8`` and MAE
preset ``p_aug = 0.7``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

import latent_transforms as lt

BASELINE = "baseline"


@dataclass(frozen=True)
class Policy:
    """One augmentation policy of the benchmark.

    Attributes:
        name: a unique, file-safe name (``"latentaugment-mae"``, ``"ablate-lat"``,
            ``"sweep-latentaugment-mae-p0.5"``).
        label: how tables and plots call it (``"LatentAugment (MAE)"``).
        kind: ``"none"``, ``"standardda"``, ``"sg2sample"`` or ``"latentaugment"``.
        p: probability that a training sample is augmented (``1 - p_aug``).
        options: keyword arguments of the transform (``preset``, ``alpha_lat``...).
        objective: the objective the paper tuned the policy on (Table II's "Objective" column).

    Example:
        >>> policy = main_policies()[-1]
        >>> policy.name, policy.p, policy.options["preset"]
        ('latentaugment-mae', 0.3, 'mae')
    """

    name: str
    label: str
    kind: str
    p: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    objective: str = ""

    @property
    def needs_latents(self) -> bool:
        """Whether the policy reads the latent cache (LatentAugment)."""
        return self.kind == "latentaugment"

    @property
    def needs_gan(self) -> bool:
        """Whether the policy runs the GAN."""
        return self.kind in ("sg2sample", "latentaugment")

    def with_p(self, p: float, *, name: str | None = None) -> Policy:
        """The same policy at another ``p``."""
        return replace(self, p=float(p), name=name or f"{self.name}-p{p:g}")

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (for ``results.json``)."""
        return {"name": self.name, "label": self.label, "kind": self.kind, "p": self.p, **self.options}


def main_policies() -> list[Policy]:
    """The five rows of the paper's Table II, with the paper's ``p``.

    Example:
        >>> [p.name for p in main_policies()]
        ['baseline', 'standard-da', 'sg2-da', 'latentaugment-f1', 'latentaugment-mae']
    """
    return [
        Policy(BASELINE, "Baseline", "none"),
        Policy("standard-da", "Standard DA", "standardda", 0.1, objective="MAE"),
        Policy("sg2-da", "Standard SG2 DA", "sg2sample", 0.3, {"truncation_psi": 1.0}, objective="MAE"),
        Policy("latentaugment-f1", "LatentAugment (F1)", "latentaugment", 0.2, {"preset": "f1"}, "F1 score"),
        Policy("latentaugment-mae", "LatentAugment (MAE)", "latentaugment", 0.3, {"preset": "mae"}, "MAE"),
    ]


#: The ablated loss terms of Table V: name -> the weights set to 0.
ABLATIONS: dict[str, tuple[str, ...]] = {
    "ablate-diversity": ("alpha_pix", "alpha_perc", "alpha_lat"),
    "ablate-lat": ("alpha_lat",),
    "ablate-perc": ("alpha_perc",),
    "ablate-pix": ("alpha_pix",),
    "ablate-fidelity": ("alpha_f",),
}


def ablation_policies(reference: Policy | None = None) -> list[Policy]:
    """Table V: the MAE-preset LatentAugment with one loss term (or all three diversity terms) off.

    The reference row is ``reference`` itself (default: ``latentaugment-mae``), trained once for Table II.

    Example:
        >>> [(p.name, p.options.get("alpha_lat")) for p in ablation_policies()][:2]
        [('ablate-diversity', 0.0), ('ablate-lat', 0.0)]
    """
    base = reference or main_policies()[-1]
    out = []
    for name, zeroed in ABLATIONS.items():
        off = ", ".join(f"α_{w.split('_')[1]} = 0" for w in zeroed)
        out.append(
            replace(base, name=name, label=f"{off}", options={**base.options, **dict.fromkeys(zeroed, 0.0)})
        )
    return out


def sweep_policies(base: Policy, ps: Sequence[float]) -> list[Policy]:
    """Fig. 6: ``base`` at each ``p`` (validation MAE against ``p``).

    Example:
        >>> [p.name for p in sweep_policies(main_policies()[-1], (0.1, 0.5))]
        ['sweep-latentaugment-mae-p0.1', 'sweep-latentaugment-mae-p0.5']
    """
    return [base.with_p(p, name=f"sweep-{base.name}-p{p:g}") for p in ps]


def policy_by_name(name: str) -> Policy:
    """A main or ablation policy by its name (``ConfigError`` naming the choices otherwise).

    Example:
        >>> policy_by_name("sg2-da").label
        'Standard SG2 DA'
    """
    known = {p.name: p for p in [*main_policies(), *ablation_policies()]}
    if name not in known:
        raise lt.ConfigError(f"unknown policy {name!r}. Fix: one of {sorted(known)}.")
    return known[name]


def build_transform(
    policy: Policy,
    *,
    gan: lt.GanBundle | str | None,
    cache: str | Path | None,
    seed: int,
    device: torch.device | str,
) -> Callable[..., Any] | None:
    """The batch transform of ``policy`` (``None`` for the Baseline), seeded with ``seed``.

    Images go in and out in physical units (the dataset's), ``[B, 2, R, R]`` with MRI and CT as the
    channels in the GAN bundle's order. LatentAugment reads each slice's ``w*`` from ``cache`` by its
    dataset key and refuses a slice that is not there (``on_missing="raise"``: the cache is built once,
    before training).

    Example:
        >>> t = build_transform(main_policies()[1], gan=None, cache=None, seed=0, device="cpu")
        >>> type(t).__name__, t.p
        ('StandardDA', 0.1)
    """
    if policy.kind == "none":
        return None
    if policy.kind == "standardda":
        return lt.StandardDA(p=policy.p, seed=seed, device=device, **policy.options)
    if gan is None:
        raise lt.ConfigError(f"policy {policy.name!r} needs a GAN bundle; none was given.")
    if policy.kind == "sg2sample":
        return lt.SG2Sample(gan, p=policy.p, seed=seed, device=device, **policy.options)
    if policy.kind == "latentaugment":
        if cache is None:
            raise lt.ConfigError(f"policy {policy.name!r} needs the latent cache; none was given.")
        return lt.LatentAugment(
            gan, cache, p=policy.p, seed=seed, device=device, on_missing="raise", **policy.options
        )
    raise lt.ConfigError(f"unknown policy kind {policy.kind!r} in {policy.name!r}.")
