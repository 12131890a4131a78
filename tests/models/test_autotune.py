"""Measured back-end choice, its cache, and the CUDA batch sizing guard."""

from __future__ import annotations

import json
import time

import pytest
import torch

from models.autotune import (
    choose_runner,
    cuda_batch_size,
    machine_fingerprint,
    representative_tiles,
    time_runner,
)
from models.errors import ModelError
from tests.models.conftest import tiny_config


def _sleepy(seconds):
    def make():
        def run(x):
            time.sleep(seconds)
            return x
        return run
    return make


def test_picks_the_faster_and_caches(tmp_path):
    built = []

    def counting(name, seconds):
        def make():
            built.append(name)
            return _sleepy(seconds)()
        return make

    tiles = torch.zeros(2, 3, 8, 8)
    cache = tmp_path / "c.json"
    cands = {"slow": counting("slow", 0.02), "fast": counting("fast", 0.0)}
    choice, runner = choose_runner(cands, tiles=tiles, key="k1", cache_path=cache, repeats=2)
    assert choice.backend == "fast" and not choice.cached
    assert choice.seconds_per_tile["slow"] > choice.seconds_per_tile["fast"]
    assert choice.speedup > 1
    assert json.loads(cache.read_text())["k1"]["backend"] == "fast"
    built.clear()
    again, _ = choose_runner(cands, tiles=tiles, key="k1", cache_path=cache)
    assert again.cached and again.backend == "fast" and built == ["fast"]  # no timing
    other, _ = choose_runner(cands, tiles=tiles, key="k2", cache_path=cache, repeats=1)
    assert not other.cached  # another model or machine is measured afresh
    refreshed, _ = choose_runner(cands, tiles=tiles, key="k1", cache_path=cache, repeats=1,
                                 refresh=True)
    assert not refreshed.cached


def test_unavailable_candidates_are_skipped_and_reported():
    def broken():
        raise ImportError("no such runtime")

    choice, _ = choose_runner({"broken": broken, "ok": _sleepy(0)},
                              tiles=torch.zeros(1, 3, 4, 4), key="k", repeats=1)
    assert choice.backend == "ok" and "no such runtime" in choice.unavailable["broken"]
    with pytest.raises(ModelError, match="no network runner"):
        choose_runner({"broken": broken}, tiles=torch.zeros(1, 3, 4, 4), key="k")


def test_representative_tiles_and_timing():
    cfg = tiny_config()
    t = representative_tiles(cfg, 3)
    assert t.shape == (3, 3, 64, 64) and 0 <= float(t.min()) and float(t.max()) <= 1
    assert time_runner(lambda x: x + 1, t, repeats=1) >= 0
    with pytest.raises(ValueError, match="repeats"):
        time_runner(lambda x: x, t, repeats=0)
    assert "cores=" in machine_fingerprint()


def test_cuda_batch_size_needs_cuda():
    with pytest.raises(ModelError, match="CUDA"):
        cuda_batch_size(lambda x: x, tiny_config(), device=torch.device("cpu"))


def test_clearly_slow_runner_is_timed_once():
    calls = []

    def slow(x):
        calls.append(1)
        time.sleep(0.03)
        return x

    t = time_runner(slow, torch.zeros(3, 3, 4, 4), repeats=3, give_up_after=0.01)
    assert calls == [1] and t >= 0.01


def test_timing_under_load_is_recorded(tmp_path):
    cache = tmp_path / "c.json"
    choice, _ = choose_runner({"ok": _sleepy(0)}, tiles=torch.zeros(1, 3, 4, 4), key="k",
                              cache_path=cache, repeats=1, contention=1)
    assert choice.backend == "ok"
    assert json.loads(cache.read_text())["k"]["contention"] == 1
