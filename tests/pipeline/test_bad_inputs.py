"""A corpus of bad and odd inputs (issue 14), generated here and processed in ONE batch with
good photos: no traceback, no batch-wide failure, every failure names its file, its manifest
line and the problem, every good photo is measured and no photo gets a wrong subject or day.
A few manifest-wide problems (duplicated header, not UTF-8, ...) are checked on tiny manifests
of their own."""

from __future__ import annotations

import csv
import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import make_dicom  # noqa: F401  (importlib mode: rootdir path)
from tests.pipeline.iccprofiles import display_p3

OK, FAIL, EITHER = "ok", "fail", "either"


@dataclass
class Kind:
    """One kind of input: the manifest row's fields and what must happen."""

    what: str
    subject: str
    day: str
    file: str
    expect: str
    code: str | None = None  # the failure's code, when it must fail
    raw_row: str | None = None  # a literal manifest line instead of the fields
    want_day: int | None = None  # the stored day, when it must be measured
    flag: str | None = None  # a QC flag a measured photo must carry


def _png_bomb() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 90000, 90000, 8, 0,
                                                               0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


def _img(img: Image.Image, fmt: str, **kw) -> bytes:
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _dicom_edit(data: bytes, **changes) -> bytes:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _p3(rgb: np.ndarray) -> np.ndarray:
    import colour

    out = colour.RGB_to_RGB(rgb / 255.0, "sRGB", "Display P3", apply_cctf_decoding=True,
                            apply_cctf_encoding=True)
    return np.clip(np.round(np.nan_to_num(out) * 255), 0, 255).astype(np.uint8)


