"""Padding, overlapping tiles with Gaussian blending, and chunked upsampling of class maps.

The same idea as MONAI's ``sliding_window_inference`` (Gaussian importance map, overlapping
windows whose outputs are averaged with those weights), written compactly for 2-D RGB images:

* an axis shorter than the tile is padded (reflect) to the next multiple of the network's
  stride and the padding is cropped away afterwards;
* a longer axis is covered by tiles of ``tile`` pixels, evenly spread with at least
  ``overlap`` shared between neighbours, the last tile flush with the edge;
* every tile's class probabilities are weighted by a Gaussian (sigma = tile / 8, as MONAI's
  default ``sigma_scale=0.125``) and the weighted sum is divided by the summed weights, so
  tile borders, where the network sees the least context, count the least and no seam shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["TilePlan", "plan_tiles", "gaussian_importance", "tile_starts", "pad_image",
           "resize_proba_rows", "upsample_argmax", "upsample_proba"]


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` (``length >= tile``).

    Examples
    --------
    >>> tile_starts(100, 64, 0.25)
    [0, 36]
    >>> tile_starts(64, 64, 0.5)
    [0]
    """
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1.0 - overlap)))
    n = -(-(length - tile) // step) + 1
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


def gaussian_importance(shape: tuple[int, int], *, sigma_scale: float = 0.125,
                        floor: float = 1e-3) -> np.ndarray:
    """Gaussian weights for a tile of ``shape``: 1 at the centre, ``floor`` at least.

    Examples
    --------
    >>> w = gaussian_importance((5, 5))
    >>> float(w[2, 2]), bool(w[0, 0] < w[1, 1] < 1)
    (1.0, True)
    """
    axes = []
    for n in shape:
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        axes.append(np.exp(-0.5 * (x / max(sigma_scale * n, 1e-6)) ** 2))
    w = np.outer(axes[0], axes[1])
    w /= w.max()
    return np.maximum(w, floor).astype(np.float32)


@dataclass(frozen=True)
class TilePlan:
    """How one image is padded and cut.

    ``pad`` is ``(bottom, right)`` padding added to the image; ``tile_shape`` the (h, w) of
    every tile; ``starts`` the (y, x) top-left corners in the padded image.
    """

    image_shape: tuple[int, int]
    pad: tuple[int, int]
    tile_shape: tuple[int, int]
    starts: tuple[tuple[int, int], ...]

    @property
    def padded_shape(self) -> tuple[int, int]:
        """Shape of the padded image."""
        return (self.image_shape[0] + self.pad[0], self.image_shape[1] + self.pad[1])


def plan_tiles(shape: tuple[int, int], *, tile: int, overlap: float, stride: int) -> TilePlan:
    """Padding and tile corners for an image of ``shape`` (H, W).

    Examples
    --------
    >>> p = plan_tiles((50, 130), tile=64, overlap=0.25, stride=32)
    >>> p.pad, p.tile_shape, p.starts
    ((14, 0), (64, 64), ((0, 0), (0, 33), (0, 66)))
    """
    pads, tiles, starts = [], [], []
    for n in shape:
        if n >= tile:
            pads.append(0)
            tiles.append(tile)
            starts.append(tile_starts(n, tile, overlap))
        else:
            padded = -(-n // stride) * stride
            pads.append(padded - n)
            tiles.append(padded)
            starts.append([0])
    corners = tuple((y, x) for y in starts[0] for x in starts[1])
    return TilePlan((int(shape[0]), int(shape[1])), (pads[0], pads[1]), (tiles[0], tiles[1]),
                    corners)


def pad_image(image: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    """Reflect-pad an (H, W, C) image at the bottom and right."""
    if pad == (0, 0):
        return image
    mode = "reflect" if min(image.shape[:2]) > 1 else "edge"
    return np.pad(image, ((0, pad[0]), (0, pad[1]), (0, 0)), mode=mode)


def _row_weights(in_rows: int, out_rows: int, r0: int, r1: int):
    """Source rows and weights of output rows r0..r1 (OpenCV/PyTorch half-pixel convention)."""
    ys = (np.arange(r0, r1, dtype=np.float64) + 0.5) * (in_rows / out_rows) - 0.5
    ys = np.clip(ys, 0, in_rows - 1)
    y0 = np.floor(ys).astype(np.intp)
    y1 = np.minimum(y0 + 1, in_rows - 1)
    a = (ys - y0).astype(np.float32)
    return y0, y1, a


def resize_proba_rows(proba: np.ndarray, out_shape: tuple[int, int], *, chunk_rows: int = 256):
    """Yield ``(r0, r1, chunk)``: bilinear upsampling of ``proba`` (K, h, w) to ``out_shape``
    (H, W), ``chunk_rows`` output rows at a time, so memory stays ``K * chunk_rows * W``.

    Horizontal interpolation is done once at the small height; each chunk then blends two
    source rows per output row — the same result as ``cv2.resize(..., INTER_LINEAR)``.
    """
    k, h, w = proba.shape
    H, W = int(out_shape[0]), int(out_shape[1])
    if (h, w) == (H, W):
        for r0 in range(0, H, chunk_rows):
            yield r0, min(H, r0 + chunk_rows), proba[:, r0:r0 + chunk_rows]
        return
    wide = np.stack([cv2.resize(np.ascontiguousarray(p), (W, h), interpolation=cv2.INTER_LINEAR)
                     for p in proba]) if w != W else proba
    for r0 in range(0, H, chunk_rows):
        r1 = min(H, r0 + chunk_rows)
        y0, y1, a = _row_weights(h, H, r0, r1)
        a = a[None, :, None]
        yield r0, r1, wide[:, y0] * (1 - a) + wide[:, y1] * a


def upsample_argmax(proba: np.ndarray, out_shape: tuple[int, int], *,
                    chunk_rows: int = 256) -> np.ndarray:
    """Labels (uint8, ``out_shape``) = argmax of the bilinearly upsampled probabilities.

    Examples
    --------
    >>> p = np.zeros((2, 2, 2), np.float32); p[1, :, 1] = 1; p[0, :, 0] = 1
    >>> upsample_argmax(p, (2, 4)).tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1]]
    """
    out = np.empty(out_shape, np.uint8)
    for r0, r1, chunk in resize_proba_rows(proba, out_shape, chunk_rows=chunk_rows):
        out[r0:r1] = np.argmax(chunk, axis=0)
    return out


def upsample_proba(proba: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Bilinearly upsampled probabilities (K, H, W), float32."""
    out = np.empty((proba.shape[0], *out_shape), np.float32)
    for r0, r1, chunk in resize_proba_rows(proba, out_shape):
        out[:, r0:r1] = chunk
    return out
