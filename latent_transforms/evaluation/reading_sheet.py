"""The fake identification rate (FIR) kit: a self-contained HTML reading sheet and its scorer.

Xing et al. 2023 measure fidelity by people too: readers see shuffled real and synthetic images and call
each one real or synthetic; the FIR of a generator is the share of its images the readers identified as
synthetic (lower is more realistic). :func:`write_reading_sheet` makes one HTML file (images embedded,
no server, works offline in any browser) and a separate answer key; the reader picks real / synthetic
per image and downloads the answers as a JSON file; :func:`score_reading_sheet` reads answers and key
and gives each source's rate with an exact (Clopper-Pearson) 95 % confidence interval.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latent_transforms.checks import check_image_batch, check_int
from latent_transforms.errors import ConfigError, MissingDependencyError
from latent_transforms.files import atomic_write

__all__ = [
    "FakeIdentificationRate",
    "ReadingSheet",
    "binomial_interval",
    "score_reading_sheet",
    "write_reading_sheet",
]

ANSWERS = ("real", "synthetic")
KEY_FORMAT = "latent-transforms-reading-sheet-key/1"
ANSWERS_FORMAT = "latent-transforms-reading-sheet-answers/1"


@dataclass(frozen=True)
class ReadingSheet:
    """The files of one reading sheet: ``html`` for the readers, ``key`` for whoever scores (keep it apart).

    Attributes:
        html: the self-contained page. key: the answer key (JSON). sheet_id: ties answers to the key.
        n_images: images on the sheet.
    """

    html: Path
    key: Path
    sheet_id: str
    n_images: int


def _png_data_uri(image: torch.Tensor, scale: int) -> str:
    """``[C, H, W]`` in ``[-1, 1]`` -> a PNG data URI, the channels side by side, enlarged ``scale`` x."""
    from PIL import Image

    x = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    gap = torch.full((x.shape[1], 2), 255, dtype=torch.uint8)
    parts: list[torch.Tensor] = []
    for c in range(x.shape[0]):
        if parts:
            parts.append(gap)
        parts.append(x[c])
    tile = torch.cat(parts, dim=1).numpy()
    picture = Image.fromarray(np.ascontiguousarray(tile), mode="L")
    if scale > 1:
        picture = picture.resize((tile.shape[1] * scale, tile.shape[0] * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}}
#grid{{display:flex;flex-wrap:wrap;gap:12px}}
.card{{background:#fff;border:2px solid #ccc;border-radius:6px;padding:8px;text-align:center}}
.card.done{{border-color:#4a8}} .card img{{image-rendering:pixelated;display:block;margin:0 auto 6px}}
.id{{font-size:.8em;color:#666}} label{{margin:0 6px;cursor:pointer}}
#bar{{position:sticky;top:0;background:#fafafa;padding:.5em 0;border-bottom:1px solid #ddd;margin-bottom:1em}}
button{{font-size:1em;padding:.3em 1em}}
</style></head><body>
<div id="bar"><h1 style="margin:0 0 .3em">{title}</h1>
<p style="margin:.2em 0">{instructions}</p>
Reader: <input id="reader" placeholder="your name or initials">
<span id="count"></span>
<button id="download">Download answers</button></div>
<div id="grid">{cards}</div>
<pre id="export" hidden></pre>
<script>
const SHEET = {sheet_id_json};
const IDS = {ids_json};
const STORE = "reading-sheet-" + SHEET;
function answers() {{
  const out = {{}};
  for (const id of IDS) {{
    const picked = document.querySelector('input[name="a' + id + '"]:checked');
    out[id] = picked ? picked.value : null;
  }}
  return out;
}}
function refresh() {{
  const a = answers();
  let done = 0;
  for (const id of IDS) {{
    const card = document.getElementById("c" + id);
    card.classList.toggle("done", a[id] !== null);
    if (a[id] !== null) done++;
  }}
  document.getElementById("count").textContent = done + " / " + IDS.length + " answered";
  const reader = document.getElementById("reader").value;
  localStorage.setItem(STORE, JSON.stringify({{reader: reader, answers: a}}));
}}
function exported() {{
  return JSON.stringify({{format: {answers_format_json}, sheet: SHEET,
    reader: document.getElementById("reader").value, answers: answers(),
    saved: new Date().toISOString()}}, null, 1);
}}
function download() {{
  const blob = new Blob([exported()], {{type: "application/json"}});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  const who = (document.getElementById("reader").value || "reader").replace(/[^A-Za-z0-9_-]/g, "_");
  link.download = "answers-" + SHEET + "-" + who + ".json";
  document.body.appendChild(link); link.click(); link.remove();
}}
const saved = JSON.parse(localStorage.getItem(STORE) || "null");
if (saved) {{
  document.getElementById("reader").value = saved.reader || "";
  for (const [id, value] of Object.entries(saved.answers || {{}})) {{
    const input = document.querySelector('input[name="a' + id + '"][value="' + value + '"]');
    if (input) input.checked = true;
  }}
}}
document.addEventListener("change", refresh);
document.getElementById("download").addEventListener("click", download);
if (location.hash === "#selftest") {{  // a check of the page without a person: answer all, show the export
  IDS.forEach((id, i) => {{
    document.querySelector('input[name="a' + id + '"][value="' + (i % 2 ? "synthetic" : "real") + '"]')
      .checked = true;
  }});
  document.getElementById("reader").value = "selftest";
  refresh();
  const pre = document.getElementById("export"); pre.textContent = exported(); pre.hidden = false;
}}
refresh();
</script></body></html>
"""

