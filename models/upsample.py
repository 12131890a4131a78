"""Full-resolution label maps from working-resolution class probabilities, fast and exact.

The reference (:func:`models.tiling.upsample_argmax`) upsamples all ``K`` probability maps
bilinearly to the full photo (12 million pixels) and takes the argmax there. Most of that work
is wasted: bilinear interpolation inside a cell of the working grid is a convex combination
of the cell's four corner probability vectors, and if one class beats every other at all four
corners (``p_c - p_k > 0`` at each corner) it beats them at every point of the cell, because
a convex combination of positive numbers is positive. So the label of every full-resolution
pixel in a cell whose four corners share their argmax *is* that argmax; only pixels in cells
whose corners disagree (the class borders, ~1 % of the photo) need the interpolation.

:func:`upsample_labels` gives the same labels as :func:`models.tiling.upsample_argmax` (up to
exact floating-point ties) in a fraction of the time, on the CPU. On a GPU the engine simply
interpolates and takes the argmax on the device (:func:`upsample_labels_torch`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["upsample_labels", "upsample_labels_torch", "axis_weights"]


def axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices ``i0``, ``i1`` and weight ``a`` of ``i1`` for each output position.

    Half-pixel convention of ``cv2.resize(INTER_LINEAR)`` and ``torch`` bilinear
    interpolation with ``align_corners=False``; coordinates clamped at the edges.

    Examples
    --------
    >>> i0, i1, a = axis_weights(2, 4)
    >>> i0.tolist(), i1.tolist(), a.tolist()
    ([0, 0, 0, 1], [1, 1, 1, 1], [0.0, 0.25, 0.75, 0.0])
    """
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def upsample_labels(proba: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Labels (uint8, ``out_shape``) = argmax of the bilinearly upsampled ``proba``.

    Parameters
    ----------
    proba : ndarray, float32 (K, h, w)
        Class probabilities (or logits: any scores whose argmax is the label).
    out_shape : (int, int)
        The full-resolution (H, W).

    Returns
    -------
    ndarray of uint8, shape ``out_shape``

    Examples
    --------
    >>> from models.tiling import upsample_argmax
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random((3, 20, 30)).astype(np.float32)
    >>> bool((upsample_labels(p, (70, 95)) == upsample_argmax(p, (70, 95))).all())
    True
    """
    proba = np.asarray(proba, dtype=np.float32)
    if proba.ndim != 3:
        raise ValueError(f"proba must be (K, h, w), got shape {proba.shape}")
    _, h, w = proba.shape
    H, W = (int(v) for v in out_shape)
    if H < 1 or W < 1:
        raise ValueError(f"out_shape must be positive (height, width), got {out_shape!r}")
    lab = np.argmax(proba, axis=0).astype(np.uint8)
    if (h, w) == (H, W):
        return lab
    y0, y1, ay = axis_weights(h, H)
    x0, x1, ax = axis_weights(w, W)
    # a cell (i, j) spans rows i, i+1 and columns j, j+1 (clamped at the last row/column)
    lp = np.pad(lab, ((0, 1), (0, 1)), mode="edge")
    corner = lp[:-1, :-1]
    mixed = (corner != lp[1:, :-1]) | (corner != lp[:-1, 1:]) | (corner != lp[1:, 1:])
    out = lab[y0][:, x0]
    rows = np.flatnonzero(mixed.any(axis=1)[y0])  # output rows touching a mixed cell
    if rows.size == 0:
        return out
    mixed_cols = mixed[y0[rows]][:, x0]  # (rows, W): pixels in mixed cells
    rr, cc = np.nonzero(mixed_cols)
    ry = rows[rr]
    i0, i1, a = y0[ry], y1[ry], ay[ry]
    j0, j1, b = x0[cc], x1[cc], ax[cc]
    # horizontal first, then vertical: the order of the reference implementation
    top = proba[:, i0, j0] * (1 - b) + proba[:, i0, j1] * b
    bottom = proba[:, i1, j0] * (1 - b) + proba[:, i1, j1] * b
    out[ry, cc] = np.argmax(top * (1 - a) + bottom * a, axis=0)
    return out


def upsample_labels_torch(proba, out_shape: tuple[int, int]):
    """The same on a torch device: ``proba`` (K, h, w) tensor -> uint8 (H, W) tensor.

    Bilinear interpolation (``align_corners=False``) and the argmax both run where ``proba``
    lives (on a GPU: no transfer of the K full-resolution maps).

    Examples
    --------
    >>> import torch
    >>> p = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(0))
    >>> upsample_labels_torch(p, (70, 95)).shape
    torch.Size([70, 95])
    """
    import torch
    import torch.nn.functional as F

    H, W = (int(v) for v in out_shape)
    if tuple(proba.shape[1:]) == (H, W):
        return proba.argmax(0).to(torch.uint8)
    up = F.interpolate(proba[None].float(), size=(H, W), mode="bilinear", align_corners=False)
    return up[0].argmax(0).to(torch.uint8)
