"""The StyleGAN2-ADA training loop: one process or ``torchrun`` DDP, resumable, scored and selected."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torchvision.utils import save_image

from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.networks.config import GanConfig
from latent_transforms.networks.discriminator import Discriminator
from latent_transforms.networks.generator import Generator
from latent_transforms.networks.preview import sample_grid
from latent_transforms.training.augment import MAGNITUDES, AdaController, AugmentPipe
from latent_transforms.training.data import GanImages, TensorImages
from latent_transforms.training.loop import GRID_IMAGES, GRID_SEED, TrainingLoop, average_gradients
from latent_transforms.training.loss import (
    autocast,
    discriminator_loss,
    ema_beta,
    generate,
    generator_loss,
    path_length_penalty,
    r1_penalty,
    update_ema,
)
from latent_transforms.training.options import TrainingOptions

Scorer = Callable[[Generator], dict[str, float]]
"""Scores a generator (lower ``"fid"`` is better); see :mod:`latent_transforms.training.scoring`."""


def _lazy_adam(params: Any, lr: float, betas: tuple[float, float], interval: int) -> torch.optim.Adam:
    # Lazy regularisation runs the regulariser every ``interval`` steps; StyleGAN2 compensates by
    # scaling the Adam hyper-parameters by interval / (interval + 1).
    ratio = interval / (interval + 1) if interval > 0 else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=(betas[0] ** ratio, betas[1] ** ratio), eps=1e-8)


class Trainer(TrainingLoop):
    """Train a StyleGAN2-ADA GAN on paired images and write a GAN bundle.

    Args:
        config: the architecture (resolution, modalities and their windows, channels...).
        data: a dataset of items (:mod:`latent_transforms.data.items`), or :class:`GanImages`.
        out: output folder: ``training-state.pt`` (resume), ``bundle/`` (the selected EMA generator with
            its discriminator), ``samples/*.png``, ``log.jsonl``.
        options: hyper-parameters (:class:`TrainingOptions`).
        scorer: scores checkpoints (``None``: no scoring; the last checkpoint is the result). See
            :func:`latent_transforms.training.scoring.fid_scorer`.
        label_key: item key of the class label for a conditional GAN (``config.c_dim`` classes).
        device: ``"cuda"``, ``"cpu"``... (default: CUDA when available, per ``LOCAL_RANK`` under torchrun).
        resume: ``"auto"`` continues from ``out/training-state.pt`` when present; ``True`` requires it;
            ``False`` refuses a folder that already holds a run.
        progress: show a tqdm bar (rank 0 only).
        description: one line about the data, written to the model card.

    Run it with :meth:`run`; under ``torchrun`` every rank runs the same script and gradients are
    averaged across ranks (the batch size is the global one).

    Example:
        >>> import tempfile
        >>> from latent_transforms.training.data import TensorImages
        >>> cfg = GanConfig(resolution=16, channel_base=128, channel_max=16, z_dim=8, w_dim=8)
        >>> data = TensorImages(torch.rand(8, 2, 16, 16) * 2 - 1, torch.zeros(8, dtype=torch.long))
        >>> opts = TrainingOptions(total_kimg=0.008, batch_size=4, snapshot_kimg=0.008, pl_weight=0)
        >>> with tempfile.TemporaryDirectory() as out:
        ...     bundle = Trainer(cfg, data, out, opts, progress=False).run()
        >>> bundle.config.training["kimg"]
        0.008
    """

    kind = "GAN"
    bar_label = "training"

    def __init__(
        self,
        config: GanConfig,
        data: Any,
        out: str | Path,
        options: TrainingOptions | None = None,
        *,
        scorer: Scorer | None = None,
        label_key: str | None = None,
        device: torch.device | str | None = None,
        resume: bool | str = "auto",
        progress: bool = True,
        description: str = "",
    ) -> None:
        super().__init__(
            config,
            data,
            out,
            options or TrainingOptions(),
            scorer=scorer,
            label_key=label_key,
            device=device,
            resume=resume,
            progress=progress,
            description=description,
        )

    # -- set-up --------------------------------------------------------------------------------
    def _images(self, data: Any, label_key: str | None) -> GanImages | TensorImages:
        if isinstance(data, GanImages | TensorImages):
            images = data
        else:
            images = GanImages(
                data,
                self.config.modality_names,
                [m.window for m in self.config.modalities],
                label_key=label_key,
                c_dim=self.config.c_dim,
            )
        if self.config.c_dim > 0 and isinstance(images, GanImages) and images.label_key is None:
            raise ConfigError(f"config.c_dim={self.config.c_dim} (conditional) needs label_key=... ")
        return images

    def _build(self) -> None:
        opts, cfg = self.options, self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(opts.seed)
            self.G = Generator(cfg).to(self.device).train()
            self.D = Discriminator(cfg).to(self.device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.G_opt = _lazy_adam(
            self.G.parameters(), opts.g_lr, opts.betas, opts.pl_interval if opts.pl_weight > 0 else 0
        )
        self.D_opt = _lazy_adam(self.D.parameters(), opts.d_lr, opts.betas, opts.r1_interval)
        transforms = opts.augment if opts.augment != "none" else None
        self.augment_pipe = (
            AugmentPipe(transforms, p=opts.augment_p, **MAGNITUDES[opts.augment_strength]).to(self.device)
            if transforms is not None
            else None
        )
        self.ada = (
            AdaController(
                self.augment_pipe,
                target=opts.ada_target,
                interval=opts.ada_interval,
                speed_kimg=opts.ada_kimg,
                batch_size=opts.batch_size,
            )
            if self.augment_pipe is not None and opts.ada_target is not None
            else None
        )
        self.pl_mean = torch.zeros([], device=self.device)
        self.r1_gamma = opts.resolved_r1_gamma(cfg.resolution)

    def _networks(self) -> tuple[torch.nn.Module, ...]:
        return (self.G, self.D, self.G_ema)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The complete training state (networks, optimisers, ADA, RNG, counters, selection)."""
        return {
            "format": "latent-transforms-training/1",
            "config": self.config.to_json(),
            "options": self.options.to_json(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "G_opt": self.G_opt.state_dict(),
            "D_opt": self.D_opt.state_dict(),
            "augment": self.augment_pipe.state_dict() if self.augment_pipe is not None else {},
            "ada": self.ada.state_dict() if self.ada is not None else {},
            "pl_mean": self.pl_mean.detach().cpu(),
            **self._loop_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`; the config must match."""
        self._check_saved_run(
            state,
            {"total_kimg", "num_workers", "preload", "class_balance", "keep_snapshots"},
            "total_kimg, num_workers, preload, class_balance and keep_snapshots",
        )
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.G_opt.load_state_dict(state["G_opt"])
        self.D_opt.load_state_dict(state["D_opt"])
        if self.augment_pipe is not None:
            self.augment_pipe.load_state_dict(state["augment"])
        if self.ada is not None:
            self.ada.load_state_dict(state["ada"])
        self.pl_mean.copy_(state["pl_mean"])
        self._load_loop_state(state)

    # -- the loop ------------------------------------------------------------------------------
    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        if self.augment_pipe is None:
            return images
        return self.augment_pipe(images, generator=self.gen)

    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.z_dim, generator=self.gen, device=self.device)

    def _train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        opts, cfg = self.options, self.config
        c_real = F.one_hot(labels, cfg.c_dim).float() if cfg.c_dim > 0 else None
        c_fake = None
        if c_real is not None:
            perm = torch.randperm(len(labels), generator=self.gen, device=self.device)
            c_fake = c_real[perm]
        logs: dict[str, float] = {}

        # G: non-saturating loss through the augmentation.
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        with autocast(self.device, opts.precision):
            fake, _ = generate(
                self.G,
                self._z(self.batch),
                c_fake,
                style_mixing=opts.style_mixing,
                generator=self.gen,
                update_w_avg=True,
            )
            loss_g = generator_loss(self.D, fake, c_fake, self._augment)
        self.G_opt.zero_grad(set_to_none=True)
        loss_g.float().backward()
        average_gradients(self.G, self.world_size)
        self.G_opt.step()
        if self.world_size > 1:  # each rank tracked w_avg on its own batch: keep one average
            dist.all_reduce(self.G.mapping.w_avg)
            self.G.mapping.w_avg /= self.world_size
        logs["loss_G"] = float(loss_g.detach())

        # G: lazy path-length regularisation (fp32).
        if opts.pl_weight > 0 and self.step % opts.pl_interval == 0:
            n = max(self.batch // opts.pl_batch_shrink, 1)
            c_pl = c_fake[:n] if c_fake is not None else None
            penalty = path_length_penalty(
                self.G,
                self._z(n),
                c_pl,
                self.pl_mean,
                style_mixing=opts.style_mixing,
                generator=self.gen,
                decay=opts.pl_decay,
            )
            self.G_opt.zero_grad(set_to_none=True)
            (penalty.mean() * opts.pl_weight * opts.pl_interval).backward()
            average_gradients(self.G, self.world_size)
            self.G_opt.step()
            if self.world_size > 1:
                dist.all_reduce(self.pl_mean)
                self.pl_mean /= self.world_size
            logs["pl_penalty"] = float(penalty.detach().mean())

        # D: logistic loss on augmented reals and fakes.
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with torch.no_grad(), autocast(self.device, opts.precision):
            fake, _ = generate(
                self.G, self._z(self.batch), c_fake, style_mixing=opts.style_mixing, generator=self.gen
            )
        with autocast(self.device, opts.precision):
            loss_d, real_logits = discriminator_loss(self.D, real, fake, c_real, c_fake, self._augment)
        self.D_opt.zero_grad(set_to_none=True)
        loss_d.float().backward()
        average_gradients(self.D, self.world_size)
        self.D_opt.step()
        logs["loss_D"] = float(loss_d.detach())
        logs["D_real_sign"] = float(real_logits.float().sign().mean())

        # D: lazy R1 (fp32).
        if opts.r1_interval > 0 and self.r1_gamma > 0 and self.step % opts.r1_interval == 0:
            penalty, _ = r1_penalty(self.D, real, c_real, self._augment)
            self.D_opt.zero_grad(set_to_none=True)
            (penalty.mean() * (self.r1_gamma / 2) * opts.r1_interval).backward()
            average_gradients(self.D, self.world_size)
            self.D_opt.step()
            logs["r1_penalty"] = float(penalty.detach().mean())

        self.cur_nimg += opts.batch_size
        self.step += 1
        beta = ema_beta(opts.batch_size, self.cur_nimg, opts.resolved_ema_kimg, opts.ema_rampup)
        update_ema(self.G_ema, self.G, beta)
        if self.ada is not None:
            self.ada.accumulate(real_logits)
            self.ada.step(reduce=dist.all_reduce if self.world_size > 1 else None)
        if self.augment_pipe is not None:
            logs["augment_p"] = float(self.augment_pipe.p)
        return logs

    # -- outputs -------------------------------------------------------------------------------
    def _grid_inputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        gen = torch.Generator().manual_seed(GRID_SEED)
        z = torch.randn(GRID_IMAGES, self.config.z_dim, generator=gen).to(self.device)
        c = None
        if self.config.c_dim > 0:
            labels = torch.arange(GRID_IMAGES) % self.config.c_dim
            c = F.one_hot(labels, self.config.c_dim).float().to(self.device)
        return z, c

    @torch.no_grad()
    def _write_samples(self) -> Path:
        z, c = self._grid_inputs()
        images = self.G_ema(z, c)
        path = self.out / "samples" / f"fakes-{self.cur_nimg / 1000:010.3f}kimg.png"
        grid = sample_grid(images)
        return atomic_write(path, lambda tmp: save_image(grid, tmp, format="png"))

    def _bundle(self, G: Generator, extra: dict[str, Any] | None = None) -> GanBundle:
        opts = self.options
        training = {
            **self.config.training,
            "data": self.description or repr(self.images),
            "training_images": len(self.images),
            "kimg": round(self.cur_nimg / 1000, 3),
            "batch_size": opts.batch_size,
            "augment": opts.augment,
            "augment_strength": opts.augment_strength,
            "augment_p": float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0,
            "r1_gamma": self.r1_gamma,
            "precision": opts.precision,
            "seed": opts.seed,
            **(extra or {}),
        }
        config = self.config.replace(training=training)
        generator = copy.deepcopy(G).cpu()
        discriminator = copy.deepcopy(self.D).cpu()
        return GanBundle(config, generator, discriminator)

    def _result_bundle(self, extra: dict[str, Any] | None = None) -> GanBundle:
        return self._bundle(self.G_ema, extra)

    def _write_bundle(self, bundle: GanBundle, folder: Path) -> None:
        bundle.save_pretrained(folder, w_stats_samples=10_000)

    def _scored_model(self) -> Generator:
        return self.G_ema

    def _postfix(self, logs: dict[str, float]) -> dict[str, str]:
        postfix = {
            "kimg": f"{self.cur_nimg / 1000:.1f}",
            "G": f"{logs['loss_G']:.3f}",
            "D": f"{logs['loss_D']:.3f}",
        }
        if "augment_p" in logs:
            postfix["p"] = f"{logs['augment_p']:.3f}"
        return postfix

    def run(
        self,
        *,
        stop_at_kimg: float | None = None,
        max_minutes: float | None = None,
        final_scorings: float = 0.0,
    ) -> GanBundle:
        """Train to ``options.total_kimg`` (or stop early at ``stop_at_kimg``, after a checkpoint).

        ``max_minutes`` bounds the wall-clock time of this call, scoring included: training stops when
        what is left of the budget is what the last checkpoint needs: writing it (as long as the last
        snapshot's samples, checkpoint and bundle took) and scoring it (the time of the last scoring; before
        any, the scorer's ``estimate_seconds(G)`` when it has one, as
        :class:`~latent_transforms.training.scoring.FidScorer` does) plus
        ``final_scorings`` more scorings' worth for the caller's own evaluation afterwards (e.g.
        ``eval_samples / metric_samples``: ``latent-transforms train`` scores the selected generator on
        the held-out patients). That checkpoint is scored (as at the end of training) and the run stops
        there; ``resume`` continues it later. The progress bar then counts the budget's seconds and its
        ETA is the end of this call, not of ``total_kimg``. Returns the selected bundle (lowest smoothed
        score; the last one without a scorer), also written to ``out/bundle``.
        """
        self._train(stop_at_kimg=stop_at_kimg, max_minutes=max_minutes, final_scorings=final_scorings)
        return GanBundle.from_pretrained(self.out / "bundle")

    def __repr__(self) -> str:
        return (
            f"Trainer(out={str(self.out)!r}, resolution={self.config.resolution}, "
            f"modalities={self.config.modality_names}, images={len(self.images)}, "
            f"total_kimg={self.options.total_kimg}, batch_size={self.options.batch_size}, "
            f"device={str(self.device)!r}, world_size={self.world_size})"
        )


def train(
    config: GanConfig,
    data: Any,
    out: str | Path,
    options: TrainingOptions | None = None,
    **kwargs: Any,
) -> GanBundle:
    """Train a StyleGAN2-ADA on ``data`` and return the selected bundle (see :class:`Trainer`).

    Example:
        >>> import tempfile
        >>> from latent_transforms.training.data import TensorImages
        >>> cfg = GanConfig(resolution=16, channel_base=128, channel_max=16, z_dim=8, w_dim=8)
        >>> data = TensorImages(torch.rand(8, 2, 16, 16) * 2 - 1, torch.zeros(8, dtype=torch.long))
        >>> with tempfile.TemporaryDirectory() as out:
        ...     b = train(cfg, data, out, TrainingOptions(total_kimg=0.004, batch_size=4), progress=False)
        >>> b.resolution
        16
    """
    return Trainer(config, data, out, options, **kwargs).run()


def annotate_bundle(folder: str | Path, fields: dict[str, Any]) -> GanBundle:
    """Add ``fields`` to the training summary of the bundle in ``folder`` (config and model card).

    Example:
        >>> import tempfile
        >>> cfg = GanConfig(resolution=16, channel_base=128, channel_max=16, z_dim=8, w_dim=8)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = GanBundle.random(cfg).save_pretrained(d, w_stats_samples=64)
        ...     annotate_bundle(d, {"fid": 12.5}).config.training["fid"]
        12.5
    """
    bundle = GanBundle.from_pretrained(folder)
    bundle.config = bundle.config.replace(training={**bundle.config.training, **fields})
    bundle.save_pretrained(folder)
    return bundle
