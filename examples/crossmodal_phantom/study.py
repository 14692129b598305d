"""The study's loop: per split, train the two translators (CycleGAN, DUIIT), measure their translations
against real CT, train every row's predictor and score it on the CT test patients. Each finished unit is
a JSON file under ``<out>/units``; a rerun skips them, and the translators resume their own training."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from latent_transforms import TranslatorConfig, TranslatorOptions, feature_network, train_translator
from latent_transforms.metrics import fid, precision_recall

from .config import StudyConfig
from .data import Split, make_split
from .predictors import Part, Protocol, metric, standard_da


class Study:
    """The cross-modal study of ``config`` (see ``run.py``)."""

    def __init__(self, config: StudyConfig) -> None:
        self.config = config
        self.out = Path(config.out)
        self.log: list[str] = []

    # -- units ---------------------------------------------------------------------------------------
    def unit(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.out / "units" / f"{name}.json"
        if path.is_file():
            return json.loads(path.read_text())
        start = time.monotonic()
        result = {**compute(), "seconds": round(time.monotonic() - start, 2)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(path)
        return result

    # -- translators ---------------------------------------------------------------------------------
    def translator(self, split: Split, method: str):
        c = self.config
        config = TranslatorConfig(
            resolution=c.resolution,
            width=c.translator_width,
            blocks=c.translator_blocks,
            disc_width=c.disc_width,
            disc_layers=c.disc_layers,
            task=c.task if method == "duiit" else None,
            outputs=1 if c.task == "regression" else 2,
            predictor_depth=10,
            predictor_width=c.predictor_width,
            training={"name": f"{method} phantom split {split.seed}"},
        )
        options = TranslatorOptions(
            epochs=c.translator_epochs, batch_size=c.translator_batch, seed=split.seed, checkpoint_every=200
        )
        return train_translator(
            config,
            split.mri,
            split.ct_train,
            self.out / f"split-{split.seed}" / method,
            options,
            device=c.device,
            progress=c.progress,
        )

    def translation_scores(self, translated: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        fx = feature_network(self.config.feature_network, device=self.config.device)
        a, b = fx.embed(real)[:, 0].cpu(), fx.embed(translated)[:, 0].cpu()
        return {"fid": fid(a, b), **precision_recall(a, b)}

    # -- one split -----------------------------------------------------------------------------------
    def run_split(self, seed: int) -> dict[str, Any]:
        c = self.config
        split = make_split(c, seed)
        labels = split.ct_train.labels
        protocol = Protocol(
            width=c.predictor_width,
            epochs=c.predictor_epochs,
            batch=c.predictor_batch,
            mean=float(labels.float().mean()),
            std=max(float(labels.float().std()), 1e-3),
            seed=100 * seed + 7,
            device=c.device,
            task=c.task,
        )
        bundles = {m: self.translator(split, m) for m in ("cyclegan", "duiit")}
        translated = {m: b.translate(split.mri.images).clamp(-1, 1) for m, b in bundles.items()}
        held_out = torch.cat([split.ct_val.images, split.ct_test.images])
        scores = {
            m: self.unit(
                f"split-{seed}/translation-{m}", lambda m=m: self.translation_scores(translated[m], held_out)
            )
            for m in translated
        }
        ct = Part(split.ct_train.images, split.ct_train.labels)
        mri = split.mri.labels
        val, test = Part(split.ct_val.images, split.ct_val.labels), split.ct_test

        key = c.metric

        def score(net) -> dict[str, float]:
            return {
                key: protocol.score(net, test.images, test.labels),
                f"val_{key}": protocol.score(net, val.images, val.labels),
            }

        def duiit_joint() -> dict[str, float]:
            bundle = bundles["duiit"]

            def predicted(images: torch.Tensor) -> torch.Tensor:
                out = bundle.predict(images)
                return out.argmax(1) if c.task == "classification" else out

            return {
                key: metric(c.task, predicted(test.images), test.labels),
                f"val_{key}": metric(c.task, predicted(val.images), val.labels),
            }

        def transfer() -> dict[str, float]:
            pre = protocol.fit([Part(split.mri.images, mri)], None)
            return score(protocol.fit([ct], val, net=pre))

        rows: dict[str, Callable[[], dict[str, float]]] = {
            "PURE-CT": lambda: score(protocol.fit([ct], val)),
            "MIX-CycleGAN": lambda: score(protocol.fit([ct, Part(translated["cyclegan"], mri)], val)),
            "MIX-DUIIT": lambda: score(protocol.fit([ct, Part(translated["duiit"], mri)], val)),
            "DUIIT-joint": duiit_joint,
            "TL": transfer,
            "MTL": lambda: score(protocol.fit([ct, Part(split.mri.images, mri, head=1)], val, heads=2)),
            "DANN": lambda: score(protocol.fit([ct, Part(split.mri.images, mri, domain=1)], val, dann=True)),
            "StandardDA": lambda: score(protocol.fit([ct], val, augment=standard_da(seed))),
        }
        methods = {row: self.unit(f"split-{seed}/{row}", rows[row]) for row in c.rows}
        return {"seed": seed, "patients": split.patients(), "methods": methods, "translation": scores}

    def run(self) -> list[dict[str, Any]]:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(self.config.to_dict(), indent=1) + "\n")
        return [self.run_split(seed) for seed in range(self.config.splits)]