def build_corpus(study: Path, tmp: Path) -> list[Kind]:
    """Write the odd files into ``study/odd`` and return the kinds (good rows first)."""
    good = list(csv.DictReader((study / "manifest.csv").open()))
    odd = study / "odd"
    odd.mkdir()
    w = {}  # name -> bytes
    g0, g1 = good[0], good[1]
    rgb = np.asarray(Image.open(study / g0["file"]).convert("RGB"))
    jpg = (study / g0["file"]).read_bytes()
    s, site = g0["subject_id"], g0["site"]
    kinds = [Kind(f"good photo {r['file']}", r["subject_id"], r["visit_day"], r["file"], OK,
                  want_day=int(r["visit_day"])) for r in good]
    # --- odd but good photos: measured, with the right identity
    w["photé ü.jpg"] = jpg
    w["semi;colon & space.jpg"] = _img(Image.fromarray(rgb), "JPEG", quality=92)
    w["comma,name.jpg"] = _img(Image.fromarray(rgb), "JPEG", quality=91)
    exif = Image.Exif()
    exif[0x0112] = 8
    w["exif8.jpg"] = _img(Image.fromarray(np.ascontiguousarray(np.rot90(rgb, -1))), "JPEG",
                          quality=93, exif=exif.tobytes())
    w["p3.jpg"] = _img(Image.fromarray(_p3(rgb)), "JPEG", quality=94, icc_profile=display_p3())
    w["phone.heic"] = _img(Image.fromarray(rgb), "HEIF", quality=90)
    w["pages.tif"] = _img(Image.fromarray(rgb), "TIFF", save_all=True,
                          append_images=[Image.new("RGB", (40, 30))])
    w["rgba.png"] = _img(Image.fromarray(rgb).convert("RGBA"), "PNG")
    w["rgb16.png"] = _img(Image.fromarray(rgb), "PNG")
    dcm = make_dicom(rgb, acquired="20260301100000", patient_id="MRN0042",
                     patient_name="Doe^Jane")
    w["anchor.dcm"] = dcm
    w["later.dcm"] = _dicom_edit(dcm, AcquisitionDateTime="20260304")
    w["content-date.dcm"] = _dicom_edit(dcm, AcquisitionDateTime=None, ContentDate="20260305")
    w["study-date.dcm"] = _dicom_edit(dcm, AcquisitionDateTime=None, StudyDate="20260306")
    w["trial-id-evil.dcm"] = _dicom_edit(dcm, ClinicalTrialSubjectID="../../etc/passwd",
                                         AcquisitionDateTime="20260307")
    w["trial-id-formula.dcm"] = _dicom_edit(dcm, ClinicalTrialSubjectID="=HYPERLINK(\"x\")",
                                            AcquisitionDateTime="20260308")
    w["ybr.dcm"] = make_dicom(rgb, compressed=True, acquired="20260309")
    w["copy-of-good.jpg"] = jpg  # the same content under a second name and another visit
    kinds += [
        Kind("non-ASCII name", s, "31", "odd/photé ü.jpg", OK, want_day=31),
        Kind("shell characters in the name", s, "32", "odd/semi;colon & space.jpg", OK,
             want_day=32),
        Kind("quoted comma in the name", s, "33", "odd/comma,name.jpg", OK, want_day=33,
             raw_row=f'{s},33,{site},"odd/comma,name.jpg"'),
        Kind("EXIF orientation 8", s, "34", "odd/exif8.jpg", OK, want_day=34),
        Kind("Display P3 JPEG", s, "35", "odd/p3.jpg", OK, want_day=35),
        Kind("HEIC", s, "36", "odd/phone.heic", OK, want_day=36),
        Kind("multi-page TIFF", s, "37", "odd/pages.tif", OK, want_day=37,
             flag="multi_page_tiff"),
        Kind("RGBA PNG", s, "38", "odd/rgba.png", OK, want_day=38),
        Kind("PNG", s, "39", "odd/rgb16.png", OK, want_day=39),
        Kind("DICOM with a visit day anchors day 0", s, "40", "odd/anchor.dcm", OK,
             want_day=40),
        Kind("DICOM day from its date and day 0", s, "", "odd/later.dcm", OK, want_day=43),
        Kind("DICOM with only ContentDate", s, "", "odd/content-date.dcm", OK, want_day=44),
        Kind("DICOM with only StudyDate", s, "", "odd/study-date.dcm", OK, want_day=45),
        Kind("DICOM trial id ../../etc/passwd", s, "", "odd/trial-id-evil.dcm", OK,
             want_day=46, flag="dicom_subject_conflict"),
        Kind("DICOM trial id formula", s, "", "odd/trial-id-formula.dcm", OK, want_day=47,
             flag="dicom_subject_conflict"),
        Kind("JPEG DICOM (YBR_FULL_422)", s, "48", "odd/ybr.dcm", OK, want_day=48),
        Kind("same content, second name", s, "49", "odd/copy-of-good.jpg", OK, want_day=49,
             flag="duplicate_content"),
        Kind("second photo for a visit", g1["subject_id"], g1["visit_day"], "odd/exif8.jpg",
             FAIL, code="duplicate_listing"),
    ]
    # --- decoded but questionable: measured and flagged, or failed with a message
    w["gray.jpg"] = _img(Image.fromarray(rgb).convert("L"), "JPEG", quality=92)
    g16 = (np.asarray(Image.fromarray(rgb).convert("L")).astype(np.uint16) * 257)
    w["gray16.png"] = _img(Image.fromarray(g16), "PNG")
    w["cmyk.jpg"] = _img(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=92)
    w["palette.png"] = _img(Image.fromarray(rgb).convert("P"), "PNG")
    w["bilevel.png"] = _img(Image.fromarray(rgb).convert("1"), "PNG")
    w["tiny.jpg"] = _img(Image.new("RGB", (1, 1), (120, 80, 70)), "JPEG")
    w["white.png"] = _img(Image.new("RGB", (300, 200), (255, 255, 255)), "PNG")
    w["sliver.png"] = _img(Image.new("RGB", (4000, 8), (200, 120, 110)), "PNG")
    w["noise.png"] = _img(Image.fromarray(np.random.default_rng(0).integers(
        0, 255, (300, 400, 3), dtype=np.uint8)), "PNG")
    w["badexif.jpg"] = jpg[:2] + b"\xff\xe1\x00\x10Exif\x00\x00II*\x00\xff\xff\xff\xff" + jpg[2:]
    w["garbled.jpg"] = jpg[: len(jpg) // 2] + bytes(range(256)) * 8 + jpg[len(jpg) // 2:]
    kinds += [
        Kind("grayscale JPEG", s, "50", "odd/gray.jpg", EITHER, flag="grayscale_photo"),
        Kind("16-bit grayscale PNG", s, "51", "odd/gray16.png", EITHER,
             flag="grayscale_photo"),
        Kind("CMYK JPEG", s, "52", "odd/cmyk.jpg", EITHER),
        Kind("palette PNG", s, "53", "odd/palette.png", EITHER),
        Kind("1-bit PNG", s, "54", "odd/bilevel.png", EITHER, flag="grayscale_photo"),
        Kind("1x1 pixel", s, "55", "odd/tiny.jpg", FAIL),
        Kind("blank white picture", s, "56", "odd/white.png", FAIL),
        Kind("4000x8 sliver", s, "57", "odd/sliver.png", FAIL),
        Kind("noise", s, "58", "odd/noise.png", FAIL),
        Kind("broken EXIF block", s, "59", "odd/badexif.jpg", EITHER),
        Kind("garbage in the middle of a JPEG", s, "60", "odd/garbled.jpg", EITHER),
    ]
    # --- unreadable files: refused with their code
    w["zero.jpg"] = b""
    w["cut.jpg"] = jpg[: len(jpg) // 3]
    w["text.jpg"] = b"this is not an image\n" * 40
    w["page.png"] = b"<html><body>not a picture</body></html>\n"
    w["doc.jpg"] = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
    w["bomb.png"] = _png_bomb()
    w["big.png"] = _img(Image.new("L", (2500, 2500)), "PNG")  # 6.25 MP > the 5 MP limit
    w["anim.gif"] = _img(Image.fromarray(rgb[:60, :80]), "GIF")
    w["bitmap.bmp"] = _img(Image.fromarray(rgb[:60, :80]), "BMP")
    w["pic.webp"] = _img(Image.fromarray(rgb[:60, :80]), "WEBP")
    png = _img(Image.fromarray(rgb[:60, :80]), "PNG")
    w["badcrc.png"] = png[:33] + bytes([png[33] ^ 0xFF]) + png[34:]
    w["cut.tif"] = _img(Image.fromarray(rgb), "TIFF")[:5000]
    w["zeros.jpg"] = b"\0" * 4096
    small = np.full((40, 60, 3), 120, np.uint8)
    w["nopix.dcm"] = make_dicom(small, pixel_data=False)
    w["absurd.dcm"] = make_dicom(np.full((40, 100, 3), 9, np.uint8), rows=65000)
    w["ct.dcm"] = _dicom_edit(make_dicom(small), SOPClassUID="1.2.840.10008.5.1.4.1.1.2")
    w["frames.dcm"] = _dicom_edit(make_dicom(small), NumberOfFrames=2)
    w["signed.dcm"] = _dicom_edit(make_dicom(small), PixelRepresentation=1)
    w["bits12.dcm"] = _dicom_edit(make_dicom(small), BitsAllocated=12)
    w["junk.dcm"] = b"\0" * 128 + b"DICM" + os.urandom(300)
    w["jpeg-named.dcm"] = jpg
    w["nodate.dcm"] = _dicom_edit(dcm, AcquisitionDateTime=None)
    w["baddate.dcm"] = _dicom_edit(dcm, AcquisitionDateTime="2026-03-05")
    w["y2k.dcm"] = _dicom_edit(dcm, AcquisitionDateTime="19960301")
    w["future.dcm"] = _dicom_edit(dcm, AcquisitionDateTime="20280301")
    w["before0.dcm"] = _dicom_edit(dcm, AcquisitionDateTime="20260110")  # day -10
    w["cut.dcm"] = dcm[: len(dcm) // 2]
    (odd / "folder.jpg").mkdir()
    os.mkfifo(odd / "fifo.jpg")
    (tmp / "outside.jpg").write_bytes(jpg)
    (odd / "link.jpg").symlink_to(tmp / "outside.jpg")
    kinds += [Kind(f"unreadable: {n}", s, str(61 + i), f"odd/{n}", FAIL, code=c) for i, (n, c)
              in enumerate([
                  ("zero.jpg", "empty_file"), ("cut.jpg", "corrupt_image"),
                  ("text.jpg", "not_an_image"), ("page.png", "not_an_image"),
                  ("doc.jpg", "not_an_image"), ("bomb.png", "image_too_large"),
                  ("big.png", "image_too_large"), ("anim.gif", "not_an_image"),
                  ("bitmap.bmp", "not_an_image"), ("pic.webp", "not_an_image"),
                  ("badcrc.png", None), ("cut.tif", None), ("zeros.jpg", "not_an_image"),
                  ("nopix.dcm", "bad_dicom"), ("absurd.dcm", "image_too_large"),
                  ("ct.dcm", "bad_dicom"), ("frames.dcm", "bad_dicom"),
                  ("signed.dcm", "bad_dicom"), ("bits12.dcm", "bad_dicom"),
                  ("junk.dcm", None), ("jpeg-named.dcm", "not_an_image"),
                  ("cut.dcm", None), ("folder.jpg", "not_regular_file"),
                  ("fifo.jpg", "not_regular_file"), ("link.jpg", "unsafe_path"),
                  ("missing.jpg", "missing_file")])]
    kinds += [
        Kind("DICOM without any date and no day", s, "", "odd/nodate.dcm", FAIL, "bad_row"),
        Kind("DICOM with a malformed date and no day", s, "", "odd/baddate.dcm", FAIL,
             "bad_row"),
        Kind("DICOM dated 30 years before day 0", s, "", "odd/y2k.dcm", FAIL,
             "implausible_visit_day"),
        Kind("DICOM dated 2 years after day 0", s, "", "odd/future.dcm", FAIL,
             "implausible_visit_day"),
        Kind("DICOM dated before day 0", s, "", "odd/before0.dcm", FAIL,
             "implausible_visit_day"),
        Kind("DICOM without a subject", "", "5", "odd/later.dcm", FAIL, "bad_row"),
        Kind("DICOM of a subject without day 0", "S77", "", "odd/later.dcm", FAIL, "bad_row"),
    ]
    # --- malformed rows
    rows = [
        ("too many fields (unquoted comma)", f"{s},3,{site},odd/a,b.jpg", "5 fields"),
        ("too few fields", f"{s},3,{site}", "missing column(s) ['file']"),
        ("a single field", f"{s}", "1 fields"),
        ("visit_day 1_0", f"{s},1_0,{site},{g0['file']}", "not a whole number"),
        ("visit_day +3", f"{s},+3,{site},{g0['file']}", "not a whole number"),
        ("visit_day 3.0", f"{s},3.0,{site},{g0['file']}", "not a whole number"),
        ("visit_day 1e1", f"{s},1e1,{site},{g0['file']}", "not a whole number"),
        ("visit_day Arabic-Indic", f"{s},\u0663,{site},{g0['file']}", "not a whole number"),
        ("visit_day -1", f"{s},-1,{site},{g0['file']}", "outside 0..365"),
        ("visit_day 366", f"{s},366,{site},{g0['file']}", "outside 0..365"),
        ("visit_day empty for a JPEG", f"{s},,{site},{g0['file']}", "visit_day is required"),
        ("subject empty", f",3,{site},{g0['file']}", "subject_id is required"),
        ("subject with a space", f"S 01,3,{site},{g0['file']}", "malformed subject_id"),
        ("subject formula", f"=HYPERLINK(1),3,{site},{g0['file']}", "malformed subject_id"),
        ("subject markup", f"<img src=x>,3,{site},{g0['file']}", "malformed subject_id"),
        ("subject path", f"../../etc/passwd,3,{site},{g0['file']}", "malformed subject_id"),
        ("subject 65 characters", f"{'S' * 65},3,{site},{g0['file']}",
         "malformed subject_id"),
        ("site empty", f"{s},3,,{g0['file']}", "site"),
        ("site formula", f"{s},3,+cmd|' /C calc'!A0,{g0['file']}", "site"),
        ("file empty", f"{s},3,{site},", "file column is empty"),
        ("absolute path", f"{s},3,{site},/etc/passwd", "relative path"),
        ("parent folder", f"{s},3,{site},../outside.jpg", "unsafe file name"),
        ("backslash", f"{s},3,{site},odd\\zero.jpg", "relative path"),
        ("drive letter", f"{s},3,{site},C:/x.jpg", "relative path"),
        ("dot part", f"{s},3,{site},odd/./zero.jpg", "unsafe file name"),
        ("empty part", f"{s},3,{site},odd//zero.jpg", "unsafe file name"),
        ("control character", f'{s},3,{site},"odd/a\x07.jpg"', "character"),
        ("right-to-left override", f"{s},3,{site},odd/\u202egpj.exe", "character"),
        ("name over 255 bytes", f"{s},3,{site},odd/{'é' * 200}.jpg", "too long"),
    ]
    kinds += [Kind(what, "", "", "", FAIL, None, raw_row=raw) for what, raw, _ in rows]
    for name, data in w.items():
        (odd / name).write_bytes(data)
    _NEEDLES.update({k.raw_row: n for k, (_, _, n) in zip(kinds[-len(rows):], rows,
                                                           strict=True)})
    return kinds


_NEEDLES: dict[str, str] = {}


def _manifest_line(k: Kind, site: str) -> str:
    if k.raw_row is not None:
        return k.raw_row
    f = f'"{k.file}"' if "," in k.file or '"' in k.file else k.file
    return f"{k.subject},{k.day},{site},{f}"


@pytest.fixture(scope="module")
def corpus_study(tmp_path_factory) -> tuple[Path, list[Kind], dict[int, Kind]]:
    from pipeline.synth import StudyConfig, generate_study

    tmp = tmp_path_factory.mktemp("corpus")
    study = tmp / "study"
    generate_study(study, StudyConfig.from_cli(seed=3, subjects=2, days="0,7",
                                               size="1200x900"), jobs=1)
    kinds = build_corpus(study, tmp)
    site = next(csv.DictReader((study / "manifest.csv").open()))["site"]
    lines = ["\ufeffsubject_id,visit_day,site,file"]  # a BOM and CRLF line ends, as Excel
    by_line: dict[int, Kind] = {}
    for k in kinds:
        lines.append(_manifest_line(k, site))
        by_line[len(lines)] = k
        if len(lines) % 17 == 0:
            lines.append("")  # blank lines are skipped
    (study / "manifest.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return study, kinds, by_line


@pytest.mark.slow
def test_one_batch_of_bad_and_odd_inputs(corpus_study, tiny_model, tmp_path):
    from pipeline.config import Settings
    from pipeline.engine import EngineOptions
    from pipeline.process import process_study
    from pipeline.store import Store

    study, kinds, by_line = corpus_study
    assert len(kinds) >= 70 + 4
    settings = Settings(out_dir=tmp_path / "out", model=str(tiny_model), jobs=1, device="cpu",
                        max_pixels=5_000_000)
    summary = process_study(study, settings, progress=False,  # no exception: no batch failure
                            engine_options=EngineOptions(backend="torch", reduce=1))
    out = settings.out_dir
    listed = {(line, code) for _, line, code, _ in summary.failures}
    with Store.open(out / "study.sqlite") as store:
        stored = {r["source_name"]: r for r in store.current_results()}
        errors = {r[0]: (r[1], r[2]) for r in store.conn.execute(
            "SELECT line, error_code, error_message FROM ingest_errors")}
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    results = {}
    for line, k in by_line.items():
        if line in errors:
            code, msg = errors[line]
        elif k.file in stored and stored[k.file]["status"] == "failed":
            code, msg = stored[k.file]["error_code"], stored[k.file]["error_message"]
        else:
            code, msg = None, None
        results[line] = (code, msg)
        if code is None:
            continue
        # every failure names the manifest line, the file and the problem
        check(f"manifest.csv line {line}:" in msg, f"{k.what}: no line in {msg!r}")
        if k.file:
            check(k.file in msg or repr(k.file)[1:-1] in msg, f"{k.what}: no file in {msg!r}")
        check((line, code) in listed, f"{k.what}: not in the summary's failures")
        if k.code:
            check(code == k.code, f"{k.what}: {code} != {k.code} ({msg})")
        if k.raw_row in _NEEDLES:
            check(_NEEDLES[k.raw_row] in msg, f"{k.what}: {_NEEDLES[k.raw_row]!r} not in "
                  f"{msg!r}")
    measured = pd.read_csv(out / "measurements.csv", keep_default_na=False)
    measured = measured[measured["status"] == "ok"].set_index("file")
    n_ok = 0
    for line, k in by_line.items():
        code, msg = results[line]
        if k.expect == OK:
            check(code is None and k.file in measured.index, f"{k.what}: not measured ({msg})")
        if k.expect == FAIL:
            check(code is not None, f"{k.what}: did not fail")
        if code is None and k.file in measured.index and k.want_day is not None:
            row = measured.loc[k.file]
            # no silently wrong subject or day: the manifest's subject, the expected day
            got = (row["subject_id"], int(row["visit_day"]))
            check(got == (k.subject, k.want_day), f"{k.what}: stored as {got}")
            n_ok += 1
        if code is None and k.flag and k.file in measured.index:
            check(k.flag in measured.loc[k.file, "qc_flags"], f"{k.what}: no flag {k.flag}")
    assert not problems, "\n".join(problems)
    assert n_ok >= 20
    # identifiers from DICOM headers never reach any output
    blob = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file()
                    and p.suffix in (".csv", ".parquet", ".sqlite"))
    assert b"MRN0042" not in blob and b"Doe^Jane" not in blob
    # the header's ClinicalTrialSubjectID '../../etc/passwd' is not exported (the store's
    # ingest_errors does quote the manifest's own refused subject '../../etc/passwd')
    exports = b"".join(p.read_bytes() for p in out.glob("*") if p.suffix in (".csv", ".parquet"))
    assert b"etc/passwd" not in exports


@pytest.mark.parametrize("text,needle", [
    ("subject_id,visit_day,site,file,file\nS01,0,t,a.jpg,b.jpg\n", "more than once"),
    ("subject_id,visit_day,visit_day,site,file\nS01,0,3,t,a.jpg\n", "more than once"),
    ("subject,day,file\nS01,0,a.jpg\n", "missing column"),
    ("", "missing column"),
    (b"subject_id,visit_day,site,file\nS01,0,t,\xff.jpg\n", "not UTF-8"),
    ('subject_id,visit_day,site,file\nS01,0,t,"a.jpg\n', None),
])
def test_manifest_wide_problems_are_one_clear_error(tmp_path, text, needle):
    p = tmp_path / "manifest.csv"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    res = CliRunner().invoke(app, ["process", str(tmp_path), "--out", str(tmp_path / "o"),
                                   "--no-progress"])
    assert res.exit_code == 2 and res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output and "manifest.csv" in res.output
    if needle:
        assert needle in res.output
