"""LatentAugment's walk: ``K`` Adam steps on the latents of a batch, from their inversions ``w*``.

The method of Tronchin et al. 2023 (eqs. 3-10): for a real image ``x`` with inverted latent ``w*``,
``w⁰ = w*`` and ``K`` Adam steps (learning rate ``η``, ``β = (0.9, 0.999)``) minimise::

    L(w) = α_f·softplus(−D(G(w))) − α_pix·L_pix(G(w)) − α_perc·L_perc(G(w)) − α_lat·L_lat(w)

with the diversity terms the mean distances to the whole real training set, ``L_pix = mean_j MSE(G(w),
x_j)``, ``L_perc = mean_j Σ_l mean((φ_l(P(G(w))) − φ_l(P(x_j)))²)`` on patches ``P`` and ``L_lat = mean_j
MSE(w, w*_j)``. They are evaluated exactly in closed form from the dataset means that
:class:`~latent_transforms.DatasetStats` holds (``mean_j |a − x_j|² = |a − x̄|² + const``), so a step costs
one generator, one discriminator and one perceptual pass for the whole batch, whatever the size of the
training set. The result is ``G(w̃)``, the image of the final latent, rendered with the generator's
constant noise exactly as during the walk. Which patches the perceptual term compares is the
``patch_protocol`` (:data:`PATCH_PROTOCOLS`: ours, or the authors' code's).

:class:`LatentWalk` is the walk on one device: the loss terms (:meth:`LatentWalk.terms`), one step
(:meth:`LatentWalk.step_function`, optionally ``torch.compile``-d once), the ``K``-step loop
(:meth:`LatentWalk.optimize`) and the walk with its final render and finiteness check
(:meth:`LatentWalk.run`). :class:`~latent_transforms.LatentAugment` is the transform around it (input
ranges, the per-sample ``p``, the latent lookup); benchmarks and research code call the walk directly.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from latent_transforms.checks import canonical_device
from latent_transforms.errors import ConfigError
from latent_transforms.features.perceptual import PerceptualNetwork, perceptual_network
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.objectives.stats import DatasetStats, PatchPool

__all__ = [
    "COMPILE_MODES",
    "PATCH_PROTOCOLS",
    "PRECISIONS",
    "LatentWalk",
    "WalkParameters",
    "check_latents",
    "check_statistics",
    "render_latents",
    "single_sample_mbstd",
]

#: ``precision`` values: fp32, or CUDA autocast to bf16 for the networks (``w`` and Adam stay fp32).
PRECISIONS = ("fp32", "bf16")
#: ``patch_protocol`` values (which patches the perceptual term compares): ``"same-position"``, a new grid
#: position each step, the synthetic patch against the real patches at that position; ``"authors"``, the
#: authors' code (Tronchin et al. 2023): one position per walk inside the centre square of side ``R/√2``,
#: against the pool of the real patches at every centre-square position.
PATCH_PROTOCOLS = ("same-position", "authors")
#: ``compile_mode`` values: ``None`` (eager) or a ``torch.compile`` mode.
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# Guards the temporary minibatch-std group size of a discriminator shared between threads.
_MBSTD_LOCK = threading.RLock()


class WalkParameters(Protocol):
    """The hyper-parameters the walk reads (a :class:`~latent_transforms.LatentAugmentConfig` has them).

    Example:
        >>> from latent_transforms import LatentAugmentConfig
        >>> params: WalkParameters = LatentAugmentConfig(steps=3)
        >>> params.steps, params.alpha_perc
        (3, 10.0)
    """

    @property
    def steps(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @property
    def alpha_f(self) -> float: ...
    @property
    def alpha_pix(self) -> float: ...
    @property
    def alpha_perc(self) -> float: ...
    @property
    def alpha_lat(self) -> float: ...
    @property
    def alpha_task(self) -> float: ...
    @property
    def patch_protocol(self) -> str: ...
    @property
    def precision(self) -> str: ...


@contextlib.contextmanager
def single_sample_mbstd(discriminator: nn.Module | None) -> Iterator[None]:
    """Score every sample on its own: minibatch-std group size 1 while the discriminator runs.

    ``D(x[None])`` has a group of one whatever the default, so this makes ``D(batch)[i] == D(x_i[None])``
    and the walk of a sample independent of the rest of its batch. ``None`` (no discriminator) does
    nothing.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> D = GanBundle.random(cfg).discriminator
        >>> with single_sample_mbstd(D):
        ...     D.b4.mbstd.group_size
        1
    """
    epilogue = getattr(discriminator, "b4", None)
    mbstd = getattr(epilogue, "mbstd", None)
    if mbstd is None:
        yield
        return
    with _MBSTD_LOCK:
        old = mbstd.group_size
        mbstd.group_size = 1
        try:
            yield
        finally:
            mbstd.group_size = old


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    enabled = precision == "bf16" and device.type == "cuda"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def render_latents(bundle: GanBundle, w: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """``G(w)`` with the generator's constant noise: ``[B, C, R, R]`` float32 (nominally ``[-1, 1]``,
    unclamped) on ``w``'s device, differentiable with respect to ``w``.

    Args:
        bundle: the GAN bundle (its generator must be on ``w``'s device).
        w: ``[B, w_dim]`` (W, broadcast to every layer) or ``[B, num_ws, w_dim]`` (W+).
        precision: ``"fp32"`` or ``"bf16"`` (CUDA autocast).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> render_latents(GanBundle.random(cfg), torch.zeros(3, 16)).shape
        torch.Size([3, 2, 16, 16])
    """
    G = bundle.generator
    if w.ndim == 2:
        ws = w.unsqueeze(1).expand(-1, G.num_ws, -1)
    elif w.ndim == 3:
        ws = w
    else:
        raise ConfigError(
            f"expected latents [B, {G.w_dim}] (W) or [B, {G.num_ws}, {G.w_dim}] (W+), got {tuple(w.shape)}."
        )
    with _autocast(w.device, precision):
        return G.synthesis(ws, noise_mode="const").float()


def check_latents(bundle: GanBundle, w: torch.Tensor, batch: int) -> None:
    """Raise :class:`ConfigError` unless ``w`` holds ``batch`` latents of this GAN (W or W+).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> check_latents(GanBundle.random(cfg), torch.zeros(2, 16), 2)  # W: fine
    """
    G = bundle.generator
    ok = w.shape[0] == batch and (
        (w.ndim == 2 and w.shape[1] == G.w_dim) or (w.ndim == 3 and tuple(w.shape[1:]) == (G.num_ws, G.w_dim))
    )
    if not ok:
        raise ConfigError(
            f"expected latents [{batch}, {G.w_dim}] (W) or [{batch}, {G.num_ws}, {G.w_dim}] (W+) for "
            f"this GAN, got {tuple(w.shape)}. Fix: use latents inverted with this GAN."
        )


def check_statistics(
    bundle: GanBundle, stats: DatasetStats | None, params: WalkParameters, cache_folder: Path | None = None
) -> None:
    """Raise :class:`ConfigError` unless ``stats`` can serve every diversity term whose weight in
    ``params`` is above 0, for ``bundle``'s images and latents (what to run, and where it looks:
    ``cache_folder``, when the statistics were to come from a cache folder).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig, LatentAugmentConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> stats = DatasetStats.compute([torch.zeros(2, 2, 16, 16)], progress=False)  # images only
        >>> check_statistics(GanBundle.random(cfg), stats, LatentAugmentConfig(alpha_perc=0, alpha_lat=0))
    """
    if stats is None:
        raise ConfigError(
            "LatentAugment's diversity terms (alpha_pix="
            f"{params.alpha_pix}, alpha_perc={params.alpha_perc}, alpha_lat={params.alpha_lat}) need the "
            "real training set's statistics, but none were found ("
            + (
                f"no stats= given and no stats.safetensors in {cache_folder}"
                if cache_folder
                else "no stats= given"
            )
            + "). Fix: run `latent-transforms invert --gan GAN --data DATA --cache CACHE`, which "
            "writes CACHE/stats.safetensors, or compute them with DatasetStats.compute(...) (and "
            ".save(...)) and pass stats=...; or set alpha_pix=alpha_perc=alpha_lat=0."
        )
    res, ch = bundle.resolution, bundle.config.img_channels
    if (stats.resolution, stats.channels) != (res, ch):
        raise ConfigError(
            f"the dataset statistics are for {stats.channels}-channel {stats.resolution} px images, "
            f"the GAN makes {ch}-channel {res} px images. Fix: compute the statistics on this GAN's "
            "training images."
        )
    needs = [
        (params.alpha_pix > 0 and stats.image_mean is None, "alpha_pix", "image statistics"),
        (params.alpha_lat > 0 and stats.w_mean is None, "alpha_lat", "latent statistics"),
        (params.alpha_perc > 0 and stats.patch_means is None, "alpha_perc", "perceptual patch statistics"),
    ]
    for missing, name, what in needs:
        if missing:
            raise ConfigError(
                f"{name}={getattr(params, name)} needs {what}, which these DatasetStats lack "
                f"({stats!r}). Fix: recompute them with DatasetStats.compute on the images (and "
                f"latents, with a perceptual network), or set {name}=0."
            )
    if params.alpha_lat > 0 and stats.w_mean is not None and stats.w_mean.shape[-1] != bundle.config.w_dim:
        raise ConfigError(
            f"the latent statistics have w_dim {stats.w_mean.shape[-1]}, the GAN "
            f"{bundle.config.w_dim}. Fix: compute the statistics with this GAN's inverted latents."
        )


class LatentWalk:
    """LatentAugment's walk on one device (Tronchin et al. 2023, eqs. 3-10; see the module docstring).

    Holds what a walk needs on its device: the GAN bundle, the dataset statistics, the perceptual
    network (built on first use, checked against the statistics' fingerprint) and, with ``compile_mode``,
    the compiled step (built once). Generator and discriminator stay frozen; gradients flow to ``w`` only,
    and all samples of a batch are optimised together: one forward / backward per step for the batch.

    Properties kept on purpose: a step reads nothing on the host (no device synchronisation, so it
    compiles as one graph); the discriminator's minibatch-std group is set to one sample once around the
    whole walk (a sample's walk does not depend on its batch); the patch positions are checked once
    before the loop; the only host read is one finiteness check of the final latents and images.

    Args:
        bundle: the GAN bundle, on the device to run on.
        stats: the real set's :class:`~latent_transforms.DatasetStats` on that device (needed when a
            diversity weight is above 0).
        params: the hyper-parameters (:class:`WalkParameters`, e.g. a
            :class:`~latent_transforms.LatentAugmentConfig`).
        perceptual: the perceptual network: ``None`` (the one the statistics were computed with), a name
            or an ``nn.Module`` returning feature maps.
        task_loss: optional ``images -> loss`` (``[B]`` or a scalar) added as ``alpha_task · task_loss``.
        compile_mode: ``None`` or a ``torch.compile`` mode for one step (render and loss).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig, LatentAugmentConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> params = LatentAugmentConfig(steps=3, alpha_pix=0, alpha_perc=0, alpha_lat=0)
        >>> walk = LatentWalk(GanBundle.random(cfg), None, params)
        >>> w_star = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
        >>> images, w = walk.run(w_star)
        >>> images.shape, bool((w != w_star).any()), torch.equal(images, walk.render(w))
        (torch.Size([2, 2, 16, 16]), True, True)
    """

    def __init__(
        self,
        bundle: GanBundle,
        stats: DatasetStats | None,
        params: WalkParameters,
        *,
        perceptual: str | nn.Module | None = None,
        task_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
        compile_mode: str | None = None,
    ) -> None:
        if compile_mode not in COMPILE_MODES:
            raise ConfigError(f"compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}.")
        self.bundle = bundle
        self.stats = stats
        self.params = params
        self.task_loss = task_loss
        self.compile_mode = compile_mode
        self._perceptual_spec = perceptual
        self._perceptual: PerceptualNetwork | None = None
        self._pool: PatchPool | None = None
        self._step: Callable[..., torch.Tensor] | None = None

    @property
    def device(self) -> torch.device:
        """The device the walk runs on (the bundle's)."""
        return self.bundle.device

    # -- which terms are on ------------------------------------------------------------------------
    @property
    def diversity_active(self) -> bool:
        """Whether a diversity weight (pixel, perceptual, latent) is above 0."""
        p = self.params
        return p.alpha_pix > 0 or p.alpha_perc > 0 or p.alpha_lat > 0

    @property
    def active(self) -> bool:
        """Whether the walk takes any step (``steps > 0`` and some weight above 0)."""
        p = self.params
        task = self.task_loss is not None and p.alpha_task > 0
        return p.steps > 0 and (p.alpha_f > 0 or self.diversity_active or task)

    @property
    def perceptual_active(self) -> bool:
        """Whether the perceptual term runs (``alpha_perc > 0`` and ``steps > 0``)."""
        return self.params.alpha_perc > 0 and self.params.steps > 0

    def _stats(self) -> DatasetStats:
        if self.stats is None:
            raise ConfigError(
                "LatentAugment's diversity terms need the real training set's statistics, but none were "
                "given. Fix: pass DatasetStats (latent-transforms invert writes CACHE/stats.safetensors), "
                "or set alpha_pix=alpha_perc=alpha_lat=0."
            )
        return self.stats

    def perceptual_network(self) -> PerceptualNetwork:
        """The perceptual network on this device, built on first use and checked against the statistics.

        Example:
            >>> from latent_transforms import DatasetStats, GanBundle, GanConfig, LatentAugmentConfig
            >>> from latent_transforms.features.perceptual import perceptual_network
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> net = perceptual_network("random")
            >>> stats = DatasetStats.compute([torch.zeros(2, 2, 16, 16)], perceptual=net, patch_size=8,
            ...                              progress=False)
            >>> LatentWalk(GanBundle.random(cfg), stats, LatentAugmentConfig()).perceptual_network().name
            'random'
        """
        if self._perceptual is not None:
            return self._perceptual
        stats = self._stats()
        spec = self._perceptual_spec
        dev = self.bundle.device
        if spec is None:
            name = stats.perceptual_name
            if name is None:
                raise ConfigError(
                    "alpha_perc > 0 needs the statistics' perceptual network, but these DatasetStats were "
                    "computed without one. Fix: recompute them with a perceptual network, or alpha_perc=0."
                )
            try:
                net = perceptual_network(name, bundle=self.bundle, device=dev)
            except ConfigError as exc:
                raise ConfigError(
                    f"the dataset statistics were computed with the perceptual network {name!r}, which "
                    f"cannot be rebuilt by name ({exc}). Fix: pass perceptual=<that network>."
                ) from exc
        elif isinstance(spec, str):
            net = perceptual_network(spec, bundle=self.bundle, device=dev)
        else:
            module = spec
            owner = next(iter(module.parameters()), None)
            if owner is not None and canonical_device(owner.device) != canonical_device(dev):
                module = copy.deepcopy(module)
            net = perceptual_network(module, device=dev)
        stats.check_perceptual(net)
        self._perceptual = net
        return net

    def patch_pool(self) -> PatchPool:
        """The real side of the perceptual term with ``patch_protocol="authors"``: the statistics of every
        real image's patches at the centre-square positions (:meth:`DatasetStats.patch_pool`), built once."""
        if self._pool is None:
            self._pool = self._stats().patch_pool()
        return self._pool

    # -- rendering and the loss --------------------------------------------------------------------
    def render(self, w: torch.Tensor) -> torch.Tensor:
        """``G(w)`` with constant noise (:func:`render_latents` with the walk's precision)."""
        return render_latents(self.bundle, w, self.params.precision)

    def terms(
        self,
        w: torch.Tensor,
        images: torch.Tensor,
        positions: torch.Tensor | None = None,
        c: torch.Tensor | None = None,
        *,
        in_walk: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The terms of ``L`` for latents ``w`` and their images ``images = G(w)``, per sample.

        Args:
            w: ``[B, w_dim]`` or ``[B, num_ws, w_dim]``.
            images: ``[B, C, R, R]`` (the generated images, ``[-1, 1]``).
            positions: ``[B]`` long, each sample's patch position (index into ``stats.patch_positions``);
                needed when ``alpha_perc > 0``. The synthetic patch is cut there; the real side is the real
                patches at the same position (``patch_protocol="same-position"``) or the centre pool
                (``"authors"``, :meth:`patch_pool`).
            c: ``[B, c_dim]`` labels for a conditional discriminator.
            in_walk: inside the loop, which has checked the patch positions and the inputs once and set
                the discriminator's minibatch-std group: nothing here reads a value on the host.

        Returns:
            A dict of ``[B]`` tensors, only for the terms whose weight is above 0: ``"fidelity"``
            (``softplus(−D(images))``), ``"pixel"``, ``"perceptual"``, ``"latent"`` (the exact means over
            the real set, constants included), ``"task"`` (with a task loss), and ``"total"``, the weighted
            sum ``α_f·fidelity − α_pix·pixel − α_perc·perceptual − α_lat·latent + α_task·task`` whose batch
            sum the walk minimises. Differentiable with respect to ``w`` and ``images``.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig, LatentAugmentConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> walk = LatentWalk(GanBundle.random(cfg), None, LatentAugmentConfig(alpha_pix=0, alpha_perc=0,
            ...                                                                     alpha_lat=0))
            >>> w = torch.zeros(2, 16)
            >>> terms = walk.terms(w, walk.render(w))
            >>> sorted(terms), terms["total"].shape
            (['fidelity', 'total'], torch.Size([2]))
        """
        p = self.params
        b = images.shape[0]
        terms: dict[str, torch.Tensor] = {}
        total = torch.zeros(b, device=images.device)
        if p.alpha_f > 0:
            D = self.bundle.discriminator
            if D is None:
                raise ConfigError(
                    "the fidelity term (alpha_f > 0) needs the GAN's discriminator. Fix: alpha_f=0."
                )
            if self.bundle.config.c_dim > 0 and c is None:
                raise ConfigError(
                    "this GAN is conditional: the fidelity term needs each image's label c [B, c_dim] "
                    "(augment(..., c=...) or params['c']). Fix: pass the labels, or alpha_f=0."
                )
            group = contextlib.nullcontext() if in_walk else single_sample_mbstd(D)
            with _autocast(images.device, p.precision), group:
                logits = D(images, c)
            terms["fidelity"] = F.softplus(-logits.float()).reshape(b)
            total = total + p.alpha_f * terms["fidelity"]
        if p.alpha_pix > 0:
            terms["pixel"] = self._stats().pixel_loss(images)
            total = total - p.alpha_pix * terms["pixel"]
        if p.alpha_perc > 0:
            stats = self._stats()
            if positions is None:
                raise ConfigError(
                    "alpha_perc > 0 needs one patch position per sample: positions [B] (long) indices into "
                    "stats.patch_positions, e.g. stats.random_positions(B, generator)."
                )
            net = self.perceptual_network()
            positions = positions.to(images.device)
            with _autocast(images.device, p.precision):
                feats = net(stats.patch(images, positions, check_range=not in_walk), check_finite=not in_walk)
            feats = [f.float() for f in feats]
            if p.patch_protocol == "authors":
                terms["perceptual"] = stats.pool_perceptual_loss(feats, self.patch_pool())
            else:
                terms["perceptual"] = stats.perceptual_loss(feats, positions, check_range=not in_walk)
            total = total - p.alpha_perc * terms["perceptual"]
        if p.alpha_lat > 0:
            terms["latent"] = self._stats().latent_loss(w)
            total = total - p.alpha_lat * terms["latent"]
        if self.task_loss is not None and p.alpha_task > 0:
            task = self.task_loss(images)
            if not isinstance(task, torch.Tensor) or tuple(task.shape) not in ((b,), ()):
                got = tuple(task.shape) if isinstance(task, torch.Tensor) else type(task).__name__
                raise ConfigError(
                    f"task_loss must return a tensor [B] (per sample, B = {b}) or a scalar, got {got}."
                )
            terms["task"] = task.float()
            per_sample = task.float() if task.ndim == 1 else task.float().expand(b) / b
            total = total + p.alpha_task * per_sample
        terms["total"] = total
        return terms

    # -- one step and the loop ---------------------------------------------------------------------
    def step_loss(
        self, w: torch.Tensor, positions: torch.Tensor | None, c: torch.Tensor | None
    ) -> torch.Tensor:
        """One step's loss, summed over the batch: render, then the active terms (what ``compile_mode``
        compiles). Call it inside :meth:`discriminator_group`, with checked positions."""
        images = self.render(w)
        return self.terms(w, images, positions, c, in_walk=True)["total"].sum()

    def step_function(
        self,
    ) -> Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], torch.Tensor]:
        """:meth:`step_loss`, or with ``compile_mode`` its ``torch.compile`` form (built once per walk,
        i.e. per device). Before each call of a compiled step, ``torch.compiler.cudagraph_mark_step_begin``
        marks a new iteration for CUDA-graph trees (:meth:`optimize` does).

        Example:
            >>> from latent_transforms import GanBundle, GanConfig, LatentAugmentConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> walk = LatentWalk(GanBundle.random(cfg), None, LatentAugmentConfig(alpha_pix=0, alpha_perc=0,
            ...                                                                     alpha_lat=0))
            >>> w = torch.zeros(2, 16, requires_grad=True)
            >>> with walk.discriminator_group():
            ...     walk.step_function()(w, None, None).backward()
            >>> w.grad.shape
            torch.Size([2, 16])
        """
        if self.compile_mode is None:
            return self.step_loss
        if self._step is None:
            if self.perceptual_active:
                self.perceptual_network()  # built outside the traced region, and so is the pool
                _ = self.patch_pool() if self.params.patch_protocol == "authors" else None
            mode = None if self.compile_mode == "default" else self.compile_mode
            self._step = torch.compile(self.step_loss, mode=mode)
        return self._step

    def discriminator_group(self) -> contextlib.AbstractContextManager[None]:
        """The minibatch-std group of one sample around the walk (:func:`single_sample_mbstd`), when the
        fidelity term runs; else nothing."""
        D = self.bundle.discriminator if self.params.alpha_f > 0 else None
        return single_sample_mbstd(D) if D is not None else contextlib.nullcontext()

    def check_positions(self, positions: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
        """Check the patch positions ``[B, K]`` once, on the host, and send them to ``device`` (no
        synchronisation inside the loop afterwards)."""
        if positions is None:
            return None
        stats = self._stats()
        if positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= stats.num_positions):
            raise ConfigError(
                f"expected patch position indices in [0, {stats.num_positions}), got values from "
                f"{int(positions.min())} to {int(positions.max())}. Fix: draw them with draw_params."
            )
        return positions.to(device, non_blocking=True)

    def optimize(
        self,
        w_star: torch.Tensor,
        positions: torch.Tensor | None = None,
        c: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``K`` Adam steps from ``w*`` on the batch's summed loss; returns ``w̃`` (detached). Without an
        active term (or with ``steps = 0``) it is ``w*`` itself.

        Args:
            w_star: ``[B, w_dim]`` or ``[B, num_ws, w_dim]`` on the walk's device.
            positions: ``[B, K]`` long patch positions, one per step (needed when ``alpha_perc > 0``).
            c: ``[B, c_dim]`` labels for a conditional discriminator.
        """
        if not self.active:
            return w_star.detach()
        positions = self.check_positions(positions, w_star.device)
        if self.perceptual_active and self.params.patch_protocol == "authors":
            self.patch_pool()  # built (with its one host read) before the loop
        step = self.step_function()
        p = self.params
        with torch.inference_mode(False), torch.enable_grad(), self.discriminator_group():
            w = w_star.detach().clone().float().requires_grad_(True)
            optimizer = torch.optim.Adam([w], lr=p.lr, betas=(0.9, 0.999))
            for k in range(p.steps):
                if self.compile_mode is not None:  # a new iteration for CUDA-graph trees
                    torch.compiler.cudagraph_mark_step_begin()
                loss = step(w, positions[:, k] if positions is not None else None, c)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return w.detach()

    def run(
        self,
        w_star: torch.Tensor,
        positions: torch.Tensor | None = None,
        c: torch.Tensor | None = None,
        *,
        differentiable: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The walk and its result: :meth:`optimize`, then ``G(w̃)`` (unclamped, constant noise).

        With ``differentiable=True`` the images keep their graph to ``w̃`` (a leaf that requires grad).
        One host read at the end, after every step is queued: a walk that diverged to NaN/Inf raises.

        Returns:
            ``(images [B, C, R, R] float32 (contiguous), w̃)``.
        """
        check_latents(self.bundle, w_star, w_star.shape[0])
        w_final = self.optimize(w_star, positions, c)
        if differentiable:
            with torch.inference_mode(False), torch.enable_grad():
                w_final = w_final.detach().clone().requires_grad_(True)
                out = self.render(w_final)
        else:
            with torch.no_grad():
                out = self.render(w_final)
        out = out.contiguous()  # the generator may render channels_last; callers get a plain layout
        if not bool(torch.isfinite(w_final.detach()).all() & torch.isfinite(out.detach()).all()):
            raise ConfigError(
                "LatentAugment's walk produced NaN/Inf latents or images. Fix: lower lr or the alpha "
                "weights, or check that the GAN's generator and discriminator give finite outputs."
            )
        return out, w_final
