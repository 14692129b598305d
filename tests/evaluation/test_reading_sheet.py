"""The fake identification rate kit: the HTML reading sheet, its key, and the scorer."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import torch
from scipy.stats import binomtest

from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.reading_sheet import (
    ANSWERS_FORMAT,
    binomial_interval,
    score_reading_sheet,
    write_reading_sheet,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _sources(n=4):
    g = torch.Generator().manual_seed(0)
    return {
        "real": torch.rand(n, 1, 16, 16, generator=g) * 2 - 1,
        "gan": torch.rand(n, 1, 16, 16, generator=g) * 2 - 1,
        "ddpm": torch.rand(n, 1, 16, 16, generator=g) * 2 - 1,
    }


def test_the_page_embeds_every_image_and_hides_which_is_which(tmp_path):
    sheet = write_reading_sheet(_sources(), tmp_path, per_source=3, seed=5)
    page = sheet.html.read_text()
    assert sheet.n_images == 9 and page.count('<div class="card"') == 9
    assert page.count("data:image/png;base64,") == 9 and "http" not in page.replace("http-equiv", "")
    assert "gan" not in page and "ddpm" not in page  # the sources are only in the key
    key = json.loads(sheet.key.read_text())
    assert sorted(key["truth"].values()).count("real") == 3 and key["sheet"] == sheet.sheet_id
    again = write_reading_sheet(_sources(), tmp_path / "b", per_source=3, seed=5)
    other = write_reading_sheet(_sources(), tmp_path / "c", per_source=3, seed=6)
    assert json.loads(again.key.read_text())["truth"] == key["truth"]
    assert json.loads(other.key.read_text())["truth"] != key["truth"]


def test_sources_of_different_shapes_are_refused(tmp_path):
    sources = _sources()
    sources["gan"] = torch.zeros(4, 2, 16, 16)
    with pytest.raises(ConfigError, match="one shape"):
        write_reading_sheet(sources, tmp_path)
    with pytest.raises(ConfigError, match="at least one generator"):
        write_reading_sheet({"real": torch.zeros(2, 1, 8, 8)}, tmp_path)


def test_scores_count_every_reader_and_skip_unanswered(tmp_path):
    sheet = write_reading_sheet(_sources(), tmp_path)
    truth = json.loads(sheet.key.read_text())["truth"]
    # reader A calls every GAN image synthetic and everything else real; reader B calls all synthetic
    a = {i: ("synthetic" if s == "gan" else "real") for i, s in truth.items()}
    b = dict.fromkeys(truth, "synthetic")
    first = next(i for i, s in truth.items() if s == "ddpm")
    b[first] = None
    files = [
        {"format": ANSWERS_FORMAT, "sheet": sheet.sheet_id, "reader": "A", "answers": a},
        {"format": ANSWERS_FORMAT, "sheet": sheet.sheet_id, "reader": "B", "answers": b},
    ]
    result = score_reading_sheet(files, sheet.key)
    assert result.readers == ["A", "B"] and result.unanswered == 1
    assert result.fir == {"gan": 1.0, "ddpm": 3 / 7}
    assert result.sources["real"]["rate"] == 0.5 and result.sources["real"]["real"]
    table = result.to_markdown()
    assert "| gan | 8 / 8 | 1.00 |" in table and "real (real)" in table


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (17, 40)])
def test_the_interval_is_the_exact_clopper_pearson_one(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert binomial_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_answers_for_another_sheet_are_refused(tmp_path):
    sheet = write_reading_sheet(_sources(), tmp_path)
    with pytest.raises(ConfigError, match="for sheet 'other'"):
        score_reading_sheet({"sheet": "other", "answers": {}}, sheet.key)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_page_renders_and_exports_answers_in_headless_chromium(tmp_path):
    sheet = write_reading_sheet(_sources(), tmp_path)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    shot = tmp_path / "sheet.png"
    subprocess.run(
        [
            CHROMIUM,
            *flags,
            f"--user-data-dir={tmp_path / 'u1'}",
            f"--screenshot={shot}",
            "--window-size=900,700",
            sheet.html.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 5000
    dom = subprocess.run(
        [
            CHROMIUM,
            *flags,
            f"--user-data-dir={tmp_path / 'u2'}",
            "--dump-dom",
            sheet.html.as_uri() + "#selftest",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    exported = re.search(r'<pre id="export">(.*?)</pre>', dom, re.S)
    assert exported is not None
    answers = json.loads(exported.group(1).replace("&quot;", '"'))
    assert answers["format"] == ANSWERS_FORMAT and answers["reader"] == "selftest"
    result = score_reading_sheet(answers, sheet.key)  # the page's own export scores against its key
    assert result.unanswered == 0 and sum(v["answered"] for v in result.sources.values()) == 12
