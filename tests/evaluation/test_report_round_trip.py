"""The report: the column groups of Xing et al. 2023 in Markdown, per-modality tables, a lossless JSON
round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.report import (
    JSON_NAME,
    MARKDOWN_NAME,
    EvaluationReport,
    PolicyResult,
    UtilityResult,
    git_commit,
)


def _row(name: str, kind: str, scale: float, utility: UtilityResult | None = None) -> PolicyResult:
    per = lambda a, b: {"mri": a, "ct": b, "mean": (a + b) / 2}  # noqa: E731
    return PolicyResult(
        policy=name,
        spec=name.lower(),
        kind=kind,
        family={"sg2sample": "SG2Sample", "latentaugment": "LatentAugment"}.get(kind, kind),
        n_samples=300,
        fid=per(10.0 * scale, 20.0 * scale),
        precision=per(0.5 * scale, 0.25 * scale),
        recall=per(0.125 * scale, 0.375 * scale),
        f1=per(0.2, 0.3),
        density=per(0.9, 1.1),
        coverage=per(0.4, 0.6),
        mean_image_kb=per(3.0, 5.0),
        utility=utility,
        seconds_per_1000=None if kind == "real" else 12.5 * scale,
        peak_memory_gb=None,
        efficiency=None if kind == "real" else {"images": 64, "device": "cpu"},
        psi=0.7 if kind == "sg2sample" else None,
        sampling_seconds=1.5,
    )


@pytest.fixture
def report() -> EvaluationReport:
    u = UtilityResult(0.03, 0.01, 2.0, 10, "seed", 0.83, 0.80, True, list(range(10)))
    rows = [
        _row("SG2Sample ψ=0.7", "sg2sample", 1.0, u),
        _row("LatentAugment (F1)", "latentaugment", 2.0),
        _row("real (training images)", "real", 1.0),
    ]
    settings = {"feature_network": "efficientnet-lite0", "k": 3, "command": "latent-transforms evaluate ..."}
    return EvaluationReport(rows, ["mri", "ct"], settings)


def test_json_round_trip_keeps_every_row_and_setting(report: EvaluationReport, tmp_path: Path) -> None:
    assert EvaluationReport.from_json(report.to_json()) == report
    paths = report.save(tmp_path)
    assert paths["markdown"] == tmp_path / MARKDOWN_NAME and paths["json"] == tmp_path / JSON_NAME
    assert EvaluationReport.load(tmp_path) == report
    assert EvaluationReport.load(tmp_path / JSON_NAME) == report
    data = json.loads((tmp_path / JSON_NAME).read_text())
    assert data["rows"][0]["utility"]["pvalue"] == 0.01 and data["rows"][2]["utility"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKDOWN_NAME, JSON_NAME]  # no temp files left


def test_markdown_has_the_four_column_groups_and_one_row_per_policy(report: EvaluationReport) -> None:
    text = report.to_markdown()
    start = text.find("| | fidelity | | variety | | utility | | efficiency |")
    assert start > 0
    summary = text[start:].split("\n\n")[0].splitlines()
    assert len(summary) == 3 + len(report.rows)
    sg2, la, real = summary[3:]
    assert sg2.startswith("| SG2Sample ψ=0.7 | 15.00 | 0.375 | 0.250 | 4.00 | +0.0300 | 0.01* | 12.5 |")
    assert la.startswith("| LatentAugment (F1) | 30.00 | 0.750 | 0.500 |")
    assert real.count("—") == 4  # no utility (gain, p value) and no efficiency (time, memory)
    assert real.endswith("| 300 |")


def test_markdown_has_a_sub_table_per_modality_with_its_own_values(report: EvaluationReport) -> None:
    text = report.to_markdown()
    mri = text[text.index("### mri") : text.index("### ct")]
    ct = text[text.index("### ct") :].split("\n\n## ")[0]
    assert "| SG2Sample ψ=0.7 | 10.00 | 0.500 | 0.125 | 0.200 | 0.900 | 0.400 | 3.00 |" in mri
    assert "| SG2Sample ψ=0.7 | 20.00 | 0.250 | 0.375 | 0.300 | 1.100 | 0.600 | 5.00 |" in ct
    assert "## Utility" in text and "| seed |" in text


def test_rows_are_found_by_name_and_unknown_names_are_refused(report: EvaluationReport) -> None:
    assert report.row("LatentAugment (F1)").kind == "latentaugment"
    with pytest.raises(ConfigError, match="no policy named"):
        report.row("nope")
    with pytest.raises(ConfigError, match="rows"):
        EvaluationReport.from_dict({"settings": {}})


def test_commit_lookup_never_fails(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None  # not a repository
    info = git_commit()
    assert info is None or (len(info["commit"]) == 40 and isinstance(info["dirty"], bool))
