"""Outlier images for training: pictures with no tissue in them, labelled all background.

A segmentation network trained only on donor sites and wounds has never been told that a cat,
a coffee cup or a colour chart is *not* tissue, and it answers confidently anyway. Showing it
a share of images that contain nothing of the kind ("outlier exposure") teaches it to return
background there, so that a photo without a donor site ends as "no donor site found" instead
of a healed percentage. The images are made here, reproducibly from a seed, from

* procedural pictures: fractal colour noise through random palettes, random shapes, gratings
  and text;
* the few photographs that ship inside installed packages and need no download
  (matplotlib's sample data: a portrait, a product photo, terrain elevation rendered with
  colour maps), cropped, scaled, rotated and tinted at random.

They are written as a label folder (``images/``, ``labels/`` all 0) at the working scale.
Nothing from ``skimage.data`` is used: its scenes are the project's out-of-distribution
*test* set.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

__all__ = ["make_outlier", "write_outlier_folder", "KINDS", "OUTLIERS_VERSION"]

OUTLIERS_VERSION = 1
KINDS = ("noise", "shapes", "grating", "photo")


def _fractal(rng: np.random.Generator, h: int, w: int, octaves: int = 4) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    amp, cells = 1.0, rng.uniform(2, 6)
    for _ in range(octaves):
        gh, gw = max(2, int(h / max(h, w) * cells) + 2), max(2, int(w / max(h, w) * cells) + 2)
        out += amp * cv2.resize(rng.standard_normal((gh, gw)).astype(np.float32), (w, h),
                                interpolation=cv2.INTER_CUBIC)
        amp *= rng.uniform(0.4, 0.7)
        cells *= rng.uniform(1.8, 2.6)
    return (out - out.mean()) / (out.std() + 1e-6)


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    palette = rng.uniform(0, 1, (int(rng.integers(2, 5)), 3)).astype(np.float32)
    t = np.clip(0.5 + 0.3 * _fractal(rng, h, w), 0, 0.999) * (len(palette) - 1)
    i = t.astype(int)
    f = (t - i)[..., None]
    return palette[i] * (1 - f) + palette[np.minimum(i + 1, len(palette) - 1)] * f


def _shapes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    img[:] = rng.uniform(0, 1, 3)
    for _ in range(int(rng.integers(5, 40))):
        c = tuple(float(v) for v in rng.uniform(0, 1, 3))
        kind = rng.integers(4)
        x, y = int(rng.integers(w)), int(rng.integers(h))
        r = int(rng.integers(4, max(5, min(h, w) // 3)))
        if kind == 0:
            cv2.circle(img, (x, y), r, c, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (x, y), (x + r, y + int(rng.integers(4, r + 5))), c, -1)
        elif kind == 2:
            pts = (rng.uniform(-r, r, (int(rng.integers(3, 8)), 2)) + (x, y)).astype(np.int32)
            cv2.fillPoly(img, [pts], c, cv2.LINE_AA)
        else:
            cv2.line(img, (x, y), (int(rng.integers(w)), int(rng.integers(h))), c,
                     int(rng.integers(1, 8)), cv2.LINE_AA)
    if rng.random() < 0.5:
        cv2.putText(img, "".join(rng.choice(list("ABCDEFGHKMNPRSTUVWXYZ0123456789"), 6)),
                    (int(rng.integers(w // 2)), int(rng.integers(20, h))),
                    cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.5, 2.5)),
                    tuple(float(v) for v in rng.uniform(0, 1, 3)), int(rng.integers(1, 4)),
                    cv2.LINE_AA)
    return img


def _grating(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, np.pi)
    period = rng.uniform(4, 60)
    u = (x * np.cos(a) + y * np.sin(a)) / period
    wave = np.sin(2 * np.pi * u) if rng.random() < 0.5 else np.sign(np.sin(2 * np.pi * u))
    if rng.random() < 0.4:  # a checkerboard
        v = (-x * np.sin(a) + y * np.cos(a)) / period
        wave = wave * np.sign(np.sin(2 * np.pi * v))
    c0, c1 = rng.uniform(0, 1, (2, 3)).astype(np.float32)
    t = (0.5 + 0.5 * wave)[..., None]
    return c0 * (1 - t) + c1 * t


def _bundled_photos() -> list[np.ndarray]:
    """Photographs and terrain maps shipped inside installed packages (float RGB)."""
    out = []
    try:
        import matplotlib

        root = Path(matplotlib.get_data_path()) / "sample_data"
        for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
            bgr = cv2.imread(str(root / name), cv2.IMREAD_COLOR)
            if bgr is not None:
                out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255)
        for name, key in (("topobathy.npz", "topo"), ("jacksboro_fault_dem.npz", "elevation")):
            p = root / name
            if p.is_file():
                z = np.load(p)[key].astype(np.float32)
                z = (z - z.min()) / (np.ptp(z) + 1e-6)
                for cmap in ("terrain", "gist_earth", "copper"):
                    out.append(matplotlib.colormaps[cmap](z)[..., :3].astype(np.float32))
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass
    return out


def _photo(rng: np.random.Generator, h: int, w: int, photos: list[np.ndarray]) -> np.ndarray:
    if not photos:
        return _noise(rng, h, w)
    src = photos[int(rng.integers(len(photos)))]
    s = rng.uniform(0.4, 2.0)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-180, 180), s)
    m[:, 2] += (rng.uniform(0, src.shape[1]) - w / 2, rng.uniform(0, src.shape[0]) - h / 2)
    img = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REFLECT_101)
    return img * np.exp(rng.normal(0, 0.15, 3)).astype(np.float32)


def make_outlier(rng: np.random.Generator, *, kind: str, size: tuple[int, int],
                 photos: list[np.ndarray] | None = None) -> np.ndarray:
    """One outlier picture, uint8 RGB of ``size`` (h, w).

    Examples
    --------
    >>> img = make_outlier(np.random.default_rng(0), kind="shapes", size=(64, 80))
    >>> img.shape, img.dtype
    ((64, 80, 3), dtype('uint8'))
    """
    h, w = size
    if kind == "noise":
        img = _noise(rng, h, w)
    elif kind == "shapes":
        img = _shapes(rng, h, w)
    elif kind == "grating":
        img = _grating(rng, h, w)
    elif kind == "photo":
        img = _photo(rng, h, w, photos if photos is not None else _bundled_photos())
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0))
    img = img + rng.normal(0, rng.uniform(0, 0.02), img.shape).astype(np.float32)
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_outlier_folder(out: str | Path, *, n: int = 400, seed: int = 0,
                         size_range: tuple[int, int] = (256, 640)) -> Path:
    """Write ``n`` outlier pictures with all-background labels as a label folder.

    Reused as is when ``out/prepared.json`` records the same settings.
    """
    out = Path(out)
    stamp = {"version": OUTLIERS_VERSION, "n": n, "seed": seed, "size_range": list(size_range)}
    done = out / "prepared.json"
    if done.is_file() and json.loads(done.read_text()) == stamp:
        return out
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    photos = _bundled_photos()
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        kind = KINDS[i % len(KINDS)]
        h, w = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, 2))
        img = make_outlier(rng, kind=kind, size=(h, w), photos=photos)
        cv2.imwrite(str(out / "images" / f"outlier{i:04d}.png"),
                    cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(out / "labels" / f"outlier{i:04d}.png"), np.zeros((h, w), np.uint8))
    done.write_text(json.dumps(stamp, indent=2) + "\n")
    return out
