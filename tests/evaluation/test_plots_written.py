"""Plots: the precision/recall scatter and the sample grid are written as PNG files of the right layout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from latent_transforms.errors import ConfigError, MissingDependencyError
from latent_transforms.evaluation.plots import precision_recall_plot, sample_grid
from latent_transforms.evaluation.report import EvaluationReport, PolicyResult

pytest.importorskip("matplotlib")


def _report(modalities: list[str]) -> EvaluationReport:
    rows = []
    for i, (name, kind, family, psi) in enumerate(
        [
            ("SG2Sample ψ=0.3", "sg2sample", "SG2Sample", 0.3),
            ("SG2Sample ψ=1.0", "sg2sample", "SG2Sample", 1.0),
            ("LatentAugment (F1)", "latentaugment", "LatentAugment", None),
            ("StandardDA", "standardda", "StandardDA", None),
            ("real (training images)", "real", "real", None),
        ]
    ):
        values = {m: 0.1 + 0.15 * i + 0.01 * j for j, m in enumerate(modalities)}
        rows.append(
            PolicyResult(name, "", kind, family, 10, precision=dict(values), recall=dict(values), psi=psi)
        )
    return EvaluationReport(rows, modalities, {"feature_network": "random", "k": 3})


def test_the_scatter_has_one_panel_per_modality(tmp_path: Path) -> None:
    one = precision_recall_plot(_report(["ct"]), tmp_path / "one.png")
    two = precision_recall_plot(_report(["mri", "ct"]), tmp_path / "sub" / "two.png")
    w1, h1 = Image.open(one).size
    w2, h2 = Image.open(two).size
    assert h1 == h2 and w2 > 1.8 * w1  # panels side by side


def test_rows_without_values_for_a_panel_are_left_out_and_no_panels_is_refused(tmp_path: Path) -> None:
    report = _report(["mri"])
    report.rows[0].precision = {}
    assert precision_recall_plot(report, tmp_path / "pr.png").is_file()
    with pytest.raises(ConfigError, match="at least one modality"):
        precision_recall_plot(EvaluationReport([], []), tmp_path / "none.png")


def test_sample_grid_has_a_row_per_set_and_modality(tmp_path: Path) -> None:
    sets = [
        ("reference", torch.rand(5, 2, 8, 8) * 2 - 1),
        ("SG2Sample ψ=0.3", torch.rand(2, 2, 8, 8) * 2 - 1),
    ]
    path = sample_grid(sets, ["mri", "ct"], tmp_path / "grid.png", n=4, scale=1)
    single = sample_grid(sets[:1], ["mri", "ct"], tmp_path / "one.png", n=4, scale=1)
    assert Image.open(path).size[1] == 2 * Image.open(single).size[1]  # 4 rows vs 2, padded short sets
    with pytest.raises(ConfigError, match="one channel per modality"):
        sample_grid([("x", torch.zeros(2, 3, 8, 8))], ["mri", "ct"], tmp_path / "bad.png")


def test_a_missing_matplotlib_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingDependencyError, match=r"latent-transforms\[plots\]"):
        precision_recall_plot(_report(["ct"]), tmp_path / "pr.png")
