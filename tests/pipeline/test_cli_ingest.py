"""``donorsite process`` and ``donorsite calibrate`` on bad input (issue 14): failures listed
by file and manifest line, the run lock against a real second process, and ``calibrate``
decoding like ``process``."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import make_dicom  # noqa: F401  (importlib mode: rootdir path)

ROOT = Path(__file__).resolve().parents[2]


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header promises ``width`` x ``height`` pixels (no real pixel data)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
            + chunk(b"IEND", b""))


def _calibrate(*args: str):
    return CliRunner().invoke(app, ["calibrate", *args])


def test_calibrate_refuses_bombs_and_special_files_clearly(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_bomb())
    (tmp_path / "dir.jpg").mkdir()
    os.mkfifo(tmp_path / "fifo.jpg")
    for name, needle in (("bomb.png", "pixels"), ("dir.jpg", "not a regular file (a folder)"),
                         ("fifo.jpg", "not a regular file (a FIFO"),
                         ("none.jpg", "does not exist")):
        res = _calibrate(str(tmp_path / name))
        assert res.exit_code == 1, (name, res.output)
        assert needle in res.output and name in res.output, res.output
        assert "Traceback" not in res.output


def test_calibrate_reads_dicom_and_debugs_portrait_and_square_photos(tmp_path, small_study):
    src = sorted((small_study / "photos").rglob("*.jpg"))[0]
    rgb = np.asarray(Image.open(src).convert("RGB"))
    (tmp_path / "a.dcm").write_bytes(make_dicom(rgb))
    res = _calibrate(str(tmp_path / "a.dcm"))
    assert res.exit_code == 0, res.output
    assert "mm/px" in res.output or "scale" in res.output.lower()
    portrait = np.ascontiguousarray(np.rot90(rgb))
    square = np.full((rgb.shape[1], rgb.shape[1], 3), 255, np.uint8)
    square[: rgb.shape[0]] = rgb
    for name, img in (("portrait.png", portrait), ("square.png", square)):
        Image.fromarray(img).save(tmp_path / name)
        res = _calibrate(str(tmp_path / name), "--debug", str(tmp_path / f"debug-{name}"))
        assert res.exit_code == 0, res.output
        debug = Image.open(tmp_path / f"debug-{name}")
        assert debug.size[1] >= min(1600, img.shape[0])


def test_process_lists_failed_files_with_line_and_reason(tmp_path, small_study, tiny_model):
    study = shutil.copytree(small_study, tmp_path / "study")
    (study / "bad.jpg").write_bytes(b"not an image\n" * 20)
    with (study / "manifest.csv").open("a") as fh:
        fh.write("S90,1_0,thigh,bad.jpg\nS90,3,thigh,bad.jpg\nS90,5,thigh,x.jpg,extra\n")
    res = CliRunner().invoke(app, ["process", str(study), "--out", str(tmp_path / "o"),
                                   "--model", str(tiny_model), "--jobs", "1",
                                   "--backend", "torch", "--no-progress"])
    assert res.exit_code == 1, res.output
    listing = res.output.split("failed (file, manifest line, reason):", 1)[1]
    assert "'bad.jpg' (line 6) bad_row" in listing and "'1_0'" in listing
    assert "'bad.jpg' (line 7) not_an_image" in listing
    assert "(line 8) bad_row" in listing and "5 fields" in listing


def test_second_process_on_the_same_out_is_refused_and_a_stale_lock_taken_over(
        tmp_path, small_study):
    from pipeline.runlock import RunLock

    out = tmp_path / "o"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from pipeline.runlock import RunLock; RunLock(Path(sys.argv[1])).acquire(); "
         "print('held', flush=True); time.sleep(120)", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = subprocess.run([sys.executable, "-m", "pipeline.cli", "process", str(small_study),
                              "--out", str(out), "--no-progress"], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 2, res.stderr
        assert f"in use by PID {holder.pid}, started " in res.stderr
        assert "Traceback" not in res.stderr and not (out / "study.sqlite").exists()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    with RunLock(out) as lock:  # the dead holder's lock does not block
        assert lock.note and f"PID {holder.pid}" in lock.note and "no longer running" in lock.note
    with RunLock(out) as lock:  # a cleanly released lock leaves no note
        assert lock.note is None
