"""``donorsite review`` commands: add-user, reset-password, settings, build-queue, export."""

from __future__ import annotations

import csv
import re

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.store import Store
from tests.pipeline.review.reviewkit import make_study

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["review", *map(str, args)])


def test_review_commands(tmp_path, monkeypatch):
    st = make_study(tmp_path, queue=False)
    d = st.out_dir
    r = _run("add-user", "eve", "--role", "assessor", "--processed", d)
    assert r.exit_code == 0, r.output
    otp = re.search(r"one-time password: (\S+)", r.output).group(1)
    with Store.open(st.store_path) as s:
        row = s.conn.execute("SELECT password_hash, must_change FROM review_users WHERE "
                             "name='eve'").fetchone()
    assert otp not in row[0] and row[1] == 1
    assert _run("add-user", "eve", "--processed", d).exit_code == 2
    assert "already exists" in _run("add-user", "eve", "--processed", d).output
    assert _run("add-user", "x", "--role", "boss", "--processed", d).exit_code == 2
    r = _run("reset-password", "eve", "--processed", d)
    assert r.exit_code == 0 and "one-time password" in r.output
    r = _run("settings", "--processed", d, "--show-visit-day", "--threshold", "12.5")
    assert r.exit_code == 0 and "show_visit_day: True" in r.output
    assert "disagreement_threshold: 12.5" in r.output
    assert _run("settings", "--processed", d, "--threshold", "500").exit_code == 2
    r = _run("build-queue", "--processed", d)
    assert r.exit_code == 0, r.output
    assert re.search(r"\d+ tasks", r.output)
    r = _run("export", "--out", tmp_path / "reads.csv", "--processed", d,
             "--adjudications", tmp_path / "adj.csv")
    assert r.exit_code == 0 and "0 read versions" in r.output
    with open(tmp_path / "reads.csv", newline="") as fh:
        assert next(csv.reader(fh))[:4] == ["read_id", "photo_id", "assessor", "version"]
    assert (tmp_path / "adj.csv").is_file()
    assert _run("export", "--processed", tmp_path / "nowhere").exit_code == 2
