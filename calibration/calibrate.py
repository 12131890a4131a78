"""``calibrate(image, sticker) -> Calibration``: geometry, scale, colour model and QC.

One call per photo: find the markers, fit the homography, check the sticker is in frame,
estimate the tilt, check the ruler, sample the patches and fit the colour correction, and
collect QC flags. Bad stickers raise a :class:`~calibration.errors.CalibrationError`
subclass naming the photo; exposure problems, glare and a poor colour fit are QC flags.

QC flags (``Calibration.qc_flags``):

``three_markers``         only 3 of the sticker's markers were found
``high_reprojection``     marker corners disagree with the homography (> threshold px)
``steep_tilt``            camera tilt above ``max_tilt_deg``
``low_resolution``        the sticker is too small in the photo (mm per px above threshold)
``ruler_mismatch``        the ruler measured through the homography differs from its length
``clipped_patches``       patches with clipped highlights (left out of the colour fit)
``dark_patches``          patches too dark to read reliably (left out of the colour fit)
``glare``                 specular pixels on patches (rejected; patches with at least
                          ``glare_fraction`` of them are left out of the colour fit)
``poor_colour_fit``       mean or max CIEDE2000 after correction above the thresholds
``colour_overfit``        the leave-one-patch-out residual is far above the fit's residual
``colour_uncorrected``    too few usable patches (or a sticker without patches): no
                          correction (identity) was applied
``foreign_markers``       markers whose ids are not on the sticker (another sticker or label
                          in the frame) were seen and ignored (ids in ``markers_ignored``)

``Calibration.notes`` says in words what was ignored or changed: the foreign marker ids, and
the colour method actually fitted when the sticker's patches support less than the one asked
(:func:`calibration.colour.supported_method`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from calibration.colour import (
    COLOUR_METHODS,
    ColourCorrection,
    fit_colour_correction,
    identity_correction,
    supported_method,
)
from calibration.detect import (
    MarkerDetections,
    check_ignored_markers,
    check_in_frame,
    detect_markers,
    fit_homography,
)
from calibration.errors import CalibrationError, ColourFitError
from calibration.geometry import DEFAULT_FOCAL_35MM, PlaneGeometry
from calibration.patches import PatchSamples, sample_patches
from calibration.ruler import measure_ruler
from calibration.sticker import StickerSpec

__all__ = ["CalibrationOptions", "Calibration", "calibrate", "QC_FLAGS"]

QC_FLAGS = ("three_markers", "high_reprojection", "steep_tilt", "low_resolution",
            "ruler_mismatch", "clipped_patches", "dark_patches", "glare", "poor_colour_fit",
            "colour_overfit", "colour_uncorrected", "foreign_markers")


class CalibrationOptionsError(CalibrationError, ValueError):
    """An invalid :class:`CalibrationOptions` value (the message names the field)."""


@dataclass(frozen=True)
class CalibrationOptions:
    """Validated calibration settings.

    Parameters
    ----------
    method : {'linear', 'root-polynomial', 'diagonal'}
        Colour correction (see :mod:`calibration.colour`); a sticker with too few patches
        for it gets the richest one its patches support.
    degree : int
        Root-polynomial degree (1..4).
    detect_max_side : int
        Markers are detected on a copy at most this large, then refined at full resolution.
    ransac_threshold_px : float
        Inlier threshold of the robust homography fit.
    max_reprojection_px : float
        Flag ``high_reprojection`` above this RMS corner error.
    max_tilt_deg : float
        Flag ``steep_tilt`` above this camera tilt.
    max_mm_per_px : float
        Flag ``low_resolution`` above this scale at the sticker.
    max_ruler_error_mm : float
        Flag ``ruler_mismatch`` above this difference between measured and described ruler.
    inner_fraction, trim, clip_level, floor_level, specular_sigma
        Patch sampling (see :func:`calibration.colour.sample_patches`).
    clipped_fraction : float
        A patch with at least this fraction of clipped samples is clipped (flagged, left out
        of the fit). Patches with a channel at 0 (a cast too strong for the photo's gamut,
        common under warm light) are kept: leaving them out was measured to be worse.
    dark_level : float
        A patch whose linear luminance is below this is dark (left out).
    glare_fraction : float
        A patch with at least this fraction of specular samples has glare (flag ``glare``;
        left out of the colour fit).
    max_mean_delta_e, max_max_delta_e : float
        Flag ``poor_colour_fit`` when mean / max CIEDE2000 after correction exceed these.
    max_loo_delta_e, overfit_ratio : float
        Flag ``colour_overfit`` when the mean leave-one-out CIEDE2000 exceeds both
        ``max_loo_delta_e`` and ``overfit_ratio`` times the mean after correction.
    focal_35mm : float
        35 mm-equivalent focal length assumed for the tilt (pass the photo's EXIF value when
        known).
    estimate_focal : bool
        Estimate the focal length from the homography instead (fragile, see
        :mod:`calibration.geometry`).

    Examples
    --------
    >>> CalibrationOptions(method="root-polynomial").degree
    2
    >>> CalibrationOptions(method="cubic")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    calibration.calibrate.CalibrationOptionsError: CalibrationOptions.method: 'cubic' is not ...
    """

    method: str = "linear"
    degree: int = 2
    detect_max_side: int = 1600
    ransac_threshold_px: float = 3.0
    max_reprojection_px: float = 2.0
    max_tilt_deg: float = 40.0
    max_mm_per_px: float = 0.5
    max_ruler_error_mm: float = 0.5
    inner_fraction: float = 0.6
    trim: float = 0.2
    clip_level: int = 250
    floor_level: int = 2
    specular_sigma: float = 4.0
    clipped_fraction: float = 0.25
    dark_level: float = 0.002
    glare_fraction: float = 0.05
    max_mean_delta_e: float = 3.0
    max_max_delta_e: float = 10.0
    max_loo_delta_e: float = 4.0
    overfit_ratio: float = 2.0
    focal_35mm: float = DEFAULT_FOCAL_35MM
    estimate_focal: bool = False

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise CalibrationOptionsError(f"CalibrationOptions.{name}: {getattr(self, name)!r} "
                                          f"{why}")

        if self.method not in COLOUR_METHODS:
            bad("method", f"is not one of {sorted(COLOUR_METHODS)}")
        if isinstance(self.degree, bool) or not isinstance(self.degree, int) or not (
                1 <= self.degree <= 4):
            bad("degree", "must be an integer 1..4")
        if not isinstance(self.detect_max_side, int) or self.detect_max_side < 200:
            bad("detect_max_side", "must be an integer >= 200")
        if not isinstance(self.clip_level, int) or not 1 <= self.clip_level <= 255:
            bad("clip_level", "must be an integer 1..255")
        if not isinstance(self.floor_level, int) or not 0 <= self.floor_level < self.clip_level:
            bad("floor_level", "must be an integer 0..clip_level-1")
        for name in ("ransac_threshold_px", "max_reprojection_px", "max_tilt_deg",
                     "max_mm_per_px", "max_ruler_error_mm", "specular_sigma",
                     "max_mean_delta_e", "max_max_delta_e", "max_loo_delta_e",
                     "overfit_ratio", "focal_35mm"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0 or not (
                    np.isfinite(v)):
                bad(name, "must be a finite number > 0")
        for name in ("inner_fraction", "clipped_fraction", "glare_fraction"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not 0 < v <= 1:
                bad(name, "must be within (0, 1]")
        if not isinstance(self.trim, int | float) or not 0 <= self.trim < 0.5:
            bad("trim", "must be within [0, 0.5)")
        if not isinstance(self.dark_level, int | float) or not 0 <= self.dark_level < 1:
            bad("dark_level", "must be within [0, 1)")
        if not isinstance(self.estimate_focal, bool):
            bad("estimate_focal", "must be True or False")


@dataclass(frozen=True, eq=False)
class Calibration:
    """The calibration of one photo. Build it with :func:`calibrate`.

    Attributes
    ----------
    geometry : PlaneGeometry
        The image -> plane homography and its measurements.
    markers_found : tuple of int
    marker_corners_px : ndarray (n, 4, 2)
    reprojection_error_px, reprojection_error_mm : float
        RMS over the marker corners, in the image and in the plane.
    tilt_deg : float
    focal_px : float
        Focal length used for the tilt (estimated or assumed, see ``focal_estimated``).
    mm_per_px : float
        Scale at the sticker's centre.
    ruler_length_mm : float or None
        The ruler measured in the photo (None when not found or not described).
    patches : PatchSamples
    colour : ColourCorrection
    qc_flags : tuple of str
    sticker_name, source : str
    options : CalibrationOptions
    markers_ignored : tuple of int
        Ids of markers seen in the photo that are not on the sticker (ignored).
    notes : tuple of str
        What was ignored or changed, in words (see the module docstring).
    """

    geometry: PlaneGeometry
    markers_found: tuple[int, ...]
    marker_corners_px: np.ndarray
    reprojection_error_px: float
    reprojection_error_mm: float
    tilt_deg: float
    focal_px: float
    focal_estimated: bool
    mm_per_px: float
    ruler_length_mm: float | None
    ruler_expected_mm: float | None
    patches: PatchSamples
    colour: ColourCorrection
    qc_flags: tuple[str, ...]
    sticker_name: str
    source: str
    options: CalibrationOptions
    markers_ignored: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def homography(self) -> np.ndarray:
        """3x3: image px (x, y) -> card mm."""
        return self.geometry.homography

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.geometry.image_shape

    def pixel_area_mm2(self, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """mm² of skin covered by each pixel of the photo resampled to ``shape``."""
        return self.geometry.pixel_area_mm2(shape)

    def area_mm2(self, mask: np.ndarray) -> float:
        """Skin-plane area (mm²) of a boolean mask at the photo's or a resampled shape."""
        return self.geometry.area_mm2(mask)

    def correct(self, image: np.ndarray) -> np.ndarray:
        """Colour-correct the photo (any resolution; uint8 or float sRGB) -> float32 sRGB."""
        return self.colour.apply(image)

    def to_dict(self) -> dict:
        """A JSON-able record with units and method."""
        return {
            "source": self.source,
            "sticker": self.sticker_name,
            "image_shape": list(self.image_shape),
            "homography_image_to_plane_mm": np.asarray(self.homography).tolist(),
            "markers_found": list(self.markers_found),
            "reprojection_error_px": round(self.reprojection_error_px, 4),
            "reprojection_error_mm": round(self.reprojection_error_mm, 5),
            "tilt_deg": round(self.tilt_deg, 2),
            "tilt_method": "homography decomposition, focal length "
                           + ("estimated" if self.focal_estimated else "assumed")
                           + f" ({self.focal_px:.0f} px)",
            "mm_per_px": round(self.mm_per_px, 6),
            "ruler_length_mm": (None if self.ruler_length_mm is None
                                else round(self.ruler_length_mm, 3)),
            "ruler_expected_mm": self.ruler_expected_mm,
            "colour": self.colour.to_dict(),
            "qc_flags": list(self.qc_flags),
            "markers_ignored": list(self.markers_ignored),
            "notes": list(self.notes),
            "options": asdict(self.options),
        }


