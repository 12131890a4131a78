from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.config import preset
from models.datasets import (
    CropDataset,
    class_frequencies,
    find_samples,
    read_image,
    read_labels,
    skin_type_weights,
    split_samples,
)
from models.errors import DatasetError

#: ../shared beside the checkout (as in CI), else the development machine's copy.
FUSEG = next((p for p in (Path(__file__).resolve().parents[3] / "shared/datasets/fuseg/train",
                          Path("/work/shared/datasets/fuseg/train")) if p.is_dir()),
             Path("/nonexistent"))


def test_label_folder_with_label_values(label_folder, wound_cfg):
    samples = find_samples(label_folder)
    assert [s.image.name for s in samples] == [f"{i:04d}.jpg" for i in range(6)]
    lab = read_labels(samples[0].labels, wound_cfg)
    raw = cv2.imread(str(samples[0].labels), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(raw)) == {0, 255} and set(np.unique(lab)) == {0, 1}
    assert np.array_equal(lab == 1, raw == 255)
    img = read_image(samples[0].image)
    assert img.dtype == np.float32 and img.shape == (96, 96, 3) and img.max() <= 1
    # red disc in RGB order (OpenCV's BGR was converted at the edge)
    y, x = np.argwhere(lab == 1)[len(np.argwhere(lab == 1)) // 2]
    assert img[y, x, 0] > 0.6 > img[y, x, 2]
    freq = class_frequencies(samples, wound_cfg)
    assert freq.sum() == pytest.approx(1) and 0 < freq[1] < 0.5


def test_unmapped_label_values_name_the_file(make_folder, wound_cfg):
    folder = make_folder("bad", n=2, value=128)
    with pytest.raises(DatasetError, match="0000.png.*\\[128\\]"):
        read_labels(find_samples(folder)[0].labels, wound_cfg)


def test_folder_errors(tmp_path, label_folder):
    with pytest.raises(DatasetError, match="needs images/ and labels/"):
        find_samples(tmp_path)
    (label_folder / "labels" / "0003.png").unlink()
    with pytest.raises(DatasetError, match="without labels.*0003.jpg"):
        find_samples(label_folder)


def test_split_is_fixed_by_seed(label_folder):
    s = find_samples(label_folder)
    tr, va = split_samples(s, 0.34, seed=7)
    assert len(va) == 2 and len(tr) == 4 and not set(tr) & set(va)
    assert split_samples(s, 0.34, seed=7) == (tr, va)
    assert split_samples(s, 0.0, seed=7) == (s, [])


def test_crops_are_deterministic_and_augmented(label_folder, wound_cfg):
    s = find_samples(label_folder)
    ds = CropDataset(s, wound_cfg, crop_size=64, length=8, seed=3, foreground_crop_p=1.0)
    x, y = ds[5]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and y.shape == (64, 64)
    assert y.dtype == torch.int64 and set(y.unique().tolist()) <= {0, 1}
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    x2, y2 = ds[5]
    assert torch.equal(x, x2) and torch.equal(y, y2)
    ds.set_epoch(1)
    assert not torch.equal(ds[5][0], x)
    # foreground-centred crops contain the wound
    assert all(ds[i][1].any() for i in range(8))
    plain = CropDataset(s, wound_cfg, crop_size=64, length=4, seed=3, augment=False,
                        foreground_crop_p=0.0)
    # without augmentation a crop is an exact window of one image and its labels
    for i in range(4):
        xi, yi = plain[i]
        xi = xi.numpy().transpose(1, 2, 0)
        found = False
        for smp in s:
            img, lab = read_image(smp.image), read_labels(smp.labels, wound_cfg)
            for y0 in range(img.shape[0] - 63):
                for x0 in range(img.shape[1] - 63):
                    if np.array_equal(img[y0:y0 + 64, x0:x0 + 64], xi):
                        found = np.array_equal(lab[y0:y0 + 64, x0:x0 + 64], yi.numpy())
                        break
                if found:
                    break
            if found:
                break
        assert found


@pytest.mark.skipif(not FUSEG.is_dir(), reason="FUSeg data not present")
def test_real_fuseg_files_match_the_format():
    cfg = preset("fuseg")
    for stem in ("0011", "0012"):
        img = read_image(FUSEG / "images" / f"{stem}.jpg")
        lab = read_labels(FUSEG / "labels" / f"{stem}.png", cfg)
        assert img.shape == (512, 512, 3) and lab.shape == (512, 512)
        assert set(np.unique(lab)) <= {0, 1}


def test_cached_crops_equal_uncached(label_folder, wound_cfg):
    s = find_samples(label_folder)
    a = CropDataset(s, wound_cfg, crop_size=64, length=4, seed=5)
    b = CropDataset(s, wound_cfg, crop_size=64, length=4, seed=5, cache=True)
    for i in range(4):
        assert all(torch.equal(u, v) for u, v in zip(a[i], b[i], strict=False))
    assert len(b._cache) >= 1


def test_crops_follow_skin_type_weights(label_folder, wound_cfg):
    s = find_samples(label_folder)
    # a prepared synthetic study records each image's skin type beside images/
    types = [1, 2, 3, 4, 5, 6]
    rows = "".join(f"{x.image.stem},{t}\n" for x, t in zip(s, types, strict=True))
    (label_folder / "photos.csv").write_text("stem,skin_type\n" + rows)
    w = skin_type_weights(s, [1, 0, 0, 0, 0, 3])
    assert w.tolist() == [0.25, 0, 0, 0, 0, 0.75]
    ds = CropDataset(s, wound_cfg, crop_size=32, length=40, seed=1, sample_weights=w,
                     cache=True)
    for i in range(40):
        ds[i]
    assert set(ds._cache) == {0, 5}               # types II..V are never drawn
    uniform = CropDataset(s, wound_cfg, crop_size=32, length=40, seed=1, cache=True)
    for i in range(40):
        uniform[i]
    assert len(uniform._cache) == 6
    with pytest.raises(DatasetError, match="6 numbers"):
        skin_type_weights(s, [1, 1])
    (label_folder / "photos.csv").write_text(f"stem,skin_type\n{s[0].image.stem},9\n")
    with pytest.raises(DatasetError, match="'9'.*1..6"):
        skin_type_weights(s, [1] * 6)
    with pytest.raises(DatasetError, match="sample_weights"):
        CropDataset(s, wound_cfg, crop_size=32, length=2, sample_weights=[1.0])
