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
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torchvision.utils import save_image
from tqdm.auto import tqdm

from latent_transforms.checks import default_device
from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write, replace_folder
from latent_transforms.generative.bundle import DiffusionBundle
from latent_transforms.generative.config import DiffusionConfig
from latent_transforms.generative.networks import build_scheduler, build_unet
from latent_transforms.networks.preview import sample_grid
from latent_transforms.training.checkpoint import load_training_state, save_training_state
from latent_transforms.training.data import BatchStream, GanImages, TensorImages, preload, should_preload
from latent_transforms.training.diffusion_options import RESUMABLE, DiffusionOptions
from latent_transforms.training.loss import ema_beta, update_ema
from latent_transforms.training.scoring import FidScorer
from latent_transforms.training.selection import SmoothedSelection

__all__ = ["DiffusionTrainer", "train_diffusion"]

STATE_FORMAT = "latent-transforms-diffusion-training/1"
GRID_SEED = 1234
GRID_IMAGES = 16


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_gradients(module: torch.nn.Module, world_size: int) -> None:
    """Average the gradients of ``module`` over the ``torchrun`` ranks (one flat all-reduce), then replace
    a rare NaN/Inf gradient entry so it cannot destroy the weights.

    Example:
        >>> layer = torch.nn.Linear(2, 1)
        >>> layer(torch.ones(1, 2)).sum().backward()
        >>> average_gradients(layer, world_size=1)
        >>> layer.weight.grad.tolist()
        [[1.0, 1.0]]
    """
    params = [p for p in module.parameters() if p.grad is not None]
    if world_size > 1 and params:
        flat = torch.cat([p.grad.flatten() for p in params])  # type: ignore[union-attr]
        dist.all_reduce(flat)
        flat /= world_size
        torch.nn.utils.vector_to_parameters(flat, [p.grad for p in params])  # type: ignore[misc]
    for p in params:
        grad = p.grad
        assert grad is not None
        torch.nan_to_num(grad, nan=0.0, posinf=1e5, neginf=-1e5, out=grad)


