"""The latent-transforms command: init, info (text, JSON, sample grid), errors, help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from latent_transforms.cli import main

SMALL = [
    "--resolution",
    "16",
    "--z-dim",
    "16",
    "--w-dim",
    "16",
    "--channel-base",
    "256",
    "--channel-max",
    "32",
    "--w-stats-samples",
    "64",
]


def test_init_then_info_prints_the_card_and_draws_samples(tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["init", str(out), *SMALL, "--modalities", "mri,ct,mask", "--window", "mask=0,1"]) == 0
    assert main(["info", str(out), "--samples", str(tmp_path / "grid.png"), "--n", "5"]) == 0
    text = capsys.readouterr().out
    assert (
        "16 x 16" in text and "ct       window [-1000, 2000] HU" in text and "mask     window [0, 1]" in text
    )
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (5 * 18 + 2, 3 * 18 + 2)  # 5 samples across, 3 modalities down, 2 px padding


def test_info_json(tmp_path, capsys):
    main(["init", str(tmp_path), *SMALL])
    capsys.readouterr()
    assert main(["info", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["resolution"] == 16 and [m["name"] for m in summary["modalities"]] == ["mri", "ct"]
    assert len(summary["fingerprint"]) == 64


def test_library_errors_exit_2_with_the_message(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == 2
    assert "not an existing folder" in capsys.readouterr().err


def test_bad_window_syntax_is_explained(tmp_path):
    with pytest.raises(SystemExit, match="NAME=LOW,HIGH"):
        main(["init", str(tmp_path), *SMALL, "--window", "ct:0-1"])


def test_console_script_help_documents_convert():
    out = subprocess.run(
        [sys.executable, "-m", "latent_transforms.cli", "convert", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "network-snapshot" in out and "never runs" in out and "--modalities" in out
