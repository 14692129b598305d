"""The model card (``README.md``) of a diffusion bundle: its Hub metadata and its Jinja template.

:class:`~latent_transforms.generative.bundle.DiffusionBundle` renders it through ``huggingface_hub``'s
``ModelHubMixin`` (``generate_model_card``, ``ModelCard.from_template``) with :data:`MODEL_CARD_TEMPLATE`
and the values :func:`card_variables` computes, as GAN bundles do (same licence, links and metadata keys,
and the sections and values every card shares: :mod:`latent_transforms.networks.model_card`).
"""

from __future__ import annotations

from typing import Any

from latent_transforms.generative.config import DiffusionConfig
from latent_transforms.networks.model_card import (
    ARCHITECTURE_SECTION,
    CARD_HEADER,
    CHANNELS_SECTION,
    TRAINING_SECTION,
    card_basics,
    window_rows,
)

__all__ = ["CARD_TAGS", "MODEL_CARD_TEMPLATE", "PAPER_URL", "card_variables"]

#: The card's tags (the mixin adds ``model_hub_mixin``).
CARD_TAGS = ("diffusion", "ddpm", "monai", "medical-imaging", "data-augmentation", "latent-transforms")
#: Ho et al. 2020, "Denoising Diffusion Probabilistic Models".
PAPER_URL = "https://arxiv.org/abs/2006.11239"

MODEL_CARD_TEMPLATE = (
    CARD_HEADER
    + """
A {{ "class-conditional " if classes else "" }}denoising diffusion model (DDPM, Ho et al. 2020) on MONAI's
`DiffusionModelUNet`, packaged as a [latent-transforms](https://pypi.org/project/latent-transforms/)
diffusion bundle: `config.json` and `unet.safetensors` (the EMA weights). Safetensors only: no pickle is
ever loaded. Sample it with MONAI's DDIM (few steps) or DDPM (every step) schedulers.

"""
    + ARCHITECTURE_SECTION
    + CHANNELS_SECTION
    + TRAINING_SECTION
    + """
## Use

```python
from latent_transforms import load_diffusion

bundle = load_diffusion("{{ source }}")
# [8, {{ channels }}, {{ resolution }}, {{ resolution }}] in [-1, 1]
images = bundle.sample(8, {{ "labels=0, " if classes else "" }}seed=0, steps=50)
physical = bundle.denormalize(images)  # per-channel physical units
```

## Citation

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020 ({{ paper_url }}); Song, Meng &
Ermon, "Denoising Diffusion Implicit Models", ICLR 2021; the networks and schedulers are MONAI's
(Pinaya et al., "Generative AI for Medical Imaging: extending the MONAI Framework", 2023).
"""
)


def card_variables(
    config: DiffusionConfig, *, parameters: int, fingerprint: str, repo_id: str | None = None
) -> dict[str, Any]:
    """The values :data:`MODEL_CARD_TEMPLATE` fills in: title, tables, training summary, usage snippet.

    Args:
        config: the bundle's config.
        parameters: parameter count of the UNet.
        fingerprint: the UNet's SHA-256 fingerprint.
        repo_id: the Hub repo the card is for (its title and usage snippet; default a folder path).

    Example:
        >>> values = card_variables(DiffusionConfig(c_dim=2), parameters=10, fingerprint="ab" * 32,
        ...                         repo_id="me/ddpm")
        >>> values["name"], values["classes"], values["windows"][1]
        ('me/ddpm', 2, (1, 'ct', '[-1000, 2000] HU'))
    """
    architecture = [
        ("resolution", f"{config.resolution} x {config.resolution}"),
        ("channels", ", ".join(config.modality_names)),
        ("classes (c_dim)", config.c_dim or "unconditional"),
        ("UNet channels per level", ", ".join(map(str, config.channels))),
        ("attention levels", ", ".join("yes" if a else "no" for a in config.attention_levels)),
        ("residual blocks per level", config.num_res_blocks),
        ("timesteps / schedule", f"{config.timesteps} / {config.schedule}"),
        ("prediction", config.prediction_type),
        ("UNet parameters", f"{parameters:,}"),
        ("UNet fingerprint (sha256)", f"`{fingerprint[:16]}…`"),
    ]
    return {
        **card_basics(config.training, repo_id=repo_id, default_name="Diffusion bundle"),
        "classes": config.c_dim,
        "architecture": architecture,
        "windows": window_rows(config.modalities),
        "channels": config.img_channels,
        "resolution": config.resolution,
    }
