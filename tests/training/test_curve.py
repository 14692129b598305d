"""The FID-against-kimg figure drawn from a run's log.jsonl."""

from __future__ import annotations

import json

import pytest

from latent_transforms.errors import ConfigError
from latent_transforms.training.curve import plot_fid_curve, read_log, scored_records

pytest.importorskip("matplotlib")


def write_log(folder, records):
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_scored_records_keep_one_record_per_kimg_in_kimg_order_the_last_one_winning():
    records = [
        {"kimg": 10.0, "score/fid": 50.0},
        {"kimg": 5.0, "loss": 0.1},
        {"kimg": 20.0, "score/fid": 30.0},
        {"kimg": 10.0, "score/fid": 48.0},  # a resumed run logs kimg 10 again
    ]
    assert [(r["kimg"], r["score/fid"]) for r in scored_records(records)] == [(10.0, 48.0), (20.0, 30.0)]


def test_the_curve_is_a_png_of_the_scored_checkpoints(tmp_path):
    write_log(
        tmp_path,
        [
            {"kimg": 5, "loss": 0.3},
            {"kimg": 10, "score/fid": 80.0, "score/smoothed": 80.0},
            {"kimg": 20, "score/fid": 40.0, "score/smoothed": 52.0},
        ],
    )
    out = plot_fid_curve(tmp_path / "log.jsonl", tmp_path / "figs" / "curve.png", title="run")
    assert out == tmp_path / "figs" / "curve.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "figs").glob("*.tmp*"))  # written atomically


def test_a_log_without_a_score_is_refused_with_what_to_do(tmp_path):
    write_log(tmp_path, [{"kimg": 5, "loss": 0.3}])
    with pytest.raises(ConfigError, match=r"no scored checkpoint.*Fix"):
        plot_fid_curve(tmp_path, tmp_path / "curve.png")
    assert not (tmp_path / "curve.png").exists()


def test_a_folder_without_a_log_names_the_folder_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no training log.*--out folder"):
        read_log(tmp_path)
