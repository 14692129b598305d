"""StandardDA: the paper's standard augmentation (Tronchin et al. 2023, "Standard DA") as one transform.

The composition, in the paper's order: horizontal flip (xflip), rotation uniform in ``[-rotate°, rotate°]``
(rotate), translation uniform in ``±translate`` of the image size in x and y (frac), and an elastic
deformation from a random displacement field smoothed by a Gaussian with kernel 63 and σ 32 at 256 px
(deform). Every component can be switched off. The paper's best Standard DA used all four with
``p_aug = 0.9`` (the probability of keeping the real image), i.e. ``p = 1 - p_aug = 0.1`` here.

Why this module builds its own sampling grid instead of chaining ``v2.RandomHorizontalFlip``,
``v2.RandomAffine`` and ``v2.ElasticTransform`` (or MONAI's ``Rand2DElastic``): flip, rotation, translation
and the elastic field compose into ONE sampling grid and ONE interpolation per batch, with per-sample
parameters. torchvision v2 draws one parameter set per call (every sample of a batch would get the same
rotation) and MONAI's ``Rand2DElastic`` works one sample at a time, so neither gives a batched per-sample
GPU path; and one bilinear interpolation blurs less than four chained ones. The pieces are still the
torch / torchvision primitives: ``torchvision.transforms.v2.functional.gaussian_blur`` smooths the
displacement field, ``torch.nn.functional.interpolate`` brings it to the image size and
``torch.nn.functional.grid_sample`` resamples the image (bilinear) and masks (nearest) on that grid.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as nnf
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as tvf

from latent_transforms.errors import ConfigError
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.points import field_sampler, move_boxes, move_keypoints

__all__ = ["StandardDA"]

#: The image side (pixels) at which the elastic kernel, σ and ``elastic_alpha`` are given.
REFERENCE_SIDE = 256
#: The elastic noise grid is chosen so that σ spans about this many grid cells.
_CELLS_PER_SIGMA = 4.0
_MIN_FIELD_CELLS = 8
_COMPONENTS = ("flip", "angle", "shift", "noise")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_flip(flip: Any) -> bool:
    if flip is None:
        return False
    if isinstance(flip, bool):
        return flip
    if isinstance(flip, numbers.Integral) and int(flip) in (0, 1):
        return bool(flip)
    raise ConfigError(f"flip must be True or False (None or 0 switch it off), got {flip!r}.")


def _check_rotate(rotate: Any) -> float:
    if rotate is None or rotate is False:
        return 0.0
    if not _is_real(rotate) or not math.isfinite(float(rotate)) or not 0.0 <= float(rotate) <= 180.0:
        raise ConfigError(
            f"rotate must be the largest rotation in degrees, a number in [0, 180] (0, None or False switch "
            f"it off), got {rotate!r}. Fix: e.g. rotate=3.0 for the paper's [-3°, 3°]."
        )
    return float(rotate)


def _check_translate(translate: Any) -> float:
    if translate is None or translate is False:
        return 0.0
    if not _is_real(translate) or not math.isfinite(float(translate)) or not 0.0 <= float(translate) < 0.5:
        raise ConfigError(
            f"translate must be the largest shift as a fraction of the image size, a number in [0, 0.5) "
            f"(0, None or False switch it off), got {translate!r}. Fix: e.g. translate=0.05 for the "
            "paper's ±5%."
        )
    return float(translate)


def _check_elastic(elastic: Any) -> tuple[int, float] | None:
    if elastic is None or elastic is False or (_is_real(elastic) and float(elastic) == 0.0):
        return None
    if isinstance(elastic, (str, bytes)) or not hasattr(elastic, "__len__") or len(elastic) != 2:
        raise ConfigError(
            f"elastic must be (kernel_size, sigma) in pixels at {REFERENCE_SIDE} px, or None / False / 0 to "
            f"switch it off, got {elastic!r}. Fix: e.g. elastic=(63, 32.0), the paper's setting."
        )
    kernel, sigma = elastic
    if (
        not _is_real(kernel)
        or float(kernel) != int(kernel)
        or int(kernel) < 3
        or int(kernel) % 2 == 0
        or int(kernel) > 2 * REFERENCE_SIDE - 1
    ):
        raise ConfigError(
            f"elastic kernel size must be an odd integer in [3, {2 * REFERENCE_SIDE - 1}] (pixels at "
            f"{REFERENCE_SIDE} px), got {kernel!r}. Fix: e.g. elastic=(63, 32.0)."
        )
    if not _is_real(sigma) or not math.isfinite(float(sigma)) or float(sigma) <= 0.0:
        raise ConfigError(
            f"elastic sigma must be a positive number (pixels at {REFERENCE_SIDE} px), got {sigma!r}. "
            "Fix: e.g. elastic=(63, 32.0)."
        )
    return int(kernel), float(sigma)


def _check_alpha(alpha: Any) -> float:
    if not _is_real(alpha) or not math.isfinite(float(alpha)) or float(alpha) < 0.0:
        raise ConfigError(
            f"elastic_alpha must be a finite number >= 0 (the standard deviation of the elastic "
            f"displacement in pixels at {REFERENCE_SIDE} px), got {alpha!r}. Fix: e.g. elastic_alpha=2.0."
        )
    return float(alpha)


def _check_fill(fill: Any) -> str | float:
    if fill == "min" and isinstance(fill, str):
        return "min"
    if not _is_real(fill) or not math.isfinite(float(fill)):
        raise ConfigError(
            f"fill must be 'min' (each sample's per-channel minimum: air in CT, 0 in MRI) or a finite "
            f"number, got {fill!r}."
        )
    return float(fill)


def _field_geometry(kernel: int, sigma: float) -> tuple[int, int, int, float, float]:
    """The elastic noise grid for ``(kernel, sigma)`` given in pixels at 256 px.

    Returns ``(cells, radius, kernel_cells, sigma_cells, std)``: the side of the square grid that covers
    the image, the kernel radius, kernel size and σ scaled to it (the radius ``(kernel - 1) / 2`` and σ
    times ``cells / 256``; kernel odd, >= 3), and the standard deviation of unit white noise after that
    blur (the ``sum`` of the squared 1-D kernel weights, torchvision's kernel formula), which normalises
    the field. The noise itself is drawn on ``cells + 2 * radius`` cells a side and only the ``cells``
    inside are kept after the blur: a valid convolution, so the field has the same statistics at the
    borders as in the middle (a padded blur would repeat noise there and move the borders more).
    """
    width = min(sigma, (kernel + 1) / 2)
    cells = math.ceil(_CELLS_PER_SIGMA * REFERENCE_SIDE / width)
    cells = int(min(REFERENCE_SIDE, max(_MIN_FIELD_CELLS, cells)))
    scale = cells / REFERENCE_SIDE
    radius = max(1, math.floor((kernel - 1) / 2 * scale + 0.5))
    sigma_cells = sigma * scale
    pdf = [math.exp(-0.5 * ((i - radius) / sigma_cells) ** 2) for i in range(2 * radius + 1)]
    total = math.fsum(pdf)
    std = math.fsum((v / total) ** 2 for v in pdf)
    return cells, radius, 2 * radius + 1, sigma_cells, std


class StandardDA(RandomTransform):
    """The paper's standard augmentation: flip, rotation, translation and elastic deformation in one
    resampling, with per-sample parameters.

    Input: a ``[C, H, W]`` image (one sample: the per-sample CPU path for DataLoader workers) or a
    ``[B, C, H, W]`` batch (each sample gets its own Bernoulli(``p``) draw and, when chosen, its own
    geometry; on the GPU the whole batch is one sampling grid and one ``grid_sample``). Paired modalities
    are channels of one image and always share the geometry; ``torchvision.tv_tensors.Mask`` inputs passed
    in the same call (``t(image, mask)``, ``t({"image": ..., "mask": ...})``) follow the same geometry,
    resampled nearest-neighbour so their integer labels survive (a mask has the image's layout:
    ``[H, W]`` or ``[1, H, W]`` with a ``[C, H, W]`` image, ``[B, 1, H, W]`` with a batch). Any float or
    integer dtype; shape, dtype, device and memory layout are preserved, values stay in the caller's units
    (HU, scanner units, 0-255): the transform moves pixels and never rescales intensities, so it needs no
    intensity windows. The arithmetic is float32 (as for every :class:`RandomTransform`), integer outputs
    are rounded; with ``fill="min"`` every output channel stays within its input channel's ``[min, max]``.

    When a sample is chosen, every enabled component is applied, each with its own random draw:

    - ``flip``: a horizontal flip with probability 1/2 (a fair coin per sample).
    - ``rotate``: a rotation about the image centre by an angle uniform in ``[-rotate, rotate]`` degrees
      (positive: counter-clockwise, as ``torchvision.transforms.v2.functional.rotate``).
    - ``translate``: a shift uniform in ``[-translate, translate]`` of the image width (x) and height (y),
      independently, in sub-pixel steps.
    - ``elastic``: a displacement ``d(q)`` (the output pixel ``q`` reads the input at ``q + d(q)``) from
      white Gaussian noise per axis, smoothed by a Gaussian of ``(kernel_size, sigma)`` and scaled so that
      each component of ``d`` has standard deviation ``elastic_alpha`` pixels, the same at the borders as
      in the middle (the noise extends one kernel radius beyond the image and the blur keeps only the
      valid part).

    ``tv_tensors.KeyPoints`` and ``tv_tensors.BoundingBoxes`` passed with a single image ``[C, H, W]``
    follow its geometry, elastic displacement included (:mod:`latent_transforms.transforms.points`: each
    point goes where the resampling moved the pixel under it; an axis-aligned box becomes the enclosing box
    of its moved corners, clamped to the canvas; a rotated box keeps its moved corners). With a batch they
    are refused (torchvision's boxes and key points carry no sample index), as are annotations whose
    ``canvas_size`` is not the image's; a sample not drawn returns them as they are.

    They compose in that order (flip first, deformation last): the output pixel ``q`` (relative to the
    image centre) reads the input at ``F(R(-θ)(q + d(q) - t))``, one bilinear interpolation in all. Pixels
    that read from outside the image get ``fill``.

    Scaling with the resolution: ``elastic`` and ``elastic_alpha`` are given in pixels at 256 px and scale
    with the image side (at side ``H`` the kernel radius, σ and the displacement are multiplied by
    ``H / 256``), so the deformation looks the same at every resolution: the same seed gives the same
    deformation, in fractions of the image, at 64 px and at 512 px. To keep the work small the noise is
    drawn on a coarse square grid (for the paper's σ = 32: 32 × 32 cells over the image, i.e. 8 px at
    256 px, kernel 9 and σ 4 in cells, the same Gaussian; plus a 4-cell margin for the blur), blurred
    there and upsampled bilinearly to the image; the field has no detail finer than about σ, so nothing
    is lost. For a non-square image the field (like the translation) is stretched with the image: x
    scales with the width, y with the height.

    Args:
        flip: random horizontal flips (``False`` / ``None`` / ``0``: off).
        rotate: the largest rotation in degrees, in ``[0, 180]`` (``0`` / ``None`` / ``False``: off).
            Default 3.0, the paper's ``[-3°, 3°]``.
        translate: the largest shift as a fraction of the image size, in ``[0, 0.5)`` (off as above).
            Default 0.05, the paper's ``±5%``.
        elastic: ``(kernel_size, sigma)`` of the Gaussian that smooths the displacement field, in pixels at
            256 px; kernel odd in ``[3, 511]``, ``sigma > 0`` (``None`` / ``False`` / ``0``: off). Default
            ``(63, 32.0)``, the paper's receptive field 63 and σ 32.
        elastic_alpha: the standard deviation of each displacement component, in pixels at 256 px (scaled
            with the image side), ``>= 0``. The paper gives no magnitude; with the default 2.0 a 256 px
            image moves by 2.5 px on average and by about 6-8 px at its most-moved point, smoothly over
            regions of about 60 px: anatomy stays plausible and paired images stay registered.
        fill: value for pixels read from outside the image: ``"min"`` (default), each sample's own
            per-channel minimum (the background: air in CT, 0 in MRI; zeros would be mid-grey for CT in
            HU), or a number in the input's units. Masks always get 0 (background).
        p: the probability that a sample is augmented, in ``[0, 1]``. Default 0.1: the paper's best
            Standard DA kept the real image with ``p_aug = 0.9``, and ``p = 1 - p_aug``.
        seed: seed of the transform's ``torch.Generator`` (``None``: drawn from torch's global RNG). All
            random draws come from it on the CPU, so a seed gives bit-identical output on the CPU and the
            same parameters on any device.
        device: where the work runs (``None``: the input's device); the output comes back to the input's.

    Raises:
        ConfigError: an invalid parameter (negative ``rotate``, ``translate >= 0.5``, an even kernel, ``p``
            outside ``[0, 1]``, ...), or an invalid input (not a tensor, wrong rank, empty, NaN/Inf).

    Example:
        >>> t = StandardDA(p=1.0, seed=0)
        >>> x = torch.rand(4, 2, 32, 32)  # a batch of paired (MRI, CT) slices
        >>> y = t(x)
        >>> y.shape, y.dtype
        (torch.Size([4, 2, 32, 32]), torch.float32)
        >>> bool((y >= x.amin((2, 3), keepdim=True)).all())  # the background fill never undershoots
        True
        >>> same = torch.rand(1, 32, 32).repeat(2, 1, 1)  # two equal channels get the same geometry
        >>> out = t(same)
        >>> torch.equal(out[0], out[1])
        True
        >>> StandardDA(seed=0)  # doctest: +NORMALIZE_WHITESPACE
        StandardDA(p=0.1, flip=True, rotate=3.0, translate=0.05, elastic=(63, 32.0), elastic_alpha=2.0,
                   fill='min', seed=0, device=None)
    """

    needs_generator_range = False
    supports_masks = True

    def __init__(
        self,
        *,
        flip: bool | None = True,
        rotate: float | None = 3.0,
        translate: float | None = 0.05,
        elastic: tuple[int, float] | None = (63, 32.0),
        elastic_alpha: float = 2.0,
        fill: str | float = "min",
        p: float = 0.1,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.flip = _check_flip(flip)
        self.rotate = _check_rotate(rotate)
        self.translate = _check_translate(translate)
        self.elastic = _check_elastic(elastic)
        self.elastic_alpha = _check_alpha(elastic_alpha)
        self.fill = _check_fill(fill)
        super().__init__(p=p, seed=seed, device=device)
        if self.elastic is not None:
            self._field = _field_geometry(*self.elastic)
        else:
            self._field = None

    # -- parameters --------------------------------------------------------------------------------
    def draw_params(self, batch: int, generator: torch.Generator) -> dict[str, Any]:
        """Draw the per-sample geometry of a batch of ``batch`` samples from ``generator`` (CPU).

        Returns only the enabled components, in this order of drawing:

        - ``"flip"``: bool ``[batch]``, flip this sample (probability 1/2);
        - ``"angle"``: float32 ``[batch]``, degrees in ``[-rotate, rotate]``;
        - ``"shift"``: float32 ``[batch, 2]``, (x, y) fractions of (width, height) in
          ``[-translate, translate]``;
        - ``"noise"``: float32 ``[batch, 2, M, M]``, standard normal noise of the elastic field (x, y) on its
          grid (``M`` depends only on ``elastic``, never on the image size: 40 for the paper's
          ``(63, 32.0)``, 32 cells over the image and a 4-cell margin for the blur).

        Example:
            >>> t = StandardDA(rotate=0, seed=0)
            >>> params = t.draw_params(3, torch.Generator().manual_seed(0))
            >>> sorted(params), tuple(params["noise"].shape)
            (['flip', 'noise', 'shift'], (3, 2, 40, 40))
        """
        params: dict[str, Any] = {}
        if self.flip:
            params["flip"] = torch.rand(batch, generator=generator, dtype=torch.float32) < 0.5
        if self.rotate > 0.0:
            u = torch.rand(batch, generator=generator, dtype=torch.float32)
            params["angle"] = (u * 2 - 1) * self.rotate
        if self.translate > 0.0:
            u = torch.rand(batch, 2, generator=generator, dtype=torch.float32)
            params["shift"] = (u * 2 - 1) * self.translate
        if self._field is not None and self.elastic_alpha > 0.0:
            side = self._field[0] + 2 * self._field[1]
            params["noise"] = torch.randn(batch, 2, side, side, generator=generator, dtype=torch.float32)
        return params

    def repr_params(self) -> dict[str, Any]:
        """Every constructor parameter, for ``repr``.

        Example:
            >>> StandardDA(flip=False, elastic=None, seed=1).repr_params()["elastic"] is None
            True
        """
        return {
            "p": self.p,
            "flip": self.flip,
            "rotate": self.rotate,
            "translate": self.translate,
            "elastic": self.elastic,
            "elastic_alpha": self.elastic_alpha,
            "fill": self.fill,
            "seed": self.seed,
            "device": str(self.device) if self.device is not None else None,
        }

    # -- geometry ----------------------------------------------------------------------------------
    def _affine(self, params: Mapping[str, Any], batch: int, height: int, width: int) -> torch.Tensor:
        """``[batch, 6]`` float32 on the CPU: the linear part ``(a, b, c, d)`` and the offset ``(e, f)`` of
        the map from output to input in ``grid_sample``'s normalised coordinates (x, y)."""
        return self._affine64(params, batch, height, width).to(torch.float32)

    def index_affine(self, params: Mapping[str, Any], batch: int, height: int, width: int) -> torch.Tensor:
        """The flip, rotation and translation of ``params`` as ``[batch, 3, 3]`` float64 homogeneous maps
        from an output pixel index ``(row, col, 1)`` to the input position it reads (the elastic
        displacement, which is not affine, is left out). Samples that ``params["apply"]`` leaves alone
        (when given) get the identity. This is what a MONAI ``MetaTensor``'s affine composes with
        (``new_affine = affine @ M``, as MONAI's ``RandAffine`` does).

        Example:
            >>> t = StandardDA(flip=True, rotate=0, translate=0, elastic=None)
            >>> t.index_affine({"flip": torch.tensor([True])}, 1, 4, 4)[0].tolist()  # col -> 3 - col
            [[1.0, 0.0, 0.0], [0.0, -1.0, 3.0], [0.0, 0.0, 1.0]]
        """
        a = self._affine64(params, batch, height, width)
        normalised = torch.zeros(batch, 3, 3, dtype=torch.float64)
        normalised[:, 0, :2], normalised[:, 1, :2] = a[:, 0:2], a[:, 2:4]
        normalised[:, 0, 2], normalised[:, 1, 2], normalised[:, 2, 2] = a[:, 4], a[:, 5], 1.0
        # (col, row) index -> grid_sample's normalised (x, y), align_corners=False: x = (2 col + 1) / W - 1.
        to_norm = torch.tensor(
            [[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, 2.0 / height, 1.0 / height - 1.0], [0.0, 0.0, 1.0]],
            dtype=torch.float64,
        )
        xy = torch.linalg.inv(to_norm) @ normalised @ to_norm
        swap = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        out = swap @ xy @ swap  # (col, row) -> (row, col), MONAI's spatial order for [C, H, W]
        if "apply" in params:
            keep = ~params["apply"].to(torch.bool).cpu()
            out[keep] = torch.eye(3, dtype=torch.float64)
        return out

    def _affine64(self, params: Mapping[str, Any], batch: int, height: int, width: int) -> torch.Tensor:
        lin = torch.eye(2, dtype=torch.float64).repeat(batch, 1, 1)
        if "angle" in params:
            rad = params["angle"].to(torch.float64) * (math.pi / 180.0)
            cos, sin = torch.cos(rad), torch.sin(rad)
            # Inverse of a counter-clockwise rotation (y points down), in pixel units about the centre,
            # conjugated by the pixel -> normalised scaling diag(W/2, H/2).
            lin[:, 0, 0] = cos
            lin[:, 0, 1] = -sin * (height / width)
            lin[:, 1, 0] = sin * (width / height)
            lin[:, 1, 1] = cos
        if "flip" in params:
            sign = torch.where(params["flip"], -1.0, 1.0).to(torch.float64)
            lin[:, 0, :] = lin[:, 0, :] * sign[:, None]
        offset = torch.zeros(batch, 2, dtype=torch.float64)
        if "shift" in params:
            # A shift of t (fraction of the size) is 2 t in normalised units; the input is read at A (q - t).
            offset = -(lin @ (2.0 * params["shift"].to(torch.float64))[:, :, None])[:, :, 0]
        return torch.cat([lin.reshape(batch, 4), offset], dim=1)

    def _displacement(self, noise: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The elastic displacement ``[n, 2, H, W]`` (x, y) in normalised units from ``noise`` (on its
        device)."""
        assert self._field is not None
        cells, radius, kernel, sigma, std = self._field
        # The field in normalised units: elastic_alpha px at 256 px is elastic_alpha / 128 of the half-side.
        scaled = noise * (self.elastic_alpha / (REFERENCE_SIDE / 2) / std)
        field = tvf.gaussian_blur(scaled, [kernel, kernel], [sigma, sigma])
        field = field[:, :, radius : radius + cells, radius : radius + cells]  # the valid part
        if tuple(field.shape[-2:]) != (height, width):
            field = nnf.interpolate(field, size=(height, width), mode="bilinear", align_corners=False)
        return field

    def sampling_grid(
        self,
        params: Mapping[str, Any],
        batch: int,
        height: int,
        width: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """The sampling grid of ``params`` (from :meth:`draw_params` or ``last_params``, sliced to
        ``batch`` samples) for ``height × width`` images: ``[batch, H, W, 2]``, the (x, y) position in the
        input that each output pixel reads, in ``grid_sample``'s normalised coordinates
        (``align_corners=False``: ``-1`` and ``1`` are the outer edges of the image).

        Only the small parameters travel to ``device`` (two non-blocking copies); nothing is drawn and the
        host never waits for the device.

        Example:
            >>> t = StandardDA(flip=True, rotate=0, translate=0, elastic=None, seed=0)
            >>> grid = t.sampling_grid({"flip": torch.tensor([True])}, 1, 2, 4)
            >>> grid[0, 0, :, 0].tolist()  # x is mirrored: output column j reads input column W-1-j
            [0.75, 0.25, -0.25, -0.75]
        """
        device = torch.device(device) if device is not None else torch.device("cpu")
        affine = self._affine(params, batch, height, width).to(device=device, dtype=dtype, non_blocking=True)
        a = affine[:, :, None, None]  # [batch, 6, 1, 1]
        # Pixel centres, exact for power-of-two sizes (so a flip alone is an exact mirror).
        xs = ((torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1)[None, None, :]
        ys = ((torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1)[None, :, None]
        if "noise" in params and self._field is not None:
            noise = params["noise"].to(device=device, dtype=dtype, non_blocking=True)
            d = self._displacement(noise, height, width)
            cx, cy = xs + d[:, 0], ys + d[:, 1]
        else:
            cx, cy = xs, ys
        gx = torch.addcmul(torch.addcmul(a[:, 4], a[:, 0], cx), a[:, 1], cy)  # [batch, H, W]
        gy = torch.addcmul(torch.addcmul(a[:, 5], a[:, 2], cx), a[:, 3], cy)
        return torch.stack([gx, gy], dim=-1)

    # -- bounding boxes and key points -------------------------------------------------------------
    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """:meth:`RandomTransform.make_params` plus the image size (``"size"``), which boxes and key points
        must match."""
        params = super().make_params(flat_inputs)
        params["size"] = tuple(self._first_image(flat_inputs).shape[-2:])
        return params

    def transform_points(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Move ``tv_tensors.KeyPoints`` / ``BoundingBoxes`` with the image (see the class docstring)."""
        name = type(inpt).__name__
        if params["batch"] != 1:
            raise ConfigError(
                f"StandardDA moves {name} with one image [C, H, W] per call: torchvision's boxes and key "
                f"points carry no sample index, so in a batch of {params['batch']} they cannot be matched to "
                "their image. Fix: transform each image with its annotations (e.g. in the Dataset's "
                "__getitem__)."
            )
        height, width = (int(v) for v in inpt.canvas_size)
        size = params.get("size")
        if size is not None and tuple(size) != (height, width):
            raise ConfigError(
                f"{name} have canvas_size {(height, width)} but the image is {tuple(size)}. Fix: give the "
                "annotations the image's canvas_size."
            )
        if not bool(params["apply"][0]):
            return inpt
        one = self.slice_params(params, torch.zeros(1, dtype=torch.long))
        matrix = self.index_affine(one, 1, height, width)[0]
        displacement = None
        if "noise" in one and self._field is not None:
            field = self._displacement(one["noise"].to(torch.float64), height, width)[0]
            displacement = field_sampler(field)
        if isinstance(inpt, tv_tensors.KeyPoints):
            return move_keypoints(inpt, matrix, displacement)
        return move_boxes(inpt, matrix, displacement)

    def resample_index_affine(
        self, x: torch.Tensor, matrices: torch.Tensor, kind: str = "image"
    ) -> torch.Tensor:
        """Resample ``x`` ``[n, C, H, W]`` (float) so that output pixel ``(row, col)`` reads ``x`` at
        ``matrices[i] @ (row, col, 1)`` (``[n, 3, 3]``, index space, as :meth:`index_affine` gives).
        ``kind="image"``: bilinear, outside pixels get ``fill``; ``"mask"``: nearest, outside 0. With
        ``torch.linalg.inv(index_affine(...))`` it undoes the flip, rotation and translation.

        Example:
            >>> t = StandardDA(p=1.0, flip=True, rotate=0, translate=0, elastic=None, seed=0)
            >>> x = torch.arange(16.0).view(1, 1, 4, 4)
            >>> m = t.index_affine({"flip": torch.tensor([True])}, 1, 4, 4)
            >>> torch.equal(t.resample_index_affine(x, m), x.flip(-1))
            True
        """
        height, width = x.shape[-2:]
        m = matrices.to(device=x.device, dtype=torch.float64)
        rows = torch.arange(height, device=x.device, dtype=torch.float64)
        cols = torch.arange(width, device=x.device, dtype=torch.float64)
        r, c = torch.meshgrid(rows, cols, indexing="ij")
        src_r = m[:, 0, 0, None, None] * r + m[:, 0, 1, None, None] * c + m[:, 0, 2, None, None]
        src_c = m[:, 1, 0, None, None] * r + m[:, 1, 1, None, None] * c + m[:, 1, 2, None, None]
        grid = torch.stack([(2 * src_c + 1) / width - 1, (2 * src_r + 1) / height - 1], dim=-1).to(x.dtype)
        if kind == "mask":
            return nnf.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        base: torch.Tensor | float = x.amin(dim=(2, 3), keepdim=True) if self.fill == "min" else self.fill
        return (
            nnf.grid_sample(x - base, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + base
        )

    def apply_batch(self, x: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        """Resample the chosen samples ``x`` ``[n, C, H, W]`` (float, any device) with their ``params``;
        ``kind="image"``: bilinear, outside pixels get ``fill``; ``kind="mask"``: nearest, outside 0.

        Draws nothing and does not synchronise with the host: the parameters are copied to ``x``'s device
        without blocking, the rest is one grid and one ``grid_sample``.

        Example:
            >>> t = StandardDA(p=1.0, seed=0)
            >>> x = torch.arange(16.0).view(1, 1, 4, 4)
            >>> t.apply_batch(x, {"flip": torch.tensor([True])}, "image")[0, 0, 0].tolist()
            [3.0, 2.0, 1.0, 0.0]
        """
        if not any(name in params for name in _COMPONENTS):
            return x
        if x.ndim == 3:  # a channel-less [H, W] mask of a single image arrives as [1, H, W]
            return self.apply_batch(x[:, None], params, kind)[:, 0]
        n, _, height, width = x.shape
        grid = self.sampling_grid(params, n, height, width, device=x.device, dtype=x.dtype)
        if kind == "mask":
            return nnf.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        base: torch.Tensor | float = x.amin(dim=(2, 3), keepdim=True) if self.fill == "min" else self.fill
        moved = nnf.grid_sample(x - base, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return moved + base
