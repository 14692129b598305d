"""The phantom's images per modality and the patient-disjoint splits of the study."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from latent_transforms.translation import UnpairedImages, phantom_images


@dataclass
class Split:
    """One random split: MRI patients (source) and CT training, validation and test patients."""

    seed: int
    mri: UnpairedImages
    ct_train: UnpairedImages
    ct_val: UnpairedImages
    ct_test: UnpairedImages

    def patients(self) -> dict[str, list[str]]:
        return {
            name: sorted(set(getattr(self, name).groups)) for name in ("mri", "ct_train", "ct_val", "ct_test")
        }


def make_split(config, seed: int) -> Split:
    """The patients of split ``seed``, drawn without overlap; only MRI is read for MRI patients and only
    CT for CT patients. Labels: the phantom's bone-density attribute (regression, in ``[0, 1]``) or its
    lesion label (classification, 0 / 1 per patient)."""
    order = torch.randperm(config.patients, generator=torch.Generator().manual_seed(1000 + seed)).tolist()
    cut = [config.mri_patients, config.ct_train, config.ct_val, config.ct_test]
    if min(cut) < 1:
        raise SystemExit(f"every part of the split needs a patient; got MRI/train/val/test = {cut}")
    bounds = torch.tensor(cut).cumsum(0).tolist()
    parts = [sorted(order[a:b]) for a, b in zip([0, *bounds[:-1]], bounds, strict=True)]

    def read(modality: str, patients: list[int]) -> UnpairedImages:
        return phantom_images(
            modality,
            patients,
            resolution=config.resolution,
            slices_per_patient=config.slices,
            seed=config.phantom_seed,
            label="attribute" if config.task == "regression" else "label",
        )

    split = Split(
        seed, read("mri", parts[0]), read("ct", parts[1]), read("ct", parts[2]), read("ct", parts[3])
    )
    seen = split.patients()
    assert not set(seen["mri"]) & {p for k in ("ct_train", "ct_val", "ct_test") for p in seen[k]}
    return split
