"""The demo's latents, shipped with the package so that a first ``latent-transforms demo`` projects nothing.

With its defaults the demo needs the latents of 8 held-out phantom slices and of their StandardDA
versions (for the latent-distance column): 16 projections of 150 steps, most of a cold run on a CPU.
:func:`compute_demo_latents` makes them with the demo's own inputs and projector
(:mod:`latent_transforms.demo.slices`), and ``data/<bundle>.safetensors`` beside this module stores them
with the generator's fingerprint and the projector's settings. The test suite recomputes them with the
same settings and compares (``tests/demo``), so they cannot go stale.

The demo takes an entry only where everything that determines it matches: the image (its content key,
:func:`~latent_transforms.inversion.cache.image_key`), the generator (fingerprint) and the projector
(settings). Any other ``--n``, ``--seed``, ``--steps`` or bundle projects as before.

Regenerate after changing the bundle, the phantom, StandardDA or the projector::

    python -m latent_transforms.demo.latents
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from latent_transforms.demo.slices import (
    DEMO_DATA,
    DEMO_GAN,
    DEMO_N,
    DEMO_STEPS,
    demo_projector,
    held_out_slices,
    standard_da,
)
from latent_transforms.files import atomic_write
from latent_transforms.inversion.cache import image_key
from latent_transforms.networks.bundle import GanBundle

__all__ = ["DATA_FOLDER", "DemoLatents", "compute_demo_latents", "shipped_latents", "shipped_path"]

#: Where the shipped latents live (``<bundle name>.safetensors``).
DATA_FOLDER = Path(__file__).resolve().parent / "data"
#: The settings the shipped latents were made with: the demo's defaults.
SHIPPED_SETTINGS: dict[str, Any] = {
    "gan": DEMO_GAN,
    "data": DEMO_DATA,
    "n": DEMO_N,
    "steps": DEMO_STEPS,
    "seed": 0,
}


@dataclass
class DemoLatents:
    """Latents of the demo's images, by content key, with what made them.

    Attributes:
        keys: content keys (:func:`~latent_transforms.inversion.cache.image_key`), real slices first, then
            their StandardDA versions.
        w: ``[N, w_dim]`` float32 latents, in ``keys`` order.
        psnr: ``[N, C]`` PSNR (dB) of each reconstruction.
        fingerprint: the generator's fingerprint.
        settings: the projector's settings (:meth:`~latent_transforms.Projector.settings`).
        info: how they were made (bundle, data, ``n``, ``steps``, ``seed``; the dataset keys of the slices).

    Example:
        >>> latents = DemoLatents(["k1"], torch.zeros(1, 4), torch.zeros(1, 2), "f", {"steps": 1})
        >>> latents.lookup("f", {"steps": 1})["k1"][0].shape, latents.lookup("other", {"steps": 1})
        (torch.Size([4]), {})
    """

    keys: list[str]
    w: torch.Tensor
    psnr: torch.Tensor
    fingerprint: str
    settings: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def lookup(
        self, fingerprint: str, settings: dict[str, Any]
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{content key: (w, psnr)}`` when they were made by this generator and projector, else ``{}``."""
        if fingerprint != self.fingerprint or _canonical(settings) != _canonical(self.settings):
            return {}
        return {key: (self.w[i], self.psnr[i]) for i, key in enumerate(self.keys)}

    def save(self, path: str | Path) -> Path:
        """Write a safetensors file (the tensors; keys, fingerprint, settings and info as metadata)."""
        metadata = {
            "keys": json.dumps(self.keys),
            "fingerprint": self.fingerprint,
            "settings": json.dumps(self.settings, sort_keys=True),
            "info": json.dumps(self.info, sort_keys=True),
        }
        tensors = {"w": self.w.detach().cpu().float().contiguous(), "psnr": self.psnr.detach().cpu().float()}
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> DemoLatents:
        """Read a file :meth:`save` wrote."""
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            w, psnr = f.get_tensor("w"), f.get_tensor("psnr")
        return cls(
            json.loads(metadata["keys"]),
            w,
            psnr,
            metadata["fingerprint"],
            json.loads(metadata["settings"]),
            json.loads(metadata.get("info", "{}")),
        )


def _canonical(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def shipped_path(gan: str) -> Path:
    """The file of the latents shipped for the bundle ``gan`` (``builtin:<name>``); it may not exist.

    Example:
        >>> shipped_path("builtin:pelvis-phantom-64").name
        'pelvis-phantom-64.safetensors'
    """
    return DATA_FOLDER / f"{gan.removeprefix('builtin:')}.safetensors"


def shipped_latents(gan: Any) -> DemoLatents | None:
    """The latents shipped for ``gan`` when it names a built-in bundle and a file exists, else ``None``.

    Example:
        >>> shipped_latents("builtin:pelvis-phantom-64").info["n"]
        8
        >>> shipped_latents("runs/my-gan/bundle") is None
        True
    """
    if not isinstance(gan, str) or not gan.startswith("builtin:"):
        return None
    path = shipped_path(gan)
    return DemoLatents.load(path) if path.is_file() else None


def compute_demo_latents(
    bundle: GanBundle,
    *,
    gan: str = DEMO_GAN,
    data: str = DEMO_DATA,
    n: int = DEMO_N,
    steps: int = DEMO_STEPS,
    seed: int = 0,
    device: torch.device | str | None = "cpu",
    progress: bool = False,
) -> DemoLatents:
    """Project the demo's ``n`` held-out slices and their StandardDA versions as the demo does.

    The same calls in the same order as :func:`~latent_transforms.demo.run.run_demo`: the slices of
    :func:`~latent_transforms.demo.slices.held_out_slices`, one projection of them, StandardDA with
    ``seed``, one projection of those.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> _ = bundle.compute_w_stats(200)
        >>> latents = compute_demo_latents(bundle, gan="tiny", data="phantom:patients=10,slices=4", n=2,
        ...                                steps=2)
        >>> latents.w.shape, len(latents.keys), latents.info["n"]
        (torch.Size([4, 512]), 4, 2)
    """
    torch.manual_seed(seed)
    real, dataset_keys = held_out_slices(bundle, n, data=data)
    projector = demo_projector(bundle, steps, device=device, progress=progress)
    first = projector.project(real.to(projector.device))
    standard = standard_da(real, seed).clamp(-1, 1)
    second = projector.project(standard.to(projector.device))
    images = torch.cat([real, standard])
    return DemoLatents(
        keys=[image_key(x) for x in images],
        w=torch.cat([first.w, second.w]).cpu(),
        psnr=torch.cat([first.psnr, second.psnr]).cpu(),
        fingerprint=bundle.fingerprint,
        settings=projector.settings(),
        info={"gan": gan, "data": data, "n": n, "steps": steps, "seed": seed, "slices": dataset_keys},
    )


def main() -> None:
    """Recompute the shipped latents of the built-in bundle and write them (``python -m ...latents``)."""
    from latent_transforms.networks.bundle import load_gan

    settings = SHIPPED_SETTINGS
    bundle = load_gan(str(settings["gan"]), device="cpu")
    latents = compute_demo_latents(
        bundle,
        gan=str(settings["gan"]),
        data=str(settings["data"]),
        n=int(settings["n"]),
        steps=int(settings["steps"]),
        seed=int(settings["seed"]),
        progress=True,
    )
    path = latents.save(shipped_path(str(settings["gan"])))
    print(f"wrote {len(latents.keys)} latents to {path}")


if __name__ == "__main__":
    main()
