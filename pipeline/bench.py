"""``make bench`` (``donorsite bench``): benchmarks that write JSON and print a table (never
timed tests).

On the same photos (the demo study's, ``data/raw/demo``, when present; else 4000x3000 synthetic
photos from a development seed) and the same model (the shipped starter; an untrained network
of the same architecture when it is missing), in one run:

* calibration time per photo on one core;
* the naive loop (one photo at a time: full decode -> calibrate -> fp32 eager network ->
  measure -> write) and the engine, photos/s of each (median of ``repeats`` runs, naive and
  engine runs alternating) and the ratio, also per pair of neighbouring runs;
* each engine stage alone at its best (decode and calibrate in worker processes, the network
  with all its threads, measure + write in the writer threads) and the pipeline efficiency =
  engine photos/s / slowest stage's photos/s; where all stages share the same cores (a
  CPU-only machine) no schedule beats 1 / sum(1 / stage photos/s), reported beside it;
* the network alone: images (tiles) per second and TFLOP/s from FLOPs counted on the shipped
  architecture at its tile size, at several batch sizes, against a matrix-multiply peak
  measured in the same run (bf16 on a GPU, fp32 on the CPU);
* which CPU back-end the engine picked and the timings behind it;
* peak resident memory (main process, and with workers) and peak device memory;
* masks and healed % of the engine against the naive loop, and the calibration's area error
  at reduced-size decoding against full decoding (when the photos come with truth).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["run_benchmarks", "run_cpu_benchmark", "format_table"]


def _bench_photos(n: int, *, work_dir: Path, seed: int = 7,
                  size: str | None = None) -> tuple[list[Path], Path]:
    """The demo study's first ``n`` photos, or ``n`` synthetic 4000x3000 ones (made once;
    ``size`` forces synthetic photos of that size)."""
    from pipeline.config import PROJECT_ROOT

    demo = PROJECT_ROOT / "data" / "raw" / "demo"
    study = demo
    if size is not None or not (demo / "manifest.csv").is_file():
        from pipeline.synth import StudyConfig, generate_study

        size = size or "4000x3000"
        subjects = max(1, math.ceil(n / 3))
        study = work_dir / f"bench-study-{seed}-{subjects}-{size}"
        if not (study / "manifest.csv").exists():
            cfg = StudyConfig.from_cli(seed=seed, subjects=subjects, days="0,7,14",
                                       photos_per_visit=1, size=size)
            generate_study(study, cfg, jobs=os.cpu_count() or 1, force=True, progress=False)
    with (study / "manifest.csv").open() as fh:
        files = [study / r["file"] for r in csv.DictReader(fh)]
    return files[:n], study


def _model(name: str) -> tuple[Any, Any, dict, str]:
    from models.config import PRESETS
    from models.registry import WEIGHTS_DIR, load_model

    if (WEIGHTS_DIR / f"{name}.safetensors").is_file():
        lm = load_model(name)
        return lm.model, lm.config, lm.card, name
    import torch

    from models.factory import build_model

    torch.manual_seed(0)
    cfg = PRESETS["starter"]
    return build_model(cfg).eval(), cfg, {"sha256": "untrained-starter-architecture"}, \
        "untrained (starter architecture)"


def _agreement(a: dict, b: dict) -> dict[str, float]:
    agree, dh = [], []
    for k in a.keys() & b.keys():
        agree.append(float((a[k][0] == b[k][0]).mean()))
        if a[k][1] is not None and b[k][1] is not None:
            dh.append(abs(a[k][1] - b[k][1]))
    return {"photos": len(agree), "mask_agreement_min": min(agree, default=float("nan")),
            "mask_agreement_mean": statistics.fmean(agree) if agree else float("nan"),
            "healed_abs_diff_max": max(dh, default=0.0)}


def _reduced_accuracy(study: Path, photos: list[Path], sticker: Any) -> dict[str, Any] | None:
    """Area of the true donor-site mask through the calibration of a full and of a reduced
    decode, against the true area (needs the synthetic study's truth files)."""
    import numpy as np
    from PIL import Image

    from calibration import CalibrationError, calibrate
    from pipeline.decode import decode_photo
    from pipeline.engine_prepare import DecodePolicy, choose_reduce, rescale_calibration

    truth = study / "truth" / "photos.csv"
    if not truth.is_file():
        return None
    rows = {r["file"]: r for r in csv.DictReader(truth.open())}
    full_err, red_err = [], []
    for p in photos:
        row = rows.get(str(p.relative_to(study)))
        if row is None:
            continue
        data = p.read_bytes()
        full = decode_photo(data, name=p.name)
        k = choose_reduce(full.shape[1], full.shape[0], DecodePolicy())
        if k == 1:
            continue
        try:
            cf = calibrate(full.rgb, sticker)
            cr = rescale_calibration(calibrate(decode_photo(data, name=p.name, reduce=k).rgb,
                                               sticker), full.shape)
        except CalibrationError:
            continue
        mask = np.asarray(Image.open(study / row["mask_file"])) > 0
        true = float(row["donor_area_mm2"])
        full_err.append(100 * (cf.area_mm2(mask) / true - 1))
        red_err.append(100 * (cr.area_mm2(mask) / true - 1))
    if not full_err:
        return None
    return {"photos": len(full_err),
            "full_decode_area_error_pct_max_abs": max(map(abs, full_err)),
            "reduced_decode_area_error_pct_max_abs": max(map(abs, red_err)),
            "full_decode_area_error_pct_mean": statistics.fmean(full_err),
            "reduced_decode_area_error_pct_mean": statistics.fmean(red_err)}


def run_benchmarks(out_dir: Path, *, n_photos: int = 12, model: str = "starter",
                   repeats: int = 3, jobs: int | None = None) -> dict[str, Any]:
    """Run everything in the module docstring; write ``out_dir/bench.json``; return it."""
    import shutil

    import torch

    from calibration import load_sticker
    from models.predictor import Predictor
    from pipeline import bench_stages as bs
    from pipeline.decode import sha256_bytes
    from pipeline.engine import Engine, EngineOptions
    from pipeline.engine_prepare import DecodePolicy, prepare_photo
    from pipeline.stages import PrepareOptions, Task

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sticker = load_sticker()
    photos, study = _bench_photos(n_photos, work_dir=out_dir)
    cores = os.cpu_count() or 1
    jobs = jobs or cores
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net, config, card, model_name = _model(model)
    res: dict[str, Any] = {
        "machine": platform.platform(), "processor": platform.processor(), "cores": cores,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "photos": len(photos), "photo_source": str(study), "model": model_name,
        "model_sha256": card.get("sha256"), "repeats": repeats, "jobs": jobs}
    res["calibration"] = _calibration(photos, sticker)
    tasks = [Task(f"B{i:03d}", 1, p, p.name, sha256_bytes(p.read_bytes()))
             for i, p in enumerate(photos)]
    options = PrepareOptions(sticker=sticker, model_config=config)
    work = out_dir / "bench-outputs"

    # ------------------------------------------------------------- naive loop vs engine
    naive_model = _model(model)[0]
    pred = Predictor(naive_model, config, device=device, precision="fp32",
                     channels_last=False)
    # Memory comes from runs of each alone (the naive loop before the engine exists; the
    # engine's cold run and the warm-up that starts its pool). The timed runs then alternate
    # naive, engine, naive, engine ..., so a change in the machine's load hits both alike.
    with bs.PeakMemory() as mem_naive:
        shutil.rmtree(work, ignore_errors=True)
        naive_first, naive_res = bs.naive_loop(tasks, options, pred, work / "naive")
    engine = Engine.from_model(net, config, card, jobs=jobs, device=device,
                               options=EngineOptions(cache_dir=out_dir / "cache"),
                               model_name=model_name)
    naive_t: list[float] = []
    eng_t: list[float] = []
    with bs.PeakMemory() as mem_engine:
        shutil.rmtree(work, ignore_errors=True)  # cold: the run starts its own workers
        cold, _ = bs.engine_loop(engine, tasks, options, work / "engine")
    with engine.workers():  # warm: one pool of workers for the repeated runs
        with mem_engine:
            bs.engine_loop(engine, tasks, options, work / "warm-up")  # workers start here
        for _ in range(repeats):
            shutil.rmtree(work, ignore_errors=True)
            t, naive_res = bs.naive_loop(tasks, options, pred, work / "naive")
            naive_t.append(t)
            t, eng_res = bs.engine_loop(engine, tasks, options, work / "engine")
            eng_t.append(t)
            main_thread = dataclasses.asdict(engine.last_run)
    reduced = Engine.from_model(net, config, card, jobs=jobs, device=device,
                                options=EngineOptions(cache_dir=out_dir / "cache",
                                                      reduce="auto"), model_name=model_name)
    red_times = []
    with reduced.workers():
        for _ in range(repeats):  # the first run also waits for the workers to start
            shutil.rmtree(work, ignore_errors=True)
            t, red_res = bs.engine_loop(reduced, tasks, options, work / "reduced")
            red_times.append(t)
    red_t = statistics.median(red_times[1:] or red_times)
    if device == "cuda":  # GPU decoding (the default there) against decoding in the workers
        cpu_dec = Engine.from_model(net, config, card, jobs=jobs, device=device,
                                    options=EngineOptions(decode="pillow"),
                                    model_name=model_name)
        with cpu_dec.workers():
            shutil.rmtree(work, ignore_errors=True)
            t, pil_res = bs.engine_loop(cpu_dec, tasks, options, work / "pillow")
        res["engine_pillow_decode"] = {"photos_per_s": len(tasks) / t,
                                       "agreement_vs_naive": _agreement(naive_res, pil_res)}
    n = len(tasks)
    naive_pps = n / statistics.median(naive_t)
    eng_pps = n / statistics.median(eng_t)
    res["naive"] = {"photos_per_s": naive_pps, "seconds": naive_t,
                    "first_run_seconds": naive_first, **mem_naive.to_dict()}
    res["engine"] = {"photos_per_s": eng_pps, "seconds": eng_t, "cold_seconds": cold,
                     "cold_photos_per_s": n / cold, "params": engine.params(),
                     "main_thread_last_run": main_thread,
                     **mem_engine.to_dict()}
    res["speedup"] = eng_pps / naive_pps
    # each engine run against the naive run just before it (the sturdier figure under load)
    res["speedup_paired"] = [a / b for a, b in zip(naive_t, eng_t, strict=True)]
    res["speedup_paired_median"] = statistics.median(res["speedup_paired"])
    res["speedup_cold"] = (n / cold) / naive_pps
    res["agreement_engine_vs_naive"] = _agreement(naive_res, eng_res)
    res["engine_reduced_decode"] = {"photos_per_s": n / red_t, "speedup": n / red_t / naive_pps,
                                    "agreement_vs_naive": _agreement(naive_res, red_res)}

    # --------------------------------------------------------------- stages at their best
    policy = DecodePolicy(reduce=engine.options.reduce)
    prepared = [prepare_photo(t, options, policy) for t in tasks]
    prepared = [p for p in prepared if p.ok]
    flops = bs.flops_per_tile(engine.segmenter.runner.model
                              if hasattr(engine.segmenter.runner, "model") else net, config)
    stages = {"decode": bs.stage_decode(photos, options, policy, jobs),
              "calibrate": bs.stage_calibrate(photos, options, policy, jobs)}
    with engine.cpu_threads():  # the threads the engine gives the network and the writers
        stages["network"] = bs.stage_network(engine.segmenter, [p.working for p in prepared],
                                             flops, repeats=repeats)
        probas = engine.segmenter.proba([p.working for p in prepared])
        stages["write"] = bs.stage_write(engine.segmenter, prepared, probas,
                                         work / "stage-write", engine.writers)
    res["stages"] = stages
    slowest = min(stages, key=lambda s: stages[s]["photos_per_s"])
    res["slowest_stage"] = slowest
    res["efficiency"] = eng_pps / stages[slowest]["photos_per_s"]
    # when every stage needs the same cores (a CPU-only machine), the stages' times add up:
    # no schedule beats 1 / sum(1 / stage photos/s)
    res["additive_bound_photos_per_s"] = 1 / sum(1 / st["photos_per_s"]
                                                 for st in stages.values())
    res["engine_vs_additive_bound"] = eng_pps / res["additive_bound_photos_per_s"]

    # ------------------------------------------------------------------ network alone
    res["flops_per_tile"] = flops
    res["tile_size"] = config.tile_size
    runner = engine.segmenter.runner
    batches = (1, 2, 4, 8) if device == "cpu" else (1, 8, 32, 64, 128, 256)
    dev = torch.device(device)
    with engine.cpu_threads():
        res["network_sweep"] = bs.network_sweep(runner, config, flops, batches, dev)
    res["matmul_peak_tflops"] = bs.matmul_peak_tflops(
        dev, dtype="bf16" if device == "cuda" else "fp32", n=8192 if device == "cuda" else 2048)
    res["matmul_peak_dtype"] = "bf16" if device == "cuda" else "fp32"
    best = max((r for r in res["network_sweep"] if "tflop_per_s" in r),
               key=lambda r: r["tflop_per_s"])
    res["network_best"] = {**best, "fraction_of_peak": best["tflop_per_s"] /
                           res["matmul_peak_tflops"]}
    res["backend_choice"] = engine.choice.to_dict()
    res["reduced_decode_accuracy"] = _reduced_accuracy(study, photos, sticker)
    shutil.rmtree(work, ignore_errors=True)
    (out_dir / "bench.json").write_text(json.dumps(res, indent=2, default=float))
    return res


def run_cpu_benchmark(out_dir: Path, *, n_photos: int = 12, model: str = "starter",
                      jobs: Sequence[int] = (1, 2), standin_ms: float | None = 20.0,
                      size: str | None = None) -> dict[str, Any]:
    """CPU time per photo, per stage and per process, bytes between processes and start-up
    (:mod:`pipeline.bench_cpu`), for the real network and a GPU stand-in; writes
    ``out_dir/bench-cpu.json``."""
    import torch

    from calibration import load_sticker
    from pipeline.bench_cpu import cpu_runs
    from pipeline.decode import sha256_bytes
    from pipeline.stages import PrepareOptions, Task

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    photos, study = _bench_photos(n_photos, work_dir=out_dir, size=size)
    print(f"[bench] {len(photos)} photos ready ({time.perf_counter() - t_start:.0f} s)",
          flush=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net, config, card, model_name = _model(model)
    tasks = [Task(f"B{i:03d}", 1, p, p.name, sha256_bytes(p.read_bytes()))
             for i, p in enumerate(photos)]
    options = PrepareOptions(sticker=load_sticker(), model_config=config)
    rows = cpu_runs(tasks, options, net=net, config=config, card=card, model_name=model_name,
                    device=device, jobs_list=list(jobs), work=out_dir / "bench-cpu-outputs",
                    cache_dir=out_dir / "cache", standin_ms=standin_ms,
                    progress=lambda line: print(f"[bench] {line}", flush=True))
    ref = rows[0]["healed"]
    agree = max((abs(r["healed"].get(k, float("nan")) - v) for r in rows
                 if r["network"] == rows[0]["network"] for k, v in ref.items()
                 if v is not None and r["healed"].get(k) is not None), default=0.0)
    res = {"machine": platform.platform(), "cores": os.cpu_count(), "device": device,
           "photos": len(photos), "photo_source": str(study),
           "photo_size": "x".join(map(str, _size_of(photos[0]))) if photos else None,
           "model": model_name, "runs": rows, "healed_abs_diff_max_between_layouts": agree,
           "seconds": time.perf_counter() - t_start}
    (out_dir / "bench-cpu.json").write_text(json.dumps(res, indent=2, default=float))
    return res


def _size_of(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def _calibration(photos: list[Path], sticker: Any) -> Any:
    import numpy as np

    from pipeline.decode import decode_photo

    try:
        from calibration.bench import bench_calibration
    except ImportError:
        return "nothing yet"
    per_photo = [bench_calibration(decode_photo(p.read_bytes(), name=p.name).rgb, sticker,
                                   repeats=3) for p in photos[:6]]
    ms = [r["median_ms"] for r in per_photo]
    return {"median_ms_per_photo": float(np.median(ms)), "max_ms_per_photo": float(np.max(ms)),
            "threads": 1, "size": "x".join(map(str, per_photo[0]["image_shape"][::-1])),
            "per_photo": per_photo}


def format_table(res: dict[str, Any]) -> str:
    """The benchmark as a plain-text table."""
    rows: list[tuple[str, str]] = []

    def add(name: str, value: Any, fmt: str = "{:.2f}") -> None:
        rows.append((name, fmt.format(value) if isinstance(value, int | float) else str(value)))

    add("photos / model", f"{res['photos']} / {res['model']}")
    add("device / cores", f"{res['device']} / {res['cores']}")
    cal = res.get("calibration")
    if isinstance(cal, dict):
        add("calibration ms/photo (1 core, median)", cal["median_ms_per_photo"], "{:.1f}")
    add("naive loop photos/s", res["naive"]["photos_per_s"])
    add("engine photos/s (warm workers)", res["engine"]["photos_per_s"])
    add("engine photos/s (cold: run starts its workers)", res["engine"]["cold_photos_per_s"])
    mt = res["engine"]["main_thread_last_run"]
    add("engine main thread: network / waiting for prepare",
        f"{mt['network_s'] / mt['wall_s']:.0%} / {mt['waiting_for_prepare_s'] / mt['wall_s']:.0%}")
    cpu = mt.get("cpu") or {}
    if cpu:
        add("engine CPU ms/photo: main / outside network / workers",
            f"{cpu['main_process_cpu_ms_per_photo']:.0f} / "
            f"{cpu['main_outside_network_cpu_ms_per_photo']:.0f} / "
            f"{cpu['workers_cpu_ms_per_photo']:.0f} (finished in {mt.get('finish_in')})")
        add("engine CPU ms/photo outside the network (all processes)",
            cpu["cpu_ms_per_photo_outside_network"], "{:.0f}")
        add("  per stage", ", ".join(f"{k} {v:.0f}"
                                     for k, v in cpu["stage_cpu_ms_per_photo"].items()))
        add("engine MB/photo to / from workers",
            f"{cpu['bytes_to_workers_per_photo'] / 1e6:.1f} / "
            f"{cpu['bytes_from_workers_per_photo'] / 1e6:.1f}")
    add("engine / naive (warm)", res["speedup"], "{:.2f}x")
    if "speedup_paired" in res:
        add("  paired runs (median; each)", f"{res['speedup_paired_median']:.2f}x; "
            + " ".join(f"{v:.2f}" for v in res["speedup_paired"]))
    add("engine / naive (cold)", res["speedup_cold"], "{:.2f}x")
    for name, st in res["stages"].items():
        add(f"stage alone: {name} photos/s", st["photos_per_s"])
    add("slowest stage", res["slowest_stage"])
    add("pipeline efficiency (engine / slowest stage)", res["efficiency"])
    add("stages sharing the cores: bound photos/s", res["additive_bound_photos_per_s"])
    add("engine / that bound", res["engine_vs_additive_bound"])
    nb = res["network_best"]
    add(f"network alone: images/s (batch {nb['batch']})", nb["images_per_s"], "{:.1f}")
    add("network alone: TFLOP/s", nb["tflop_per_s"], "{:.3f}")
    add(f"matmul peak TFLOP/s ({res['matmul_peak_dtype']})", res["matmul_peak_tflops"],
        "{:.3f}")
    add("network fraction of peak", nb["fraction_of_peak"], "{:.1%}")
    ch = res["backend_choice"]
    times = ", ".join(f"{k} {v * 1e3:.1f} ms/tile" for k, v in ch["seconds_per_tile"].items())
    add("backend picked", f"{ch['backend']} ({times})" if times else ch["backend"])
    for who in ("naive", "engine"):
        r = res[who]
        add(f"{who}: peak RSS main / with workers MiB",
            f"{r['peak_rss_main_mib']:.0f} / {r['peak_rss_with_workers_mib']:.0f}")
        if r["peak_device_mib"] is not None:
            add(f"{who}: peak device MiB", r["peak_device_mib"], "{:.0f}")
    ag = res["agreement_engine_vs_naive"]
    add("engine vs naive: mask agreement min", ag["mask_agreement_min"], "{:.4%}")
    add("engine vs naive: healed % diff max", ag["healed_abs_diff_max"], "{:.3f}")
    if "engine_pillow_decode" in res:
        pd = res["engine_pillow_decode"]
        add("engine, decoding in CPU workers: photos/s", pd["photos_per_s"])
        add("  vs naive: mask agreement min / healed diff max",
            f"{pd['agreement_vs_naive']['mask_agreement_min']:.4%} / "
            f"{pd['agreement_vs_naive']['healed_abs_diff_max']:.3f}")
    rd = res["engine_reduced_decode"]
    add("engine, reduced decode: photos/s (x naive)",
        f"{rd['photos_per_s']:.2f} ({rd['speedup']:.2f}x)")
    add("  vs naive: mask agreement min / healed diff max",
        f"{rd['agreement_vs_naive']['mask_agreement_min']:.4%} / "
        f"{rd['agreement_vs_naive']['healed_abs_diff_max']:.3f}")
    ra = res.get("reduced_decode_accuracy")
    if ra:
        add("area error % max |.|: full / reduced decode",
            f"{ra['full_decode_area_error_pct_max_abs']:.3f} / "
            f"{ra['reduced_decode_area_error_pct_max_abs']:.3f}")
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{w}}  {b}" for a, b in rows)
