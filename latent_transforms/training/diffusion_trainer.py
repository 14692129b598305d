"""The diffusion training loop: one process or ``torchrun`` (gradients averaged across ranks), resumable,
scored by FID along the way and written as a diffusion bundle.

The guarantees are the StyleGAN2 trainer's (:class:`~latent_transforms.training.trainer.Trainer`): one seed
fixes everything; a checkpoint (``training-state.pt``: weights, EMA, optimiser, every rank's random
stream, counters) is written atomically at every snapshot and read back with ``weights_only=True``, so a
run killed at any moment resumes from the last snapshot to the same weights an uninterrupted run reaches;
``max_minutes`` bounds one call; ``log.jsonl`` gets one record per snapshot (losses, and the FID when
scored: the FID-vs-kimg curve).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torchvision.utils import save_image

from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write
from latent_transforms.generative.bundle import DiffusionBundle
from latent_transforms.generative.config import DiffusionConfig
from latent_transforms.generative.networks import build_scheduler, build_unet
from latent_transforms.networks.preview import sample_grid
from latent_transforms.training.data import GanImages, TensorImages
from latent_transforms.training.diffusion_options import RESUMABLE, DiffusionOptions
from latent_transforms.training.loop import GRID_IMAGES, GRID_SEED, TrainingLoop, average_gradients
from latent_transforms.training.loss import ema_beta, update_ema
from latent_transforms.training.scoring import FidScorer

__all__ = ["DiffusionTrainer", "train_diffusion"]

STATE_FORMAT = "latent-transforms-diffusion-training/1"


class _Sampler:
    """The EMA UNet behind the common sampling face, with a fixed number of DDIM steps (for the scorer)."""

    def __init__(self, bundle: DiffusionBundle, steps: int) -> None:
        self.bundle, self.steps, self.config = bundle, steps, bundle.config

    def sample(self, n: int, labels: Any = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.bundle.sample(n, labels, generator=generator, steps=self.steps)


class DiffusionTrainer(TrainingLoop):
    """Train a (class-conditional) DDPM on MONAI's ``DiffusionModelUNet`` and write a diffusion bundle.

    Args:
        config: the architecture (:class:`~latent_transforms.DiffusionConfig`: resolution, modalities and
            windows, classes, UNet, schedule).
        data: a dataset of items: labelled images (``{"image", "label", "key"}``, e.g.
            :func:`~latent_transforms.open_splits` of a MedMNIST file or class folders) or paired images
            whose modalities become the channels (:func:`~latent_transforms.data.items.stack_modalities`);
            or :class:`~latent_transforms.training.GanImages` /
            :class:`~latent_transforms.training.TensorImages`.
        out: output folder: ``training-state.pt`` (resume), ``bundle/`` (the selected EMA model),
            ``samples/*.png``, ``log.jsonl``.
        options: :class:`~latent_transforms.training.DiffusionOptions`.
        scorer: scores the EMA model (a :class:`~latent_transforms.training.FidScorer`; ``None``: no
            scoring, the last snapshot is the result).
        label_key: item key of the class label for a conditional model (``config.c_dim`` classes; default
            ``"label"`` when the items have one, as labelled images do).
        device: ``"cuda"``, ``"cpu"``... (default: CUDA when available, per ``LOCAL_RANK`` under torchrun).
        resume: ``"auto"`` continues from ``out/training-state.pt`` when present; ``True`` requires it;
            ``False`` refuses a folder that already holds a run.
        progress: a tqdm bar (rank 0 only).
        description: one line about the data, written to the model card.

    Under ``torchrun`` (after ``torch.distributed.init_process_group``) every rank runs the same script on
    its share of each batch and the gradients are averaged (the batch size is the global one).

    Example:
        >>> import tempfile
        >>> from latent_transforms.training.data import TensorImages
        >>> cfg = DiffusionConfig(resolution=8, c_dim=2, channels=(8, 8), attention_levels=(False, False),
        ...                       num_head_channels=8, norm_num_groups=8, timesteps=50)
        >>> data = TensorImages(torch.rand(8, 2, 8, 8) * 2 - 1, torch.tensor([0, 1] * 4))
        >>> opts = DiffusionOptions(total_kimg=0.008, batch_size=4, snapshot_kimg=0.008, sample_steps=2)
        >>> with tempfile.TemporaryDirectory() as out:
        ...     bundle = DiffusionTrainer(cfg, data, out, opts, progress=False).run()
        >>> bundle.config.training["kimg"], bundle.sample(2, labels=1, steps=2).shape
        (0.008, torch.Size([2, 2, 8, 8]))
    """

    kind = "diffusion"
    bar_label = "diffusion training"

    def __init__(
        self,
        config: DiffusionConfig,
        data: Any,
        out: str | Path,
        options: DiffusionOptions | None = None,
        *,
        scorer: FidScorer | None = None,
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
            options or DiffusionOptions(),
            scorer=scorer,
            label_key=label_key,
            device=device,
            resume=resume,
            progress=progress,
            description=description,
        )

    # -- set-up --------------------------------------------------------------------------------
    def _images(self, data: Any, label_key: str | None) -> GanImages | TensorImages:
        cfg = self.config
        if isinstance(data, GanImages | TensorImages):
            return data
        if label_key is None and cfg.c_dim > 0 and len(data) and "label" in data[0]:
            label_key = "label"  # labelled images carry their class as "label"
        if cfg.c_dim > 0 and label_key is None:
            raise ConfigError(
                f"config.c_dim={cfg.c_dim} (conditional) needs label_key=... (the items' class)."
            )
        return GanImages(
            data,
            cfg.modality_names,
            [m.window for m in cfg.modalities],
            label_key=label_key if cfg.c_dim > 0 else None,
            c_dim=cfg.c_dim,
        )

    def _build(self) -> None:
        opts = self.options
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(opts.seed)
            self.unet = build_unet(self.config).to(self.device).train()
        self.ema = copy.deepcopy(self.unet).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(
            self.unet.parameters(), lr=opts.lr, betas=opts.betas, weight_decay=opts.weight_decay
        )
        self.scheduler = build_scheduler(self.config, "ddpm")

    def _networks(self) -> tuple[torch.nn.Module, ...]:
        return (self.unet, self.ema)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The complete training state (UNet, EMA, optimiser, every rank's RNG, counters, selection)."""
        return {
            "format": STATE_FORMAT,
            "config": self.config.to_json(),
            "options": self.options.to_json(),
            "unet": self.unet.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **self._loop_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`; the config and the options must match."""
        if state.get("format") != STATE_FORMAT:
            raise ConfigError(
                f"{self.out} holds a training state of another kind ({state.get('format', 'a GAN run')!r}); "
                "use a new --out folder for the diffusion run."
            )
        self._check_saved_run(state, RESUMABLE, str(sorted(RESUMABLE)))
        self.unet.load_state_dict(state["unet"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._load_loop_state(state)

    # -- the loop ------------------------------------------------------------------------------
    def _lr(self) -> float:
        warmup = self.options.warmup_kimg * 1000
        if warmup <= 0:
            return self.options.lr
        return self.options.lr * min(1.0, (self.cur_nimg + self.options.batch_size) / warmup)

    def _train_step(self, x0: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        opts, cfg = self.options, self.config
        n = x0.shape[0]
        if opts.xflip:
            flip = torch.rand(n, generator=self.gen, device=self.device) < 0.5
            x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
        noise = torch.randn(x0.shape, generator=self.gen, device=self.device)
        t = torch.randint(0, cfg.timesteps, (n,), generator=self.gen, device=self.device)
        class_labels = None
        if cfg.c_dim > 0:
            class_labels = labels.long()
            drop = torch.rand(n, generator=self.gen, device=self.device) < opts.label_dropout
            if cfg.null_label is not None:
                class_labels = torch.where(drop, torch.full_like(class_labels, cfg.null_label), class_labels)
        x_t = self.scheduler.add_noise(x0, noise, t)
        if cfg.prediction_type == "epsilon":
            target = noise
        elif cfg.prediction_type == "v_prediction":
            target = self.scheduler.get_velocity(x0, noise, t)
        else:
            target = x0
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        enabled = opts.precision == "bf16" and self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled):
            prediction = self.unet(x_t, t, class_labels=class_labels)
        loss = F.mse_loss(prediction.float(), target.float())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.unet, self.world_size)
        grad_norm = (
            float(torch.nn.utils.clip_grad_norm_(self.unet.parameters(), opts.grad_clip))
            if opts.grad_clip > 0
            else 0.0
        )
        self.optimizer.step()
        self.cur_nimg += opts.batch_size
        self.step += 1
        beta = ema_beta(opts.batch_size, self.cur_nimg, opts.ema_kimg, opts.ema_rampup)
        update_ema(self.ema, self.unet, beta)  # type: ignore[arg-type]
        loss_value = loss.detach()
        if self.world_size > 1:
            dist.all_reduce(loss_value)
            loss_value /= self.world_size
        return {"loss": float(loss_value), "grad_norm": grad_norm, "lr": self._lr()}

    # -- outputs -------------------------------------------------------------------------------
    def _ema_bundle(self) -> DiffusionBundle:
        return DiffusionBundle(self.config, self.ema)

    @torch.no_grad()
    def _write_samples(self) -> Path:
        labels = torch.arange(GRID_IMAGES) % self.config.c_dim if self.config.c_dim > 0 else None
        images = self._ema_bundle().sample(
            GRID_IMAGES,
            labels,
            generator=torch.Generator().manual_seed(GRID_SEED),
            steps=self.options.sample_steps,
        )
        path = self.out / "samples" / f"fakes-{self.cur_nimg / 1000:010.3f}kimg.png"
        grid = sample_grid(images)
        return atomic_write(path, lambda tmp: save_image(grid, tmp, format="png"))

    def _bundle(self, extra: dict[str, Any] | None = None) -> DiffusionBundle:
        opts = self.options
        training = {
            **self.config.training,
            "data": self.description or repr(self.images),
            "training_images": len(self.images),
            "kimg": round(self.cur_nimg / 1000, 3),
            "batch_size": opts.batch_size,
            "lr": opts.lr,
            "ema_kimg": opts.ema_kimg,
            "label_dropout": opts.label_dropout if self.config.null_label is not None else 0.0,
            "precision": opts.precision,
            "seed": opts.seed,
            "world_size": self.world_size,
            **(extra or {}),
        }
        return DiffusionBundle(self.config.replace(training=training), copy.deepcopy(self.ema).cpu())

    def _result_bundle(self, extra: dict[str, Any] | None = None) -> DiffusionBundle:
        return self._bundle(extra)

    def _scored_model(self) -> _Sampler:
        return _Sampler(self._ema_bundle(), self.options.metric_steps)

    def _postfix(self, logs: dict[str, float]) -> dict[str, str]:
        return {"kimg": f"{self.cur_nimg / 1000:.1f}", "loss": f"{logs['loss']:.4f}"}

    def run(self, *, stop_at_kimg: float | None = None, max_minutes: float | None = None) -> DiffusionBundle:
        """Train to ``options.total_kimg`` (or stop early at ``stop_at_kimg``, after a checkpoint).

        ``max_minutes`` bounds the wall-clock time of this call, scoring included, as
        :meth:`Trainer.run <latent_transforms.training.Trainer.run>` does: training stops when what is left
        of the budget is what the last checkpoint needs, writing it (as long as the last snapshot took) and
        scoring it (the last scoring's time; before any, the scorer's ``estimate_seconds`` when it has one,
        as :class:`~latent_transforms.training.FidScorer` does). That checkpoint is scored (as at the end
        of training) and the run stops there; run it again (``resume="auto"``) to continue. The progress
        bar then counts the budget's seconds. Returns the selected bundle (lowest smoothed FID; the last
        snapshot without a scorer), also written to ``out/bundle``.
        """
        self._train(stop_at_kimg=stop_at_kimg, max_minutes=max_minutes)
        return DiffusionBundle.from_pretrained(self.out / "bundle")

    def __repr__(self) -> str:
        return (
            f"DiffusionTrainer(out={str(self.out)!r}, resolution={self.config.resolution}, "
            f"modalities={self.config.modality_names}, c_dim={self.config.c_dim}, images={len(self.images)}, "
            f"total_kimg={self.options.total_kimg}, batch_size={self.options.batch_size}, "
            f"device={str(self.device)!r}, world_size={self.world_size})"
        )


def train_diffusion(
    config: DiffusionConfig,
    data: Any,
    out: str | Path,
    options: DiffusionOptions | None = None,
    **kwargs: Any,
) -> DiffusionBundle:
    """Train a diffusion model on ``data`` and return the selected bundle (see :class:`DiffusionTrainer`).

    Example:
        >>> import tempfile
        >>> from latent_transforms.training.data import TensorImages
        >>> cfg = DiffusionConfig(resolution=8, channels=(8, 8), attention_levels=(False, False),
        ...                       num_head_channels=8, norm_num_groups=8, timesteps=50)
        >>> data = TensorImages(torch.rand(8, 2, 8, 8) * 2 - 1, torch.zeros(8, dtype=torch.long))
        >>> with tempfile.TemporaryDirectory() as out:
        ...     b = train_diffusion(cfg, data, out, DiffusionOptions(total_kimg=0.004, batch_size=4,
        ...                         sample_steps=2), progress=False)
        >>> b.resolution
        8
    """
    return DiffusionTrainer(config, data, out, options, **kwargs).run()
