"""Find the sticker's ArUco markers and fit the photo <-> plane homography.

Detection runs OpenCV's :class:`cv2.aruco.ArucoDetector` on a reduced grey copy of a large
photo (fast), then refines every corner at full resolution: each marker's four outer edges
are located to sub-pixel precision on intensity profiles in linear light and fitted as
lines, which meet at the corners. (``cv2.cornerSubPix`` was tried first: on a blurred
sRGB photo it pulls the corners of a black square inwards by ~0.4-0.9 px.)
The homography is fitted from all detected marker corners, robustly (USAC MAGSAC++), then
refitted by least squares (Levenberg-Marquardt) on the inliers, in image space (px), where
the detection noise lives.

Markers whose id is not on the sticker (another sticker, a label, a test chart nearby)
are ignored and recorded (:attr:`MarkerDetections.ignored_ids`; the calibration flags
``foreign_markers``), unless they make the pose ambiguous. Every failure is a specific
:class:`~calibration.errors.CalibrationError` subclass whose message names the photo: no
marker, fewer than three, a duplicated id (a second copy of the sticker, a stray marker with
one of its ids), only markers of another sticker, a foreign marker lying on the card itself
(the description does not match the sticker: :func:`check_ignored_markers`), a marker of the
sticker far from where the others place it, or seen at another rotation than described
(:func:`fit_homography`), or a sticker partly outside the frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.errors import (
    DuplicateMarkerError,
    ForeignMarkerError,
    HomographyError,
    MarkerRotationError,
    StickerNotFoundError,
    StickerOutOfFrameError,
    StrayMarkerError,
    TooFewMarkersError,
)
from calibration.geometry import PlaneGeometry
from calibration.sticker import StickerSpec

__all__ = ["MarkerDetections", "detect_markers", "fit_homography", "check_in_frame",
           "check_ignored_markers"]

#: Fewest markers that still give a (flagged) result.
MIN_MARKERS = 3


@dataclass(frozen=True, eq=False)
class MarkerDetections:
    """The sticker's markers found in one photo.

    Attributes
    ----------
    ids : tuple of int
        Marker ids, sorted.
    corners_px : ndarray (n, 4, 2)
        Their corners (TL, TR, BR, BL in the marker's own frame) in full-resolution image
        coordinates, pixel centres at integers.
    image_shape : (int, int)
    detection_scale : float
        Resolution factor of the copy the markers were found on (1.0 = full).
    ignored_ids : tuple of int
        Markers of the sticker's dictionary and of a marker-like size (half to twice the
        sticker's markers) whose id is not on the sticker: ignored.
    ignored_corners_px : ndarray (m, 4, 2)
        Their corners (not refined), in full-resolution image coordinates.
    """

    ids: tuple[int, ...]
    corners_px: np.ndarray
    image_shape: tuple[int, int]
    detection_scale: float
    ignored_ids: tuple[int, ...] = ()
    ignored_corners_px: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 2)))

    def plane_points(self, sticker: StickerSpec) -> np.ndarray:
        """The described corners (n*4, 2) in mm, matching ``corners_px.reshape(-1, 2)``."""
        return np.concatenate([sticker.marker(i).corners_mm() for i in self.ids])

    def image_points(self) -> np.ndarray:
        return self.corners_px.reshape(-1, 2)


def _grey(image_rgb: np.ndarray) -> np.ndarray:
    if image_rgb.ndim == 2:
        return np.ascontiguousarray(image_rgb)
    return cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY)


def _reduced_grey(image: np.ndarray, scale: float) -> np.ndarray:
    """A grey copy at ``scale`` (<= 1): exact halvings first (OpenCV's fast path), grey
    conversion on the smaller copy, then one area resize to the final size."""
    big_h, big_w = image.shape[:2]
    size = (max(1, round(big_w * scale)), max(1, round(big_h * scale)))
    img = image
    while img.shape[1] >= 2 * size[0] and img.shape[0] >= 2 * size[1]:
        h, w = img.shape[:2]
        img = cv2.resize(img[:h - h % 2, :w - w % 2], (w // 2, h // 2),
                         interpolation=cv2.INTER_AREA)
    grey = _grey(img)
    if (grey.shape[1], grey.shape[0]) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey


def _run_detector(grey: np.ndarray, sticker: StickerSpec) -> tuple[list[np.ndarray], list[int]]:
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_NONE
    # Read bits from more, and more central, samples per cell: robust to blur.
    params.perspectiveRemovePixelPerCell = 8
    params.perspectiveRemoveIgnoredMarginPerCell = 0.3
    dictionary = cv2.aruco.getPredefinedDictionary(sticker.aruco_dictionary_id)
    detector = cv2.aruco.ArucoDetector(dictionary, params)
    corners, ids, rejected = detector.detectMarkers(grey)
    if ids is None:
        return [], []
    found = [int(i) for i in ids.ravel()]
    own = [i for i in found if i in sticker.marker_ids]
    if 0 < len(set(own)) == len(own) < len(sticker.markers) and len(rejected):
        # Look for the missing markers where the found ones say they must be (a blurred or
        # partly shaded marker is often among the rejected candidates).
        board = cv2.aruco.Board(
            [np.c_[m.corners_mm(), np.zeros(4)].astype(np.float32) for m in sticker.markers],
            dictionary, np.array(sticker.marker_ids, dtype=np.int32))
        corners, ids, _, _ = detector.refineDetectedMarkers(grey, board, corners, ids, rejected)
        found = [int(i) for i in ids.ravel()]
    return [c.reshape(4, 2).astype(np.float64) for c in corners], found


def _refine(image: np.ndarray, corners: np.ndarray, bits: int, *, passes: int = 2
             ) -> np.ndarray:
    """Sub-pixel corners of one marker: its four outer edges fitted as lines, intersected.

    Each side's edge is located on intensity profiles across it, in *linear* light (in sRGB
    a blurred edge moves towards the dark side): the edge is where a profile crosses halfway
    between the black and the white margin, which a symmetric blur leaves in place. The
    black level is read on profiles where the black reaches at least ~1.5 cells inwards
    (the border's corner cells, black data cells), so that the border's inner edge, one
    cell in, cannot lift it under blur. Profiles run along the side up to 0.7 cell from the
    corners.
    (The centroid of the profile's gradient was tried too: on JPEG photos it sat ~0.15 px
    outwards.) A line is fitted to the points of each side by total least squares with
    outliers removed; adjacent lines meet at the corners. A second pass starts from the
    refined corners. Corners whose refinement fails keep the previous estimate.
    """
    from calibration.colour import srgb_to_linear

    side = float(np.mean(np.linalg.norm(corners - np.roll(corners, 1, axis=0), axis=1)))
    cells = bits + 2
    cell = side / cells
    inner, outer = max(2.0, 1.6 * cell), max(1.5, 1.0 * cell)
    h, w = image.shape[:2]
    pad = inner + outer + 2
    x0 = int(max(0, np.floor(corners[:, 0].min() - pad)))
    y0 = int(max(0, np.floor(corners[:, 1].min() - pad)))
    x1 = int(min(w, np.ceil(corners[:, 0].max() + pad + 1)))
    y1 = int(min(h, np.ceil(corners[:, 1].max() + pad + 1)))
    crop = srgb_to_linear(_grey(image[y0:y1, x0:x1]))
    c = corners - [x0, y0]
    start = c.copy()
    n_along = int(np.clip(side / 2, 12, 64))
    step = 0.25
    offs = np.arange(-inner, outer + 1e-9, step)
    t = np.linspace(0.7 / cells, 1 - 0.7 / cells, n_along)
    deep = offs <= -1.3 * cell  # the data cell behind the border (or the border's corner)
    bright = offs >= 0.6 * cell  # the white margin
    for _ in range(passes):
        lines = []
        for k in range(4):
            a, b = c[k], c[(k + 1) % 4]
            d = (b - a) / np.linalg.norm(b - a)
            normal = np.array([d[1], -d[0]])  # outward for TL, TR, BR, BL (clockwise) order
            base = a[None, :] + t[:, None] * (b - a)[None, :]
            pts = base[:, None, :] + offs[None, :, None] * normal[None, None, :]
            prof = cv2.remap(crop, pts[..., 0].astype(np.float32),
                             pts[..., 1].astype(np.float32), cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
            hi = float(np.median(prof[:, bright]))
            deep_val = prof[:, deep].mean(axis=1) if deep.any() else prof[:, 0]
            dark = float(np.percentile(deep_val, 10))
            isolated = deep_val < dark + 0.25 * (hi - dark)
            # The print's black is one level: read it where the black reaches deeper than
            # the border (its corner cells, black data cells), so the edge is single and
            # blur cannot lift the darkest value through the border's inner edge.
            mins = prof[:, offs <= 0].min(axis=1)
            lo = float(np.median(mins[isolated]) if isolated.sum() >= 3
                       else np.percentile(mins, 10))
            if hi - lo < 0.05 * max(hi, 1e-6):
                return corners
            half = (lo + hi) / 2
            above = prof > half
            cross = ~above[:, :-1] & above[:, 1:]  # dark -> bright, going outwards
            rows = np.flatnonzero(cross.sum(axis=1) == 1)
            jj = cross[rows].argmax(axis=1)
            p0, p1 = prof[rows, jj], prof[rows, jj + 1]
            pos = offs[jj] + (half - p0) / (p1 - p0) * step
            edge = base[rows] + pos[:, None] * normal[None, :]
            if len(edge) < 4:
                return corners
            lines.append(_fit_line(edge))
        new = c.copy()
        for k in range(4):
            p = _intersect(lines[(k - 1) % 4], lines[k])
            if p is not None and np.linalg.norm(p - start[k]) <= max(3.0, cell):
                new[k] = p
        c = new
    return c + [x0, y0]


def _fit_line(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total-least-squares line (point, unit normal) with a 3-sigma outlier pass."""
    keep = np.ones(len(pts), bool)
    for _ in range(2):
        m = pts[keep].mean(axis=0)
        _, _, vt = np.linalg.svd(pts[keep] - m)
        normal = vt[1]
        r = (pts - m) @ normal
        sigma = 1.4826 * np.median(np.abs(r[keep])) + 1e-3
        new = np.abs(r) <= 3 * sigma
        if new.sum() < 3 or (new == keep).all():
            break
        keep = new
    return m, normal


def _intersect(l1: tuple[np.ndarray, np.ndarray], l2: tuple[np.ndarray, np.ndarray]
               ) -> np.ndarray | None:
    (p1, n1), (p2, n2) = l1, l2
    a = np.array([n1, n2])
    if abs(np.linalg.det(a)) < 1e-6:
        return None
    return np.linalg.solve(a, np.array([n1 @ p1, n2 @ p2]))


def detect_markers(image_rgb: np.ndarray, sticker: StickerSpec, *, max_side: int = 1600,
                   refine: bool = True, source: str = "<image>") -> MarkerDetections:
    """Find the sticker's markers in a photo.

    Parameters
    ----------
    image_rgb : ndarray (H, W, 3) uint8 or (H, W) grey
        The oriented photo.
    sticker : StickerSpec
    max_side : int
        Detect on a copy reduced to at most this many pixels along its longer side; copies
        1.5 times larger (up to full resolution) are tried while fewer markers than the
        sticker has are found, and missing markers are searched for where the found ones
        place them (``refineDetectedMarkers``). Corners are always refined at full
        resolution.
    refine : bool
        Sub-pixel refinement of the corners (edge lines fitted in linear light).
    source : str
        Name of the photo, used in error messages.

    Returns
    -------
    MarkerDetections

    Raises
    ------
    StickerNotFoundError
        No marker of the sticker's dictionary, or none of marker size.
    ForeignMarkerError
        Markers of marker size, none of them the sticker's (another sticker).
    DuplicateMarkerError
        One of the sticker's ids seen twice: a second copy of the sticker, a stray marker
        with its id, a reflection (the pose would be ambiguous).
    TooFewMarkersError, StickerOutOfFrameError

    Examples
    --------
    >>> from calibration.sticker import load_sticker
    >>> from calibration.synthetic import render_scene
    >>> spec = load_sticker()
    >>> scene = render_scene(spec, size=(640, 480), px_per_mm=5.0)
    >>> detect_markers(scene.image_rgb, spec).ids
    (0, 1, 2, 3)
    """
    if image_rgb.ndim not in (2, 3) or image_rgb.size == 0:
        raise ValueError(f"{source}: expected an (H, W, 3) image, got shape {image_rgb.shape}")
    big_h, big_w = image_rgb.shape[:2]
    own = set(sticker.marker_ids)
    scale = min(1.0, max_side / max(big_h, big_w))
    best: tuple[list[np.ndarray], list[int], float] | None = None
    while True:
        small = _reduced_grey(image_rgb, scale) if scale < 1.0 else _grey(image_rgb)
        sx, sy = big_w / small.shape[1], big_h / small.shape[0]
        corners, ids = _run_detector(small, sticker)
        # Map corner coordinates (pixel centres at integers) back to full resolution.
        corners = [np.column_stack([(c[:, 0] + 0.5) * sx - 0.5, (c[:, 1] + 0.5) * sy - 0.5])
                   for c in corners]
        n_own = len(own.intersection(ids))
        if best is None or n_own > len(own.intersection(best[1])):
            best = (corners, ids, scale)
        if n_own >= len(own) or scale >= 1.0:
            break
        scale = min(1.0, scale * 1.5)
    corners, ids, scale = best
    if not ids:
        raise StickerNotFoundError(f"{source}: no {sticker.dictionary} marker found "
                                   f"(sticker {sticker.name!r} not in the photo?)")
    sides = [float(np.mean(np.linalg.norm(c - np.roll(c, 1, axis=0), axis=1))) for c in corners]
    own_sides = [s for s, i in zip(sides, ids, strict=True) if i in own]
    ref_side = float(np.median(own_sides)) if own_sides else float(np.median(sides))
    # Foreign ids of a marker-like size are another sticker or label: ignored, but recorded;
    # tiny spurious hits are dropped.
    foreign = sorted(((i, c) for s, i, c in zip(sides, ids, corners, strict=True)
                      if i not in own and 0.5 * ref_side <= s <= 2.0 * ref_side),
                     key=lambda t: t[0])
    kept = [(i, c) for i, c in zip(ids, corners, strict=True) if i in own]
    if not kept and foreign:
        raise ForeignMarkerError(f"{source}: marker ids {[i for i, _ in foreign]} are not on "
                                 f"sticker {sticker.name!r} (ids {sorted(own)}) and none of "
                                 f"its markers was found: another sticker?")
    found = [i for i, _ in kept]
    dups = sorted({i for i in found if found.count(i) > 1})
    if dups:
        what = (f"two copies of sticker {sticker.name!r}" if len(dups) >= MIN_MARKERS
                else "a stray marker with the sticker's id, a second sticker or a reflection")
        raise DuplicateMarkerError(f"{source}: marker ids {dups} found more than once "
                                   f"({what}?): the sticker's pose is ambiguous")
    if not kept:
        raise StickerNotFoundError(f"{source}: no marker of sticker {sticker.name!r} found")
    if len(kept) < MIN_MARKERS:
        raise TooFewMarkersError(f"{source}: only {len(kept)} of {len(own)} markers of sticker "
                                 f"{sticker.name!r} found (ids {sorted(found)}); at least "
                                 f"{MIN_MARKERS} are needed")
    kept.sort(key=lambda t: t[0])
    arr = np.stack([c for _, c in kept])
    margin = 1.0
    if (np.any(arr < margin) or np.any(arr[..., 0] > big_w - 1 - margin)
            or np.any(arr[..., 1] > big_h - 1 - margin)):
        raise StickerOutOfFrameError(f"{source}: a marker of sticker {sticker.name!r} touches "
                                     f"the photo's border")
    if refine:
        bits = cv2.aruco.getPredefinedDictionary(sticker.aruco_dictionary_id).markerSize
        arr = np.stack([_refine(image_rgb, c, bits) for c in arr])
    ignored = (np.stack([c for _, c in foreign]) if foreign else np.zeros((0, 4, 2)))
    return MarkerDetections(tuple(i for i, _ in kept), arr, (big_h, big_w), scale,
                            tuple(i for i, _ in foreign), ignored)


def check_ignored_markers(detections: MarkerDetections, geometry: PlaneGeometry,
                          sticker: StickerSpec, *, source: str = "<image>") -> None:
    """Refuse ignored (foreign) markers that lie on the sticker's card itself.

    A marker of marker size whose id the description lacks, printed on the card, means the
    description does not match the sticker in the photo (another version or lot): its own
    markers may be described at the wrong places too.

    Raises
    ------
    ForeignMarkerError
    """
    if not detections.ignored_ids:
        return
    centres = geometry.image_to_plane(detections.ignored_corners_px.mean(axis=1))
    on_card = ((centres[:, 0] >= 0) & (centres[:, 0] <= sticker.card_width_mm)
               & (centres[:, 1] >= 0) & (centres[:, 1] <= sticker.card_height_mm))
    if on_card.any():
        bad = [i for i, on in zip(detections.ignored_ids, on_card, strict=True) if on]
        where = ", ".join(f"({x:.1f}, {y:.1f})" for x, y in centres[on_card])
        raise ForeignMarkerError(
            f"{source}: marker ids {bad} are not on sticker {sticker.name!r} (ids "
            f"{sorted(sticker.marker_ids)}) but lie on its card, at {where} mm: does the "
            f"description ({sticker.source or sticker.name}) match this sticker?")


def fit_homography(detections: MarkerDetections, sticker: StickerSpec, *,
                   threshold_px: float = 3.0, source: str = "<image>"
                   ) -> tuple[PlaneGeometry, np.ndarray]:
    """Robust homography from the detected marker corners.

    Parameters
    ----------
    detections : MarkerDetections
    sticker : StickerSpec
    threshold_px : float
        Inlier threshold of the robust fit, in image pixels.
    source : str
        Name of the photo, used in error messages.

    Returns
    -------
    geometry : PlaneGeometry
        The image -> plane homography.
    inliers : ndarray of bool (n*4,)
        Which corners the final least-squares fit used.

    Raises
    ------
    HomographyError
        Too few inliers, or a degenerate (e.g. mirrored) homography.
    MarkerRotationError
        A marker sits where described but turned: its ``rotation_deg`` is wrong.
    StrayMarkerError
        A marker with one of the sticker's ids lies far (more than half a marker) from where
        the other markers place it: a stray marker, so the pose is ambiguous.

    Examples
    --------
    >>> from calibration.sticker import load_sticker
    >>> from calibration.synthetic import render_scene
    >>> spec = load_sticker()
    >>> scene = render_scene(spec, size=(640, 480), px_per_mm=5.0)
    >>> geo, _ = fit_homography(detect_markers(scene.image_rgb, spec), spec)
    >>> round(geo.mm_per_px_at(320, 240), 2)
    0.2
    """
    img = detections.image_points().astype(np.float64)
    plane = detections.plane_points(sticker)
    h, mask = cv2.findHomography(plane, img, cv2.USAC_MAGSAC, threshold_px, maxIters=2000,
                                 confidence=0.999)
    if h is None or mask is None:
        raise HomographyError(f"{source}: no homography fits the {len(img)} marker corners")
    inliers = mask.ravel().astype(bool)
    if inliers.sum() < 8:
        raise HomographyError(f"{source}: only {int(inliers.sum())} of {len(img)} marker "
                              f"corners agree on a homography (are the markers' places and "
                              f"rotation_deg described right in "
                              f"{sticker.source or sticker.name}?)")
    h2, _ = cv2.findHomography(plane[inliers], img[inliers], 0)
    if h2 is not None:
        h = h2
    _check_marker_layout(detections, sticker, h, inliers, source)
    # The card must not be seen mirrored: the plane's orientation is kept.
    j = h[:2, :2] * h[2, 2] - np.outer(h[:2, 2], h[2, :2])
    if np.linalg.det(j) <= 0:
        raise HomographyError(f"{source}: the marker corners imply a mirrored sticker")
    return PlaneGeometry(np.linalg.inv(h), detections.image_shape), inliers


def _check_marker_layout(det: MarkerDetections, sticker: StickerSpec, h: np.ndarray,
                         inliers: np.ndarray, source: str) -> None:
    """Explain a marker none (or one) of whose corners fit the others' homography."""
    per_marker = inliers.reshape(len(det.ids), 4).sum(axis=1)
    h_inv = np.linalg.inv(h)
    for k, mid in enumerate(det.ids):
        if per_marker[k] >= 2:
            continue
        m = sticker.marker(mid)
        seen = det.corners_px[k]
        square = cv2.perspectiveTransform(m.square_mm()[None], h)[0]  # card TL, TR, BR, BL
        side = float(np.mean(np.linalg.norm(seen - np.roll(seen, 1, axis=0), axis=1)))
        errs = [float(np.linalg.norm(seen - np.roll(square, -j, axis=0), axis=1).max())
                for j in range(4)]
        turns = int(np.argmin(errs))
        if errs[turns] <= 0.25 * side and turns != m.quarter_turns:
            raise MarkerRotationError(
                f"{source}: marker {mid} of sticker {sticker.name!r} is printed turned "
                f"{90 * turns} degrees clockwise, but its description "
                f"({sticker.source or sticker.name}) says rotation_deg = {m.rotation_deg}: "
                f"the description does not match this sticker")
        c = h_inv @ np.r_[seen.mean(axis=0), 1.0]
        dist = float(np.hypot(*(c[:2] / c[2] - np.asarray(m.centre_mm))))
        if dist > 0.5 * m.size_mm:
            others = [i for i, n in zip(det.ids, per_marker, strict=True) if n >= 2]
            raise StrayMarkerError(
                f"{source}: marker {mid} is {dist:.0f} mm from where markers {others} of "
                f"sticker {sticker.name!r} place it (a stray marker with the sticker's id, or "
                f"a second sticker?): the sticker's pose is ambiguous")


def check_in_frame(geometry: PlaneGeometry, sticker: StickerSpec, *,
                   source: str = "<image>") -> None:
    """Raise :class:`StickerOutOfFrameError` when the card's corners leave the photo."""
    card = np.array([[0.0, 0.0], [sticker.card_width_mm, 0.0],
                     [sticker.card_width_mm, sticker.card_height_mm],
                     [0.0, sticker.card_height_mm]])
    pts = geometry.plane_to_image(card)
    h, w = geometry.image_shape
    tol = 0.5
    outside = ((pts[:, 0] < -tol) | (pts[:, 1] < -tol) | (pts[:, 0] > w - 1 + tol)
               | (pts[:, 1] > h - 1 + tol))
    # A corner behind the camera maps with a flipped sign: treat as outside too.
    hom = np.c_[card, np.ones(4)] @ geometry.plane_to_image_h.T
    centre = np.array([sticker.card_width_mm / 2, sticker.card_height_mm / 2, 1.0])
    sign = np.sign(geometry.plane_to_image_h[2] @ centre)
    outside |= np.sign(hom[:, 2]) != sign
    if outside.any():
        names = ["top-left", "top-right", "bottom-right", "bottom-left"]
        bad = [names[i] for i in np.flatnonzero(outside)]
        raise StickerOutOfFrameError(f"{source}: sticker {sticker.name!r} is partly out of "
                                     f"frame (card corners {bad} outside the "
                                     f"{w}x{h} photo)")
