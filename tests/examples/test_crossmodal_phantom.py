"""``examples/crossmodal_phantom/run.py --quick`` end to end (what CI runs): the results schema of the
issue, patient-disjoint splits, the report, and resuming from the finished units."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from examples.crossmodal_phantom.config import ROWS, quick_config
from examples.crossmodal_phantom.data import make_split

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "examples" / "crossmodal_phantom" / "run.py"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, str(RUN), *args, "--no-progress"], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, f"run.py failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return run


def test_splits_are_patient_disjoint_and_read_one_modality_per_patient():
    config = quick_config()
    for seed in range(3):
        split = make_split(config, seed)
        seen = split.patients()
        assert [len(seen[k]) for k in ("mri", "ct_train", "ct_val", "ct_test")] == [6, 2, 2, 2]
        everyone = [p for k in seen for p in seen[k]]
        assert len(everyone) == len(set(everyone)) == config.patients
        assert split.mri.modalities[0].name == "mri" and split.ct_test.modalities[0].name == "ct"
    assert make_split(config, 0).patients() != make_split(config, 1).patients()


@pytest.mark.slow
def test_the_quick_study_writes_the_results_and_resumes_from_its_units(tmp_path):
    pytest.importorskip("scikit_posthocs")
    _run(["--quick", "--out", "run", "--report", "report"], tmp_path)
    result = json.loads((tmp_path / "report" / "results.json").read_text())
    assert list(result["methods"]) == list(ROWS)
    assert all(len(v["mse"]) == 2 and all(x >= 0 for x in v["mse"]) for v in result["methods"].values())
    for method in ("cyclegan", "duiit"):
        assert set(result["translation"][method]) >= {"fid", "precision", "recall"}
        assert len(result["translation"][method]["fid"]) == 2
    assert result["command"].startswith("python examples/crossmodal_phantom/run.py --quick")
    assert len(result["commit"].removesuffix("+dirty")) == 40 or result["commit"] == "unknown"
    assert "friedman" in result and result["friedman"]["n_blocks"] == 2
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Quick run" in report and "| MIX-DUIIT |" in report and "## The paper's pattern, here" in report
    from PIL import Image

    grid, side = Image.open(tmp_path / "report" / "translations.png"), quick_config().resolution * 3
    assert grid.width > 8 * side and grid.height >= 4 * side  # 4 labelled rows of 8 tiles, scaled x3
    bundle = tmp_path / "run" / "split-1" / "duiit" / "bundle" / "config.json"
    assert json.loads(bundle.read_text())["task"] == "regression"
    units = sorted(
        p.relative_to(tmp_path / "run").as_posix() for p in (tmp_path / "run" / "units").rglob("*.json")
    )
    assert len(units) == 2 * (len(ROWS) + 2)
    (tmp_path / "run" / "units" / "split-1" / "PURE-CT.json").unlink()  # one unit lost: only it reruns
    _run(["--quick", "--out", "run", "--report", "again"], tmp_path)
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["methods"] == result["methods"] and again["translation"] == result["translation"]


@pytest.mark.slow
def test_the_quick_study_takes_the_lesion_label_as_a_classification_task(tmp_path):
    pytest.importorskip("scikit_posthocs")
    _run(
        ["--quick", "--task", "classification", "--out", "run", "--rows", "PURE-CT,MIX-DUIIT,DUIIT-joint"],
        tmp_path,
    )
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    assert list(result["methods"]) == ["PURE-CT", "MIX-DUIIT", "DUIIT-joint"]
    assert all(0 <= x <= 1 for v in result["methods"].values() for x in v["accuracy"])
    assert (
        "lesion label" in result["task"]
        and "| test accuracy |" in (tmp_path / "run" / "report.md").read_text()
    )
    bundle = json.loads((tmp_path / "run" / "split-0" / "duiit" / "bundle" / "config.json").read_text())
    assert bundle["task"] == "classification" and bundle["outputs"] == 2