class _Sampler:
    """The EMA UNet behind the common sampling face, with a fixed number of DDIM steps (for the scorer)."""

    def __init__(self, bundle: DiffusionBundle, steps: int) -> None:
        self.bundle, self.steps, self.config = bundle, steps, bundle.config

    def sample(self, n: int, labels: Any = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.bundle.sample(n, labels, generator=generator, steps=self.steps)


class DiffusionTrainer:
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
        self.config = config
        self.options = options or DiffusionOptions()
        self.out = Path(out)
        self.scorer = scorer
        self.progress = progress
        self.description = description
        self.rank, self.world_size = _distributed()
        self.device = default_device(device)
        if device is None and self.device.type == "cuda":  # under torchrun: each rank on its own GPU
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if self.options.batch_size % self.world_size:
            raise ConfigError(
                f"batch_size={self.options.batch_size} must be divisible by the number of ranks "
                f"({self.world_size})."
            )
        self.batch = self.options.batch_size // self.world_size
        self.images = self._prepare_data(data, label_key)
        self._resume_mode = resume
        self._build()

    # -- set-up --------------------------------------------------------------------------------
    def _prepare_data(self, data: Any, label_key: str | None) -> GanImages | TensorImages:
        cfg = self.config
        if isinstance(data, GanImages | TensorImages):
            images = data
        else:
            if label_key is None and cfg.c_dim > 0 and len(data) and "label" in data[0]:
                label_key = "label"  # labelled images carry their class as "label"
            if cfg.c_dim > 0 and label_key is None:
                raise ConfigError(
                    f"config.c_dim={cfg.c_dim} (conditional) needs label_key=... (the items' class)."
                )
            images = GanImages(
                data,
                cfg.modality_names,
                [m.window for m in cfg.modalities],
                label_key=label_key if cfg.c_dim > 0 else None,
                c_dim=cfg.c_dim,
            )
        first, _ = images[0]
        expected = (cfg.img_channels, cfg.resolution, cfg.resolution)
        if tuple(first.shape) != expected:
            raise ConfigError(
                f"training images are {tuple(first.shape)} but the diffusion config expects {expected} "
                "(channels = modalities, resolution); resize the data or change the config."
            )
        if isinstance(images, GanImages) and should_preload(images, self.options.preload):
            images = preload(images, progress=self.progress and self.rank == 0)
        return images

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
        self.gen = torch.Generator(device=self.device).manual_seed(opts.seed * 1009 + self.rank)
        self.selection = SmoothedSelection(opts.selection_alpha)
        self.cur_nimg = 0
        self.step = 0
        self.elapsed = 0.0
        self.last_scores: dict[str, float] = {}
        if self.world_size > 1:  # every rank starts from rank 0's weights
            for module in (self.unet, self.ema):
                for tensor in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(tensor.data, src=0)

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
            "rng": self._rng_states(),
            "cur_nimg": self.cur_nimg,
            "step": self.step,
            "elapsed": self.elapsed,
            "selection": self.selection.state_dict(),
            "last_scores": dict(self.last_scores),
        }

    def _rng_states(self) -> list[torch.Tensor]:
        state = self.gen.get_state()
        if self.world_size == 1:
            return [state]
        states: list[Any] = [None] * self.world_size
        dist.all_gather_object(states, state)
        return states

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`; the config and the options must match."""
        if state.get("format") != STATE_FORMAT:
            raise ConfigError(
                f"{self.out} holds a training state of another kind ({state.get('format', 'a GAN run')!r}); "
                "use a new --out folder for the diffusion run."
            )
        saved = DiffusionConfig.from_dict(json.loads(state["config"]))
        if saved != self.config:
            raise ConfigError(
                "the checkpoint in the output folder was made with another diffusion config; use a new --out "
                "folder, or the same architecture to resume."
            )
        saved_opts = DiffusionOptions.from_dict(json.loads(state["options"])).to_dict()
        changed = {k for k, v in saved_opts.items() if self.options.to_dict()[k] != v and k not in RESUMABLE}
        if changed:
            raise ConfigError(
                f"cannot resume: options {sorted(changed)} differ from the run in {self.out}; only "
                f"{sorted(RESUMABLE)} may change on resume."
            )
        self.unet.load_state_dict(state["unet"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        rng = state["rng"]
        if len(rng) == self.world_size:
            self.gen.set_state(rng[self.rank])
        else:
            warnings.warn(
                f"the checkpoint was written by {len(rng)} process(es) and is resumed by {self.world_size}; "
                "training continues, but not bit-identically to an uninterrupted run.",
                stacklevel=2,
            )
            self.gen.manual_seed(self.options.seed * 1009 + self.rank + 7919 * int(state["step"]))
        self.cur_nimg = int(state["cur_nimg"])
        self.step = int(state["step"])
        self.elapsed = float(state["elapsed"])
        self.selection.load_state_dict(state["selection"])
        self.last_scores = dict(state["last_scores"])

    def _maybe_resume(self) -> None:
        state = load_training_state(self.out)
        if state is None:
            if self._resume_mode is True:
                raise ConfigError(f"resume=True but {self.out} holds no training-state.pt to resume from.")
            return
        if self._resume_mode is False:
            raise ConfigError(
                f"{self.out} already holds a training run; resume it (resume='auto') or use another folder."
            )
        self.load_state_dict(state)

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

    def _write_reals(self) -> None:
        path = self.out / "samples" / "reals.png"
        if path.exists():
            return
        picks = torch.linspace(0, len(self.images) - 1, GRID_IMAGES).long().tolist()
        grid = sample_grid(torch.stack([self.images[i][0] for i in picks]))
        atomic_write(path, lambda tmp: save_image(grid, tmp, format="png"))

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

    def _save_bundle(self, bundle: DiffusionBundle, name: str = "bundle") -> Path:
        target = self.out / name
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.out))
        try:
            bundle.save_pretrained(staging)
            replace_folder(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _snapshot(self, logs: dict[str, float], score_now: bool) -> None:
        kimg = round(self.cur_nimg / 1000, 3)
        record: dict[str, Any] = {"kimg": kimg, "step": self.step, "seconds": round(self.elapsed, 1), **logs}
        if self.rank == 0:
            self._write_samples()
        if score_now and self.scorer is not None:
            scores = (
                self.scorer(_Sampler(self._ema_bundle(), self.options.metric_steps)) if self.rank == 0 else {}
            )
            self.last_scores = scores
            record.update({f"score/{k}": v for k, v in scores.items()})
            if self.rank == 0:
                is_best = self.selection.update(kimg, float(scores["fid"]))
                record["score/smoothed"] = self.selection.smoothed
                if is_best:
                    summary = {k if k == "fid" else f"fid_{k}": round(v, 4) for k, v in scores.items()}
                    self._save_bundle(self._bundle({"selected_kimg": kimg, **summary}))
        state = self.state_dict()  # collective under torchrun: every rank takes part
        if self.rank == 0:
            self._log(record)
            save_training_state(state, self.out)

    def _agree(self, flag: bool) -> bool:
        if self.world_size == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def run(self, *, stop_at_kimg: float | None = None, max_minutes: float | None = None) -> DiffusionBundle:
        """Train to ``options.total_kimg`` (or stop early at ``stop_at_kimg``, after a checkpoint).

        ``max_minutes`` bounds the wall-clock time of this call: once it has passed, the step in flight
        ends with a checkpoint that is scored (as at the end of training) and the run stops there; run it
        again (``resume="auto"``) to continue. Returns the selected bundle (lowest smoothed FID; the last
        snapshot without a scorer), also written to ``out/bundle``.
        """
        opts = self.options
        self.out.mkdir(parents=True, exist_ok=True)
        self._maybe_resume()
        if self.rank == 0:
            self._write_reals()
        total = math.ceil(opts.total_kimg * 1000 / opts.batch_size) * opts.batch_size
        stop = total if stop_at_kimg is None else min(total, int(stop_at_kimg * 1000))
        snapshot_every = max(int(opts.snapshot_kimg * 1000), 1)
        metric_every = int(opts.metric_kimg * 1000) if opts.metric_kimg > 0 else 0
        stream = BatchStream(
            self.images,
            self.batch,
            seed=opts.seed,
            rank=self.rank,
            world_size=self.world_size,
            start=self.cur_nimg // self.world_size,
            num_workers=opts.num_workers,
        )
        bar = tqdm(
            total=total,
            initial=self.cur_nimg,
            unit="img",
            unit_scale=True,
            desc="diffusion training",
            disable=not self.progress or self.rank != 0,
        )
        sums: dict[str, float] = {}
        count = 0
        next_snapshot = (self.cur_nimg // snapshot_every + 1) * snapshot_every
        next_metric = (self.cur_nimg // metric_every + 1) * metric_every if metric_every else None
        deadline = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes
        while self.cur_nimg < stop:
            started = time.perf_counter()
            x0, labels = next(stream)
            logs = self._train_step(x0.to(self.device), labels.to(self.device))
            self.elapsed += time.perf_counter() - started
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            bar.update(opts.batch_size)
            postfix = {"kimg": f"{self.cur_nimg / 1000:.1f}", "loss": f"{logs['loss']:.4f}"}
            if "fid" in self.last_scores:
                postfix["fid"] = f"{self.last_scores['fid']:.2f}"
            bar.set_postfix(postfix, refresh=False)
            timed_out = deadline is not None and self._agree(time.monotonic() >= deadline)
            done = self.cur_nimg >= stop or timed_out
            if self.cur_nimg >= next_snapshot or done:
                score_now = (
                    self.cur_nimg >= total
                    or timed_out
                    or (next_metric is not None and self.cur_nimg >= next_metric)
                )
                self._snapshot({k: v / count for k, v in sums.items()}, score_now)
                sums, count = {}, 0
                next_snapshot = (self.cur_nimg // snapshot_every + 1) * snapshot_every
                if next_metric is not None and score_now:
                    next_metric = (self.cur_nimg // metric_every + 1) * metric_every
            if timed_out:
                break
        bar.close()
        if self.rank == 0 and (self.scorer is None or not (self.out / "bundle").exists()):
            self._save_bundle(self._bundle())
        if self.world_size > 1:
            dist.barrier()  # rank 0 has written the bundle
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