def calibrate(image_rgb: np.ndarray, sticker: StickerSpec, *,
              options: CalibrationOptions | None = None, source: str = "<image>") -> Calibration:
    """Calibrate one photo against a sticker.

    Parameters
    ----------
    image_rgb : ndarray (H, W, 3) uint8
        The oriented photo, sRGB.
    sticker : StickerSpec
    options : CalibrationOptions, optional
    source : str
        Name of the photo in error messages and the record.

    Returns
    -------
    Calibration

    Raises
    ------
    StickerNotFoundError, TooFewMarkersError, DuplicateMarkerError, ForeignMarkerError,
    StickerOutOfFrameError, HomographyError (MarkerRotationError, StrayMarkerError)

    Examples
    --------
    >>> from calibration.sticker import load_sticker
    >>> from calibration.synthetic import render_scene
    >>> spec = load_sticker()
    >>> scene = render_scene(spec, size=(800, 600), px_per_mm=6.0, tilt_deg=20,
    ...                      colour_matrix=np.diag([1.0, 0.85, 0.6]))
    >>> cal = calibrate(scene.image_rgb, spec)
    >>> round(cal.mm_per_px, 2), cal.qc_flags, cal.colour.mean_after < 2.0
    (0.17, (), True)
    """
    opts = options if options is not None else CalibrationOptions()
    img = np.asarray(image_rgb)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{source}: expected a uint8 (H, W, 3) RGB image, got {img.dtype} "
                         f"{img.shape}")
    flags: list[str] = []
    notes: list[str] = []
    det = detect_markers(img, sticker, max_side=opts.detect_max_side, source=source)
    geo, _ = fit_homography(det, sticker, threshold_px=opts.ransac_threshold_px, source=source)
    check_in_frame(geo, sticker, source=source)
    check_ignored_markers(det, geo, sticker, source=source)
    if det.ignored_ids:
        flags.append("foreign_markers")
        notes.append(f"ignored markers {list(det.ignored_ids)}: not on sticker "
                     f"{sticker.name!r} (ids {sorted(sticker.marker_ids)})")
    if len(det.ids) < len(sticker.markers):
        flags.append("three_markers")
    err_px, err_mm = _reprojection(det, geo, sticker)
    if err_px > opts.max_reprojection_px:
        flags.append("high_reprojection")
    tilt, focal, estimated = _tilt(geo, opts)
    if tilt > opts.max_tilt_deg:
        flags.append("steep_tilt")
    centre = geo.plane_to_image(np.array([[sticker.card_width_mm / 2,
                                           sticker.card_height_mm / 2]]))[0]
    mm_per_px = geo.mm_per_px_at(*centre)
    if mm_per_px > opts.max_mm_per_px:
        flags.append("low_resolution")
    ruler_mm = expected = None
    if sticker.ruler is not None:
        ruler_mm = measure_ruler(img, geo, sticker.ruler)
        major = sticker.ruler.major_mm
        expected = major * np.floor(sticker.ruler.length_mm / major + 1e-9)
        if ruler_mm is None or abs(ruler_mm - expected) > opts.max_ruler_error_mm:
            flags.append("ruler_mismatch")
    samples = sample_patches(img, geo, sticker, inner_fraction=opts.inner_fraction,
                             clip_level=opts.clip_level, floor_level=opts.floor_level,
                             specular_sigma=opts.specular_sigma,
                             trim=opts.trim)
    colour, colour_flags = _fit_colour(samples, sticker, opts)
    flags.extend(colour_flags)
    method, degree = supported_method(sticker, opts.method, opts.degree)
    if (method, degree) != (opts.method, opts.degree if opts.method == "root-polynomial" else 1):
        notes.append(f"colour: sticker {sticker.name!r} has {len(sticker.patches)} patches, "
                     f"which determine only a {method!r} correction (asked {opts.method!r})")
    return Calibration(geo, det.ids, det.corners_px, err_px, err_mm, tilt, focal, estimated,
                       mm_per_px, ruler_mm, expected, samples, colour,
                       tuple(f for f in QC_FLAGS if f in flags), sticker.name, source, opts,
                       det.ignored_ids, tuple(notes))


