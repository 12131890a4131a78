"""Helpers for the review app's tests: a tiny processed study built directly through the Store API
(no model, no calibration), with small generated review pictures, overlays and masks.

Subject identifiers, arms and dates are distinctive strings, planted where a careless server
could pick them up (photo names, kept metadata, EXIF of the pictures, an allocation file next
to the store), so that the blinding tests can look for them in everything served.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from argon2 import PasswordHasher
from PIL import Image

from pipeline.review.accounts import add_user
from pipeline.review.queue import build_queue
from pipeline.review.settings import ServerConfig, StudyReviewSettings, save_study_settings
from pipeline.store import Store

SUBJECTS = ("S-KRYPTON-07", "S-XENON-13", "S-RADON-21", "S-ARGON-34")
ARMS = {"S-KRYPTON-07": "msc", "S-XENON-13": "control", "S-RADON-21": "msc",
        "S-ARGON-34": "control"}
DAYS = (0, 7, 14)
FULL = (320, 240)     # full-resolution mask (w, h)
REVIEW = (160, 120)   # review picture (w, h)
MM_PER_PX = 0.25      # at full resolution
ASSESSORS = ("ann", "bob", "cat")
COORDINATOR = "cora"
PASSWORDS = {n: f"pw-{n}-0123456789" for n in (*ASSESSORS, COORDINATOR)}
#: Cheap hashes for tests (the server's defaults are argon2id with 64 MiB).
CHEAP = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _jpeg_with_exif(rgb: np.ndarray, subject: str) -> bytes:
    ex = Image.Exif()
    ex[0x010E] = f"subject {subject} arm {ARMS.get(subject, 'msc')}"   # ImageDescription
    ex[0x0132] = "2026:03:01 10:15:00"                      # DateTime
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90, exif=ex.tobytes())
    return buf.getvalue()


def labels_for(k: int) -> np.ndarray:
    """A full-resolution label map: raw (2) left, epithelialized (1) right, varying by k."""
    w, h = FULL
    lab = np.zeros((h, w), np.uint8)
    split = 100 + 10 * (k % 5)
    lab[60:180, 60:split] = 2
    lab[60:180, split:260] = 1
    return lab


def original_for(k: int) -> np.ndarray:
    """A full-resolution original (BGR, FULL size) with fine detail: a 1-pixel grid whose
    phase varies with k, invisible in the half-size review picture."""
    w, h = FULL
    img = np.full((h, w, 3), (130, 150, 205), np.uint8)
    img[(k % 3)::3, :, 1] = 60
    img[:, (k % 4)::4, 2] = 250
    return img


@dataclass(frozen=True)
class Study:
    out_dir: Path
    photo_ids: tuple[str, ...]
    failed_id: str

    @property
    def store_path(self) -> Path:
        return self.out_dir / "study.sqlite"


def make_study(root: Path, *, reads_per_photo: int = 2, repeat_fraction: float = 0.2,
               show_visit_day: bool = False, queue: bool = True,
               subjects: tuple[str, ...] = SUBJECTS, days: tuple[int, ...] = DAYS,
               homography: list[list[float]] | None = None,
               show_live_numbers: bool = False, originals: bool = False,
               colour_matrix: list[list[float]] | None = None) -> Study:
    out = root / "processed"
    root.mkdir(parents=True, exist_ok=True)
    (root / "allocation.csv").write_text(
        "subject_id,arm\n" + "".join(f"{s},{a}\n" for s, a in ARMS.items()))
    ids = []
    with Store.open(out / "study.sqlite") as s:
        run = s.begin_run(software_version="t", git_commit="c", model_name="m",
                          model_sha256="h", sticker={"name": "X"}, params={}, reason=None,
                          command="test")
        k = 0
        for subject in subjects:
            for day in days:
                name = f"photos/{subject}/{subject}_2026-03-{day + 1:02d}_D{day:03d}.jpg"
                manifest, sha = "/study/manifest.csv", hashlib.sha256(name.encode()).hexdigest()
                if originals:   # a real full-resolution original next to a manifest
                    name = name[:-4] + ".png"
                    manifest = str(root / "study" / "manifest.csv")
                    path = root / "study" / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    ok, png = cv2.imencode(".png", original_for(k))
                    path.write_bytes(png.tobytes())
                    sha = hashlib.sha256(png.tobytes()).hexdigest()
                rec = s.register_photo(manifest=manifest, source_name=name, sha256=sha,
                                       size_bytes=1000, subject_id=subject, visit_day=day,
                                       site="thigh-left")
                pid = rec.photo_id
                lab = labels_for(k)
                mask_rel, over_rel = f"masks/{pid}-r1.png", f"overlays/{pid}-r1.jpg"
                (out / "masks").mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(out / mask_rel), lab)
                rgb = np.full((REVIEW[1], REVIEW[0], 3), (205, 150, 130), np.uint8)
                rgb[:, :, 1] = np.linspace(120, 180, REVIEW[0], dtype=np.uint8)[None, :]
                for rel in (over_rel, f"review/{pid}-r1.jpg"):
                    (out / rel).parent.mkdir(parents=True, exist_ok=True)
                    (out / rel).write_bytes(_jpeg_with_exif(rgb, subject))
                epi = float((lab == 1).sum())
                raw = float((lab == 2).sum())
                s.save_result(
                    photo_id=pid, run_id=run, version=1, status="ok",
                    photo_info={"width": FULL[0], "height": FULL[1], "format": "JPEG",
                                "metadata": {"DateTimeOriginal": "2026:03:01 10:15:00",
                                             "subject": subject}},
                    calibration={"mm_per_px": MM_PER_PX, "tilt_deg": 3.0, "markers": (0, 1),
                                 "record": {
                                     **({"homography_image_to_plane_mm": homography,
                                         "image_shape": [FULL[1], FULL[0]]}
                                        if homography is not None else {}),
                                     **({"colour": {"method": "linear", "degree": 1,
                                                    "matrix": colour_matrix}}
                                        if colour_matrix is not None else {})}},
                    segmentation={"model_name": "m", "model_sha256": "h", "mask_file": mask_rel,
                                  "overlay_file": over_rel},
                    measurement={"donor_site_area_mm2": epi + raw, "epithelialized_area_mm2": epi,
                                 "raw_area_mm2": raw,
                                 "healed_percent": 100 * epi / (epi + raw)})
                ids.append(pid)
                k += 1
        bad = s.register_photo(manifest="/study/manifest.csv", source_name="photos/broken.jpg",
                               sha256="0" * 64, size_bytes=1, subject_id=subjects[0],
                               visit_day=21, site="thigh-left")
        s.save_result(photo_id=bad.photo_id, run_id=run, version=1, status="failed",
                      error_code="corrupt_image", error_message="photos/broken.jpg: truncated")
        hasher = cheap_hasher()
        with s.transaction() as c:
            for n in ASSESSORS:
                add_user(c, n, role="assessor", hasher=hasher, password=PASSWORDS[n],
                         must_change=False)
            add_user(c, COORDINATOR, role="coordinator", hasher=hasher,
                     password=PASSWORDS[COORDINATOR], must_change=False)
            settings = StudyReviewSettings(reads_per_photo=reads_per_photo,
                                           repeat_fraction=repeat_fraction,
                                           show_visit_day=show_visit_day, queue_seed=7,
                                           show_live_numbers=show_live_numbers)
            save_study_settings(c, settings)
        if queue:
            build_queue(s, settings=settings, created_by="test")
    return Study(out, tuple(ids), bad.photo_id)


def server_config(study: Study, **kw: object) -> ServerConfig:
    return ServerConfig(out_dir=study.out_dir, **{**CHEAP, **kw})


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    m = _TOKEN.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client, name: str, password: str | None = None):
    """Log a test client in; returns the response of the login POST."""
    page = client.get("/login")
    return client.post("/login", data={"name": name, "password": password or PASSWORDS[name],
                                       "csrf_token": csrf_from(page.get_data(as_text=True))})


def session_csrf(client) -> str:
    """The logged-in client's session CSRF token (from any page's meta tag)."""
    html = client.get("/password").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def tasks_of(study: Study, assessor: str) -> list[tuple[str, str, int]]:
    """(task_code, photo_id, is_repeat) of an assessor, in queue order."""
    with Store.open(study.store_path) as s:
        return [tuple(r) for r in s.conn.execute(
            "SELECT task_code, photo_id, is_repeat FROM review_tasks WHERE assessor=? "
            "ORDER BY position", (assessor,))]
