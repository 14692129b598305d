"""The model card (``README.md``) of a GAN bundle, and the parts every bundle's card shares.

:class:`~latent_transforms.networks.bundle.GanBundle` renders it through ``huggingface_hub``'s
``ModelHubMixin`` (``generate_model_card``, ``ModelCard.from_template``) with :data:`MODEL_CARD_TEMPLATE`
and the values :func:`card_variables` computes from the bundle's config and networks. This module knows
nothing of the bundle class, so the two import one way.

The diffusion and translator cards (``generative/model_card.py``, ``translation/card.py``) are built from
the same parts: the licence, links and metadata keys, the template's sections (:data:`CARD_HEADER`,
:data:`ARCHITECTURE_SECTION`, :data:`CHANNELS_SECTION`, :data:`TRAINING_SECTION`) and the values they
fill in (:func:`card_basics`, :func:`window_text`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from latent_transforms.data.windows import IntensityWindow
from latent_transforms.networks.config import GanConfig, Modality

__all__ = [
    "ARCHITECTURE_SECTION",
    "CARD_DATA_KEYS",
    "CARD_HEADER",
    "CARD_TAGS",
    "CHANNELS_SECTION",
    "DOCS_URL",
    "LICENSE",
    "MODEL_CARD_TEMPLATE",
    "PAPER_URL",
    "REPO_URL",
    "TRAINING_SECTION",
    "card_basics",
    "card_variables",
    "evaluation_notes",
    "format_value",
    "pipeline_tag",
    "window_rows",
    "window_text",
]

#: The card's ``license`` (an SPDX-style Hub licence id); ``model_card_kwargs={"license": ...}`` overrides it.
LICENSE = "apache-2.0"
#: The card's tags (the mixin adds ``model_hub_mixin``).
CARD_TAGS = ("stylegan2", "gan", "medical-imaging", "data-augmentation", "latent-transforms")
REPO_URL = "https://github.com/latent-transforms/latent-transforms"
DOCS_URL = "https://github.com/latent-transforms/latent-transforms/tree/main/docs"
#: Tronchin et al. 2023, "LatentAugment: Data Augmentation via Guided Manipulation of GAN's Latent Space".
PAPER_URL = "https://arxiv.org/abs/2307.11375"
#: ``model_card_kwargs`` keys that set the card's metadata (its YAML header) rather than template values.
CARD_DATA_KEYS = frozenset({"license", "license_name", "license_link", "datasets", "language", "base_model"})

#: The card's YAML metadata and its title.
CARD_HEADER = """---
{{ card_data }}
---

# {{ name }}
"""

#: The architecture table (``architecture``: ``(key, value)`` rows).
ARCHITECTURE_SECTION = """## Architecture

| | |
|---|---|
{% for key, value in architecture %}| {{ key }} | {{ value }} |
{% endfor %}
"""

#: The channels and their windows, for a bundle with one list of channels (``windows``: :func:`window_rows`).
CHANNELS_SECTION = """## Channels and intensity windows

Images are `[B, {{ channels }}, {{ resolution }}, {{ resolution }}]` in `[-1, 1]`; each channel maps
linearly to its physical window.

| channel | modality | window |
|---|---|---|
{% for row in windows %}| {{ row[0] }} | {{ row[1] }} | {{ row[2] }} |
{% endfor %}
"""

#: The training summary (``training``: ``(key, value)`` rows), or a line saying there is none.
TRAINING_SECTION = """## Training

{% for key, value in training %}- **{{ key }}**: {{ value }}
{% else %}No training summary was recorded for this bundle.
{% endfor %}"""

MODEL_CARD_TEMPLATE = (
    CARD_HEADER
    + """
