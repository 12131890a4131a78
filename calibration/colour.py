"""Colour: fit and apply a correction from the sticker's patches, report CIEDE2000.

The patches are sampled by :mod:`calibration.patches`.

The correction maps the photo's linear patch colours to the sticker's reference colours as
linear sRGB (D65, Bradford-adapted from the D50 reference L*a*b*), with colour-science:

``"linear"``
    a 3x3 matrix (``colour.characterisation.matrix_colour_correction`` method
    ``'Cheung 2004'``, ``terms=3``).
``"root-polynomial"``
    Finlayson et al. 2015 root-polynomial of ``degree`` 2 by default (method
    ``'Finlayson 2015'``): exposure-invariant, 6 terms.
``"diagonal"``
    per-channel gains (a von Kries-type white balance), least squares through the origin:
    what a sticker with one or two patches (or patches of dependent colours) supports.

A sticker with fewer patches than the asked method needs gets the richest method its
patches support (:func:`supported_method`: root-polynomial -> 3x3 matrix, which needs 3
patches of linearly independent reference colours -> per-channel gains, 1 patch -> none).

Quality is CIEDE2000 (``colour.delta_E(..., method='CIE 2000')``) per patch in L*a*b* D50,
computed along the same path as the reference (linear sRGB -> XYZ -> Bradford to D50 ->
L*a*b*), before and after correction, plus a leave-one-patch-out residual (each patch
predicted by a fit without it) that exposes an over-fitted correction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calibration.errors import ColourFitError
from calibration.reference import rgb_linear_to_lab_d50
from calibration.sticker import StickerSpec

__all__ = ["COLOUR_METHODS", "ColourCorrection", "fit_colour_correction", "supported_method",
           "identity_correction", "rgb_linear_to_lab_d50", "srgb_to_linear", "linear_to_srgb"]

#: Correction methods: name -> (colour-science method, its keyword arguments).
COLOUR_METHODS: dict[str, str] = {
    "linear": "Cheung 2004",
    "root-polynomial": "Finlayson 2015",
    "diagonal": "per-channel gains",
}
#: Smallest ratio of the reference colours' singular values (smallest / largest) for which a
#: 3x3 matrix is still determined by the patches (their colours linearly independent).
MIN_COLOUR_RANK_RATIO = 0.02

_X8 = np.arange(256, dtype=np.float64) / 255.0
#: uint8 sRGB -> linear (a constant table).
_LUT_LINEAR = np.where(_X8 <= 0.04045, _X8 / 12.92, ((_X8 + 0.055) / 1.055) ** 2.4
                       ).astype(np.float32)


def srgb_to_linear(rgb_srgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8, or float in [0, 1]) -> linear float32 (IEC 61966-2-1)."""
    rgb = np.asarray(rgb_srgb)
    if rgb.dtype == np.uint8:
        return _LUT_LINEAR[rgb]
    x = rgb.astype(np.float32, copy=False)
    return np.where(x <= 0.04045, x / 12.92,
                    np.power((np.maximum(x, 0.04045) + 0.055) / 1.055, 2.4)).astype(np.float32)


