"""``GanBundle``: a trained GAN as one folder or Hub repo, and :func:`load_gan`."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import HfApi
from safetensors.torch import load_file
from torch import nn

from latent_transforms._version import __version__
from latent_transforms.errors import BundleNotFoundError, WeightMismatchError
from latent_transforms.networks.config import GanConfig
from latent_transforms.networks.discriminator import Discriminator
from latent_transforms.networks.generator import Generator
from latent_transforms.networks.hub import resolve_source
from latent_transforms.networks.model_card import render_model_card
from latent_transforms.networks.weights import atomic_save, fingerprint, load_strict, state_tensors

CONFIG_NAME = "config.json"
GENERATOR_NAME = "generator.safetensors"
DISCRIMINATOR_NAME = "discriminator.safetensors"
W_STATS_NAME = "w_stats.safetensors"
CARD_NAME = "README.md"
_META = {"format": "pt", "library": "latent-transforms", "library_version": __version__}


class GanBundle(nn.Module):
    """A trained StyleGAN2: EMA generator, optional discriminator, W statistics and a config.

    On disk (or on the Hugging Face Hub) a bundle is one folder::

        config.json                 architecture, modality names, intensity windows, training summary
        generator.safetensors       the (EMA) generator
        discriminator.safetensors   optional; LatentAugment's fidelity term needs it
        w_stats.safetensors         w_avg [w_dim], w_mean [w_dim], w_cov [w_dim, w_dim]
        README.md                   generated model card

    Networks are put in eval mode with ``requires_grad_(False)``: a bundle is for using a GAN, not
    training it. Images are ``[B, C, R, R]`` in ``[-1, 1]``, channels in ``config.modality_names``
    order; :meth:`normalize`/:meth:`denormalize` convert from/to physical units.

    Example:
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg, seed=0)
        >>> bundle.sample(2, seed=1).shape
        torch.Size([2, 2, 16, 16])
    """

    def __init__(
        self,
        config: GanConfig,
        generator: Generator,
        discriminator: Discriminator | None = None,
        w_stats: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.generator = generator.eval().requires_grad_(False)
        self.discriminator = discriminator.eval().requires_grad_(False) if discriminator is not None else None
        self.w_stats: dict[str, torch.Tensor] = dict(w_stats) if w_stats is not None else {}
        self.source: str | None = None

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def random(cls, config: GanConfig, *, seed: int = 0, discriminator: bool = True) -> GanBundle:
        """A randomly initialised bundle (for tests, pipelines and as a starting point for training)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = Generator(config)
            disc = Discriminator(config) if discriminator else None
        return cls(config, generator, disc)

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        device: torch.device | str = "cpu",
        load_discriminator: bool = True,
    ) -> GanBundle:
        """Load a bundle from a folder, ``builtin:<name>`` or a Hub repo id (see :func:`load_gan`)."""
        folder = resolve_source(
            source, revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only
        )
        config = GanConfig.from_json(folder / CONFIG_NAME)
        if not (folder / GENERATOR_NAME).is_file():
            raise BundleNotFoundError(
                f"{folder} has config.json but no {GENERATOR_NAME}; the bundle is incomplete."
            )
        generator = Generator(config)
        load_strict(generator, folder / GENERATOR_NAME, "generator")
        disc = None
        if load_discriminator and (folder / DISCRIMINATOR_NAME).is_file():
            disc = Discriminator(config)
            load_strict(disc, folder / DISCRIMINATOR_NAME, "discriminator")
        w_stats = load_file(str(folder / W_STATS_NAME)) if (folder / W_STATS_NAME).is_file() else None
        bundle = cls(config, generator, disc, w_stats)
        bundle.source = str(source)
        if w_stats is not None:
            bundle._check_w_stats()
        return bundle.to(device)

    def _apply(self, fn: Any, recurse: bool = True) -> GanBundle:
        # ``to()``, ``cuda()``, ``half()`` ... also move the W statistics, which are not buffers.
        super()._apply(fn, recurse)
        self.w_stats = {k: fn(v) for k, v in self.w_stats.items()}
        return self

    # -- properties ----------------------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        """Channel names in order, e.g. ``['mri', 'ct']``."""
        return self.config.modality_names

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def device(self) -> torch.device:
        return self.generator.mapping.fc0.weight.device

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the generator weights (see :func:`latent_transforms.networks.weights.fingerprint`).

        Computed once per bundle object: a bundle's networks are frozen.
        """
        return fingerprint(self.generator)

    # -- use -----------------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """``n`` images [n, C, R, R] in ``[-1, 1]`` from random z (``seed`` or ``generator``).

        For a conditional GAN without ``c``, labels are drawn uniformly from the same generator.
        """
        if generator is None:
            generator = torch.Generator(device=self.device).manual_seed(0 if seed is None else seed)
        z = self.generator.sample_z(n, generator=generator, device=self.device)
        if self.config.c_dim > 0 and c is None:
            labels = torch.randint(self.config.c_dim, (n,), generator=generator, device=self.device)
            c = torch.nn.functional.one_hot(labels, self.config.c_dim).float()
        with torch.no_grad():
            return self.generator(
                z, c, truncation_psi=truncation_psi, noise_mode=noise_mode, generator=generator
            )

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Physical units -> ``[-1, 1]`` per channel ([..., C, H, W], channels in bundle order)."""
        return self._per_channel(images, "normalize")

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` -> physical units per channel ([..., C, H, W], channels in bundle order)."""
        return self._per_channel(images, "denormalize")

    def _per_channel(self, images: torch.Tensor, op: str) -> torch.Tensor:
        c = self.config.img_channels
        if images.ndim < 3 or images.shape[-3] != c:
            raise ValueError(
                f"expected [..., {c}, H, W] with channels {self.modalities}, got {tuple(images.shape)}"
            )
        parts = [
            getattr(m.window, op)(images[..., i : i + 1, :, :]) for i, m in enumerate(self.config.modalities)
        ]
        return torch.cat(parts, dim=-3)

    # -- W statistics --------------------------------------------------------------------------
    @torch.no_grad()
    def compute_w_stats(
        self, n_samples: int = 10_000, *, seed: int = 0, batch_size: int = 1024
    ) -> dict[str, Any]:
        """Mean and covariance of W over ``n_samples`` random z (float64 sums); stored and returned."""
        gen = torch.Generator(device=self.device).manual_seed(seed)
        mapping = self.generator.mapping
        w_dim = self.config.w_dim
        total = torch.zeros(w_dim, dtype=torch.float64, device=self.device)
        outer = torch.zeros(w_dim, w_dim, dtype=torch.float64, device=self.device)
        done = 0
        while done < n_samples:
            b = min(batch_size, n_samples - done)
            z = self.generator.sample_z(b, generator=gen, device=self.device)
            c = None
            if self.config.c_dim > 0:
                labels = torch.randint(self.config.c_dim, (b,), generator=gen, device=self.device)
                c = torch.nn.functional.one_hot(labels, self.config.c_dim).float()
            w = mapping(z, c)[:, 0].double()
            total += w.sum(0)
            outer += w.t() @ w
            done += b
        mean = total / n_samples
        cov = (outer - n_samples * torch.outer(mean, mean)) / max(n_samples - 1, 1)
        self.w_stats = {
            "w_avg": mapping.w_avg.detach().float().clone(),
            "w_mean": mean.float(),
            "w_cov": cov.float(),
        }
        return {"n_samples": n_samples, "seed": seed}

    def _check_w_stats(self) -> None:
        w_dim = self.config.w_dim
        expected = {"w_avg": (w_dim,), "w_mean": (w_dim,), "w_cov": (w_dim, w_dim)}
        for name, shape in expected.items():
            got = self.w_stats.get(name)
            if got is None or tuple(got.shape) != shape:
                raise WeightMismatchError(
                    f"{W_STATS_NAME} tensor '{name}' should have shape {shape}, got "
                    f"{None if got is None else tuple(got.shape)}; recompute with bundle.compute_w_stats()."
                )

    # -- saving --------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, *, w_stats_samples: int = 10_000) -> Path:
        """Write the bundle to ``folder`` (created if needed); returns the folder.

        Each file is written to a temporary name and renamed into place, ``config.json`` last, so an
        interrupted save never leaves a half-written file. W statistics are computed first if missing.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if not self.w_stats:
            self.compute_w_stats(w_stats_samples)
        atomic_save(state_tensors(self.generator), folder / GENERATOR_NAME, _META)
        if self.discriminator is not None:
            atomic_save(state_tensors(self.discriminator), folder / DISCRIMINATOR_NAME, _META)
        else:
            (folder / DISCRIMINATOR_NAME).unlink(missing_ok=True)
        atomic_save({k: v.detach().cpu() for k, v in self.w_stats.items()}, folder / W_STATS_NAME, _META)
        _atomic_write_text(folder / CARD_NAME, render_model_card(self))
        _atomic_write_text(folder / CONFIG_NAME, self.config.to_json())
        return folder

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        commit_message: str = "Upload GAN bundle with latent-transforms",
    ) -> str:
        """Create ``repo_id`` on the Hub if needed and upload the bundle; returns the commit URL."""
        api = HfApi(token=token, library_name="latent-transforms", library_version=__version__)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            card = Path(tmp) / CARD_NAME
            card.write_text(render_model_card(self, repo_id=repo_id), encoding="utf-8")
            info = api.upload_folder(
                repo_id=repo_id, folder_path=tmp, revision=revision, commit_message=commit_message
            )
        return str(getattr(info, "commit_url", info))

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (what ``latent-transforms info --json`` prints)."""
        cfg = self.config
        return {
            "source": self.source,
            "resolution": cfg.resolution,
            "modalities": [m.to_dict() for m in cfg.modalities],
            "z_dim": cfg.z_dim,
            "w_dim": cfg.w_dim,
            "c_dim": cfg.c_dim,
            "num_ws": cfg.num_ws,
            "mapping_layers": cfg.mapping_layers,
            "channel_base": cfg.channel_base,
            "channel_max": cfg.channel_max,
            "generator_parameters": sum(p.numel() for p in self.generator.parameters()),
            "discriminator_parameters": (
                sum(p.numel() for p in self.discriminator.parameters()) if self.discriminator else None
            ),
            "fingerprint": self.fingerprint,
            "w_stats": sorted(self.w_stats),
            "training": cfg.training,
        }

    def extra_repr(self) -> str:
        return (
            f"source={self.source!r}, resolution={self.resolution}, modalities={self.modalities}, "
            f"c_dim={self.config.c_dim}, discriminator={self.discriminator is not None}"
        )


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def load_gan(
    source: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    device: torch.device | str = "cpu",
    load_discriminator: bool = True,
) -> GanBundle:
    """Load a GAN bundle.

    Args:
        source: a local folder, ``"builtin:<name>"`` (shipped with the package) or a Hugging Face Hub
            repo id ``"namespace/name"`` (downloaded to the Hub cache; only ``config.json``,
            ``*.safetensors`` and ``README.md`` are fetched).
        revision: Hub branch, tag or commit (default ``main``).
        cache_dir: Hub cache folder (default ``~/.cache/huggingface/hub``).
        token: Hub token for private repos.
        local_files_only: never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
        device: where to put the networks.
        load_discriminator: skip the discriminator to save memory when it is not needed.

    Returns:
        The :class:`GanBundle`, networks in eval mode with gradients off.

    Raises:
        BundleNotFoundError: not a folder / not cached offline / repo missing; the message says how
            to fetch it.
        WeightMismatchError: the weights do not match ``config.json`` (names the first tensor).

    Example:
        >>> bundle = load_gan("path/to/bundle")  # doctest: +SKIP
        >>> bundle.modalities  # doctest: +SKIP
        ['mri', 'ct']
    """
    return GanBundle.from_pretrained(
        source,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        local_files_only=local_files_only,
        device=device,
        load_discriminator=load_discriminator,
    )
