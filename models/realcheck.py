"""Model-level checks beyond the project's own generator: real wound tissue and no-site scenes.

Two held-out checks of a network on its working images (no sticker, no calibration: the
whole-chain versions are ``donorsite composite`` + ``donorsite process``):

* :func:`score_real_raw`: the held-out FUSeg foot-ulcer photos (``models.fuseg``, prepared
  with ``part='held_out'``). Truth: raw = the expert wound mask, nothing epithelialized. An
  ulcer is all raw, so every pixel the network calls epithelialized is wrong; a photo where
  it calls more than 1 % of the frame epithelialized must carry a hold-for-read flag.
* :func:`score_no_site_scenes`: ``skimage.data`` scenes (never used in training, see
  ``models.outliers``) at several nominal scales: each must end as "no donor site found" or
  carry a hold-for-read flag.

Both use the model's own :class:`~models.assess.PhotoAssessor` (its card's ``qc``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.assess import PhotoAssessor

__all__ = ["score_real_raw", "score_no_site_scenes", "SCENES", "EPI_FRAME_LIMIT"]

#: Share of the frame an ulcer photo may have called epithelialized without a flag.
EPI_FRAME_LIMIT = 0.01
#: ``skimage.data`` colour and grey scenes used as no-site photos (bundled, no download).
SCENES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry", "camera", "coins", "moon", "page", "text", "brick",
          "grass", "gravel", "colorwheel", "retina", "horse", "logo", "clock", "cat")


def score_real_raw(folder: str | Path, predictor: Any, *, progress: bool = False
                   ) -> dict[str, Any]:
    """Score ``predictor`` on a prepared label folder of real ulcer photos (raw vs background).

    Returns pooled raw Dice (truth raw vs predicted raw over every frame), per-photo
    epithelialized share of the frame and flags, and counts of photos above
    :data:`EPI_FRAME_LIMIT` with and without a hold-for-read flag.
    """
    from models.datasets import find_samples, read_image, read_labels

    cfg = predictor.config
    raw, epi = cfg.classes.index("raw"), cfg.classes.index("epithelialized")
    assessor = PhotoAssessor.for_predictor(predictor)
    samples = find_samples(folder)
    it: Any = samples
    if progress:
        from tqdm import tqdm

        it = tqdm(samples, desc=f"real raw {Path(folder).name}", unit="photo")
    inter = t_sum = p_sum = 0
    rows = []
    for s in it:
        img = read_image(s.image)
        truth = read_labels(s.labels, cfg)
        proba = predictor.predict_proba(img)
        pred = proba.argmax(axis=0)
        t, p = truth == raw, pred == raw
        both, nt, np_ = (int(np.count_nonzero(x)) for x in (t & p, t, p))
        inter, t_sum, p_sum = inter + both, t_sum + nt, p_sum + np_
        assessment = assessor.assess(img, proba)
        a = assessment.as_dict()
        n_epi = int(np.count_nonzero(pred == epi))
        site = int(np.count_nonzero(pred != 0))
        rows.append({"photo": Path(s.image).stem, "epi_frame_share": round(n_epi / pred.size, 4),
                     "healed_percent": round(100.0 * n_epi / site, 2) if site else None,
                     "dice_raw": round(2 * both / max(nt + np_, 1), 4),
                     "flags": list(assessment.flags),
                     "confidence": a["confidence"], "ood_score": a["ood_score"]})
    over = [r for r in rows if r["epi_frame_share"] > EPI_FRAME_LIMIT]
    healed = [r["healed_percent"] for r in rows if r["healed_percent"] is not None]
    return {"folder": str(folder), "n_photos": len(rows),
            "dice_raw_pooled": round(2 * inter / max(t_sum + p_sum, 1), 4),
            "dice_raw_median": (round(float(np.median([r["dice_raw"] for r in rows])), 4)
                                if rows else None),
            "healed_percent_median": round(float(np.median(healed)), 2) if healed else None,
            "epi_frame_share_median": (round(float(np.median(
                [r["epi_frame_share"] for r in rows])), 4) if rows else None),
            "n_epi_over_limit": len(over),
            "n_epi_over_limit_unflagged": sum(not r["flags"] for r in over),
            "n_flagged": sum(bool(r["flags"]) for r in rows), "photos": rows}


def _scene(name: str) -> np.ndarray:
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = cv2.normalize(img.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX
                            ).astype(np.uint8)
    return img


def score_no_site_scenes(predictor: Any, *, scenes: tuple[str, ...] = SCENES,
                         scales: tuple[float, ...] = (0.6, 1.0, 1.6)) -> dict[str, Any]:
    """Run ``predictor`` on no-site scenes at several scales; count those caught.

    A scene is *caught* when the network finds no donor site in it or the assessor raises a
    flag (``low_confidence`` / ``out_of_distribution``). Scene pixels are taken as sRGB in
    ``[0, 1]`` like a colour-corrected working image.
    """
    assessor = PhotoAssessor.for_predictor(predictor)
    rows = []
    for name in scenes:
        base = _scene(name)
        for f in scales:
            h, w = (max(32, round(n * f)) for n in base.shape[:2])
            img = cv2.resize(base, (w, h), interpolation=cv2.INTER_AREA if f < 1
                             else cv2.INTER_LINEAR).astype(np.float32) / 255.0
            proba = predictor.predict_proba(img)
            site_share = float(np.mean(proba.argmax(axis=0) != 0))
            a = assessor.assess(img, proba)
            no_site = site_share == 0.0
            rows.append({"scene": name, "scale": f, "site_share": round(site_share, 4),
                         "no_site": no_site, "flags": list(a.flags),
                         "caught": no_site or bool(a.flags)})
    n = len(rows)
    caught = sum(r["caught"] for r in rows)
    return {"n_photos": n, "n_caught": caught, "caught_share": round(caught / max(n, 1), 4),
            "n_no_site": sum(r["no_site"] for r in rows), "photos": rows}