def _reprojection(det: MarkerDetections, geo: PlaneGeometry,
                  sticker: StickerSpec) -> tuple[float, float]:
    img = det.image_points()
    plane = det.plane_points(sticker)
    err_px = np.linalg.norm(geo.plane_to_image(plane) - img, axis=1)
    err_mm = np.linalg.norm(geo.image_to_plane(img) - plane, axis=1)
    return float(np.sqrt(np.mean(err_px**2))), float(np.sqrt(np.mean(err_mm**2)))


def _tilt(geo: PlaneGeometry, opts: CalibrationOptions) -> tuple[float, float, bool]:
    return geo.tilt(focal_35mm=opts.focal_35mm, estimate_focal=opts.estimate_focal)


def refit_colour(samples: PatchSamples, sticker: StickerSpec, options: CalibrationOptions
                 ) -> tuple[ColourCorrection, list[str]]:
    """Fit the colour correction (and its flags) from already sampled patches."""
    return _fit_colour(samples, sticker, options)


def _fit_colour(samples: PatchSamples, sticker: StickerSpec,
                opts: CalibrationOptions) -> tuple[ColourCorrection, list[str]]:
    flags: list[str] = []
    rgb = samples.rgb_linear
    lum = rgb @ np.array([0.2126, 0.7152, 0.0722])
    clipped = (samples.clipped_fraction >= opts.clipped_fraction)
    unusable = ~np.all(np.isfinite(rgb), axis=1)
    dark = np.isfinite(lum) & (lum < opts.dark_level)
    if clipped.any():
        flags.append("clipped_patches")
    if dark.any():
        flags.append("dark_patches")
    glare = samples.specular_fraction >= opts.glare_fraction
    if glare.any():
        flags.append("glare")
    # A highlight is smooth: what the sampling could not reject still biases the patch.
    # Floored patches (a channel at 0 under a strong cast) stay in: without them the fit
    # extrapolates to the warm, saturated colours of skin and wounds much worse.
    usable = ~clipped & ~dark & ~glare & ~unusable
    method, degree = supported_method(sticker, opts.method, opts.degree)
    if method == "none":
        flags.append("colour_uncorrected")
        return identity_correction(rgb, sticker), flags
    try:
        colour = fit_colour_correction(rgb, sticker, method=method, degree=degree,
                                       usable=usable)
    except ColourFitError:
        flags.append("colour_uncorrected")
        return identity_correction(rgb, sticker), flags
    if colour.mean_after > opts.max_mean_delta_e or colour.max_after > opts.max_max_delta_e:
        flags.append("poor_colour_fit")
    loo = colour.mean_loo
    if np.isfinite(loo) and loo > opts.max_loo_delta_e and loo > (
            opts.overfit_ratio * colour.mean_after):
        flags.append("colour_overfit")
    return colour, flags
