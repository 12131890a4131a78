"""End-to-end scoring of a processed synthetic study (``python -m pipeline.evaluate``)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline import evaluate


def _write(tmp_path, rows):
    study, out = tmp_path / "study", tmp_path / "out"
    (study / "truth").mkdir(parents=True)
    out.mkdir()
    truth = [{"file": f"p{i}.jpg", "visit_day": d, "donor_area_mm2": 1000.0,
              "epithelialized_area_mm2": 10.0 * h, "raw_area_mm2": 1000 - 10.0 * h,
              "healed_percent": h, "skin_type": "II", "tilt_deg": 5.0}
             for i, (d, h, _, _) in enumerate(rows)]
    meas = [{"file": f"p{i}.jpg", "status": "ok", "visit_day": d, "healed_percent": m,
             "donor_site_area_cm2": 10.0, "epithelialized_area_cm2": m / 10,
             "raw_area_cm2": 10 - m / 10, "qc_flags": f, "tilt_deg": 5.1}
            for i, (d, _, m, f) in enumerate(rows)]
    pd.DataFrame(truth).to_csv(study / "truth" / "photos.csv", index=False)
    pd.DataFrame(meas).to_csv(out / "measurements.csv", index=False)
    return study, out


def test_held_photos_leave_the_endpoint_figures_and_signed_error_is_by_day(tmp_path):
    rows = [(0, 0.0, 2.0, ""), (0, 0.0, 4.0, ""), (7, 50.0, 49.0, ""),
            (7, 50.0, 90.0, "low_confidence"),                      # held: not in endpoints
            (7, 50.0, 80.0, "donor_site_touches_photo_edge;out_of_distribution")]
    summary, table = evaluate.evaluate(*_write(tmp_path, rows))
    assert table is None
    assert summary["all"]["processed_ok"] == 5
    assert summary["all"]["healed_abs_err_p95"] > 30
    ep = summary["endpoints"]
    assert ep["processed_ok"] == 3 and ep["used_share"] == pytest.approx(0.6)
    assert ep["healed_abs_err_median"] == pytest.approx(2.0)
    assert summary["healed_err_mean_signed_by_day"] == {"0": 3.0, "7": -1.0}


def test_a_geometric_flag_alone_does_not_hold_a_photo(tmp_path):
    rows = [(0, 0.0, 1.0, "donor_site_touches_photo_edge"), (3, 10.0, 10.0, "")]
    summary, _ = evaluate.evaluate(*_write(tmp_path, rows))
    assert summary["endpoints"]["used_share"] == 1.0
