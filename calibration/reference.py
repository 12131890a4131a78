"""Reference colours: every form a sticker description may give, brought to one space.

The colour fit works in linear sRGB (IEC 61966-2-1 primaries, D65 white) and measures its
quality as CIEDE2000 in CIE L*a*b* under D50 (2° observer), the space in which X-Rite
specifies the ColorChecker. A description may give a patch's reference as

``lab_d50``
    L*a*b*, D50, 2° observer: stored as given (no conversion at all).
``lab`` (+ ``illuminant``, ``observer``)
    L*a*b* relative to another white, e.g. D65 / 10°: L*a*b* -> XYZ with that white, then
    Bradford-adapted to the D50 2° white, -> L*a*b* D50. (Across observers this adapts the
    white only; without the spectra nothing better is possible, and the difference is
    typically well under 1 ΔE00 for paper colours.)
``srgb`` / ``srgb8``
    sRGB-encoded values, floats in [0, 1] or 8-bit integers 0..255: decoded with the sRGB
    curve to linear sRGB (white D65), -> XYZ, Bradford-adapted D65 -> D50, -> L*a*b* D50.
    This is exactly the path :func:`rgb_linear_to_lab_d50` takes for the photo's colours,
    and the fit's linear target is the decoded value itself, so an sRGB reference reaches
    the fit unchanged.

Every conversion goes through colour-science, with the white points named explicitly.
"""

from __future__ import annotations

import numpy as np

__all__ = ["D50_2", "WHITE_OBSERVERS", "lab_to_lab_d50", "srgb_to_lab_d50", "srgb_decode",
           "lab_d50_to_rgb_linear", "rgb_linear_to_lab_d50", "illuminant_xy"]

#: The observer names a description may use -> colour-science's observer keys.
WHITE_OBSERVERS: dict[str, str] = {
    "2": "CIE 1931 2 Degree Standard Observer",
    "10": "CIE 1964 10 Degree Standard Observer",
}
#: The reference white of the colour fit: (illuminant, observer).
D50_2 = ("D50", "2")


def illuminant_xy(illuminant: str, observer: str = "2") -> np.ndarray:
    """CIE xy chromaticity of a named illuminant for an observer ("2" or "10").

    Raises
    ------
    KeyError
        Unknown observer or illuminant (the message lists what exists).

    Examples
    --------
    >>> illuminant_xy("D65").round(4).tolist()
    [0.3127, 0.329]
    """
    import colour

    if observer not in WHITE_OBSERVERS:
        raise KeyError(f"observer {observer!r}; expected one of {sorted(WHITE_OBSERVERS)}")
    table = colour.CCS_ILLUMINANTS[WHITE_OBSERVERS[observer]]
    if illuminant not in table:
        raise KeyError(f"illuminant {illuminant!r} for the {observer}° observer; expected one "
                       f"of {sorted(table)}")
    return np.asarray(table[illuminant], dtype=np.float64)


def _d50() -> np.ndarray:
    return illuminant_xy(*D50_2)


def lab_to_lab_d50(lab: np.ndarray, illuminant: str = "D50", observer: str = "2"
                   ) -> np.ndarray:
    """L*a*b* relative to ``illuminant``/``observer`` -> L*a*b* D50 2° (Bradford).

    D50 / 2° values are returned unchanged (the same numbers, not a round trip).

    Examples
    --------
    >>> lab_to_lab_d50(np.array([50.0, 10.0, -5.0])).tolist()
    [50.0, 10.0, -5.0]
    >>> white = lab_to_lab_d50(np.array([100.0, 0.0, 0.0]), "D65", "10")
    >>> bool(np.allclose(white, [100, 0, 0], atol=1e-6))
    True
    """
    lab = np.asarray(lab, dtype=np.float64)
    if (illuminant, observer) == D50_2:
        return lab.copy()
    import colour

    src = illuminant_xy(illuminant, observer)
    xyz = colour.Lab_to_XYZ(lab, src)
    xyz_d50 = colour.adaptation.chromatic_adaptation_VonKries(
        xyz, colour.xy_to_XYZ(src), colour.xy_to_XYZ(_d50()), transform="Bradford")
    return np.asarray(colour.XYZ_to_Lab(xyz_d50, _d50()), dtype=np.float64)


def srgb_decode(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear sRGB (the IEC 61966-2-1 curve), float64.

    >>> round(float(srgb_decode(np.array(0.5))), 6)
    0.214041
    """
    import colour

    return np.asarray(colour.cctf_decoding(np.asarray(srgb, dtype=np.float64),
                                           function="sRGB"), dtype=np.float64)


def srgb_to_lab_d50(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] (white D65) -> L*a*b* D50 2° (Bradford).

    Examples
    --------
    >>> srgb_to_lab_d50(np.array([1.0, 1.0, 1.0])).round(1).tolist()
    [100.0, 0.0, 0.0]
    """
    return rgb_linear_to_lab_d50(srgb_decode(srgb))


def rgb_linear_to_lab_d50(rgb_linear: np.ndarray) -> np.ndarray:
    """Linear sRGB (D65) -> CIE L*a*b* under D50 (Bradford), as the reference is defined."""
    import colour

    d50 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]
    xyz = colour.RGB_to_XYZ(np.asarray(rgb_linear, np.float64), colour.RGB_COLOURSPACES["sRGB"],
                            illuminant=d50, chromatic_adaptation_transform="Bradford",
                            apply_cctf_decoding=False)
    return np.asarray(colour.XYZ_to_Lab(xyz, d50))


def lab_d50_to_rgb_linear(lab_d50: np.ndarray) -> np.ndarray:
    """L*a*b* D50 -> linear sRGB (D65, Bradford-adapted), unclipped (may leave [0, 1])."""
    import colour

    d50 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]
    xyz = colour.Lab_to_XYZ(np.asarray(lab_d50, np.float64), d50)
    return np.asarray(
        colour.XYZ_to_RGB(
            xyz,
            colour.RGB_COLOURSPACES["sRGB"],
            illuminant=d50,
            chromatic_adaptation_transform="Bradford",
            apply_cctf_encoding=False,
        ),
        dtype=np.float64,
    )