_CARD = (
    '<div class="card" id="c{id}"><img src="{src}" alt="image {id}" width="{w}" height="{h}">'
    '<div class="id">#{id}</div>'
    '<label><input type="radio" name="a{id}" value="real"> real</label>'
    '<label><input type="radio" name="a{id}" value="synthetic"> synthetic</label></div>'
)


def write_reading_sheet(
    sources: Mapping[str, torch.Tensor],
    folder: str | Path,
    *,
    real: Sequence[str] = ("real",),
    per_source: int | None = None,
    seed: int = 0,
    scale: int = 4,
    title: str = "Real or synthetic?",
    name: str = "reading-sheet",
) -> ReadingSheet:
    """Write a shuffled real-or-synthetic reading sheet and its answer key into ``folder``.

    Args:
        sources: ``{source name: images [N, C, H, W] in [-1, 1]}``: the real images (names in ``real``)
            and each generator's samples. Paired modalities are shown side by side.
        folder: where ``<name>.html`` and ``<name>.key.json`` go.
        real: the names in ``sources`` that hold real images.
        per_source: images taken from each source (the first ones; default: all). Xing et al. showed
            5 per category for X-rays.
        seed: the shuffle's seed.
        scale: each pixel is drawn ``scale`` x ``scale`` (small images stay readable).
        title: the page's title.
        name: the files' base name.

    Returns:
        A :class:`ReadingSheet`. Give the HTML to the readers and keep the key file apart: it says which
        image is which.

    Example:
        >>> import tempfile
        >>> g = torch.Generator().manual_seed(0)
        >>> imgs = {"real": torch.rand(3, 1, 8, 8, generator=g) * 2 - 1, "gan": torch.zeros(3, 1, 8, 8)}
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sheet = write_reading_sheet(imgs, d, seed=1)
        ...     key = json.loads(sheet.key.read_text())
        ...     sheet.n_images, sorted(set(key["truth"].values())), "gan" in sheet.html.read_text()
        (6, ['gan', 'real'], False)
    """
    if not sources:
        raise ConfigError("sources is empty; give {'real': images, '<generator>': samples, ...}.")
    unknown = [r for r in real if r not in sources]
    if unknown:
        raise ConfigError(f"real={list(real)} names {unknown}, which are not in sources {sorted(sources)}.")
    if all(name_ in real for name_ in sources):
        raise ConfigError("every source is real; add at least one generator's samples.")
    scale = check_int("scale", scale, low=1, high=32)
    entries: list[tuple[str, torch.Tensor]] = []
    shapes = {tuple(torch.as_tensor(images).shape[1:]) for images in sources.values()}
    if len(shapes) > 1:
        raise ConfigError(
            f"every source must hold images of one shape [C, H, W] (a different size would give the answer "
            f"away); got {sorted(shapes)}. Fix: resize the real images to the generator's size."
        )
    for source, images in sources.items():
        images = check_image_batch(images, what=f"images of {source!r}")
        take = (
            len(images)
            if per_source is None
            else min(check_int("per_source", per_source, low=1), len(images))
        )
        entries += [(source, images[i]) for i in range(take)]
    order = torch.randperm(len(entries), generator=torch.Generator().manual_seed(seed)).tolist()
    digest = hashlib.sha256()
    cards, truth, ids = [], {}, []
    for position, index in enumerate(order, start=1):
        source, image = entries[index]
        src = _png_data_uri(image, scale)
        digest.update(src.encode())
        h, w = image.shape[-2] * scale, (image.shape[-1] + 2) * image.shape[0] * scale - 2 * scale
        cards.append(_CARD.format(id=position, src=src, w=w, h=h))
        truth[str(position)] = source
        ids.append(str(position))
    sheet_id = digest.hexdigest()[:12]
    instructions = (
        f"{len(ids)} images, shuffled: some are real, some were made by a generative model. Call each one "
        "real or synthetic, then press <b>Download answers</b> and send the file back. Your choices are "
        "kept in this browser if you close the page."
    )
    page = _PAGE.format(
        title=html.escape(title),
        instructions=instructions,
        cards="\n".join(cards),
        sheet_id_json=json.dumps(sheet_id),
        ids_json=json.dumps(ids),
        answers_format_json=json.dumps(ANSWERS_FORMAT),
    )
    folder = Path(folder)
    html_path = atomic_write(folder / f"{name}.html", page)
    key = {"format": KEY_FORMAT, "sheet": sheet_id, "real": list(real), "truth": truth, "seed": seed}
    key_path = atomic_write(folder / f"{name}.key.json", json.dumps(key, indent=1) + "\n")
    return ReadingSheet(html_path, key_path, sheet_id, len(ids))


