"""Batched JPEG decoding with torchvision (nvJPEG on a GPU), with EXIF orientation applied
exactly as :func:`PIL.ImageOps.exif_transpose` does on the CPU path.

torchvision applies the EXIF orientation only on the CPU, so the orientation is read from the
header here (Pillow, no pixel decoding) and applied to the decoded tensor with flips and
transposes (:func:`orient`), on whatever device it lives. :func:`decode_jpegs` decodes a list
of JPEGs in one call (one batched nvJPEG call on CUDA), orients each picture, optionally shrinks
it by an integer factor by averaging ``k x k`` blocks on the device, and returns uint8 RGB
arrays on the host, ready for the calibration workers.

On a machine without a GPU the same code runs with ``device='cpu'`` (libjpeg): that is how the
orientation logic is tested.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.decode import DEFAULT_MAX_PIXELS, KEPT_EXIF
from pipeline.errors import ImageTooLargeError, NotAnImageError

__all__ = ["JpegHeader", "read_jpeg_header", "orient", "decode_jpegs", "ORIENTATIONS"]

#: EXIF orientation values and what PIL.ImageOps.exif_transpose does for each.
ORIENTATIONS = {1: "none", 2: "flip left-right", 3: "rotate 180", 4: "flip top-bottom",
                5: "transpose", 6: "rotate 270 (clockwise 90)", 7: "transverse",
                8: "rotate 90 (counter-clockwise)"}


@dataclass(frozen=True)
class JpegHeader:
    """What the header of a JPEG says (nothing decoded)."""

    width: int
    height: int
    orientation: int
    metadata: dict

    @property
    def oriented_shape(self) -> tuple[int, int]:
        """(H, W) after the EXIF orientation."""
        swap = self.orientation in (5, 6, 7, 8)
        return (self.width, self.height) if swap else (self.height, self.width)


def read_jpeg_header(data: bytes, *, name: str,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> JpegHeader:
    """Size, EXIF orientation and allow-listed metadata of a JPEG, checked against the pixel
    limit before anything is decoded.

    Raises
    ------
    NotAnImageError
        Not a JPEG (other formats go through :func:`pipeline.decode.decode_photo`).
    ImageTooLargeError
        More pixels than ``max_pixels``.
    """
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
    except Exception:
        raise NotAnImageError(f"{name}: not a readable JPEG header") from None
    with img:
        if (img.format or "").upper() != "JPEG":
            raise NotAnImageError(f"{name}: {img.format or 'unknown'} is not a JPEG")
        w, h = img.size
        if w * h > max_pixels:
            raise ImageTooLargeError(f"{name}: {w}x{h} = {w * h} pixels exceeds the limit of "
                                     f"{max_pixels} (refused before decoding)")
        exif = img.getexif()
    meta: dict = {"format": "JPEG", "width": w, "height": h}
    for key, tag in KEPT_EXIF.items():
        if tag in exif:
            v = exif[tag]
            v = v.decode("ascii", "replace").strip("\x00 ") if isinstance(v, bytes) else v
            meta[key.lower()] = v if isinstance(v, int | float | str) else str(v)
    orientation = exif.get(0x0112, 1)
    orientation = orientation if orientation in ORIENTATIONS else 1
    return JpegHeader(w, h, int(orientation), meta)


def orient(image_chw, orientation: int):
    """Apply an EXIF orientation to a (C, H, W) tensor like ``ImageOps.exif_transpose``.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(6).reshape(1, 2, 3)
    >>> orient(x, 6)[0].tolist()  # rotated 90 degrees clockwise
    [[3, 0], [4, 1], [5, 2]]
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"EXIF orientation must be one of {sorted(ORIENTATIONS)}, got "
                         f"{orientation!r}")
    x = image_chw
    if orientation == 2:
        return x.flip(2)
    if orientation == 3:
        return x.flip(1, 2)
    if orientation == 4:
        return x.flip(1)
    if orientation == 5:
        return x.transpose(1, 2)
    if orientation == 6:
        return x.transpose(1, 2).flip(2)
    if orientation == 7:
        return x.transpose(1, 2).flip(1, 2)
    if orientation == 8:
        return x.transpose(1, 2).flip(1)
    return x


def decode_jpegs(datas: Sequence[bytes], orientations: Sequence[int], *, device: str = "cpu",
                 reduce: int = 1) -> list[np.ndarray]:
    """Decode JPEGs in one batched call, orient them, shrink by ``reduce``; host uint8 RGB.

    Parameters
    ----------
    datas : sequence of bytes
        JPEG files (checked with :func:`read_jpeg_header` first).
    orientations : sequence of int
        Their EXIF orientations.
    device : str
        ``'cuda'`` decodes with nvJPEG; ``'cpu'`` with libjpeg.
    reduce : int
        Average ``reduce x reduce`` blocks (on the device) after orienting; the size is
        rounded up as libjpeg's scaled decoding does (edge blocks averaged over what exists).

    Returns
    -------
    list of ndarray, uint8 (H, W, 3)

    Examples
    --------
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (8, 6), (200, 10, 10)).save(buf, "JPEG")
    >>> decode_jpegs([buf.getvalue()], [1], reduce=2)[0].shape
    (3, 4, 3)
    """
    import torch
    import torch.nn.functional as F
    from torchvision.io import ImageReadMode, decode_jpeg

    if len(datas) != len(orientations):
        raise ValueError(f"{len(datas)} files but {len(orientations)} orientations")
    if not isinstance(reduce, int) or reduce < 1:
        raise ValueError(f"reduce must be a positive integer, got {reduce!r}")
    if not datas:
        return []
    inputs = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's image-io deprecation notice
        decoded = decode_jpeg(inputs, mode=ImageReadMode.RGB, device=device)
    out = []
    for img, o in zip(decoded, orientations, strict=True):
        img = orient(img, int(o))
        if reduce > 1:
            x = img[None].float()
            x = F.avg_pool2d(x, reduce, stride=reduce, ceil_mode=True)
            img = (x[0] + 0.5).clamp_(0, 255).to(torch.uint8)
        out.append(img.permute(1, 2, 0).contiguous().cpu().numpy())
    return out
