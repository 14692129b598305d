"""Adaptive discriminator augmentation (ADA) for paired multi-channel images.

Written from the description in Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data" (StyleGAN2-ADA): every image the discriminator sees, real or generated, goes through the
same random augmentation, each transform applied to each sample with probability ``p``. The augmentation
is differentiable, so the generator is trained through it, and it leaks nothing into the generated images
as long as ``p`` stays below about 0.8. :class:`AdaController` tunes ``p`` during training from the
overfitting heuristic ``r_t = E[sign(D(real))]``.

Choices for paired images (the modalities are channels of one tensor, values in ``[-1, 1]``):

- every channel of a sample gets the same transform, so the modalities stay registered;
- geometric transforms: x-flip and integer translation (the ``"blit"`` preset; ADA's blit group also has
  90° rotations, which are left out) and isotropic scaling, arbitrary rotation, anisotropic scaling and
  fractional translation (``"geom"``, the LatentAugment authors' set on small datasets);
- colour transforms (``"color"``: brightness, contrast, luma flip) change intensities, which carry
  meaning in CT (Hounsfield units), so they are opt-in: use them for images whose grey levels are
  relative (radiographs, 8-bit photographs). ``"bgc"`` is ADA's default, blit + geom + color;
- the geometric transforms of a sample are composed into one affine matrix and resampled by a single
  bilinear ``grid_sample`` with reflection padding. ADA also upsamples with a wavelet filter around the
  resampling to reduce aliasing; that step is not done here.

Two sets of magnitudes are offered (:data:`MAGNITUDES`): ``"latentaugment"`` (the LatentAugment
authors' StyleGAN2-ADA settings: rotation ±3°, scale/aniso/fractional-shift std 0.05; the default) and
``"ada"`` (the ADA paper's: any angle, 0.2, 0.2, 0.125).

Coordinates: pixel centres, origin at the image centre, x to the right (width), y down (height).
Positive rotation angles turn the content counter-clockwise as displayed (row 0 at the top).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from latent_transforms.checks import check_image_batch, check_int, check_number, check_probability
from latent_transforms.errors import ConfigError

TRANSFORM_NAMES: tuple[str, ...] = ("xflip", "int", "scale", "rotate", "aniso", "frac")
"""The geometric transforms :class:`AugmentPipe` knows, in the order it applies them."""

COLOR_NAMES: tuple[str, ...] = ("brightness", "contrast", "lumaflip")
"""The colour transforms, applied after the geometric ones, in this order."""

PRESETS: dict[str, tuple[str, ...]] = {
    "blit": ("xflip", "int"),
    "geom": ("scale", "rotate", "aniso", "frac"),
    "all": TRANSFORM_NAMES,
    "color": COLOR_NAMES,
    "bgc": TRANSFORM_NAMES + COLOR_NAMES,
}
"""Named transform sets accepted by :class:`AugmentPipe` (``"geom"`` is the default; ``"all"`` is every
geometric transform, ``"bgc"`` ADA's blit + geom + color)."""

MAGNITUDES: dict[str, dict[str, float]] = {
    "latentaugment": {"rotate_max_deg": 3.0, "scale_std": 0.05, "aniso_std": 0.05, "frac_std": 0.05},
    "ada": {"rotate_max_deg": 180.0, "scale_std": 0.2, "aniso_std": 0.2, "frac_std": 0.125},
}
"""Magnitudes of the geometric transforms: the LatentAugment authors' (Tronchin et al. 2023; default)
and the ADA paper's (Karras et al. 2020)."""

_ALL_NAMES = TRANSFORM_NAMES + COLOR_NAMES

_GEOMETRIC = ("scale", "rotate", "aniso", "frac")


def _parse_transforms(transforms: str | Sequence[str]) -> tuple[str, ...]:
    items = transforms.split(",") if isinstance(transforms, str) else [str(t) for t in transforms]
    chosen: set[str] = set()
    unknown: list[str] = []
    for item in (t.strip() for t in items):
        key = item.lower()
        if not key:
            continue
        if key in PRESETS:
            chosen.update(PRESETS[key])
        elif key in _ALL_NAMES:
            chosen.add(key)
        else:
            unknown.append(item)
    if unknown or not chosen:
        what = f"unknown name(s) {unknown}" if unknown else "no transform name"
        presets = ", ".join(f"{name!r} = {','.join(names)}" for name, names in PRESETS.items())
        raise ConfigError(
            f"AugmentPipe got {what} in transforms={transforms!r}; expected a comma-separated list of "
            f"{', '.join(_ALL_NAMES)} or a preset ({presets}). "
            "Fix: e.g. transforms='xflip,int' or transforms='geom'."
        )
    return tuple(name for name in _ALL_NAMES if name in chosen)


def _magnitude(name: str, value: float, upper: float) -> float:
    return check_number(
        f"AugmentPipe {name}",
        float(value),
        low=0.0,
        high=upper,
        fix="pass a non-negative magnitude (see the AugmentPipe docstring for typical values).",
    )


@contextlib.contextmanager
def _autocast_disabled(*device_types: str) -> Iterator[None]:
    """Run the block in the caller's dtypes: matrices and sampling coordinates must stay float32."""
    with contextlib.ExitStack() as stack:
        for device_type in dict.fromkeys(device_types):
            with contextlib.suppress(RuntimeError):  # a device type without autocast: nothing to disable
                stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
        yield


def _on_samples(
    x: torch.Tensor, mask: torch.Tensor, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``fn(x[idx], idx)`` for the samples where ``mask`` holds, the others untouched (bit-identical)."""
    idx = mask.nonzero().squeeze(1)
    if idx.numel() == 0:
        return x
    if idx.numel() == x.shape[0]:
        return fn(x, idx)
    idx_x = idx.to(x.device)
    return x.index_copy(0, idx_x, fn(x.index_select(0, idx_x), idx))


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Fold integer pixel indices into ``[0, size)`` by mirroring about the image edges (edge pixel repeated).

    This is the reflection ``grid_sample(padding_mode="reflection", align_corners=False)`` uses, so an
    integer translation here equals the same translation done by ``grid_sample``.
    """
    folded = index.remainder(2 * size)
    return torch.where(folded < size, folded, 2 * size - 1 - folded)


def _translate_int(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Move the content of ``x`` [B, C, H, W] by ``shift`` [B, 2] whole pixels (dx, dy), edges reflected."""
    batch, channels, height, width = x.shape
    shift = shift.to(x.device)
    cols = _reflect(torch.arange(width, device=x.device) - shift[:, :1], width)  # [B, W]
    rows = _reflect(torch.arange(height, device=x.device) - shift[:, 1:], height)  # [B, H]
    x = x.gather(3, cols[:, None, None, :].expand(batch, channels, height, width))
    return x.gather(2, rows[:, None, :, None].expand(batch, channels, height, width))


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample ``x`` [B, C, H, W] at ``theta`` [B, 2, 3] (output -> input, normalised coordinates)."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    grid = F.affine_grid(theta.to(device=x.device, dtype=dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x.to(dtype), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.to(x.dtype)


def _color(x: torch.Tensor, params: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and luma flip of the samples ``idx`` (ADA's order), the same for every channel."""
    if "brightness" in params:
        x = x + params["brightness"][idx].to(x.device, x.dtype)[:, None, None, None]
    if "contrast" in params:
        x = x * params["contrast"][idx].to(x.device, x.dtype)[:, None, None, None]
    if "lumaflip" in params:
        flip = params["lumaflip"][idx].to(x.device)[:, None, None, None]
        x = torch.where(flip, x - 2.0 * x.mean(dim=1, keepdim=True), x)
    return x


def _inverse_rotation(degrees: torch.Tensor) -> torch.Tensor:
    """[B, 2, 2] matrices undoing a counter-clockwise (as displayed) rotation by ``degrees`` [B]."""
    rad = torch.deg2rad(degrees)
    cos, sin = torch.cos(rad), torch.sin(rad)
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)


def _theta(
    params: dict[str, torch.Tensor], batch: int, height: int, width: int, device: torch.device
) -> torch.Tensor:
    """Compose the geometric parameters into ``affine_grid`` matrices [B, 2, 3].

    Forward (input -> output pixel): ``p_out = R_post · A · R_pre · S · p_in + t``. ``affine_grid`` wants
    the inverse, ``p_in = S⁻¹ R_pre⁻¹ A⁻¹ R_post⁻¹ (p_out - t)``, in coordinates normalised by half the
    image size.
    """
    inverse = torch.eye(2, device=device).repeat(batch, 1, 1)
    if "scale" in params:
        inverse = inverse / params["scale"][:, None, None]
    if "rotate" in params:
        inverse = inverse @ _inverse_rotation(params["rotate"][:, 0])
    if "aniso" in params:
        k = params["aniso"]
        inverse = inverse @ torch.diag_embed(torch.stack([1.0 / k, k], -1))
    if "rotate" in params:
        inverse = inverse @ _inverse_rotation(params["rotate"][:, 1])
    shift = params["frac"] if "frac" in params else torch.zeros(batch, 2, device=device)
    offset = -(inverse @ shift[:, :, None]).squeeze(2)
    half = torch.tensor([width / 2.0, height / 2.0], device=device)
    linear = inverse * half[None, None, :] / half[None, :, None]
    return torch.cat([linear, (offset / half)[:, :, None]], dim=2)


class AugmentPipe(nn.Module):
    """ADA's augmentation for paired images: every channel of a sample gets the same random transform.

    Each chosen transform is applied to each sample independently with probability ``p`` (a Bernoulli
    draw per sample and transform, as in ADA), in this order:

    | name | drawn for a sample when chosen | default here | ADA paper |
    |---|---|---|---|
    | xflip | left-right flip | - | - |
    | int | shift ``round(U(-int_max, int_max) · size)`` pixels per axis, edges reflected | 0.125 | 0.125 |
    | scale | isotropic scale factor ``2^N(0, scale_std)`` | 0.05 | 0.2 |
    | rotate | angle ``U(-rotate_max_deg, rotate_max_deg)`` | 3° | 180° (any) |
    | aniso | x scaled by ``2^N(0, aniso_std)``, y by its inverse | 0.05 | 0.2 |
    | frac | shift ``N(0, frac_std) · size`` per axis | 0.05 | 0.125 |
    | brightness | add ``N(0, brightness_std)`` to every channel | 0.2 | 0.2 |
    | contrast | multiply every channel by ``2^N(0, contrast_std)`` | 0.5 | 0.5 |
    | lumaflip | ``x − 2·mean_c(x)`` per pixel (one channel: ``−x``) | - | - |

    The defaults are the LatentAugment authors' StyleGAN2-ADA settings; the last column gives ADA's
    original magnitudes (``rotate_max_deg=180, scale_std=0.2, aniso_std=0.2, frac_std=0.125``). As in ADA,
    ``rotate`` is two rotations, before and after ``aniso`` (so anisotropic scaling acts along any
    direction), each applied with probability ``1 - sqrt(1 - p)`` so that a sample is rotated with
    probability ``p``; ``rotate_max_deg`` bounds each of the two. ``xflip`` and ``int`` move whole pixels
    (exact copies); the geometric transforms (``scale, rotate, aniso, frac``) are composed into one affine
    matrix per sample and resampled by one bilinear ``grid_sample`` (reflection padding,
    ``align_corners=False``). Geometric output values are convex combinations of input values, so images
    in ``[-1, 1]`` stay in ``[-1, 1]``; the colour transforms (applied after them, brightness, contrast,
    luma flip, as ADA composes its colour matrix) may leave that range, as in ADA.

    Samples that no transform was chosen for come back bit-identical (only the chosen samples are
    resampled); ``p == 0`` returns the input tensor itself without drawing any random numbers. Everything
    is differentiable with respect to the images, including the double backward R1 needs.

    Randomness comes only from ``generator``: the parameters are drawn on the generator's device (a CPU
    generator with a CUDA batch works: the draws are moved to the batch's device), and a call draws the
    same amount of random numbers whatever ``p`` is, so one seed gives one output. ``generator=None``
    draws from torch's default CPU generator (not reproducible unless that is seeded). Sampling runs in
    float32 (float64 for float64 images) with autocast disabled and the result is cast back to the input
    dtype, so bf16 batches under autocast keep their dtype and get precise coordinates. ``p`` is a buffer:
    it is saved in ``state_dict()`` and moves with ``.to(device)``; keep the pipe in float32 (``p`` changes
    by about 1e-4 per ADA update).

    Args:
        transforms: comma-separated names (or a sequence of names) from :data:`TRANSFORM_NAMES` and
            :data:`COLOR_NAMES`, or a preset: ``"blit"`` = ``xflip,int``, ``"geom"`` =
            ``scale,rotate,aniso,frac`` (default, the paper's best set), ``"all"`` = the six geometric
            ones, ``"color"`` = ``brightness,contrast,lumaflip``, ``"bgc"`` = all nine (ADA's default).
            Order does not matter; duplicates are ignored.
        p: probability in ``[0, 1]`` that each transform is applied to a sample; later ``pipe.p = value``
            or :meth:`set_p` (usually driven by :class:`AdaController`).
        rotate_max_deg: largest rotation angle in degrees, ``[0, 180]``.
        scale_std: standard deviation of the log2 isotropic scale factor.
        aniso_std: standard deviation of the log2 anisotropic scale factor.
        frac_std: standard deviation of the fractional translation, as a fraction of the image size.
        int_max: largest integer translation, as a fraction of the image size.
        brightness_std: standard deviation of the added brightness (images in ``[-1, 1]``).
        contrast_std: standard deviation of the log2 contrast factor.

    Shapes:
        ``images`` [B, C, H, W] floating point (any channel count, non-square allowed) -> same shape, dtype
        and device. With ``return_params=True`` also a dict of per-sample parameters, on the generator's
        device: ``"xflip"`` bool [B], ``"int"`` int64 [B, 2] shift (dx, dy) in pixels, ``"scale"`` [B],
        ``"rotate"`` [B, 2] degrees (before, after aniso), ``"aniso"`` [B], ``"frac"`` [B, 2] shift (dx, dy)
        in pixels (each only for chosen transforms; identity values where not applied), ``"theta"``
        [B, 2, 3] the ``affine_grid`` matrix of the geometric part, ``"brightness"`` [B] (added),
        ``"contrast"`` [B] (factor), ``"lumaflip"`` bool [B], ``"warped"`` bool [B] (resampled),
        ``"colored"`` bool [B] (a colour transform chosen) and
        ``"transformed"`` bool [B] (some transform was chosen; its drawn value may still be the identity,
        e.g. an integer shift of 0).

    Example:
        >>> pipe = AugmentPipe("geom", p=1.0)
        >>> images = torch.rand(4, 2, 32, 32) * 2 - 1          # MRI and CT channels in [-1, 1]
        >>> out = pipe(images, torch.Generator().manual_seed(0))
        >>> out.shape, out.dtype
        (torch.Size([4, 2, 32, 32]), torch.float32)
        >>> torch.equal(out, pipe(images, torch.Generator().manual_seed(0)))
        True
        >>> out, params = pipe(images, torch.Generator().manual_seed(0), return_params=True)
        >>> params["rotate"].shape, params["transformed"].tolist()
        (torch.Size([4, 2]), [True, True, True, True])
        >>> pipe.p = 0.0
        >>> pipe(images) is images
        True
        >>> pipe
        AugmentPipe(transforms='scale,rotate,aniso,frac', p=0, rotate_max_deg=3, scale_std=0.05, ...)
    """

    p: torch.Tensor

    def __init__(
        self,
        transforms: str | Sequence[str] = "scale,rotate,aniso,frac",
        p: float = 0.0,
        *,
        rotate_max_deg: float = 3.0,
        scale_std: float = 0.05,
        aniso_std: float = 0.05,
        frac_std: float = 0.05,
        int_max: float = 0.125,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
    ) -> None:
        super().__init__()
        self.transforms: tuple[str, ...] = _parse_transforms(transforms)
        self.rotate_max_deg = _magnitude("rotate_max_deg", rotate_max_deg, 180.0)
        self.scale_std = _magnitude("scale_std", scale_std, 10.0)
        self.aniso_std = _magnitude("aniso_std", aniso_std, 10.0)
        self.frac_std = _magnitude("frac_std", frac_std, 10.0)
        self.int_max = _magnitude("int_max", int_max, 10.0)
        self.brightness_std = _magnitude("brightness_std", brightness_std, 10.0)
        self.contrast_std = _magnitude("contrast_std", contrast_std, 10.0)
        self.register_buffer("p", torch.zeros((), dtype=torch.float32))
        self.set_p(p)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "p" and "p" in self.__dict__.get("_buffers", {}):
            self.set_p(value)  # keep the buffer (device, state_dict entry); only its value changes
            return
        super().__setattr__(name, value)

    def set_p(self, p: float | torch.Tensor) -> None:
        """Set the augmentation probability to ``p`` in ``[0, 1]`` (in place; the buffer keeps its device).

        Example:
            >>> pipe = AugmentPipe("xflip")
            >>> pipe.set_p(0.25)
            >>> float(pipe.p), pipe.state_dict()["p"]
            (0.25, tensor(0.2500))
        """
        value = check_probability(
            "AugmentPipe p",
            float(p),
            fix="pass a value such as 0.0 (no augmentation) to 1.0 (every transform on every sample).",
        )
        buffer = self._buffers["p"]
        assert buffer is not None
        with torch.no_grad():
            buffer.fill_(value)

    def forward(
        self,
        images: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        return_params: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Augment ``images`` [B, C, H, W]; see the class docstring for shapes and the parameter dict."""
        check_image_batch(images, what="AugmentPipe's images", finite=False, allow_empty=True)
        p = float(self.p)
        batch, _, height, width = images.shape
        device = generator.device if generator is not None else torch.device("cpu")
        with _autocast_disabled(images.device.type, device.type):
            if p <= 0.0 or batch == 0:
                out, params = images, self._identity_params(batch, device)
            else:
                params = self._draw(batch, height, width, p, generator, device)
                out = self._transform(images, params)
        return (out, params) if return_params else out

    def _identity_params(self, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
        params: dict[str, torch.Tensor] = {}
        for name in self.transforms:
            if name == "xflip":
                params[name] = torch.zeros(batch, dtype=torch.bool, device=device)
            elif name == "int":
                params[name] = torch.zeros(batch, 2, dtype=torch.long, device=device)
            elif name in ("scale", "aniso", "contrast"):
                params[name] = torch.ones(batch, device=device)
            elif name == "brightness":
                params[name] = torch.zeros(batch, device=device)
            elif name == "lumaflip":
                params[name] = torch.zeros(batch, dtype=torch.bool, device=device)
            else:  # rotate, frac
                params[name] = torch.zeros(batch, 2, device=device)
        params["theta"] = torch.eye(2, 3, device=device).repeat(batch, 1, 1)
        params["warped"] = torch.zeros(batch, dtype=torch.bool, device=device)
        params["colored"] = torch.zeros(batch, dtype=torch.bool, device=device)
        params["transformed"] = torch.zeros(batch, dtype=torch.bool, device=device)
        return params

    @property
    def _has_geometry(self) -> bool:
        return any(name in _GEOMETRIC for name in self.transforms)

    def _draw(
        self,
        batch: int,
        height: int,
        width: int,
        p: float,
        generator: torch.Generator | None,
        device: torch.device,
    ) -> dict[str, torch.Tensor]:
        """All random parameters of one call; the amount drawn depends on the batch and transforms only."""

        def uniform(*shape: int) -> torch.Tensor:
            return torch.rand(shape, generator=generator, device=device)

        def normal(*shape: int) -> torch.Tensor:
            return torch.randn(shape, generator=generator, device=device)

        size = torch.tensor([float(width), float(height)], device=device)
        params: dict[str, torch.Tensor] = {}
        blit = torch.zeros(batch, dtype=torch.bool, device=device)
        warped = torch.zeros(batch, dtype=torch.bool, device=device)
        if "xflip" in self.transforms:
            params["xflip"] = uniform(batch) < p
            blit |= params["xflip"]
        if "int" in self.transforms:
            chosen = uniform(batch) < p
            shift = torch.round((uniform(batch, 2) * 2 - 1) * self.int_max * size).long()
            params["int"] = torch.where(chosen[:, None], shift, 0)
            blit |= chosen
        if "scale" in self.transforms:
            chosen = uniform(batch) < p
            params["scale"] = torch.where(chosen, torch.exp2(normal(batch) * self.scale_std), 1.0)
            warped |= chosen
        if "rotate" in self.transforms:
            chosen = uniform(batch, 2) < 1.0 - math.sqrt(1.0 - p)
            angle = (uniform(batch, 2) * 2 - 1) * self.rotate_max_deg
            params["rotate"] = torch.where(chosen, angle, 0.0)
            warped |= chosen.any(1)
        if "aniso" in self.transforms:
            chosen = uniform(batch) < p
            params["aniso"] = torch.where(chosen, torch.exp2(normal(batch) * self.aniso_std), 1.0)
            warped |= chosen
        if "frac" in self.transforms:
            chosen = uniform(batch) < p
            params["frac"] = torch.where(chosen[:, None], normal(batch, 2) * self.frac_std * size, 0.0)
            warped |= chosen
        params["theta"] = _theta(params, batch, height, width, device)
        colored = torch.zeros(batch, dtype=torch.bool, device=device)
        if "brightness" in self.transforms:
            chosen = uniform(batch) < p
            params["brightness"] = torch.where(chosen, normal(batch) * self.brightness_std, 0.0)
            colored |= chosen
        if "contrast" in self.transforms:
            chosen = uniform(batch) < p
            params["contrast"] = torch.where(chosen, torch.exp2(normal(batch) * self.contrast_std), 1.0)
            colored |= chosen
        if "lumaflip" in self.transforms:
            params["lumaflip"] = uniform(batch) < p
            colored |= params["lumaflip"]
        params["warped"] = warped
        params["colored"] = colored
        params["transformed"] = blit | warped | colored
        return params

    def _transform(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        x = images
        if "xflip" in params:
            x = _on_samples(x, params["xflip"], lambda sub, idx: sub.flip(3))
        if "int" in params:
            shifts = params["int"]
            x = _on_samples(x, shifts.ne(0).any(1), lambda sub, idx: _translate_int(sub, shifts[idx]))
        if self._has_geometry:
            theta = params["theta"]
            x = _on_samples(x, params["warped"], lambda sub, idx: _warp(sub, theta[idx]))
        if bool(params["colored"].any()):
            x = _on_samples(x, params["colored"], lambda sub, idx: _color(sub, params, idx))
        return x

    def extra_repr(self) -> str:
        return (
            f"transforms={','.join(self.transforms)!r}, p={float(self.p):.4g}, "
            f"rotate_max_deg={self.rotate_max_deg:g}, scale_std={self.scale_std:g}, "
            f"aniso_std={self.aniso_std:g}, frac_std={self.frac_std:g}, int_max={self.int_max:g}"
            + (
                f", brightness_std={self.brightness_std:g}, contrast_std={self.contrast_std:g}"
                if any(name in COLOR_NAMES for name in self.transforms)
                else ""
            )
        )


class AdaController:
    """ADA's adaptive ``p``: raise it while the discriminator overfits, lower it otherwise.

    Feed it the discriminator's logits on (augmented) real images every step with :meth:`accumulate`;
    every ``interval`` steps, :meth:`update` computes the overfitting heuristic ``r_t = E[sign(D(real))]``
    in ``[-1, 1]`` over the images seen since the last update and moves ``pipe.p`` by
    ``sign(r_t - target) · batch_size · interval / (speed_kimg · 1000)``, clamped to ``[0, 1]``: with the
    defaults ``p`` can go from 0 to 1 in 500k images. :meth:`step` does the counting for you.

    Distributed training: :meth:`accumulators` returns the live local ``(sum of signs, count)`` tensors (on
    the logits' device); all-reduce (sum) them in place on every rank before :meth:`update`, or pass
    ``reduce=torch.distributed.all_reduce`` to :meth:`step`. ``batch_size`` is the global batch size.

    Args:
        pipe: the :class:`AugmentPipe` whose ``p`` is tuned.
        target: the value of ``r_t`` to hold, in ``[0, 1]`` (ADA: 0.6).
        interval: training steps between updates (ADA: 4).
        speed_kimg: thousands of images for ``p`` to rise from 0 to 1 at most (ADA: 500).
        batch_size: images per training step (all ranks together).

    Example:
        >>> pipe = AugmentPipe("geom")
        >>> ada = AdaController(pipe, target=0.6, interval=2, speed_kimg=1, batch_size=100)
        >>> for _ in range(2):
        ...     ada.accumulate(torch.tensor([2.0, 1.5, -0.3, 4.0]))  # D(real) mostly positive
        ...     updated = ada.step()
        >>> updated, ada.r_t, float(pipe.p)  # r_t = 0.5 < 0.6 -> p would drop, but is clamped at 0
        (True, 0.5, 0.0)
        >>> ada.accumulate(torch.ones(8)); ada.update()
        1.0
        >>> round(float(pipe.p), 4)  # raised by 100 · 2 / 1000
        0.2
        >>> ada
        AdaController(target=0.6, interval=2, speed_kimg=1, batch_size=100, p=0.2, r_t=1.0)
    """

    def __init__(
        self,
        pipe: AugmentPipe,
        target: float = 0.6,
        interval: int = 4,
        speed_kimg: float = 500.0,
        *,
        batch_size: int,
    ) -> None:
        if not isinstance(pipe, AugmentPipe):
            raise ConfigError(
                f"AdaController tunes an AugmentPipe; got {type(pipe).__name__}. "
                "Fix: AdaController(AugmentPipe('geom'), batch_size=...)."
            )
        target = check_probability("AdaController target", float(target), fix="ADA uses 0.6.")
        interval = check_int("AdaController interval", interval, low=1, fix="ADA uses 4.")
        speed_kimg = check_number(
            "AdaController speed_kimg", float(speed_kimg), low=0.0, low_open=True, fix="ADA uses 500."
        )
        batch_size = check_int(
            "AdaController batch_size", batch_size, low=1, fix="pass the global batch size."
        )
        self.pipe = pipe
        self.target = target
        self.interval = interval
        self.speed_kimg = speed_kimg
        self.batch_size = batch_size
        self.r_t: float | None = None
        """The heuristic of the last update (``None`` before the first), for logging."""
        self.num_updates = 0
        self._since_update = 0
        device = pipe.p.device
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self._sign_sum = torch.zeros((), dtype=dtype, device=device)
        self._count = torch.zeros((), dtype=dtype, device=device)

    @property
    def adjustment(self) -> float:
        """How much one update moves ``p``: ``batch_size · interval / (speed_kimg · 1000)``."""
        return self.batch_size * self.interval / (self.speed_kimg * 1000.0)

    def accumulators(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The live ``(sum of sign(logits), number of logits)`` scalars since the last update.

        All-reduce them (sum, in place) across ranks before :meth:`update` in distributed training.

        Example:
            >>> ada = AdaController(AugmentPipe(), batch_size=4)
            >>> ada.accumulate(torch.tensor([[1.0], [-2.0], [3.0]]))
            >>> sign_sum, count = ada.accumulators()
            >>> float(sign_sum), float(count)
            (1.0, 3.0)
        """
        return self._sign_sum, self._count

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add the signs of the discriminator's logits on real images (any shape; no host sync)."""
        logits = real_logits.detach()
        if self._sign_sum.device != logits.device:
            dtype = torch.float32 if logits.device.type == "mps" else torch.float64
            self._sign_sum = self._sign_sum.to(logits.device, dtype)
            self._count = self._count.to(logits.device, dtype)
        self._sign_sum += logits.float().sign().sum().to(self._sign_sum.dtype)
        self._count += logits.numel()

    def step(self, reduce: Callable[[torch.Tensor], Any] | None = None) -> bool:
        """Count one training step; every ``interval``-th call runs :meth:`update` and returns ``True``.

        ``reduce`` (e.g. ``torch.distributed.all_reduce``) is called on each accumulator before updating.
        """
        self._since_update += 1
        if self._since_update < self.interval:
            return False
        if reduce is not None:
            for tensor in self.accumulators():
                reduce(tensor)
        self.update()
        return True

    def update(self) -> float | None:
        """Move ``pipe.p`` from the accumulated signs and reset them; returns ``r_t`` (``None`` if empty)."""
        sign_sum, count = torch.stack([self._sign_sum, self._count]).tolist()
        self._sign_sum.zero_()
        self._count.zero_()
        self._since_update = 0
        if count <= 0:
            return None
        self.r_t = sign_sum / count
        direction = (self.r_t > self.target) - (self.r_t < self.target)
        self.pipe.set_p(min(max(float(self.pipe.p) + direction * self.adjustment, 0.0), 1.0))
        self.num_updates += 1
        return self.r_t

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly, pending accumulators included (loads with ``weights_only``).

        Example:
            >>> ada = AdaController(AugmentPipe(p=0.3), batch_size=8)
            >>> ada.accumulate(torch.ones(8))
            >>> twin = AdaController(AugmentPipe(), batch_size=8)
            >>> twin.load_state_dict(ada.state_dict())
            >>> float(twin.pipe.p) == float(ada.pipe.p), [float(t) for t in twin.accumulators()]
            (True, [8.0, 8.0])
        """
        return {
            "p": float(self.pipe.p),
            "sign_sum": self._sign_sum.detach().cpu().clone(),
            "count": self._count.detach().cpu().clone(),
            "since_update": self._since_update,
            "num_updates": self.num_updates,
            "r_t": self.r_t,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (sets ``pipe.p`` too; accumulators keep their current device)."""
        missing = {"p", "sign_sum", "count", "since_update", "num_updates", "r_t"} - set(state)
        if missing:
            raise ConfigError(
                f"AdaController.load_state_dict expected the keys of AdaController.state_dict(); "
                f"missing {sorted(missing)}. Fix: pass the dict saved from AdaController.state_dict()."
            )
        self.pipe.set_p(state["p"])
        self._sign_sum = (
            torch.as_tensor(state["sign_sum"]).to(self._sign_sum.device, self._sign_sum.dtype).clone()
        )
        self._count = torch.as_tensor(state["count"]).to(self._count.device, self._count.dtype).clone()
        self._since_update = int(state["since_update"])
        self.num_updates = int(state["num_updates"])
        self.r_t = None if state["r_t"] is None else float(state["r_t"])

    def __repr__(self) -> str:
        r_t = None if self.r_t is None else round(self.r_t, 4)
        return (
            f"{type(self).__name__}(target={self.target:g}, interval={self.interval}, "
            f"speed_kimg={self.speed_kimg:g}, batch_size={self.batch_size}, p={float(self.pipe.p):.4g}, "
            f"r_t={r_t})"
        )