def binomial_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) confidence interval of a proportion ``successes / trials``.

    Example:
        >>> low, high = binomial_interval(5, 10)
        >>> round(low, 4), round(high, 4)
        (0.1871, 0.8129)
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ConfigError(f"need 0 <= successes <= trials and trials >= 1; got {successes} of {trials}.")
    try:
        from scipy.stats import beta
    except ImportError as exc:  # pragma: no cover - scipy is in the stats extra
        raise MissingDependencyError(
            "the confidence interval needs SciPy. Fix: pip install 'latent-transforms[stats]'."
        ) from exc
    tail = (1 - confidence) / 2
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(beta.ppf(1 - tail, successes + 1, trials - successes))
    return low, high


@dataclass
class FakeIdentificationRate:
    """Per source: how many images the readers called synthetic, the rate and its 95 % interval.

    For a generator that rate is its FIR (Xing et al. 2023; lower: harder to tell from real); for the
    real images it is the false-alarm rate.

    Attributes:
        sources: ``{source: {"identified", "answered", "rate", "ci_low", "ci_high", "real"}}``.
        unanswered: images without an answer (left out of every rate).
        readers: the reader names found in the answers.
    """

    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    unanswered: int = 0
    readers: list[str] = field(default_factory=list)

    @property
    def fir(self) -> dict[str, float]:
        """``{generator: FIR}`` (synthetic sources only)."""
        return {k: v["rate"] for k, v in self.sources.items() if not v["real"]}

    def to_markdown(self) -> str:
        """A table: source, identified / answered, rate, 95 % CI."""
        lines = ["| source | identified as synthetic | rate | 95 % CI |", "|---|---|---|---|"]
        for name, v in self.sources.items():
            label = f"{name} (real)" if v["real"] else name
            rate = "-" if math.isnan(v["rate"]) else f"{v['rate']:.2f}"
            ci = "-" if math.isnan(v["rate"]) else f"[{v['ci_low']:.2f}, {v['ci_high']:.2f}]"
            lines.append(f"| {label} | {v['identified']} / {v['answered']} | {rate} | {ci} |")
        return "\n".join(lines)


def _load(path_or_data: str | Path | Mapping[str, Any], what: str) -> dict[str, Any]:
    if isinstance(path_or_data, Mapping):
        return dict(path_or_data)
    path = Path(path_or_data)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no {what} file at {path}.") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not a JSON {what} file ({exc}).") from exc


def score_reading_sheet(
    answers: str | Path | Mapping[str, Any] | Sequence[str | Path | Mapping[str, Any]],
    key: str | Path | Mapping[str, Any],
) -> FakeIdentificationRate:
    """Score one or more readers' answer files against a sheet's key.

    Every answered image counts once per reader (two readers of 50 images give 100 answers per rate).

    Example:
        >>> key = {"format": KEY_FORMAT, "sheet": "s1", "real": ["real"],
        ...        "truth": {"1": "real", "2": "gan", "3": "gan", "4": "real"}}
        >>> answers = {"format": ANSWERS_FORMAT, "sheet": "s1", "reader": "A",
        ...            "answers": {"1": "real", "2": "synthetic", "3": "real", "4": None}}
        >>> result = score_reading_sheet(answers, key)
        >>> result.fir, result.unanswered, result.sources["real"]["rate"]
        ({'gan': 0.5}, 1, 0.0)
    """
    key_data = _load(key, "answer key")
    if key_data.get("format") != KEY_FORMAT or "truth" not in key_data:
        raise ConfigError("the key is not a reading-sheet key (written by write_reading_sheet).")
    truth: dict[str, str] = key_data["truth"]
    real = set(key_data.get("real", ["real"]))
    files = [answers] if isinstance(answers, str | Path | Mapping) else list(answers)
    if not files:
        raise ConfigError("no answer files given.")
    counts: dict[str, list[int]] = {source: [0, 0] for source in dict.fromkeys(truth.values())}
    result = FakeIdentificationRate()
    for item in files:
        data = _load(item, "answers")
        if data.get("sheet") != key_data.get("sheet"):
            raise ConfigError(
                f"these answers are for sheet {data.get('sheet')!r}, the key for {key_data.get('sheet')!r}. "
                "Fix: score each answer file with the key written beside its sheet."
            )
        result.readers.append(str(data.get("reader") or "?"))
        for image_id, source in truth.items():
            choice = data.get("answers", {}).get(image_id)
            if choice is None:
                result.unanswered += 1
                continue
            if choice not in ANSWERS:
                raise ConfigError(f"answer {choice!r} for image {image_id}; expected one of {ANSWERS}.")
            counts[source][1] += 1
            counts[source][0] += choice == "synthetic"
    for source, (identified, answered) in counts.items():
        low, high = binomial_interval(identified, answered) if answered else (math.nan, math.nan)
        result.sources[source] = {
            "identified": identified,
            "answered": answered,
            "rate": identified / answered if answered else math.nan,
            "ci_low": low,
            "ci_high": high,
            "real": source in real,
        }
    return result
