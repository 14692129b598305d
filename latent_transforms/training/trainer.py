"""The StyleGAN2-ADA training loop: one process or ``torchrun`` DDP, resumable, scored and selected."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
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
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.networks.config import GanConfig
from latent_transforms.networks.discriminator import Discriminator
from latent_transforms.networks.generator import Generator
from latent_transforms.networks.preview import sample_grid
from latent_transforms.training.augment import MAGNITUDES, AdaController, AugmentPipe
from latent_transforms.training.checkpoint import load_training_state, save_training_state
from latent_transforms.training.data import BatchStream, GanImages, TensorImages, preload, should_preload
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
from latent_transforms.training.selection import SmoothedSelection

Scorer = Callable[[Generator], dict[str, float]]
"""Scores a generator (lower ``"fid"`` is better); see :mod:`latent_transforms.training.scoring`."""

GRID_SEED = 1234


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _sync_gradients(module: torch.nn.Module, world_size: int) -> None:
    params = [p for p in module.parameters() if p.grad is not None]
    if world_size > 1 and params:
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= world_size
        torch.nn.utils.vector_to_parameters(flat, [p.grad for p in params])
    for p in params:  # a rare inf/nan gradient must not destroy the weights (StyleGAN2-ADA does the same)
        torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)


def _lazy_adam(params: Any, lr: float, betas: tuple[float, float], interval: int) -> torch.optim.Adam:
    # Lazy regularisation runs the regulariser every ``interval`` steps; StyleGAN2 compensates by
    # scaling the Adam hyper-parameters by interval / (interval + 1).
    ratio = interval / (interval + 1) if interval > 0 else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=(betas[0] ** ratio, betas[1] ** ratio), eps=1e-8)


class Trainer:
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
        self.config = config
        self.options = options or TrainingOptions()
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
        first, _ = images[0]
        expected = (self.config.img_channels, self.config.resolution, self.config.resolution)
        if tuple(first.shape) != expected:
            raise ConfigError(
                f"training images are {tuple(first.shape)} but the GAN config expects {expected} "
                "(channels = modalities, resolution); resize the data or change the config."
            )
        if isinstance(images, GanImages) and should_preload(images, self.options.preload):
            images = preload(images, progress=self.progress and self.rank == 0)
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
        self.gen = torch.Generator(device=self.device).manual_seed(opts.seed * 1009 + self.rank)
        self.selection = SmoothedSelection(opts.selection_alpha)
        self.cur_nimg = 0
        self.step = 0
        self.elapsed = 0.0
        self.last_scores: dict[str, float] = {}
        self.score_seconds: float | None = None  # how long the last scoring took (max_minutes plans with it)
        self.write_seconds = 0.0  # how long the last snapshot took besides scoring (also planned with)
        self.r1_gamma = opts.resolved_r1_gamma(cfg.resolution)
        if self.world_size > 1:  # every rank starts from rank 0's weights
            for module in (self.G, self.D, self.G_ema):
                for tensor in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(tensor.data, src=0)

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
            "rng": self._rng_states(),
            "cur_nimg": self.cur_nimg,
            "step": self.step,
            "elapsed": self.elapsed,
            "selection": self.selection.state_dict(),
            "last_scores": dict(self.last_scores),
        }

    def _rng_states(self) -> list[torch.Tensor]:
        # every rank draws its own z, noise and augmentation: keep all their states for an exact resume
        state = self.gen.get_state()
        if self.world_size == 1:
            return [state]
        states: list[Any] = [None] * self.world_size
        dist.all_gather_object(states, state)
        return states

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`; the config must match."""
        saved = GanConfig.from_dict(json.loads(state["config"]))
        if saved != self.config:
            raise ConfigError(
                "the checkpoint in the output folder was made with another GAN config; "
                "use a new --out folder, or the same architecture to resume."
            )
        saved_opts = TrainingOptions.from_dict(json.loads(state["options"]))
        changed = {
            k
            for k, v in saved_opts.to_dict().items()
            if self.options.to_dict()[k] != v and k not in {"total_kimg", "num_workers", "preload"}
        }
        if changed:
            raise ConfigError(
                f"cannot resume: options {sorted(changed)} differ from the run in {self.out}; only "
                "total_kimg, num_workers and preload may change on resume."
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
        rng = state["rng"]
        if len(rng) == self.world_size:
            self.gen.set_state(rng[self.rank])
        else:  # resumed with another number of ranks: the run goes on, with fresh random streams
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
        _sync_gradients(self.G, self.world_size)
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
            _sync_gradients(self.G, self.world_size)
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
        _sync_gradients(self.D, self.world_size)
        self.D_opt.step()
        logs["loss_D"] = float(loss_d.detach())
        logs["D_real_sign"] = float(real_logits.float().sign().mean())

        # D: lazy R1 (fp32).
        if opts.r1_interval > 0 and self.r1_gamma > 0 and self.step % opts.r1_interval == 0:
            penalty, _ = r1_penalty(self.D, real, c_real, self._augment)
            self.D_opt.zero_grad(set_to_none=True)
            (penalty.mean() * (self.r1_gamma / 2) * opts.r1_interval).backward()
            _sync_gradients(self.D, self.world_size)
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
        z = torch.randn(16, self.config.z_dim, generator=gen).to(self.device)
        c = None
        if self.config.c_dim > 0:
            c = F.one_hot(torch.arange(16) % self.config.c_dim, self.config.c_dim).float().to(self.device)
        return z, c

    @torch.no_grad()
    def _write_samples(self) -> Path:
        z, c = self._grid_inputs()
        images = self.G_ema(z, c)
        path = self.out / "samples" / f"fakes-{self.cur_nimg / 1000:010.3f}kimg.png"
        grid = sample_grid(images)
        return atomic_write(path, lambda tmp: save_image(grid, tmp, format="png"))

    def _write_reals(self) -> None:
        path = self.out / "samples" / "reals.png"
        if path.exists():
            return
        picks = torch.linspace(0, len(self.images) - 1, 16).long().tolist()
        grid = sample_grid(torch.stack([self.images[i][0] for i in picks]))
        atomic_write(path, lambda tmp: save_image(grid, tmp, format="png"))

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

    def _save_bundle(self, bundle: GanBundle, name: str = "bundle") -> Path:
        target = self.out / name
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.out))
        try:
            bundle.save_pretrained(staging, w_stats_samples=10_000)
            replace_folder(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _snapshot(self, logs: dict[str, float], score_now: bool) -> None:
        started = time.perf_counter()
        scored = 0.0
        kimg = round(self.cur_nimg / 1000, 3)
        record: dict[str, Any] = {"kimg": kimg, "step": self.step, "seconds": round(self.elapsed, 1), **logs}
        if self.rank == 0:
            self._write_samples()
        if score_now and self.scorer is not None:
            scores = self._timed_score() if self.rank == 0 else {}
            scored = (self.score_seconds or 0.0) if self.rank == 0 else 0.0
            self.last_scores = scores
            record.update({f"score/{k}": v for k, v in scores.items()})
            if self.rank == 0:
                is_best = self.selection.update(kimg, float(scores["fid"]))
                record["score/smoothed"] = self.selection.smoothed
                if is_best:
                    self._save_bundle(
                        self._bundle(self.G_ema, {"selected_kimg": kimg, **self._score_summary()})
                    )
        state = self.state_dict()  # collective under torchrun: every rank takes part
        if self.rank == 0:
            self._log(record)
            save_training_state(state, self.out)
        self.write_seconds = time.perf_counter() - started - scored

    def _timed_score(self) -> dict[str, float]:
        """Score ``G_ema``, keeping how long it took (``score_seconds``: ``max_minutes`` plans with it)."""
        assert self.scorer is not None
        started = time.perf_counter()
        scores = self.scorer(self.G_ema)
        self.score_seconds = time.perf_counter() - started
        return scores

    def _agree(self, flag: bool) -> bool:
        """``flag`` on any rank -> True on every rank (so all ranks stop at the same step)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def _score_summary(self) -> dict[str, Any]:
        return {f"fid_{k}" if k != "fid" else "fid": round(v, 4) for k, v in self.last_scores.items()}

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
        opts = self.options
        call_started = time.monotonic()
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
        budget = None if max_minutes is None else 60.0 * max_minutes
        deadline = None if budget is None else call_started + budget
        estimate = getattr(self.scorer, "estimate_seconds", None)
        if deadline is not None and estimate is not None and self.rank == 0 and self.score_seconds is None:
            self.score_seconds = float(estimate(self.G_ema))  # so the budget keeps room for the last scoring

        def reserve() -> float:
            """Seconds to keep free at the end of the budget: the last snapshot's writing, its scoring and
            the caller's own scorings."""
            if self.scorer is None or self.score_seconds is None:
                return self.write_seconds
            return self.write_seconds + self.score_seconds * (1.0 + final_scorings)

        if budget is None:
            bar = tqdm(
                total=total,
                initial=self.cur_nimg,
                unit="img",
                unit_scale=True,
                desc="training",
                disable=not self.progress or self.rank != 0,
            )
        else:  # the bar counts the budget's seconds: its ETA is when this call ends
            bar = tqdm(
                total=round(budget, 1),
                desc=f"training ({budget / 60:g} min budget)",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}",
                disable=not self.progress or self.rank != 0,
            )
        start_nimg = self.cur_nimg
        sums: dict[str, float] = {}
        count = 0
        next_snapshot = (self.cur_nimg // snapshot_every + 1) * snapshot_every
        next_metric = (self.cur_nimg // metric_every + 1) * metric_every if metric_every else None
        while self.cur_nimg < stop:
            started = time.perf_counter()
            real, labels = next(stream)
            real = real.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            logs = self._train_step(real, labels)
            self.elapsed += time.perf_counter() - started
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            if budget is None:
                bar.update(opts.batch_size)
            else:
                spent = time.monotonic() - call_started
                rate = (self.cur_nimg - start_nimg) / max(spent, 1e-9)
                to_kimg = (stop - self.cur_nimg) / max(rate, 1e-9)
                bar.total = round(min(budget, spent + to_kimg + reserve()), 1)
                bar.update(round(min(spent, bar.total), 1) - bar.n)  # update() redraws the bar
            postfix = {
                "kimg": f"{self.cur_nimg / 1000:.1f}",
                "G": f"{logs['loss_G']:.3f}",
                "D": f"{logs['loss_D']:.3f}",
            }
            if "augment_p" in logs:
                postfix["p"] = f"{logs['augment_p']:.3f}"
            if "fid" in self.last_scores:
                postfix["fid"] = f"{self.last_scores['fid']:.2f}"
            bar.set_postfix(postfix, refresh=False)
            timed_out = deadline is not None and self._agree(time.monotonic() + reserve() >= deadline)
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
            self._save_bundle(self._bundle(self.G_ema))
        if self.world_size > 1:
            dist.barrier()  # rank 0 has written the bundle
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
