"""What the cross-modal study runs: sizes, networks, epochs and the rows of the comparison."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: The rows of the comparison, as in Yang & Xie's Tables 2-4 (our names).
ROWS = (
    "PURE-CT",
    "MIX-CycleGAN",
    "MIX-DUIIT",
    "DUIIT-joint",
    "TL",
    "MTL",
    "DANN",
    "StandardDA",
)
#: What each row trains on, for the report.
ROW_MEANING = {
    "PURE-CT": "the predictor on the CT training patients only",
    "MIX-CycleGAN": "CT training images plus the MRI patients' images translated by a plain CycleGAN, "
    "with their MRI labels",
    "MIX-DUIIT": "the same with DUIIT's translator (trained jointly with a predictor, λ = 0.001)",
    "DUIIT-joint": "DUIIT's own predictor, trained jointly with its translator (no retraining)",
    "TL": "pre-trained on the raw MRI images and labels, then fine-tuned on CT (transfer learning)",
    "MTL": "one backbone, an MRI head and a CT head, trained on both (multi-task); the CT head is scored",
    "DANN": "the task loss on MRI and CT with a domain classifier behind a gradient-reversal layer "
    "(Ganin & Lempitsky 2015)",
    "StandardDA": "CT training images with StandardDA online (p = 0.5; Tronchin et al. 2023's operations)",
}


@dataclass
class StudyConfig:
    """Sizes and settings of the study (the defaults: the full study on 2 CPU cores).

    Patients of the phantom are split at random, once per split seed, into MRI patients (source images
    with their labels) and CT patients (training, validation and test); no patient is in both
    modalities, and the MRI of the CT patients is never read.
    """

    out: str = "runs/crossmodal-phantom"
    command: str = ""
    resolution: int = 32
    patients: int = 40
    slices: int = 8
    mri_patients: int = 20
    ct_train: int = 6
    ct_val: int = 4
    splits: int = 5
    phantom_seed: int = 0
    #: ``"regression"``: the bone-density attribute (test MSE); ``"classification"``: the patient's lesion
    #: label (test accuracy).
    task: str = "regression"
    rows: tuple[str, ...] = ROWS
    # translators (CycleGAN and DUIIT): Zhu et al.'s optimiser and losses, small networks
    translator_width: int = 16
    translator_blocks: int = 6
    #: A discriminator that sees the whole 32 px image (two stride-2 layers, receptive field 34 px; the
    #: library's default is one layer at 32 px) and twice as wide: on split 0's validation CT, at 120
    #: epochs, the CycleGAN's FID fell from 142.9 (width 16, one layer: bodies of speckle) to 37.7
    #: (precision 0.83, recall 0.31), at about the same cost (about 10 minutes on one thread).
    disc_width: int = 32
    disc_layers: int | None = 2
    translator_epochs: int = 120
    translator_batch: int = 4
    # predictor (every row): a ResNet-10 regressor, Adam 1e-3
    predictor_width: int = 8
    predictor_epochs: int = 30
    predictor_batch: int = 16
    feature_network: str = "efficientnet-lite0"
    device: str = "cpu"
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> StudyConfig:
        return dataclasses.replace(self, **changes)

    @property
    def metric(self) -> str:
        """The key of the test score in ``results.json``."""
        return "mse" if self.task == "regression" else "accuracy"

    @property
    def ct_test(self) -> int:
        return self.patients - self.mri_patients - self.ct_train - self.ct_val

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["rows"] = list(self.rows)
        return data


def quick_config() -> StudyConfig:
    """Toy sizes for CI: 16 px, 12 patients of 2 slices, one translator epoch, 2 splits, random features."""
    return StudyConfig(
        out="runs/crossmodal-phantom-quick",
        resolution=16,
        patients=12,
        slices=2,
        mri_patients=6,
        ct_train=2,
        ct_val=2,
        splits=2,
        translator_width=4,
        translator_blocks=1,
        disc_width=4,
        disc_layers=None,
        translator_epochs=1,
        translator_batch=4,
        predictor_width=4,
        predictor_epochs=2,
        predictor_batch=8,
        feature_network="random",
        progress=False,
    )
