"""Shared fixtures for the models tests: a tiny network config and tiny label folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.config import ModelConfig


def tiny_config(**kw) -> ModelConfig:
    """A network small enough to train for a few steps in well under a second."""
    base = dict(encoder="tu-resnet10t", encoder_depth=3, decoder_channels=(16, 8, 8),
                tile_size=64, px_per_mm=None)
    base.update(kw)
    return ModelConfig(**base)


@pytest.fixture
def make_cfg():
    """``make_cfg(**changes)`` -> a tiny ModelConfig."""
    return tiny_config


@pytest.fixture
def wound_cfg() -> ModelConfig:
    return tiny_config(classes=("background", "wound"), label_values={0: 0, 255: 1})


def make_label_folder(root: Path, n: int = 6, size: int = 96, seed: int = 0,
                      value: int = 255) -> Path:
    """FUSeg-style folder: images/NNNN.jpg (grey noise, a red disc) + labels/NNNN.png."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        img = (rng.random((size, size, 3)) * 40 + 80).astype(np.uint8)
        lab = np.zeros((size, size), np.uint8)
        cy, cx = (int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
        cv2.circle(lab, (cx, cy), size // 6, value, -1)
        img[lab > 0] = (190, 50, 45)
        cv2.imwrite(str(root / "images" / f"{i:04d}.jpg"), img[..., ::-1])
        cv2.imwrite(str(root / "labels" / f"{i:04d}.png"), lab)
    return root


@pytest.fixture
def label_folder(tmp_path: Path) -> Path:
    return make_label_folder(tmp_path / "fuseg-like")


@pytest.fixture
def make_folder(tmp_path: Path):
    """``make_folder(name, **kw)`` -> a FUSeg-style label folder under tmp_path."""
    return lambda name, **kw: make_label_folder(tmp_path / name, **kw)


class Conv1x1(torch.nn.Module):
    """A per-pixel model: its output at a pixel depends only on that pixel (no seams possible
    unless the tiling itself is wrong)."""

    def __init__(self, k: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, k, 1)
        with torch.no_grad():
            self.conv.weight.mul_(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Constant(torch.nn.Module):
    """Outputs the same logits everywhere, whatever the input."""

    def __init__(self, logits=(0.3, 1.2, -0.5)) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        return self.logits.expand(n, -1, h, w).clone()


@pytest.fixture
def conv1x1_model():
    return Conv1x1()


@pytest.fixture
def constant_model():
    return Constant()


def _paint_site(img: np.ndarray) -> np.ndarray:
    """Paint a donor site (left: epithelialized pink, right: raw red); return its labels."""
    labels = np.zeros(img.shape[:2], np.uint8)
    labels[150:450, 450:600] = 1
    labels[150:450, 600:750] = 2
    img[labels == 1] = (225, 150, 150)
    img[labels == 2] = (165, 35, 40)
    return labels


@pytest.fixture(scope="session")
def synth_study(tmp_path_factory) -> Path:
    """A 3-photo study in the ``donorsite synth`` layout: a calibratable photo, the same photo
    stored rotated with EXIF Orientation 6, and a photo without a sticker."""
    from PIL import Image

    from calibration import load_sticker
    from calibration.synthetic import render_scene

    root = tmp_path_factory.mktemp("study")
    (root / "photos" / "S01").mkdir(parents=True)
    (root / "truth" / "masks").mkdir(parents=True)
    scene = render_scene(load_sticker(), size=(800, 600), px_per_mm=4.0, target_px=(230, 300))
    img = scene.image_rgb.copy()
    labels = _paint_site(img)
    plain = np.full_like(img, 170)
    rows = []
    for i, (pixels, orient) in enumerate([(img, 1), (img, 6), (plain, 1)]):
        stem = f"S01_D00{i}_1"
        stored = np.rot90(pixels, 1) if orient == 6 else pixels  # 6: display rotates 90° CW
        exif = Image.Exif()
        exif[0x0112] = orient
        Image.fromarray(np.ascontiguousarray(stored)).save(
            root / "photos" / "S01" / f"{stem}.jpg", quality=95, exif=exif.tobytes())
        cv2.imwrite(str(root / "truth" / "masks" / f"{stem}.png"), labels)
        rows.append(f"photos/S01/{stem}.jpg,S01,{i},1,truth/masks/{stem}.png,50.0,"
                    f"{['II', 'IV', 'VI'][i]},4.0")
    (root / "manifest.csv").write_text("subject_id,visit_day,site,file\n" + "".join(
        f"S01,{i},thigh-left,photos/S01/S01_D00{i}_1.jpg\n" for i in range(3)))
    (root / "truth" / "photos.csv").write_text(
        "file,subject_id,visit_day,photo_index,mask_file,healed_percent,skin_type,px_per_mm\n"
        + "\n".join(rows) + "\n")
    return root