def linear_to_srgb(rgb_linear: np.ndarray) -> np.ndarray:
    """Linear -> sRGB float32 in [0, 1] (values clipped to [0, 1] first)."""
    x = np.clip(np.asarray(rgb_linear, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x,
                    1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055
                    ).astype(np.float32)


def _delta_e(lab_a: np.ndarray, lab_b: np.ndarray) -> np.ndarray:
    import colour

    return np.asarray(colour.delta_E(lab_a, lab_b, method="CIE 2000"), dtype=np.float64)


# ---------------------------------------------------------------------------- fitting
def _fit(m_t: np.ndarray, m_r: np.ndarray, method: str, degree: int) -> np.ndarray:
    from colour.characterisation import matrix_colour_correction

    if method == "diagonal":
        den = np.sum(m_t * m_t, axis=0)
        gains = np.divide(np.sum(m_t * m_r, axis=0), den, out=np.full(3, np.nan),
                          where=den > 0)
        return np.diag(gains)
    kwargs = {"terms": 3} if method == "linear" else {"degree": degree}
    return np.asarray(matrix_colour_correction(m_t, m_r, method=COLOUR_METHODS[method],
                                               **kwargs))


def _apply(rgb_linear: np.ndarray, ccm: np.ndarray, method: str, degree: int) -> np.ndarray:
    if method in ("linear", "diagonal"):
        return np.asarray(rgb_linear) @ ccm.T.astype(np.asarray(rgb_linear).dtype)
    from colour.characterisation import apply_matrix_colour_correction

    return np.asarray(apply_matrix_colour_correction(
        np.maximum(rgb_linear, 0.0), ccm, method=COLOUR_METHODS[method], degree=degree))


@dataclass(frozen=True, eq=False)
class ColourCorrection:
    """A fitted colour correction and its quality.

    Attributes
    ----------
    method : str
        ``"linear"``, ``"root-polynomial"`` or ``"none"`` (no usable fit: identity).
    degree : int
        Root-polynomial degree (1 for linear).
    matrix : ndarray
        colour-science's correction matrix (3 x terms).
    used : ndarray of bool (n,)
        Patches the fit used.
    delta_e_before, delta_e_after, delta_e_loo : ndarray (n,)
        CIEDE2000 per patch: photo vs reference, corrected vs reference, and each patch
        predicted by a fit without it (NaN for patches not used).
    """

    method: str
    degree: int
    matrix: np.ndarray
    used: np.ndarray
    delta_e_before: np.ndarray
    delta_e_after: np.ndarray
    delta_e_loo: np.ndarray
    patch_names: tuple[str, ...] = field(default=())

    @property
    def mean_before(self) -> float:
        return float(np.nanmean(self.delta_e_before[self.used])) if self.used.any() else np.nan

    @property
    def mean_after(self) -> float:
        return float(np.nanmean(self.delta_e_after[self.used])) if self.used.any() else np.nan

    @property
    def mean_before_all(self) -> float:
        """Mean over every sampled patch, used in the fit or not."""
        v = self.delta_e_before
        return float(np.nanmean(v)) if np.isfinite(v).any() else np.nan

    @property
    def mean_after_all(self) -> float:
        """Mean over every sampled patch, used in the fit or not (clipped ones included)."""
        v = self.delta_e_after
        return float(np.nanmean(v)) if np.isfinite(v).any() else np.nan

    @property
    def max_before(self) -> float:
        return float(np.nanmax(self.delta_e_before[self.used])) if self.used.any() else np.nan

    @property
    def max_after(self) -> float:
        return float(np.nanmax(self.delta_e_after[self.used])) if self.used.any() else np.nan

    @property
    def mean_loo(self) -> float:
        v = self.delta_e_loo[self.used]
        return float(np.nanmean(v)) if np.isfinite(v).any() else np.nan

    @property
    def max_loo(self) -> float:
        v = self.delta_e_loo[self.used]
        return float(np.nanmax(v)) if np.isfinite(v).any() else np.nan

    def apply_linear(self, rgb_linear: np.ndarray) -> np.ndarray:
        """Correct linear RGB values (any shape ``(..., 3)``), unclipped."""
        if self.method == "none":
            return np.asarray(rgb_linear)
        return _apply(rgb_linear, self.matrix, self.method, self.degree)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Correct an sRGB image (uint8, or float in [0, 1]) -> float32 sRGB in [0, 1].

        Examples
        --------
        >>> cc = ColourCorrection("linear", 1, np.eye(3) * 2, np.ones(4, bool),
        ...                       *(np.zeros(4),) * 3)
        >>> float(cc.apply(np.full((1, 1, 3), 0.5, np.float32))[0, 0, 0])
        0.6858...
        """
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got shape {img.shape}")
        lin = srgb_to_linear(img)
        out = self.apply_linear(lin.reshape(-1, 3)).reshape(lin.shape)
        return linear_to_srgb(out)

    def to_dict(self) -> dict:
        def _r(x: np.ndarray) -> list:
            return [None if not np.isfinite(v) else round(float(v), 3) for v in x]

        return {
            "method": self.method,
            "colour_science_method": COLOUR_METHODS.get(self.method, "none"),
            "degree": self.degree,
            "matrix": np.asarray(self.matrix).round(6).tolist(),
            "patches_used": int(self.used.sum()),
            "delta_e00_before": {"mean": _nan_none(self.mean_before),
                                 "mean_all_patches": _nan_none(self.mean_before_all),
                                 "max": _nan_none(self.max_before),
                                 "per_patch": _r(self.delta_e_before)},
            "delta_e00_after": {"mean": _nan_none(self.mean_after),
                                "mean_all_patches": _nan_none(self.mean_after_all),
                                "max": _nan_none(self.max_after),
                                "per_patch": _r(self.delta_e_after)},
            "delta_e00_leave_one_out": {"mean": _nan_none(self.mean_loo),
                                        "max": _nan_none(self.max_loo),
                                        "per_patch": _r(self.delta_e_loo)},
            "patch_names": list(self.patch_names),
        }


def _nan_none(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 3)


def fit_colour_correction(rgb_linear: np.ndarray, sticker: StickerSpec, *,
                          method: str = "linear", degree: int = 2,
                          usable: np.ndarray | None = None,
                          min_patches: int | None = None) -> ColourCorrection:
    """Fit a correction from the photo's linear patch colours to the reference.

    Parameters
    ----------
    rgb_linear : ndarray (n, 3)
        The photo's linear patch colours (:attr:`PatchSamples.rgb_linear`).
    sticker : StickerSpec
    method : {'linear', 'root-polynomial'}
    degree : int
        Root-polynomial degree (1 to 4; 2 gives 6 terms).
    usable : ndarray of bool (n,), optional
        Patches allowed in the fit (e.g. not clipped); NaN patches are always left out.
    min_patches : int, optional
        Fewest patches for a fit; default the number of terms per channel (an exactly
        determined fit is then exposed by its leave-one-out residual).

    Returns
    -------
    ColourCorrection

    Raises
    ------
    ColourFitError
        Unknown method, or too few usable patches.

    Examples
    --------
    >>> from calibration.sticker import load_sticker
    >>> spec = load_sticker()
    >>> ref = spec.reference_rgb_linear
    >>> cc = fit_colour_correction(ref * [0.5, 0.6, 0.9], spec)
    >>> cc.mean_before > 10, cc.mean_after < 0.01
    (True, True)
    """
    if method not in COLOUR_METHODS:
        raise ColourFitError(f"unknown colour correction method {method!r}; expected one of "
                             f"{sorted(COLOUR_METHODS)}")
    if method == "root-polynomial" and not 1 <= degree <= 4:
        raise ColourFitError(f"root-polynomial degree must be 1..4, got {degree!r}")
    rgb_linear = np.asarray(rgb_linear, dtype=np.float64)
    n = len(sticker.patches)
    if rgb_linear.shape != (n, 3):
        raise ColourFitError(f"expected ({n}, 3) patch colours, got {rgb_linear.shape}")
    ref = sticker.reference_rgb_linear
    lab_ref = sticker.reference_lab_d50
    finite = np.all(np.isfinite(rgb_linear), axis=1)
    used = finite & (np.ones(n, bool) if usable is None else np.asarray(usable, bool))
    terms = {"linear": 3, "diagonal": 1}.get(method) or _n_terms(degree)
    need = terms if min_patches is None else min_patches
    if used.sum() < need:
        raise ColourFitError(f"only {int(used.sum())} usable patches; method {method!r} "
                             f"needs at least {need}")
    deg = degree if method == "root-polynomial" else 1
    ccm = _fit(rgb_linear[used], ref[used], method, deg)
    before = np.full(n, np.nan)
    after = np.full(n, np.nan)
    loo = np.full(n, np.nan)
    before[finite] = _delta_e(lab_ref[finite], rgb_linear_to_lab_d50(
        np.maximum(rgb_linear[finite], 0.0)))
    corrected = _apply(rgb_linear[finite], ccm, method, deg)
    after[finite] = _delta_e(lab_ref[finite], rgb_linear_to_lab_d50(corrected))
    idx = np.flatnonzero(used)
    preds = np.zeros((len(idx), 3))
    for j, i in enumerate(idx):
        rest = used.copy()
        rest[i] = False
        if not rest.any():
            preds[j] = np.nan
            continue
        preds[j] = _apply(rgb_linear[i:i + 1], _fit(rgb_linear[rest], ref[rest], method, deg),
                          method, deg)[0]
    ok = np.all(np.isfinite(preds), axis=1)
    if ok.any():
        loo[idx[ok]] = _delta_e(lab_ref[idx[ok]], rgb_linear_to_lab_d50(preds[ok]))
    return ColourCorrection(method, deg, ccm, used, before, after, loo,
                            tuple(p.name for p in sticker.patches))


def identity_correction(rgb_linear: np.ndarray, sticker: StickerSpec) -> ColourCorrection:
    """No correction (when no fit is possible): ΔE before = after, LOO undefined."""
    rgb_linear = np.asarray(rgb_linear, np.float64)
    finite = np.all(np.isfinite(rgb_linear), axis=1)
    before = np.full(len(sticker.patches), np.nan)
    if finite.any():
        before[finite] = _delta_e(sticker.reference_lab_d50[finite],
                                  rgb_linear_to_lab_d50(np.maximum(rgb_linear[finite], 0.0)))
    return ColourCorrection("none", 1, np.eye(3), finite, before, before.copy(),
                            np.full(len(sticker.patches), np.nan),
                            tuple(p.name for p in sticker.patches))


def _n_terms(degree: int) -> int:
    from colour.characterisation import polynomial_expansion_Finlayson2015

    return int(polynomial_expansion_Finlayson2015(np.ones(3), degree=degree).shape[-1])


def supported_method(sticker: StickerSpec, method: str = "linear", degree: int = 2
                     ) -> tuple[str, int]:
    """The richest correction, up to the asked one, that the sticker's patches determine.

    Root-polynomial of ``degree`` needs as many patches as it has terms (6 for degree 2);
    a 3x3 matrix needs 3 patches whose reference colours are linearly independent (not all
    greys, not on one line through black); per-channel gains need 1 patch. With no patch the
    method is ``"none"``. This depends on the description only, never on a photo: a photo
    whose usable patches are fewer than the method needs is flagged ``colour_uncorrected``.

    Returns
    -------
    (method, degree)

    Examples
    --------
    >>> from calibration.sticker import load_sticker
    >>> import dataclasses
    >>> spec = load_sticker()
    >>> supported_method(spec, "root-polynomial")
    ('root-polynomial', 2)
    >>> supported_method(dataclasses.replace(spec, patches=spec.patches[:2]))
    ('diagonal', 1)
    """
    n = len(sticker.patches)
    if n == 0:
        return "none", 1
    if method == "root-polynomial" and n >= _n_terms(degree):
        return method, degree
    if method == "diagonal":
        return method, 1
    if n >= 3:
        sv = np.linalg.svd(np.asarray(sticker.reference_rgb_linear), compute_uv=False)
        if sv[0] > 0 and sv[2] / sv[0] >= MIN_COLOUR_RANK_RATIO:
            return "linear", 1
    return "diagonal", 1
