"""Shared fixtures for the pipeline tests: tiny synthetic studies and a tiny untrained model,
made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_study(tmp_path_factory) -> Path:
    """4 subjects x 3 visits at 480x360; half the photos stored rotated with EXIF tags."""
    from pipeline.synth import StudyConfig, generate_study

    root = tmp_path_factory.mktemp("synth") / "study"
    cfg = StudyConfig.from_cli(seed=7, subjects=4, days="0,5,21", size="480x360",
                               exif_fraction=0.5)
    generate_study(root, cfg, jobs=1)
    return root


@pytest.fixture(scope="session")
def small_study(tmp_path_factory) -> Path:
    """2 subjects x 2 visits at 800x600."""
    from pipeline.synth import StudyConfig, generate_study

    root = tmp_path_factory.mktemp("study") / "s"
    cfg = StudyConfig.from_cli(seed=11, subjects=2, days="0,7", photos_per_visit=1,
                               size="800x600")
    generate_study(root, cfg, jobs=1, force=False, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny untrained U-Net (seeded) saved as a registry model, for fast engine runs."""
    import torch

    from models.config import ModelConfig
    from models.factory import build_model
    from models.registry import save_model

    torch.manual_seed(0)
    cfg = ModelConfig(encoder="tu-resnet10t", encoder_depth=3, decoder_channels=(16, 8, 8),
                      tile_size=64, px_per_mm=1.0)
    return save_model(build_model(cfg), cfg, "tiny",
                      weights_dir=tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def publish_with_qc():
    """``publish_with_qc(model, study, weights_dir)``: see :func:`_publish_with_qc`."""
    return _publish_with_qc


def _publish_with_qc(model: Path, study: Path, weights_dir: Path, *, k: int = 2) -> Path:
    """A copy of ``model`` whose card has a ``qc`` entry (``models.assess.fit_assessment``)
    fitted on ``study``'s photos (manifest order), as the training recipe fits it."""
    import csv

    from calibration import load_sticker
    from models import Predictor
    from models.assess import fit_assessment
    from models.registry import publish
    from pipeline.decode import sha256_bytes
    from pipeline.stages import PrepareOptions, Task, prepare

    pred = Predictor.from_registry(str(model), device="cpu")
    opts = PrepareOptions(sticker=load_sticker(), model_config=pred.config)
    photos = []
    for i, r in enumerate(csv.DictReader((study / "manifest.csv").open())):
        path = study / r["file"]
        p = prepare(Task(f"P{i}", 1, path, r["file"], sha256_bytes(path.read_bytes())), opts)
        if p.ok:
            photos.append((p.working, pred.predict_proba(p.working)))
    qc = fit_assessment(photos, px_per_mm=pred.config.px_per_mm, k=k)
    return publish(model, f"{Path(model).stem}_qc", weights_dir=weights_dir, dtype="fp32",
                   card_updates={"qc": qc})
