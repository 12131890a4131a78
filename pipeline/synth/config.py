"""StudyConfig: the validated shape of a synthetic study and the ranges of its randomness.

Every number that shapes a generated study lives here: the trial design (subjects, arms,
visit days), the donor sites, the healing speed of each arm, and the ranges of the virtual
camera. A config is checked on construction and passed explicitly; it is stored in the
study's ``study.json`` so a study can be regenerated exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from pipeline.synth.errors import StudyConfigError

__all__ = ["StudyConfig", "parse_days", "parse_size", "SITES", "VARIETIES", "APPEARANCES",
           "WIDE_CAMERA"]

#: Donor-site locations a subject may get (drawn per subject).
SITES: tuple[str, ...] = ("thigh-left", "thigh-right", "buttock-left", "buttock-right")

Range = tuple[float, float]
#: Study varieties: ``"standard"`` (the demo's and the project's held-out studies') and
#: ``"wide"`` (much wider tissue appearance and camera ranges, for training models that must
#: hold beyond one look; see :data:`WIDE_CAMERA` and ``pipeline.synth.tissue``).
VARIETIES = ("standard", "wide")
#: Appearance models of the tissue and skin: ``"a"`` (``pipeline.synth.tissue`` and
#: ``pipeline.synth.skin``) and ``"b"`` (``pipeline.synth.appearance_b``, written
#: independently, for scoring models on a generator they were not trained on). The sticker,
#: the camera and the study's geometry are shared.
APPEARANCES = ("a", "b")
#: Camera ranges of the ``"wide"`` variety (applied by :meth:`StudyConfig.from_cli` unless the
#: caller sets them): stronger compression, blur, noise, exposure and colour errors, warmer and
#: cooler light, steeper tilts.
WIDE_CAMERA: dict[str, object] = {
    "jpeg_quality": (50, 97), "blur_sigma_px": (0.0, 4.0), "noise_sigma": (0.002, 0.025),
    "exposure_ev_sd": 0.45, "exposure_ev_max": 1.5, "colour_matrix_sd": 0.09,
    "cct_k": (2500.0, 7500.0), "awb_strength": (0.1, 1.0), "tilt_max_deg": 40.0,
    "vignetting": (0.0, 0.45), "crust_probability": 0.4,
}


def parse_days(text: str) -> tuple[int, ...]:
    """Visit days from a comma-separated string such as ``"0,3,5,7"``.

    Examples
    --------
    >>> parse_days("0, 3,5")
    (0, 3, 5)
    """
    try:
        days = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise StudyConfigError(f"days: expected comma-separated whole days, got {text!r}") from None
    if not days:
        raise StudyConfigError(f"days: no visit day given in {text!r}")
    return days


def parse_size(text: str) -> tuple[int, int]:
    """Photo size ``WIDTHxHEIGHT`` as ``(width, height)``.

    Examples
    --------
    >>> parse_size("4000x3000")
    (4000, 3000)
    """
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        width, height = int(parts[0]), int(parts[1])
    except ValueError:
        raise StudyConfigError(f"size: expected WIDTHxHEIGHT such as 4000x3000, got {text!r}"
                               ) from None
    return width, height


@dataclass(frozen=True)
class StudyConfig:
    """Everything that shapes a synthetic study (validated on construction).

    Parameters
    ----------
    seed : int
        Random seed; the same config gives byte-identical studies.
    n_subjects : int
        Subjects, randomized 1:1 to the arms ``msc`` and ``control`` (an odd count gives
        ``control`` the extra subject).
    visit_days : tuple of int
        Visit days after harvest, strictly increasing, starting at 0 or later.
    photos_per_visit : int
        Photos per visit (same wound and sticker placement, a new camera pose each).
    width, height : int
        Oriented photo size in pixels.
    sites : tuple of str
        Donor-site locations drawn per subject.
    site_width_mm, site_length_mm : (float, float)
        Ranges of the donor site's short and long side.
    control_t95_days, msc_t95_days : float
        Median day at which 95 % of a site is epithelialized, per arm.
    t95_log_sd : float
        Between-subject spread of that day (standard deviation of its logarithm).
    tilt_max_deg : float
        Largest angle between the optical axis and the skin normal.
    px_per_mm : (float, float)
        Scale at the donor site for a photo ``reference_width`` pixels wide; photos of another
        width scale proportionally (a 400 px wide photo of the same framing has a tenth).
    reference_width : int
        Width at which ``px_per_mm`` and ``blur_sigma_px`` apply.
    min_px_per_mm : float
        Absolute floor of the scale at the site (not scaled with the width) whenever the scene
        still fits: it keeps the sticker's markers detectable in small test studies and never
        binds at phone resolution.
    cct_k : (float, float)
        Range of the illuminant's correlated colour temperature.
    exposure_ev_sd, exposure_ev_max : float
        Exposure error: normal with this spread, clipped to +-max.
    awb_strength : (float, float)
        Range of the share of the illuminant's colour cast that the camera's automatic white
        balance removes (1: all of it). Phones leave a visible cast under warm light.
    colour_matrix_sd : float
        Spread of the off-diagonal terms of the camera's residual colour matrix (rows sum to
        1, so neutrals stay neutral; saturation and hue errors grow with it).
    jpeg_quality : (int, int)
        Range of the JPEG quality.
    exif_fraction : float
        Share of photos stored rotated with an EXIF Orientation tag (3, 6 or 8).
    blur_sigma_px : (float, float)
        Range of the defocus blur (Gaussian sigma, pixels at ``reference_width``).
    noise_sigma : (float, float)
        Range of the sensor noise (standard deviation at linear mid-grey 0.18).
    vignetting : (float, float)
        Range of the relative light fall-off at the image corners.
    skin_type_weights : tuple of 6 float
        Relative frequency of Fitzpatrick types I to VI.
    crust_probability, drape_probability : float
        Share of subjects with crust on the raw tissue; share of visits with a surgical
        drape in view.
    sticker : Path or None
        Sticker description drawn into the scenes; ``None`` is the trial's DS-CAL-1.
    variety : {'standard', 'wide'}
        How widely tissue appearance varies between subjects (see :data:`VARIETIES`).
    appearance : {'a', 'b'}
        Which appearance model renders the tissue and the skin (see :data:`APPEARANCES`).
        Model B has its own wide appearance ranges; with ``variety="wide"`` it takes the
        wide camera ranges only.

    Examples
    --------
    >>> cfg = StudyConfig(seed=1, n_subjects=4, width=800, height=600)
    >>> cfg.n_photos
    28
    """

    seed: int
    n_subjects: int = 20
    visit_days: tuple[int, ...] = (0, 3, 5, 7, 10, 14, 21)
    photos_per_visit: int = 1
    width: int = 4000
    height: int = 3000
    sites: tuple[str, ...] = SITES
    site_width_mm: Range = (30.0, 80.0)
    site_length_mm: Range = (60.0, 150.0)
    control_t95_days: float = 12.0
    msc_t95_days: float = 9.5
    t95_log_sd: float = 0.3
    tilt_max_deg: float = 35.0
    px_per_mm: Range = (5.0, 20.0)
    reference_width: int = 4000
    min_px_per_mm: float = 2.5
    cct_k: Range = (2700.0, 6500.0)
    exposure_ev_sd: float = 0.3
    exposure_ev_max: float = 1.0
    awb_strength: Range = (0.2, 0.9)
    colour_matrix_sd: float = 0.05
    jpeg_quality: tuple[int, int] = (70, 95)
    exif_fraction: float = 0.25
    blur_sigma_px: Range = (0.0, 2.5)
    noise_sigma: Range = (0.002, 0.012)
    vignetting: Range = (0.05, 0.35)
    skin_type_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    crust_probability: float = 0.3
    drape_probability: float = 0.4
    sticker: Path | None = None
    variety: str = "standard"
    appearance: str = "a"

    def __post_init__(self) -> None:
        for f in fields(self):  # normalise lists (from JSON) to tuples
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        if self.sticker is not None:
            object.__setattr__(self, "sticker", Path(self.sticker))
        self._check()

    # ------------------------------------------------------------------ validation
    def _fail(self, name: str, problem: str) -> None:
        raise StudyConfigError(f"{name}: {problem}, got {getattr(self, name)!r}")

    def _int(self, name: str, lo: int) -> None:
        v = getattr(self, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            self._fail(name, f"expected a whole number >= {lo}")

    def _fraction(self, name: str) -> None:
        v = getattr(self, name)
        if not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
            self._fail(name, "expected a number within 0..1")

    def _range(self, name: str, lo: float, hi: float) -> None:
        v = getattr(self, name)
        ok = (isinstance(v, tuple) and len(v) == 2
              and all(isinstance(x, int | float) and math.isfinite(x) for x in v)
              and lo <= v[0] <= v[1] <= hi)
        if not ok:
            self._fail(name, f"expected (low, high) with {lo} <= low <= high <= {hi}")

    def _positive(self, name: str) -> None:
        v = getattr(self, name)
        if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            self._fail(name, "expected a number > 0")

    def _check(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            self._fail("seed", "expected a whole number >= 0")
        self._int("n_subjects", 1)
        self._int("photos_per_visit", 1)
        self._int("width", 64)
        self._int("height", 64)
        self._int("reference_width", 64)
        days = self.visit_days
        if (not isinstance(days, tuple) or not days
                or not all(isinstance(d, int) and not isinstance(d, bool) for d in days)
                or days[0] < 0 or any(b <= a for a, b in zip(days, days[1:], strict=False))):
            self._fail("visit_days", "expected strictly increasing whole days >= 0")
        if not self.sites or not all(isinstance(s, str) and s for s in self.sites):
            self._fail("sites", "expected non-empty site names")
        self._range("site_width_mm", 5.0, 300.0)
        self._range("site_length_mm", 5.0, 400.0)
        if self.site_width_mm[1] > self.site_length_mm[1]:
            self._fail("site_width_mm", "the short side's range may not exceed the long side's")
        for name in ("control_t95_days", "msc_t95_days", "t95_log_sd", "exposure_ev_sd"):
            self._positive(name)
        self._range("px_per_mm", 0.5, 100.0)
        if not isinstance(self.min_px_per_mm, int | float) or not 0 <= self.min_px_per_mm <= 100:
            self._fail("min_px_per_mm", "expected a number within 0..100")
        self._range("cct_k", 1700.0, 25000.0)
        self._range("awb_strength", 0.0, 1.0)
        sd = self.colour_matrix_sd
        if not isinstance(sd, int | float) or not 0 <= sd <= 0.3:
            self._fail("colour_matrix_sd", "expected a number within 0..0.3")
        self._range("blur_sigma_px", 0.0, 20.0)
        self._range("noise_sigma", 0.0, 0.2)
        self._range("vignetting", 0.0, 0.9)
        if not 0.0 <= self.tilt_max_deg <= 60.0:
            self._fail("tilt_max_deg", "expected a number within 0..60")
        if not 0.0 <= self.exposure_ev_max <= 4.0:
            self._fail("exposure_ev_max", "expected a number within 0..4")
        q = self.jpeg_quality
        if (not isinstance(q, tuple) or len(q) != 2 or not all(isinstance(x, int) for x in q)
                or not 1 <= q[0] <= q[1] <= 100):
            self._fail("jpeg_quality",
                       "expected (low, high) whole numbers with 1 <= low <= high <= 100")
        w = self.skin_type_weights
        if (not isinstance(w, tuple) or len(w) != 6
                or not all(isinstance(x, int | float) and x >= 0 for x in w) or sum(w) <= 0):
            self._fail("skin_type_weights", "expected six non-negative weights (types I-VI)")
        for name in ("exif_fraction", "crust_probability", "drape_probability"):
            self._fraction(name)
        if self.variety not in VARIETIES:
            self._fail("variety", f"expected one of {VARIETIES}")
        if self.appearance not in APPEARANCES:
            self._fail("appearance", f"expected one of {APPEARANCES}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_cli(cls, *, seed: int, subjects: int = 20, days: str = "0,3,5,7,10,14,21",
                 photos_per_visit: int = 1, size: str = "4000x3000",
                 **overrides: Any) -> StudyConfig:
        """Build a config from the command line's strings.

        Examples
        --------
        >>> StudyConfig.from_cli(seed=3, subjects=2, days="0,7", size="640x480").visit_days
        (0, 7)
        """
        width, height = parse_size(size)
        if overrides.get("variety") == "wide":
            overrides = {**WIDE_CAMERA, **overrides}
        return cls(seed=seed, n_subjects=subjects, visit_days=parse_days(days),
                   photos_per_visit=photos_per_visit, width=width, height=height, **overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        """The inverse of :meth:`to_dict` (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StudyConfigError(f"unknown study settings {unknown}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (stored in ``study.json``)."""
        d = asdict(self)
        d["sticker"] = None if self.sticker is None else str(self.sticker)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def with_(self, **changes: Any) -> StudyConfig:
        """A copy with some settings changed (validated again)."""
        return replace(self, **changes)

    # ------------------------------------------------------------------ derived
    @property
    def n_photos(self) -> int:
        return self.n_subjects * len(self.visit_days) * self.photos_per_visit

    @property
    def scale(self) -> float:
        """Photo width relative to ``reference_width`` (scales px/mm and blur)."""
        return self.width / self.reference_width
