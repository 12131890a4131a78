"""Tiny ICC v2 matrix/TRC RGB profiles made by the tests (Display P3, Adobe RGB), so no
profile file has to ship or download."""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["rgb_profile", "display_p3", "adobe_rgb"]

_D50 = (0.9642, 1.0, 0.8249)


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def _desc(text: str) -> bytes:
    a = text.encode("ascii") + b"\0"
    return (b"desc" + b"\0" * 4 + struct.pack(">I", len(a)) + a + b"\0" * 8 + b"\0" * 3
            + b"\0" * 67)


def _curve(values: np.ndarray | float) -> bytes:
    if np.isscalar(values):
        return b"curv" + b"\0" * 4 + struct.pack(">IH", 1, int(round(float(values) * 256)))
    table = np.clip(np.round(np.asarray(values) * 65535), 0, 65535).astype(">u2")
    return b"curv" + b"\0" * 4 + struct.pack(">I", len(table)) + table.tobytes()


def rgb_profile(name: str, colourspace: str, trc: np.ndarray | float) -> bytes:
    """An ICC v2 display profile for a colour-science RGB colourspace (D50-adapted)."""
    import colour

    cs = colour.RGB_COLOURSPACES[colourspace]
    cat = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        colour.xy_to_XYZ(cs.whitepoint), np.array(_D50), transform="Bradford")
    m = cat @ cs.matrix_RGB_to_XYZ
    tags = [(b"desc", _desc(name)), (b"cprt", b"text" + b"\0" * 4 + b"none\0"),
            (b"wtpt", _xyz(*_D50)), (b"rXYZ", _xyz(*m[:, 0])), (b"gXYZ", _xyz(*m[:, 1])),
            (b"bXYZ", _xyz(*m[:, 2])), (b"rTRC", _curve(trc)), (b"gTRC", _curve(trc)),
            (b"bTRC", _curve(trc))]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + b"\0" * 8
              + b"\0" * 4 + _s15(_D50[0]) + _s15(_D50[1]) + _s15(_D50[2]) + b"\0" * 4
              + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def display_p3() -> bytes:
    """Display P3 (P3 primaries, D65, the sRGB curve), as phones embed it."""
    x = np.linspace(0, 1, 1024)
    srgb_eotf = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    return rgb_profile("Display P3", "Display P3", srgb_eotf)


def adobe_rgb() -> bytes:
    """Adobe RGB (1998): gamma 563/256."""
    return rgb_profile("Adobe RGB (1998)", "Adobe RGB (1998)", 563 / 256)
