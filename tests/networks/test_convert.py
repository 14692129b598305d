"""The snapshot converter: reproduces the original networks, and never executes the pickle's code.

The snapshots are built by ``tests/fixtures/sg2ada/build_snapshot.py`` (in a subprocess): an
independent re-implementation of NVIDIA's StyleGAN2-ADA networks whose pickles have the same form as
real ``network-snapshot-*.pkl`` files, with reference outputs computed by that implementation. This
process never imports the fixture's code, so the converter has to do without it.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from latent_transforms import ConversionError, UnsafePickleError, convert_stylegan2_pickle, load_gan
from latent_transforms.cli import main
from latent_transforms.networks.convert import read_snapshot

BUILDER = Path(__file__).resolve().parent.parent / "fixtures" / "sg2ada" / "build_snapshot.py"
TOL = 1e-4

CASES = {
    # the LatentAugment authors' kind of model: 2 channels, conv_clamp 256
    "ada-2ch-32px": ["--flavour", "ada", "--resolution", "32", "--channels", "2", "--c-dim", "0"],
    # stylegan3 code base, --cfg=stylegan2, conditional, no clamp
    "sg3-cond-16px": [
        "--flavour",
        "stylegan3",
        "--resolution",
        "16",
        "--channels",
        "1",
        "--c-dim",
        "3",
        "--conv-clamp",
        "none",
    ],
    # clamping that actually triggers, Freeze-D buffers, an old pickle protocol
    "ada-clamp1-freezed-p2": [
        "--flavour",
        "ada",
        "--resolution",
        "16",
        "--channels",
        "2",
        "--conv-clamp",
        "1",
        "--freeze-d",
        "2",
        "--protocol",
        "2",
        "--augment-pipe",
    ],
}


def _build(out: Path, args: list[str]) -> Path:
    run = subprocess.run(
        [sys.executable, str(BUILDER), "--out", str(out), *args], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return out


@pytest.fixture(scope="module", params=sorted(CASES))
def snapshot(request, tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp(request.param), CASES[request.param])


def test_converted_networks_reproduce_the_original_outputs(snapshot):
    ref = load_file(snapshot / "reference.safetensors")
    meta = json.loads((snapshot / "reference.json").read_text())
    bundle = convert_stylegan2_pickle(snapshot / "network-snapshot-000000.pkl", w_stats_samples=64)
    cfg = bundle.config
    assert (cfg.resolution, cfg.img_channels, cfg.c_dim) == (
        meta["resolution"],
        meta["channels"],
        meta["c_dim"],
    )
    assert cfg.num_ws == meta["num_ws"]
    G, D = bundle.generator, bundle.discriminator
    c = ref.get("c")
    with torch.no_grad():
        ws = G.mapping(ref["z"], c)
        assert (ws - ref["ws"]).abs().max() < TOL
        trunc = G.mapping(ref["z"], c, truncation_psi=meta["truncation_psi"])
        assert (trunc - ref["ws_trunc"]).abs().max() < TOL
        cut = G.mapping(
            ref["z"],
            c,
            truncation_psi=meta["truncation_psi"],
            truncation_cutoff=meta["truncation_cutoff_extra"],
        )
        assert (cut - ref["ws_trunc_cutoff"]).abs().max() < TOL
        for path in ("grouped", "nonfused"):
            G.modulation = path
            assert (G.synthesis(ref["ws"], noise_mode="const") - ref["img_const_fused"]).abs().max() < TOL
            assert (G.synthesis(ref["ws"], noise_mode="none") - ref["img_none"]).abs().max() < TOL
        assert (D(ref["d_input"], c) - ref["d_logits"]).abs().max() < TOL
        assert (D(ref["img_const_fused"], c) - ref["d_logits_gimg"]).abs().max() < TOL


def test_bundle_written_by_the_cli_loads_and_matches(snapshot, tmp_path, capsys):
    out = tmp_path / "bundle"
    names = "mri,ct" if json.loads((snapshot / "reference.json").read_text())["channels"] == 2 else "ct"
    assert (
        main(
            [
                "convert",
                str(snapshot / "network-snapshot-000000.pkl"),
                str(out),
                "--modalities",
                names,
                "--w-stats-samples",
                "64",
            ]
        )
        == 0
    )
    assert "converted" in capsys.readouterr().out
    bundle = load_gan(out)
    ref = load_file(snapshot / "reference.safetensors")
    with torch.no_grad():
        img = bundle.generator.synthesis(ref["ws"])
    assert (img - ref["img_const_fused"]).abs().max() < TOL
    assert bundle.config.windows["ct"].low == -1000  # the paper's window for a modality named ct
    assert bundle.config.training["snapshot_sha256"]
    assert set(bundle.w_stats) == {"w_avg", "w_mean", "w_cov"}


@pytest.fixture(scope="module")
def malicious(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("malicious")
    sentinel = folder / "PWNED"
    _build(folder, ["--resolution", "16", "--malicious", str(sentinel)])
    assert not sentinel.exists()
    return folder, sentinel


def test_a_pickle_that_calls_os_system_or_exec_is_refused_and_nothing_runs(malicious):
    folder, sentinel = malicious
    with pytest.raises(UnsafePickleError, match=r"builtins\.exec|posix\.system") as err:
        convert_stylegan2_pickle(folder / "malicious-reduce.pkl")
    assert "Nothing from the file was executed" in str(err.value)
    assert not sentinel.exists()


def test_module_source_carried_by_the_pickle_is_never_executed(malicious, tmp_path):
    folder, sentinel = malicious
    # The payload sits in the embedded module source; plain unpickling would run it. We convert.
    bundle = convert_stylegan2_pickle(folder / "malicious-exec.pkl", tmp_path / "out", w_stats_samples=16)
    assert bundle.generator.img_resolution == 16
    assert not sentinel.exists()


class _CallOnLoad:
    """Pickles as ``func(*args)``, the way a malicious pickle smuggles a call in."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def test_a_refused_nested_storage_says_what_and_gives_no_unsafe_advice(tmp_path):
    # A snapshot-shaped pickle whose "tensor storage" is a torch.save stream that calls os.system.
    sentinel = tmp_path / "PWNED"
    inner = io.BytesIO()
    payload = {"w": _CallOnLoad(os.system, f"touch {sentinel}")}
    torch.save(payload, inner, _use_new_zipfile_serialization=False)
    path = tmp_path / "network-snapshot-000000.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _CallOnLoad(torch.storage._load_from_bytes, inner.getvalue())}))
    with pytest.raises(UnsafePickleError, match=r"references '(posix|nt)\.system'") as err:
        read_snapshot(path)
    message = str(err.value)
    assert "Nothing from the file was executed" in message
    assert "re-save it" in message  # the safe way out
    assert "weights_only" not in message and "trusted source" not in message  # torch's unsafe advice
    assert not sentinel.exists()


def test_other_pickles_are_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Path("x")}))
    with pytest.raises(UnsafePickleError, match=r"pathlib\.(Posix)?Path"):
        read_snapshot(path)
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ConversionError, match="expected a dict with 'G_ema'"):
        read_snapshot(path)
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(UnsafePickleError):
        read_snapshot(path)


def test_wrong_number_of_modality_names(snapshot):
    with pytest.raises(ConversionError, match="one name per channel"):
        convert_stylegan2_pickle(snapshot / "network-snapshot-000000.pkl", modalities=["a", "b", "c"])
