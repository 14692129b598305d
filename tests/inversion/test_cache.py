"""LatentCache: round trips, refusals, image keys, killed and concurrent writers, damaged files."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing as mp
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from latent_transforms.errors import (
    CacheMismatchError,
    CacheNotFoundError,
    ConfigError,
    LatentTransformsError,
)
from latent_transforms.inversion.cache import LatentCache, image_key

WRITER = Path(__file__).with_name("_cache_writer.py")
_spec = importlib.util.spec_from_file_location("_cache_writer", WRITER)
writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(writer)

FP = "ab" * 32
OTHER_FP = "cd" * 32


def _open(folder, **kwargs) -> LatentCache:
    kwargs.setdefault("fingerprint", FP)
    return LatentCache(folder, **kwargs)


def _assert_entry(cache: LatentCache, i: int) -> None:
    got = cache.entry(f"key-{i:05d}")
    want = writer.expected_entry(i)
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name].dtype == (torch.int64 if name == "steps" else torch.float32)
        assert torch.equal(got[name], value.to(got[name].dtype)), name


# ----------------------------------------------------------------------------- round trips


def test_round_trip_put_flush_get_across_reopen(tmp_path):
    folder = tmp_path / "cache"
    w = torch.randn(5, 4, 8, dtype=torch.float64)
    psnr = torch.rand(5, 2) * 40
    keys = [f"patient-{i:03d}/slice-001" for i in range(5)]
    with _open(folder, settings={"steps": 100}, shard_size=2) as cache:
        assert cache.put_batch(keys[:4], w[:4], psnr=psnr[:4], steps=torch.arange(4)) == 4
        assert cache.buffered == 0  # two shards of two
        assert cache.put(keys[4], w[4], psnr=psnr[4], steps=4)
        # buffered, not flushed: visible in this process
        assert cache.buffered == 1 and keys[4] in cache and len(cache) == 5
        assert torch.equal(cache.get(keys[4]), w[4].float())
        assert list(cache) == sorted(keys) == cache.keys()
        assert cache.w_shape == (4, 8) and cache.space == "W+"
    assert len(list((folder / "shards").glob("*.safetensors"))) == 3
    for reader in (_open(folder, mode="r"), LatentCache.open(folder), _open(folder, settings={"steps": 100})):
        assert len(reader) == 5 and sorted(reader) == sorted(keys)
        got, found = reader.get_batch(keys=keys)
        assert found.all() and got.dtype == torch.float32 and torch.equal(got, w.float())
        entry = reader.entry(keys[3])
        assert torch.equal(entry["psnr"], psnr[3]) and entry["steps"].item() == 3
        assert entry["steps"].dtype == torch.int64
        assert reader.fingerprint == FP and reader.settings == {"steps": 100}
    assert "missing-key" not in reader and 42 not in reader


def test_get_batch_by_image_content_and_missing_modes(tmp_path):
    images = torch.rand(4, 2, 8, 8) * 2 - 1
    w = torch.randn(4, 16)
    with _open(tmp_path) as cache:
        cache.put_batch([image_key(x) for x in images[:3]], w[:3])
        got, found = cache.get_batch(images, missing="mask")
        assert found.tolist() == [True, True, True, False]
        assert torch.equal(got[:3], w[:3]) and torch.equal(got[3], torch.zeros(16))
        with pytest.raises(KeyError, match=r"1 of 4 key\(s\) not in the latent cache.*missing='mask'"):
            cache.get_batch(images)
        with pytest.raises(KeyError, match="not in the latent cache"):
            cache.get("nope")
        empty_w, empty_found = cache.get_batch(keys=[])
        assert empty_w.shape == (0, 16) and empty_found.shape == (0,)
        with pytest.raises(ConfigError, match="not both"):
            cache.get_batch(images, keys=["a"])


def test_empty_cache_reports_unknown_layout(tmp_path):
    cache = _open(tmp_path)
    assert cache.w_shape is None and cache.space is None and len(cache) == 0
    w, found = cache.get_batch(keys=["a", "b"], missing="mask")
    assert w.shape == (2, 0) and not found.any()
    assert "entries=0" in repr(cache) and "fingerprint='abababababab'" in repr(cache)


def test_values_are_stored_as_float32_int64_and_bool(tmp_path):
    with _open(tmp_path) as cache:
        cache.put(
            "a", torch.ones(3, dtype=torch.float16), steps=7, ok=True, psnr=torch.tensor([float("inf")])
        )
        cache.put("b", torch.ones(3), steps=torch.tensor(8, dtype=torch.int32), ok=False, psnr=[30])
    entry = LatentCache.open(tmp_path).entry("b")
    assert entry["w"].dtype == torch.float32 and entry["steps"].dtype == torch.int64
    assert entry["ok"].dtype == torch.bool and entry["psnr"].dtype == torch.float32
    assert entry["psnr"].item() == 30.0
    assert LatentCache.open(tmp_path).entry("a")["psnr"].item() == float("inf")


def test_putting_a_present_key_changes_nothing(tmp_path):
    with _open(tmp_path, shard_size=1) as cache:
        assert cache.put("k", torch.zeros(4))
        assert not cache.put("k", torch.ones(4))
        assert cache.put_batch(["k", "j", "j"], torch.ones(3, 4)) == 1
    assert torch.equal(LatentCache.open(tmp_path).get("k"), torch.zeros(4))
    assert LatentCache.open(tmp_path).verify()["rows"] == 2


def test_invalid_entries_are_rejected(tmp_path):
    cache = _open(tmp_path)
    with pytest.raises(ConfigError, match="NaN or Inf"):
        cache.put("a", torch.tensor([0.0, float("nan")]))
    with pytest.raises(ConfigError, match="NaN"):
        cache.put("a", torch.zeros(2), psnr=torch.tensor([float("nan")]))
    with pytest.raises(ConfigError, match=r"\[B, w_dim\]"):
        cache.put("a", torch.zeros(2, 3, 4))
    with pytest.raises(ConfigError, match="one row per key"):
        cache.put_batch(["a", "b"], torch.zeros(3, 4))
    with pytest.raises(ConfigError, match="non-empty strings"):
        cache.put_batch(["a", ""], torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="one string"):
        cache.put_batch("ab", torch.zeros(2, 4))
    assert len(cache) == 0


# ----------------------------------------------------------------------------- refusals


def test_refuses_a_cache_made_with_another_generator(tmp_path):
    _open(tmp_path).close()
    with pytest.raises(CacheMismatchError) as info:
        LatentCache(tmp_path, fingerprint=OTHER_FP)
    message = str(info.value)
    assert FP in message and OTHER_FP in message and "another cache folder" in message
    with pytest.raises(CacheMismatchError):
        LatentCache(tmp_path, fingerprint=OTHER_FP, mode="r")
    assert LatentCache.open(tmp_path).fingerprint == FP  # open() inspects any cache


def test_refuses_other_projector_settings_unless_told(tmp_path):
    _open(tmp_path, settings={"steps": 500, "space": "W+", "lr": 0.1}).close()
    with pytest.raises(CacheMismatchError, match=r"steps: expected 100, found 500.*check_settings=False"):
        _open(tmp_path, settings={"steps": 100, "space": "W+", "lr": 0.1})
    _open(tmp_path, settings={"steps": 100}, check_settings=False)
    _open(tmp_path)  # settings=None: accept what is recorded
    _open(tmp_path, settings={"lr": 0.1, "space": "W+", "steps": 500})  # order does not matter
    with pytest.raises(ConfigError, match="JSON-able"):
        _open(tmp_path, settings={"device": torch.device("cpu")})


def test_refuses_entries_whose_fields_differ(tmp_path):
    with _open(tmp_path) as cache:
        cache.put("a", torch.zeros(4, 8), psnr=torch.zeros(2))
        with pytest.raises(CacheMismatchError, match=r"per-entry shape \[4, 8\].*shape \[8\]"):
            cache.put("b", torch.zeros(8), psnr=torch.zeros(2))
        with pytest.raises(CacheMismatchError, match=r"missing: \['psnr'\]"):
            cache.put("b", torch.zeros(4, 8))
        with pytest.raises(CacheMismatchError, match="float32"):
            cache.put("b", torch.zeros(4, 8), psnr=torch.zeros(3))
    # the layout is in cache.json: a later process is held to it too
    layout = json.loads((tmp_path / "cache.json").read_text())["fields"]
    assert layout == {"psnr": {"dtype": "float32", "shape": [2]}, "w": {"dtype": "float32", "shape": [4, 8]}}
    with _open(tmp_path) as again, pytest.raises(CacheMismatchError, match="per-entry shape"):
        again.put("c", torch.zeros(4, 9), psnr=torch.zeros(2))


@pytest.mark.filterwarnings("ignore:.*unflushed entries")
def test_two_writers_with_different_layouts_cannot_both_write(tmp_path):
    first, second = _open(tmp_path), _open(tmp_path)
    first.put("a", torch.zeros(4))
    second.put("b", torch.zeros(5))
    first.flush()
    with pytest.raises(CacheMismatchError, match="another process recorded the fields"):
        second.flush()
    assert len(list((tmp_path / "shards").glob("*.safetensors"))) == 1


def test_read_only_and_missing_caches(tmp_path):
    with pytest.raises(CacheNotFoundError, match="no latent cache") as info:
        LatentCache(tmp_path / "nowhere", fingerprint=FP, mode="r")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, LatentTransformsError)
    with pytest.raises(CacheNotFoundError):
        LatentCache.open(tmp_path / "nowhere")
    _open(tmp_path).close()
    reader = _open(tmp_path, mode="r")
    with pytest.raises(ConfigError, match="read-only"):
        reader.put("a", torch.zeros(2))
    with pytest.raises(ConfigError, match="mode must be"):
        _open(tmp_path, mode="w")
    with pytest.raises(ConfigError, match="fingerprint"):
        LatentCache(tmp_path, fingerprint="")
    closed = _open(tmp_path)
    closed.close()
    with pytest.raises(ConfigError, match="closed"):
        closed.put("a", torch.zeros(2))


# ----------------------------------------------------------------------------- image keys


def test_image_key_ignores_ulp_noise_and_input_dtype():
    gen = torch.Generator().manual_seed(0)
    # a normalised 8-bit image, as a PNG dataset produces it
    image = torch.randint(0, 256, (2, 16, 16), generator=gen).double() / 255 * 2 - 1
    noise = (torch.rand(image.shape, generator=gen, dtype=torch.float64) * 2 - 1) * 1e-7
    key = image_key(image)
    assert key == image_key(image.float()) == image_key(image + noise) == image_key((image + noise).float())
    assert len(key) == 64 and int(key, 16) >= 0


def test_image_key_differs_between_images_and_shapes():
    image = torch.linspace(-1, 1, 2 * 8 * 8).reshape(2, 8, 8)
    other = image.clone()
    other[0, 3, 3] += 1e-3
    assert image_key(image) != image_key(other)
    assert image_key(image) != image_key(image.reshape(2, 4, 16))
    assert image_key(image) != image_key(image.flip(0))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.zeros(1, 2, 4, 4), r"\[C, H, W\]"),
        (torch.zeros(2, 4, 4, dtype=torch.uint8), "float image"),
        (torch.full((2, 4, 4), 1500.0), r"\[-1, 1\]"),
        (torch.full((2, 4, 4), float("nan")), "NaN"),
        (torch.zeros(2, 0, 4), "empty"),
    ],
)
def test_image_key_rejects_unnormalised_input(bad, match):
    with pytest.raises(ConfigError, match=match):
        image_key(bad)


# ----------------------------------------------------------------------------- shards, index, visibility


def test_same_key_in_two_shards_first_shard_name_wins(tmp_path):
    a, b = _open(tmp_path), _open(tmp_path)
    a.put("k", torch.zeros(3))
    b.put("k", torch.ones(3))
    name_b, name_a = b.flush(), a.flush()
    first_value = torch.zeros(3) if name_a < name_b else torch.ones(3)
    for reader in (LatentCache.open(tmp_path), _open(tmp_path, mode="r")):
        assert torch.equal(reader.get("k"), first_value)
    assert LatentCache.open(tmp_path).verify()["duplicates"] == 1


def test_other_processes_entries_appear_after_refresh(tmp_path):
    reader = _open(tmp_path, mode="a")
    reader.refresh_interval = 0.0
    with _open(tmp_path) as other:
        other.put("x", torch.ones(2))
    assert "x" in reader  # lazy refresh on a miss
    assert torch.equal(reader.get("x"), torch.ones(2)) and reader.w_shape == (2,)
    with _open(tmp_path) as other:
        other.put("y", torch.ones(2))
    assert reader.refresh() == 1


def test_shards_missing_from_the_index_are_found(tmp_path):
    with _open(tmp_path, shard_size=1) as cache:
        cache.put("a", torch.zeros(2))
    index = json.loads((tmp_path / "index.json").read_text())
    assert [row[1] for row in index["shards"]] == [1] and index["entries"] == {"a": [0, 0]}
    unindexed = _open(tmp_path, shard_size=1)
    unindexed.index_interval = 1e9
    unindexed.put("b", torch.ones(2))  # flushed; killed before the index is rewritten
    reader = LatentCache.open(tmp_path)
    assert sorted(reader) == ["a", "b"] and reader.verify()["index"] == "stale"
    (tmp_path / "index.json").write_text("{not json")
    assert sorted(LatentCache.open(tmp_path)) == ["a", "b"]
    report = _open(tmp_path).verify(repair=True)
    assert report["index"] == "invalid" and LatentCache.open(tmp_path).verify()["index"] == "ok"


def test_unflushed_entries_warn_when_dropped(tmp_path):
    cache = _open(tmp_path)
    cache.put("a", torch.zeros(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache.__del__()
    assert any("unflushed" in str(w.message) for w in caught)
    cache.close()


def test_pickles_as_a_reopened_cache(tmp_path):
    with _open(tmp_path, settings={"steps": 3}) as cache:
        cache.put("a", torch.zeros(2))
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.folder == cache.folder and torch.equal(clone.get("a"), torch.zeros(2))
    assert clone.settings == {"steps": 3} and clone.mode == "a"


# ----------------------------------------------------------------------------- damage and repair


def test_half_written_temp_files_are_ignored_and_only_stale_ones_removed(tmp_path):
    with _open(tmp_path, shard_size=1) as cache:
        cache.put("a", torch.zeros(2))
    temp = tmp_path / "shards" / ".0000-1-deadbeef.safetensors.x1y2.tmp"
    temp.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{half")
    reader = LatentCache.open(tmp_path)
    assert sorted(reader) == ["a"]
    report = _open(tmp_path).verify(repair=True)  # young: may belong to a live writer
    assert report["temp_files"] == 1 and report["removed_temp_files"] == 0 and temp.exists()
    old = time.time() - 3600
    os.utime(temp, (old, old))
    _open(tmp_path)  # the next writer removes stale temp files
    assert not temp.exists()


def test_damaged_shard_fails_verify_and_repair_moves_it_aside(tmp_path):
    with _open(tmp_path, shard_size=2) as cache:
        cache.put_batch(["a", "b", "c", "d"], torch.randn(4, 3))
    shards = sorted((tmp_path / "shards").glob("*.safetensors"))
    shards[1].write_bytes(shards[1].read_bytes()[:40])  # bit rot / truncated copy
    (tmp_path / "index.json").unlink()
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        reader = LatentCache.open(tmp_path)
    assert sorted(reader) == ["a", "b"]
    with pytest.raises(CacheMismatchError, match=r"1 damaged shard.*repair=True"):
        reader.verify()
    with pytest.raises(ConfigError, match="read-only"):
        reader.verify(repair=True)
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        report = _open(tmp_path).verify(repair=True)
    assert report["corrupt"] == 1 and report["moved"] == [shards[1].name]
    assert (tmp_path / "corrupt" / shards[1].name).exists()
    assert LatentCache.open(tmp_path).verify()["entries"] == 2
    with _open(tmp_path) as cache:  # the lost entries are simply recomputed
        assert cache.put_batch(["c", "d"], torch.zeros(2, 3)) == 2


def test_shard_with_non_finite_latents_is_damaged(tmp_path):
    from safetensors.torch import save_file

    with _open(tmp_path) as cache:
        cache.put("a", torch.zeros(2))
    meta = {"format": "latent-transforms-latent-cache-shard", "version": "1", "fingerprint": FP}
    bad = {"w": torch.tensor([[float("inf"), 0.0]])}
    save_file(bad, str(tmp_path / "shards" / "9999-1-ffffffff.safetensors"), {**meta, "keys": '["z"]'})
    with pytest.raises(CacheMismatchError, match="non-finite"):
        LatentCache.open(tmp_path).verify()


# ----------------------------------------------------------------------------- processes


def _start_writer(folder: Path, start: int, stop: int, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(folder), str(start), str(stop), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _flushed(lines: list[str]) -> set[str]:
    return {key for line in lines if line.startswith("FLUSHED ") for key in line.split()[1].split(",")}


def _wait_for(proc: subprocess.Popen, prefix: str, count: int = 1) -> list[str]:
    lines = []
    while sum(line.startswith(prefix) for line in lines) < count:
        line = proc.stdout.readline()
        assert line, f"writer exited early: {proc.stderr.read()}"
        lines.append(line.strip())
    return lines


def test_killed_writer_keeps_flushed_entries_and_resumes(tmp_path):
    folder, total = tmp_path / "cache", 240
    rng = random.Random(1234)
    kills = ["after-flushes", "random", "random"]
    # start every run now, so their imports overlap; run k waits for go-k before opening the cache
    gos = [tmp_path / f"go-{k}" for k in range(len(kills) + 1)]
    runs = [
        _start_writer(folder, 0, total, "--shard-size", "4", "--sleep", "0.005", "--go", str(go))
        for go in gos[:-1]
    ]
    runs.append(_start_writer(folder, 0, total, "--shard-size", "4", "--go", str(gos[-1])))
    flushed: set[str] = set()
    for kill, proc, go in zip(kills, runs, gos, strict=False):
        lines = _wait_for(proc, "READY")
        go.touch()
        if kill == "after-flushes":
            lines += _wait_for(proc, "FLUSHED", 3)
        else:
            lines += _wait_for(proc, "OPEN")
            time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()  # SIGKILL: no cleanup, no close()
        out, _ = proc.communicate()
        lines += out.split("\n")
        assert not any(line.startswith("DONE") for line in lines), "the writer finished before the kill"
        flushed |= _flushed(lines)
        cache = LatentCache(folder, fingerprint=writer.FINGERPRINT, mode="r")
        report = cache.verify()
        assert report["corrupt"] == 0 and report["duplicates"] == 0
        assert flushed <= set(cache), "an entry reported as flushed was lost"
        for key in flushed:
            _assert_entry(cache, int(key.split("-")[1]))
    assert flushed, "no shard was flushed before the kills"
    present = len(LatentCache.open(folder))
    _wait_for(runs[-1], "READY")
    gos[-1].touch()
    out, err = runs[-1].communicate(timeout=120)
    assert runs[-1].returncode == 0, err
    added, skipped = map(int, out.strip().split("\n")[-1].split()[1:])
    assert skipped == present and added == total - present  # finished work is not redone
    cache = LatentCache.open(folder)
    report = cache.verify()
    assert report["entries"] == report["rows"] == total == len(cache) and report["index"] == "ok"
    for i in range(0, total, 7):
        _assert_entry(cache, i)


def _forked_writer(folder, start, stop, go, results) -> None:
    go.wait(30)
    results.put(writer.write_range(folder, start, stop, shard_size=3, sleep=0.001, emit=lambda line: None))


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
def test_concurrent_writer_processes_never_corrupt_the_cache(tmp_path):
    # forked like DataLoader workers (spawned interpreters would spend ~10 s importing torch here)
    ctx = mp.get_context("fork")
    folder, go, results = tmp_path / "cache", ctx.Event(), ctx.Queue()
    ranges = [(0, 50), (50, 100), (100, 150), (130, 170)]  # the last overlaps the third
    procs = [ctx.Process(target=_forked_writer, args=(folder, a, b, go, results)) for a, b in ranges]
    for proc in procs:
        proc.start()
    go.set()  # all open the fresh folder at once: cache.json creation races too
    counts = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    added = sum(a for a, _ in counts)
    cache = LatentCache(folder, fingerprint=writer.FINGERPRINT, settings=writer.SETTINGS, mode="r")
    report = cache.verify()
    assert report["corrupt"] == 0 and report["entries"] == len(cache) == 170
    assert report["rows"] == added == 170 + report["duplicates"]
    for i in range(170):
        _assert_entry(cache, i)
    assert not list(folder.glob(".*.tmp")) and not list((folder / "shards").glob(".*.tmp"))


def _forked_put(cache: LatentCache) -> None:
    cache.put("child", torch.ones(2))
    cache.close()


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
def test_forked_child_does_not_flush_the_parents_buffer(tmp_path):
    cache = _open(tmp_path)
    cache.put("parent", torch.zeros(2))
    child = mp.get_context("fork").Process(target=_forked_put, args=(cache,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    cache.close()
    report = LatentCache.open(tmp_path).verify()
    assert report["rows"] == report["entries"] == 2 and report["shards"] == 2


# ----------------------------------------------------------------------------- properties


@hsettings(max_examples=12)
@given(
    batch=st.integers(1, 6),
    w_shape=st.sampled_from([(3,), (2, 5), (1, 1)]),
    channels=st.integers(1, 3),
    shard_size=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_put_batch_get_batch_round_trip(batch, w_shape, channels, shard_size, seed):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn((batch, *w_shape), generator=gen)
    psnr = torch.rand(batch, channels, generator=gen)
    steps = torch.randint(0, 1000, (batch,), generator=gen)
    keys = [f"k{seed}-{i}" for i in range(batch)]
    with tempfile.TemporaryDirectory() as folder:
        with LatentCache(folder, fingerprint=FP, shard_size=shard_size) as cache:
            assert cache.put_batch(keys, w, psnr=psnr, steps=steps) == batch
            got, found = cache.get_batch(keys=keys[::-1])
            assert found.all() and torch.equal(got, w.flip(0))
        reader = LatentCache.open(folder)
        got, found = reader.get_batch(keys=[*keys, "absent"], missing="mask")
        assert found.tolist() == [True] * batch + [False]
        assert torch.equal(got[:batch], w) and not got[batch].any()
        assert torch.equal(reader.entry(keys[-1])["steps"], steps[-1])
        assert reader.verify()["shards"] == -(-batch // shard_size)
