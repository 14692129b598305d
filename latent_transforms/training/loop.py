"""What the GAN and the diffusion trainers share: ranks and devices under ``torchrun``, the output folder,
resuming, checkpoints, sample grids, the ``max_minutes`` budget with its reserve and its progress bar, and
the loop that runs the training steps and writes the snapshots.

A trainer subclasses :class:`TrainingLoop` and supplies what is its own: the networks (``_build``,
``_networks``), one training step (``_train_step``), its state (``state_dict`` / ``load_state_dict``,
which use ``_loop_state`` / ``_check_saved_run`` / ``_load_loop_state`` here), its sample grid, its bundle
and what the scorer is given.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torchvision.utils import save_image
from tqdm.auto import tqdm

from latent_transforms.checks import default_device
from latent_transforms.data.labels import dataset_labels
from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write, replace_folder
from latent_transforms.networks.preview import sample_grid
from latent_transforms.training.checkpoint import (
    SNAPSHOTS,
    load_training_state,
    save_training_state,
    snapshot_name,
)
from latent_transforms.training.curve import can_plot, plot_fid_curve
from latent_transforms.training.data import (
    BatchStream,
    GanImages,
    TensorImages,
    class_balance_repeats,
    preload,
    should_preload,
)
from latent_transforms.training.selection import SmoothedSelection

__all__ = ["GRID_IMAGES", "GRID_SEED", "TrainingLoop", "average_gradients", "distributed", "rank_device"]

#: The fixed seed and size of the sample grids written at every snapshot (the same images each time).
GRID_SEED = 1234
GRID_IMAGES = 16


def distributed() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: the process group's under ``torchrun``, else ``(0, 1)``.

    Example:
        >>> distributed()
        (0, 1)
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank_device(device: torch.device | str | None = None) -> torch.device:
    """The device a trainer runs on: ``device`` when given, else CUDA when available (under ``torchrun`` the
    GPU of this rank, ``LOCAL_RANK``), else the CPU.

    Example:
        >>> rank_device("cpu")
        device(type='cpu')
    """
    chosen = default_device(device)
    if device is None and chosen.type == "cuda":  # under torchrun: each rank on its own GPU
        chosen = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return chosen


def average_gradients(module: torch.nn.Module, world_size: int) -> None:
    """Average the gradients of ``module`` over the ``torchrun`` ranks (one flat all-reduce), then replace
    a rare NaN/Inf gradient entry so it cannot destroy the weights (StyleGAN2-ADA does the same).

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


