"""The image pool of Shrivastava et al. 2017, as Zhu et al. use it to update CycleGAN's discriminators.

A discriminator is shown a mix of the generator's newest images and older ones, so it does not forget
what earlier generators made and the adversarial game oscillates less. The pool holds up to ``size``
(50) generated images. For each new image: while the pool is not full, the image is stored and shown;
once it is full, with probability ½ a stored image picked uniformly is shown instead and the new image
takes its place, otherwise the new image is shown and the pool is left as it is.
"""

from __future__ import annotations

from typing import Any

import torch

from latent_transforms.checks import check_int

__all__ = ["POOL_SIZE", "ImagePool"]

#: Zhu et al.'s pool size.
POOL_SIZE = 50


class ImagePool:
    """A pool of up to ``size`` generated images with the 50 % swap rule, seeded.

    Args:
        size: images kept (0: no pool, every query returns its input).
        seed: seed of the pool's CPU ``torch.Generator`` (the swap decisions and the picks).

    :meth:`state_dict` / :meth:`load_state_dict` hold the stored images and the generator state, so a
    resumed training continues with the same pool and the same draws.

    Example:
        >>> pool = ImagePool(size=2, seed=0)
        >>> shown = pool.query(torch.arange(3.0).view(3, 1, 1, 1))  # the first two fill the pool
        >>> shown.flatten()[:2].tolist(), len(pool)
        ([0.0, 1.0], 2)
        >>> pool
        ImagePool(size=2, stored=2)
    """

    def __init__(self, size: int = POOL_SIZE, *, seed: int = 0) -> None:
        self.size = check_int("size", size, low=0)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The images to show the discriminator for a batch ``images`` ``[B, ...]`` (detached; same shape).

        Example:
            >>> pool = ImagePool(size=0)
            >>> x = torch.ones(2, 1, 4, 4)
            >>> torch.equal(pool.query(x), x)
            True
        """
        images = images.detach()
        if self.size == 0:
            return images
        shown = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                shown.append(image)
                continue
            if float(torch.rand((), generator=self.generator)) < 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                shown.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                shown.append(image)
        return torch.stack(shown)

    def state_dict(self) -> dict[str, Any]:
        """The stored images (on the CPU) and the generator state."""
        stored = torch.stack([x.cpu() for x in self.images]) if self.images else torch.empty(0)
        return {"size": self.size, "images": stored, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str | None = None) -> None:
        """Restore what :meth:`state_dict` gave (images moved to ``device``)."""
        self.size = int(state["size"])
        self.generator.set_state(state["generator"])
        stored = state["images"]
        self.images = [x.to(device) if device is not None else x for x in stored] if stored.numel() else []

    def __repr__(self) -> str:
        return f"ImagePool(size={self.size}, stored={len(self.images)})"
