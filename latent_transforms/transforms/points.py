"""torchvision ``KeyPoints`` and ``BoundingBoxes`` moved with an image's resampling geometry.

A geometric transform resamples an image: the output pixel ``q`` reads the input at ``G(q)``. A point of
the input at ``p`` therefore lands where ``G(q) = p``. :func:`move_keypoints` solves that for every
point: exactly for an affine ``G`` (flip, rotation, translation: ``q = M⁻¹ p``), and with Newton's method
when a smooth displacement is added (``G(q) = M (q + D(q))``: ``q + D(q) = M⁻¹ p``, which converges in a
few steps wherever the deformation does not fold the image). :func:`move_boxes` moves the corners of
each box: an axis-aligned box becomes the enclosing axis-aligned box of its moved corners, clamped to the
canvas as the box's ``clamping_mode`` says (torchvision's rule for rotations); a rotated box (``XYWHR``,
``CXCYWHR``, ``XYXYXYXY``) keeps its four moved corners (for an affine map still a rectangle; with an
elastic displacement the nearest the format can say).

Coordinates: key points in pixel-index space (the centre of pixel ``(row, col)`` is ``x = col``,
``y = row``, torchvision's convention for key points), box edges in edge space (pixel ``col`` spans
``[col, col + 1)``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as nnf
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as tvf

__all__ = ["field_sampler", "move_boxes", "move_keypoints"]

#: ``displacement(points [N, 2] (row, col)) -> [N, 2]``: the displacement ``D`` at those output positions.
Displacement = Callable[[torch.Tensor], torch.Tensor]
_ITERATIONS = 20
_TOLERANCE = 1e-6  # pixels
_STEP = 1e-3  # pixels, for the Jacobian's central differences
_AXIS_ALIGNED = (
    tv_tensors.BoundingBoxFormat.XYXY,
    tv_tensors.BoundingBoxFormat.XYWH,
    tv_tensors.BoundingBoxFormat.CXCYWH,
)


def field_sampler(field: torch.Tensor) -> Displacement:
    """A :data:`Displacement` from a dense field ``[2, H, W]`` (x, y) in ``grid_sample``'s normalised
    units at the pixel centres, sampled bilinearly (the border value beyond the edges), in pixels.

    Example:
        >>> field = torch.zeros(2, 4, 4); field[0] = 0.5  # half the half-width: 1 px to the right
        >>> field_sampler(field)(torch.tensor([[1.0, 2.0]], dtype=torch.float64)).tolist()
        [[0.0, 1.0]]
    """
    height, width = field.shape[-2:]

    def displacement(points: torch.Tensor) -> torch.Tensor:
        rows, cols = points[:, 0], points[:, 1]
        grid = torch.stack([(2 * cols + 1) / width - 1, (2 * rows + 1) / height - 1], dim=-1)
        sampled = nnf.grid_sample(
            field[None].to(points.dtype),
            grid[None, None],
            mode="bilinear",
            padding_mode="border",
            align_corners=False,
        )[0, :, 0]  # [2, N]: (x, y) normalised
        return torch.stack([sampled[1] * (height / 2), sampled[0] * (width / 2)], dim=-1)

    return displacement


def _solve(points_rc: torch.Tensor, matrix: torch.Tensor, displacement: Displacement | None) -> torch.Tensor:
    """Output positions ``q`` (``[N, 2]`` (row, col), float64) with ``M (q + D(q)) = p``: ``q = M⁻¹ p`` for an
    affine map; with a displacement, Newton's method on ``q + D(q) = M⁻¹ p`` (the Jacobian by central
    differences), keeping each point's best iterate."""
    inverse = torch.linalg.inv(matrix.to(torch.float64))
    homogeneous = torch.cat([points_rc, torch.ones(points_rc.shape[0], 1, dtype=torch.float64)], dim=1)
    target = (homogeneous @ inverse.T)[:, :2]
    if displacement is None or points_rc.numel() == 0:
        return target
    q = target.clone()
    best, best_error = q.clone(), torch.full((q.shape[0],), float("inf"), dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    for _ in range(_ITERATIONS):
        residual = q + displacement(q) - target
        error = residual.abs().amax(dim=1)
        better = error < best_error
        best[better], best_error[better] = q[better], error[better]
        if float(best_error.max()) < _TOLERANCE:
            break
        columns = [
            (displacement(q + _STEP * eye[j]) - displacement(q - _STEP * eye[j])) / (2 * _STEP)
            for j in range(2)
        ]
        jacobian = eye + torch.stack(columns, dim=-1)  # [N, 2, 2]: d(q + D(q)) / dq
        q = q - torch.linalg.solve(jacobian, residual)
    return best


def move_keypoints(
    keypoints: tv_tensors.KeyPoints, matrix: torch.Tensor, displacement: Displacement | None = None
) -> tv_tensors.KeyPoints:
    """Where ``keypoints`` land when the image is resampled by ``G(q) = M (q + D(q))``.

    Args:
        keypoints: ``[..., 2]`` (x, y) in pixel-index space.
        matrix: ``M`` ``[3, 3]``, output pixel index ``(row, col, 1)`` -> the input position it reads.
        displacement: ``D`` (``None``: none, the map is affine).

    Returns:
        The moved key points, same shape, dtype and canvas (points may leave the canvas: they left the
        field of view).

    Example:
        >>> flip = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 7.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        >>> kp = tv_tensors.KeyPoints(torch.tensor([[1.0, 2.0]]), canvas_size=(8, 8))
        >>> move_keypoints(kp, flip).tolist()  # x -> 7 - x, as torchvision's horizontal_flip
        [[6.0, 2.0]]
    """
    plain = keypoints.as_subclass(torch.Tensor)
    xy = plain.reshape(-1, 2).to(torch.float64)
    moved = _solve(xy.flip(-1), matrix, displacement).flip(-1)
    return tv_tensors.wrap(moved.to(plain.dtype).reshape(plain.shape), like=keypoints)


def move_boxes(
    boxes: tv_tensors.BoundingBoxes, matrix: torch.Tensor, displacement: Displacement | None = None
) -> tv_tensors.BoundingBoxes:
    """Where ``boxes`` land when the image is resampled by ``G(q) = M (q + D(q))`` (see the module
    docstring for the rule of each format).

    Example:
        >>> flip = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 7.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        >>> boxes = tv_tensors.BoundingBoxes([[1.0, 2.0, 4.0, 6.0]], format="XYXY", canvas_size=(8, 8))
        >>> move_boxes(boxes, flip).tolist()  # as torchvision's horizontal_flip
        [[4.0, 2.0, 7.0, 6.0]]
    """
    fmt = boxes.format
    plain = boxes.as_subclass(torch.Tensor)
    if fmt in _AXIS_ALIGNED:
        x1, y1, x2, y2 = tvf.convert_bounding_box_format(
            plain.to(torch.float64), old_format=fmt, new_format=tv_tensors.BoundingBoxFormat.XYXY
        ).unbind(-1)
        corners = torch.stack([x1, y1, x2, y1, x2, y2, x1, y2], dim=-1)
    else:
        corners = tvf.convert_bounding_box_format(
            plain.to(torch.float64), old_format=fmt, new_format=tv_tensors.BoundingBoxFormat.XYXYXYXY
        )
    n = corners.shape[:-1]
    xy = corners.reshape(-1, 2) - 0.5  # edge space -> pixel-index space
    moved = (_solve(xy.flip(-1), matrix, displacement).flip(-1) + 0.5).reshape(*n, 4, 2)
    if fmt in _AXIS_ALIGNED:
        enclosing = torch.cat([moved.amin(dim=-2), moved.amax(dim=-2)], dim=-1)
        out = tvf.convert_bounding_box_format(
            enclosing, old_format=tv_tensors.BoundingBoxFormat.XYXY, new_format=fmt
        )
    else:
        out = tvf.convert_bounding_box_format(
            moved.reshape(*n, 8), old_format=tv_tensors.BoundingBoxFormat.XYXYXYXY, new_format=fmt
        )
    out = out.to(plain.dtype) if plain.is_floating_point() else out.round().to(plain.dtype)
    return tvf.clamp_bounding_boxes(tv_tensors.wrap(out, like=boxes))