class TrainingLoop:
    """The base of :class:`~latent_transforms.training.Trainer` (StyleGAN2-ADA) and
    :class:`~latent_transforms.training.DiffusionTrainer`: set-up, resume, checkpoints and the loop.

    The arguments are the trainers' (see :class:`~latent_transforms.training.Trainer`); ``options`` needs
    ``batch_size``, ``seed``, ``total_kimg``, ``snapshot_kimg``, ``metric_kimg``, ``num_workers``,
    ``preload`` and ``selection_alpha``, ``config`` needs ``resolution``, ``img_channels``,
    ``to_json`` / ``from_dict``. After the set-up every trainer has ``rank`` / ``world_size`` (``torchrun``),
    ``device``, ``batch`` (this rank's share of the batch), ``images``, ``gen`` (this rank's random stream),
    ``selection``, the counters ``cur_nimg`` / ``step`` / ``elapsed`` and, for the time budget,
    ``score_seconds`` (the last scoring's time) and ``write_seconds`` (the last snapshot's writing time).

    Example:
        >>> from latent_transforms.training import Trainer, DiffusionTrainer
        >>> issubclass(Trainer, TrainingLoop) and issubclass(DiffusionTrainer, TrainingLoop)
        True
    """

    #: ``"GAN"`` / ``"diffusion"``: how errors name the config.
    kind = "training"
    #: The progress bar's label.
    bar_label = "training"
    config: Any
    options: Any
    scorer: Any

    def __init__(
        self,
        config: Any,
        data: Any,
        out: str | Path,
        options: Any,
        *,
        scorer: Any = None,
        label_key: str | None = None,
        device: torch.device | str | None = None,
        resume: bool | str = "auto",
        progress: bool = True,
        description: str = "",
    ) -> None:
        self.config = config
        self.options = options
        self.out = Path(out)
        self.scorer = scorer
        self.progress = progress
        self.description = description
        self.rank, self.world_size = distributed()
        self.device = rank_device(device)
        if self.options.batch_size % self.world_size:
            raise ConfigError(
                f"batch_size={self.options.batch_size} must be divisible by the number of ranks "
                f"({self.world_size})."
            )
        self.batch = self.options.batch_size // self.world_size
        self.images = self._prepare_data(data, label_key)
        self._resume_mode = resume
        self.gen = torch.Generator(device=self.device).manual_seed(self.options.seed * 1009 + self.rank)
        self.selection = SmoothedSelection(self.options.selection_alpha)
        self.cur_nimg = 0
        self.step = 0
        self.elapsed = 0.0
        self.last_scores: dict[str, float] = {}
        self.score_seconds: float | None = None  # how long the last scoring took (max_minutes plans with it)
        self.write_seconds = 0.0  # how long the last snapshot took besides scoring (also planned with)
        self._build()
        if self.world_size > 1:  # every rank starts from rank 0's weights
            for module in self._networks():
                for tensor in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(tensor.data, src=0)

    # -- what a trainer supplies -------------------------------------------------------------------
    def _images(self, data: Any, label_key: str | None) -> GanImages | TensorImages:
        """``data`` as ``(image in [-1, 1], label)`` pairs (before the shape check and preloading)."""
        raise NotImplementedError

    def _build(self) -> None:
        """Create the networks and optimisers (seeded by ``options.seed``)."""
        raise NotImplementedError

    def _networks(self) -> tuple[torch.nn.Module, ...]:
        """The networks whose weights rank 0 broadcasts at the start."""
        raise NotImplementedError

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """One step on this rank's share of a batch; advances ``cur_nimg`` and ``step``; returns its logs."""
        raise NotImplementedError

    def _postfix(self, logs: dict[str, float]) -> dict[str, str]:
        """What the progress bar shows after the step that returned ``logs``."""
        return {"kimg": f"{self.cur_nimg / 1000:.1f}"}

    def state_dict(self) -> dict[str, Any]:
        """The complete training state (written as the checkpoint)."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        raise NotImplementedError

    def _write_samples(self) -> Path:
        """Write the sample grid of this snapshot to ``out/samples``."""
        raise NotImplementedError

    def _result_bundle(self, extra: dict[str, Any] | None = None) -> Any:
        """The bundle of the current EMA model, with ``extra`` in its training summary."""
        raise NotImplementedError

    def _scored_model(self) -> Any:
        """What the scorer (and its ``estimate_seconds``) is given."""
        raise NotImplementedError

    def _write_bundle(self, bundle: Any, folder: Path) -> None:
        bundle.save_pretrained(folder)

    # -- set-up ------------------------------------------------------------------------------------
    def _prepare_data(self, data: Any, label_key: str | None) -> GanImages | TensorImages:
        images = self._images(data, label_key)
        first, _ = images[0]
        expected = (self.config.img_channels, self.config.resolution, self.config.resolution)
        if tuple(first.shape) != expected:
            raise ConfigError(
                f"training images are {tuple(first.shape)} but the {self.kind} config expects {expected} "
                "(channels = modalities, resolution); resize the data or change the config."
            )
        if isinstance(images, GanImages) and should_preload(images, self.options.preload):
            images = preload(images, progress=self.progress and self.rank == 0)
        return images

    def _class_repeats(self) -> torch.Tensor | None:
        """Per-image repeats per epoch when ``options.class_balance`` is on (``None`` otherwise)."""
        if not self.options.class_balance:
            return None
        if self.config.c_dim < 1:
            raise ConfigError(
                "class_balance needs a class-conditional model (c_dim >= 1) trained on labelled images."
            )
        labels = dataset_labels(self.images)
        assert labels is not None  # training items are (image, label) pairs
        return class_balance_repeats(labels)

    # -- state -------------------------------------------------------------------------------------
    def _loop_state(self) -> dict[str, Any]:
        """The loop's part of the state: every rank's random stream, the counters, the selection."""
        return {
            "rng": self._rng_states(),
            "cur_nimg": self.cur_nimg,
            "step": self.step,
            "elapsed": self.elapsed,
            "selection": self.selection.state_dict(),
            "last_scores": dict(self.last_scores),
        }

    def _rng_states(self) -> list[torch.Tensor]:
        # every rank draws its own noise and augmentation: keep all their states for an exact resume
        state = self.gen.get_state()
        if self.world_size == 1:
            return [state]
        states: list[Any] = [None] * self.world_size
        dist.all_gather_object(states, state)
        return states

    def _check_saved_run(self, state: dict[str, Any], resumable: Collection[str], allowed: str) -> None:
        """Refuse a checkpoint of another config, or of options that differ beyond ``resumable``."""
        saved = type(self.config).from_dict(json.loads(state["config"]))
        if saved != self.config:
            raise ConfigError(
                f"the checkpoint in the output folder was made with another {self.kind} config; "
                "use a new --out folder, or the same architecture to resume."
            )
        saved_opts = type(self.options).from_dict(json.loads(state["options"])).to_dict()
        now = self.options.to_dict()
        changed = {k for k, v in saved_opts.items() if now[k] != v and k not in resumable}
        if changed:
            raise ConfigError(
                f"cannot resume: options {sorted(changed)} differ from the run in {self.out}; only "
                f"{allowed} may change on resume."
            )

    def _load_loop_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_loop_state` saved (the random streams: this rank's, when the number of
        ranks is the same)."""
        rng = state["rng"]
        if len(rng) == self.world_size:
            self.gen.set_state(rng[self.rank])
        else:  # resumed with another number of ranks: the run goes on, with fresh random streams
            warnings.warn(
                f"the checkpoint was written by {len(rng)} process(es) and is resumed by {self.world_size}; "
                "training continues, but not bit-identically to an uninterrupted run.",
                stacklevel=3,
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

    # -- outputs -----------------------------------------------------------------------------------
    def _write_reals(self) -> None:
        path = self.out / "samples" / "reals.png"
        if path.exists():
            return
        picks = torch.linspace(0, len(self.images) - 1, GRID_IMAGES).long().tolist()
        grid = sample_grid(torch.stack([self.images[i][0] for i in picks]))
        atomic_write(path, lambda tmp: save_image(grid, tmp, format="png"))

    def _save_bundle(self, bundle: Any, name: str = "bundle") -> Path:
        """Write ``bundle`` to ``out/name``, replacing the folder whole (a staging folder, then a rename)."""
        target = self.out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            self._write_bundle(bundle, staging)
            replace_folder(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def save_snapshot_bundle(self, *, scored: bool = True) -> Path:
        """Write the EMA model as it is now to ``out/snapshots/kimg-NNNNNN.NNN`` and return that folder.

        What ``keep_snapshots`` keeps at every snapshot; also a way to turn a saved training state into a
        bundle (:meth:`load_state_dict` first). ``scored``: put the last scores into its training summary.
        """
        kimg = round(self.cur_nimg / 1000, 3)
        extra = {"snapshot_kimg": kimg, **(self._score_summary() if scored else {})}
        return self._save_bundle(self._result_bundle(extra), f"{SNAPSHOTS}/{snapshot_name(kimg)}")

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _score_summary(self) -> dict[str, Any]:
        return {f"fid_{k}" if k != "fid" else "fid": round(v, 4) for k, v in self.last_scores.items()}

    def _timed_score(self) -> dict[str, float]:
        """Score the EMA model, keeping how long it took (``score_seconds``, which ``max_minutes`` plans
        with)."""
        assert self.scorer is not None
        started = time.perf_counter()
        scores = self.scorer(self._scored_model())
        self.score_seconds = time.perf_counter() - started
        return dict(scores)

    def _snapshot(self, logs: dict[str, float], score_now: bool) -> None:
        """Samples, the score (when due; the best smoothed one becomes ``out/bundle``), the log record and
        the checkpoint; ``write_seconds`` keeps how long all but the scoring took."""
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
                    self._save_bundle(self._result_bundle({"selected_kimg": kimg, **self._score_summary()}))
        if self.rank == 0 and self.options.keep_snapshots:
            self.save_snapshot_bundle(scored="score/fid" in record)
        state = self.state_dict()  # collective under torchrun: every rank takes part
        if self.rank == 0:
            self._log(record)
            if "score/fid" in record and can_plot():
                plot_fid_curve(self.out, self.out / "fid-curve.png")
            save_training_state(state, self.out)
        self.write_seconds = time.perf_counter() - started - scored

    # -- the loop ----------------------------------------------------------------------------------
    def _agree(self, flag: bool) -> bool:
        """``flag`` on any rank -> True on every rank (so all ranks stop at the same step)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def _reserve(self, final_scorings: float) -> float:
        """Seconds to keep free at the end of a time budget: the last snapshot's writing, its scoring and
        ``final_scorings`` more scorings (the caller's own)."""
        if self.scorer is None or self.score_seconds is None:
            return self.write_seconds
        return self.write_seconds + self.score_seconds * (1.0 + final_scorings)

    def _progress_bar(self, total: int, budget: float | None) -> Any:
        """A bar of images (to ``total``), or of the ``budget``'s seconds: its ETA is when the call ends."""
        if budget is None:
            return tqdm(
                total=total,
                initial=self.cur_nimg,
                unit="img",
                unit_scale=True,
                desc=self.bar_label,
                disable=not self.progress or self.rank != 0,
            )
        return tqdm(
            total=round(budget, 1),
            desc=f"{self.bar_label} ({budget / 60:.3g} min budget)",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}",
            disable=not self.progress or self.rank != 0,
        )

    def _train(
        self,
        *,
        stop_at_kimg: float | None = None,
        max_minutes: float | None = None,
        final_scorings: float = 0.0,
    ) -> None:
        """Train to ``options.total_kimg`` (or ``stop_at_kimg``, or until the ``max_minutes`` budget less
        :meth:`_reserve` is spent), then write ``out/bundle`` unless a scored snapshot chose it."""
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
            repeats=self._class_repeats(),
        )
        budget = None if max_minutes is None else 60.0 * max_minutes
        deadline = None if budget is None else call_started + budget
        estimate: Callable[[Any], float] | None = getattr(self.scorer, "estimate_seconds", None)
        if deadline is not None and estimate is not None and self.rank == 0 and self.score_seconds is None:
            self.score_seconds = float(estimate(self._scored_model()))  # room for the last scoring
        bar = self._progress_bar(total, budget)
        start_nimg = self.cur_nimg
        sums: dict[str, float] = {}
        count = 0
        next_snapshot = (self.cur_nimg // snapshot_every + 1) * snapshot_every
        next_metric = (self.cur_nimg // metric_every + 1) * metric_every if metric_every else None
        while self.cur_nimg < stop:
            started = time.perf_counter()
            images, labels = next(stream)
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            logs = self._train_step(images, labels)
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
                bar.total = round(min(budget, spent + to_kimg + self._reserve(final_scorings)), 1)
                bar.update(round(min(spent, bar.total), 1) - bar.n)  # update() redraws the bar
            postfix = self._postfix(logs)
            if "fid" in self.last_scores:
                postfix["fid"] = f"{self.last_scores['fid']:.2f}"
            bar.set_postfix(postfix, refresh=False)
            timed_out = deadline is not None and self._agree(
                time.monotonic() + self._reserve(final_scorings) >= deadline
            )
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
            self._save_bundle(self._result_bundle())
        if self.world_size > 1:
            dist.barrier()  # rank 0 has written the bundle
