"""Training generators: StyleGAN2-ADA (the loop, ADA, losses) and diffusion models (a DDPM on MONAI's
UNet), with their checkpoints, scoring and selection.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_transforms.lazy import lazy_exports

if TYPE_CHECKING:
    from latent_transforms.training.augment import (
        PRESETS as PRESETS,
        TRANSFORM_NAMES as TRANSFORM_NAMES,
        AdaController as AdaController,
        AugmentPipe as AugmentPipe,
    )
    from latent_transforms.training.checkpoint import (
        load_training_state as load_training_state,
        snapshot_bundles as snapshot_bundles,
    )
    from latent_transforms.training.curve import (
        plot_fid_curve as plot_fid_curve,
        read_log as read_log,
        scored_records as scored_records,
    )
    from latent_transforms.training.data import (
        GanImages as GanImages,
        TensorImages as TensorImages,
    )
    from latent_transforms.training.diffusion_options import (
        DiffusionOptions as DiffusionOptions,
    )
    from latent_transforms.training.diffusion_trainer import (
        DiffusionTrainer as DiffusionTrainer,
        train_diffusion as train_diffusion,
    )
    from latent_transforms.training.options import (
        TrainingOptions as TrainingOptions,
        r1_gamma_rule as r1_gamma_rule,
    )
    from latent_transforms.training.scoring import (
        FidScorer as FidScorer,
        evaluate_generator as evaluate_generator,
    )
    from latent_transforms.training.selection import (
        SmoothedSelection as SmoothedSelection,
    )
    from latent_transforms.training.trainer import (
        Trainer as Trainer,
        annotate_bundle as annotate_bundle,
        train as train,
    )

#: Where each public name lives; imported from there on first access.
_SOURCES: dict[str, str] = {
    "AdaController": "latent_transforms.training.augment",
    "AugmentPipe": "latent_transforms.training.augment",
    "DiffusionOptions": "latent_transforms.training.diffusion_options",
    "DiffusionTrainer": "latent_transforms.training.diffusion_trainer",
    "FidScorer": "latent_transforms.training.scoring",
    "GanImages": "latent_transforms.training.data",
    "PRESETS": "latent_transforms.training.augment",
    "SmoothedSelection": "latent_transforms.training.selection",
    "TRANSFORM_NAMES": "latent_transforms.training.augment",
    "TensorImages": "latent_transforms.training.data",
    "Trainer": "latent_transforms.training.trainer",
    "TrainingOptions": "latent_transforms.training.options",
    "annotate_bundle": "latent_transforms.training.trainer",
    "evaluate_generator": "latent_transforms.training.scoring",
    "load_training_state": "latent_transforms.training.checkpoint",
    "plot_fid_curve": "latent_transforms.training.curve",
    "read_log": "latent_transforms.training.curve",
    "scored_records": "latent_transforms.training.curve",
    "snapshot_bundles": "latent_transforms.training.checkpoint",
    "r1_gamma_rule": "latent_transforms.training.options",
    "train": "latent_transforms.training.trainer",
    "train_diffusion": "latent_transforms.training.diffusion_trainer",
}

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
__all__ = [*_SOURCES]
