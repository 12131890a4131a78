"""Coordinator fixes (issue 18): a decision records the adopted mask and its reason apart
from the comment; the decided list shows the decided value; the adjudication help lists only
keys that work there; exports from the web with a data dictionary."""

from __future__ import annotations

import csv
import io
import re

import numpy as np

from pipeline.review.adjudication import DECISION_COLUMNS
from pipeline.review.dictionary import DICTIONARY
from pipeline.review.reads import READ_COLUMNS, ReadInput, save_read
from pipeline.store import Store
from tests.pipeline.review.reviewkit import SUBJECTS, csrf_from, login, tasks_of


def _disagree(study):
    bob = {p: c for c, p, rep in tasks_of(study, "bob") if not rep}
    a, b = next((c, bob[p]) for c, p, rep in tasks_of(study, "ann") if not rep and p in bob)
    lab = np.zeros((120, 160), np.uint8)
    lab[40:80, 40:120] = 1
    with Store.open(study.store_path) as s:
        save_read(s, assessor="ann", task_code=a, out_dir=study.out_dir,
                  read=ReadInput(estimate_percent=20, verdict="accept"), corrected_labels=None)
        rb = save_read(s, assessor="bob", task_code=b, out_dir=study.out_dir,
                       read=ReadInput(estimate_percent=80, verdict="needs_correction"),
                       corrected_labels=lab)
    return rb


def test_a_decision_records_the_adopted_mask_and_a_separate_reason(app, study):
    rb = _disagree(study)
    c = app.test_client()
    login(c, "cora")
    listing = c.get("/coord/adjudication").get_data(as_text=True)
    item = re.search(r'href="(/coord/adjudication/J[0-9A-F]{10})"', listing).group(1)
    page = c.get(item).get_data(as_text=True)
    # the help lists no brush, verdict or save keys: they do nothing here
    help_ = page[page.index('id="shortcuts"'):]
    for k in ("Ctrl+Enter", ">B<", ">A<", "Ctrl+Z", ">X<"):
        assert k not in help_, k
    bobs = re.search(r'<option value="(R[0-9A-F]{10})">Correction by bob', page).group(1)
    form = {"estimate_percent": "65", "verdict": "needs_correction", "reason": "lighting",
            "comment": "glare on the left", "csrf_token": csrf_from(page)}
    r = c.post(item, data={**form, "adopted_mask": "R0000000000"})
    assert r.status_code == 200 and "choose which mask" in r.get_data(as_text=True)
    r = c.post(item, data={**form, "adopted_mask": bobs})
    assert r.status_code == 302
    listing = c.get("/coord/adjudication").get_data(as_text=True)
    assert re.search(r"decided \(v1\):\s*65 %,\s*needs correction · mask: bob&#39;s correction",
                     listing)
    rows = list(csv.DictReader(io.StringIO(
        c.get("/coord/export/adjudications.csv").get_data(as_text=True))))
    assert len(rows) == 1
    row = rows[0]
    assert (row["comment"], row["reason"]) == ("glare on the left", "lighting")
    assert row["adopted_mask"] == f"read {rb.read_id}"
    assert row["adopted_mask_file"] == rb.corrected_mask_file


def test_web_exports_and_the_data_dictionary(app, study):
    _disagree(study)
    c = app.test_client()
    login(c, "cora")
    home = c.get("/coord/").get_data(as_text=True)
    assert 'id="export-reads"' in home and 'id="export-dictionary"' in home
    r = c.get("/coord/export/reads.csv")
    assert r.mimetype == "text/csv" and "attachment" in r.headers["Content-Disposition"]
    text = r.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == READ_COLUMNS and len(rows) == 2
    assert not [s for s in SUBJECTS if s in text] and "photos/" not in text
    dictionary = list(csv.DictReader(io.StringIO(
        c.get("/coord/export/data-dictionary.csv").get_data(as_text=True))))
    described = {(d["file"], d["column"]) for d in dictionary}
    assert described == {(f, col) for f, col, _, _ in DICTIONARY}
    assert {col for f, col in described if f == "reads.csv"} == set(READ_COLUMNS)
    assert {col for f, col in described if f == "adjudications.csv"} == set(DECISION_COLUMNS)
    assert c.get("/coord/export/study.sqlite").status_code == 404
    ann = app.test_client()
    login(ann, "ann")
    assert ann.get("/coord/export/reads.csv").status_code == 404