A StyleGAN2 generator{{ " and discriminator" if has_discriminator else "" }} packaged as a
[latent-transforms](https://pypi.org/project/latent-transforms/) GAN bundle: `config.json`,
`generator.safetensors` (EMA generator){{ ", `discriminator.safetensors`" if has_discriminator else "" }} and
`w_stats.safetensors` (w_avg, mean and covariance of W). Safetensors only: no pickle is ever loaded.

"""
    + ARCHITECTURE_SECTION
    + CHANNELS_SECTION
    + TRAINING_SECTION
    + """{% for note in notes %}
*{{ note }}*
{% endfor %}
## Use

```python
from latent_transforms import load_gan

bundle = load_gan("{{ source }}")
images = bundle.sample(8, seed=0)   # [8, {{ channels }}, {{ resolution }}, {{ resolution }}] in [-1, 1]
physical = bundle.denormalize(images)  # per-channel physical units
```

## Citation

The augmentation method this bundle is made for: Tronchin et al., "LatentAugment: Data Augmentation via
Guided Manipulation of GAN's Latent Space", arXiv:2307.11375 ({{ paper_url }}).
"""
)


def format_value(value: Any) -> str:
    """A training-summary value as the card shows it: floats with four significant digits.

    Example:
        >>> format_value(0.123456), format_value(12), format_value("run-3")
        ('0.1235', '12', 'run-3')
    """
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def window_text(window: IntensityWindow) -> str:
    """An intensity window as the cards show it, e.g. ``[-1000, 2000] HU``.

    Example:
        >>> window_text(IntensityWindow(-1000.0, 2000.0, "HU"))
        '[-1000, 2000] HU'
    """
    return f"[{window.low:g}, {window.high:g}] {window.unit}"


def window_rows(modalities: Sequence[Modality]) -> list[tuple[int, str, str]]:
    """The rows of :data:`CHANNELS_SECTION`: channel index, modality name, window.

    Example:
        >>> window_rows(GanConfig(resolution=16).modalities)[1]
        (1, 'ct', '[-1000, 2000] HU')
    """
    return [(i, m.name, window_text(m.window)) for i, m in enumerate(modalities)]


def card_basics(training: Mapping[str, Any], *, repo_id: str | None, default_name: str) -> dict[str, Any]:
    """The values every card fills in alike: ``name`` (the title), ``source`` (the usage snippet's
    argument) and ``training`` (the rows of :data:`TRAINING_SECTION`).

    The title is ``repo_id``, else the training summary's ``name``, else ``default_name``; the snippet
    loads ``repo_id``, else a folder path.

    Example:
        >>> card_basics({"name": "pelvis", "kimg": 1.5}, repo_id=None, default_name="GAN")
        {'name': 'pelvis', 'source': 'path/to/this/folder', 'training': [('name', 'pelvis'), ('kimg', '1.5')]}
    """
    return {
        "name": repo_id or training.get("name", default_name),
        "source": repo_id or "path/to/this/folder",
        "training": [(k, format_value(v)) for k, v in training.items()],
    }


def evaluation_notes(training: Mapping[str, Any]) -> list[str]:
    """What a training summary's held-out scores mean where the bare numbers mislead (``info``, the card).

    Today one case: precision and recall 0 for every channel, which reads like a broken metric but is a
    finding (the samples and the held-out images do not overlap in feature space).

    Example:
        >>> evaluation_notes({"mri_precision": 0.0, "mri_recall": 0.0, "mean_fid": 189.5})[0][:42]
        'precision and recall are 0 for every chann'
        >>> evaluation_notes({"mri_precision": 0.4, "mri_recall": 0.0})
        []
    """
    scores = [
        float(value)
        for key, value in training.items()
        if key.endswith(("_precision", "_recall")) and isinstance(value, int | float)
    ]
    if not scores or any(score != 0 for score in scores):
        return []
    fid = training.get("mean_fid", training.get("fid"))
    about = f" (FID {float(fid):.1f} says how far apart they are)" if isinstance(fid, int | float) else ""
    return [
        "precision and recall are 0 for every channel: not a failed measurement but a finding. No "
        "generated sample lies within the k-nearest-neighbour radius (k = 3) of a held-out real image in "
        "the evaluation's feature space, and no real image within that of a sample: the samples and the "
        f"held-out images do not overlap there{about}. The GAN shows the machinery, not realistic images; "
        "train longer or larger for scores above 0."
    ]


class _Classes(Protocol):
    @property
    def c_dim(self) -> int: ...


def pipeline_tag(config: _Classes) -> str | None:
    """The Hub ``pipeline_tag`` of an image generator (a GAN or diffusion config): unconditional image
    generation, or none for a class-conditional one.

    Example:
        >>> pipeline_tag(GanConfig(resolution=16))
        'unconditional-image-generation'
    """
    return "unconditional-image-generation" if config.c_dim == 0 else None


def card_variables(
    config: GanConfig,
    *,
    generator_parameters: int,
    discriminator_parameters: int | None,
    fingerprint: str,
    repo_id: str | None = None,
) -> dict[str, Any]:
    """The values :data:`MODEL_CARD_TEMPLATE` fills in: title, tables, training summary, usage snippet.

    Args:
        config: the bundle's config.
        generator_parameters: parameter count of the generator.
        discriminator_parameters: that of the discriminator, ``None`` when the bundle has none.
        fingerprint: the generator's SHA-256 fingerprint.
        repo_id: the Hub repo the card is for (its title and usage snippet; default a folder path).

    Example:
        >>> values = card_variables(GanConfig(resolution=16), generator_parameters=10,
        ...                         discriminator_parameters=None, fingerprint="ab" * 32, repo_id="me/gan")
        >>> values["name"], values["source"], values["windows"][1]
        ('me/gan', 'me/gan', (1, 'ct', '[-1000, 2000] HU'))
    """
    discriminator = discriminator_parameters is not None
    architecture = [
        ("resolution", f"{config.resolution} x {config.resolution}"),
        ("channels", ", ".join(config.modality_names)),
        ("z_dim / w_dim", f"{config.z_dim} / {config.w_dim}"),
        ("classes (c_dim)", config.c_dim or "unconditional"),
        ("mapping layers", config.mapping_layers),
        ("channel_base / channel_max", f"{config.channel_base} / {config.channel_max}"),
        ("num_ws", config.num_ws),
        ("generator parameters", f"{generator_parameters:,}"),
        ("discriminator", f"{discriminator_parameters:,} parameters" if discriminator else "not included"),
        ("generator fingerprint (sha256)", f"`{fingerprint[:16]}…`"),
    ]
    return {
        **card_basics(config.training, repo_id=repo_id, default_name="StyleGAN2 bundle"),
        "has_discriminator": discriminator,
        "architecture": architecture,
        "windows": window_rows(config.modalities),
        "notes": evaluation_notes(config.training),
        "channels": config.img_channels,
        "resolution": config.resolution,
    }
