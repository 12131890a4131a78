"""How the report's tables look on the page: human column headers, integers printed as
integers, and every table in a container that scrolls sideways instead of widening the page.

The CSV/Parquet files keep the machine names (``healed_percent``); only the HTML page uses
the headers of :data:`HEADERS` (a column without one is shown with its underscores as spaces).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

__all__ = ["HEADERS", "header", "html_table", "numbers_at_risk"]

#: Page headers of the machine column names.
HEADERS: dict[str, str] = {
    "subject_id": "subject", "site": "site", "visit_day": "day", "arm": "arm",
    "healed_percent": "healed %", "healed_percent_sd": "healed % SD (photos)",
    "healed_percent_low": "healed % low", "healed_percent_high": "healed % high",
    "confidence": "model confidence", "ood_score": "OOD score",
    "donor_site_area_cm2": "donor site (cm²)", "epithelialized_area_cm2": "healed (cm²)",
    "raw_area_cm2": "raw (cm²)", "raw_area_vs_day0_percent": "raw vs day 0 (%)",
    "donor_area_vs_site_median_percent": "area vs site median (%)", "qc_state": "QC",
    "qc_flags": "QC flags", "n_photos": "photos used", "n_photos_excluded": "photos excluded",
    "n_photos_held": "photos held", "photo_id": "photo", "status": "status",
    "exclusion_reason": "reason", "event": "healed", "day": "day (visit)",
    "lower": "healed after day", "upper": "healed by day", "n_visits": "usable visits",
    "note": "note", "comparison": "comparison", "n": "n", "bias": "bias",
    "bias_ci_low": "bias 95 % CI low", "bias_ci_high": "bias 95 % CI high",
    "loa_low": "lower limit of agreement", "loa_high": "upper limit of agreement",
    "icc_2_1": "ICC(2,1)", "icc_ci_low": "ICC 95 % CI low", "icc_ci_high": "ICC 95 % CI high",
    "within_sd": "within-rater SD", "repeatability_coefficient": "repeatability coefficient",
    "dice": "Dice of", "mean": "mean", "median": "median", "min": "min",
    "population": "population", "held": "held for read", "estimate": "estimate",
    "value": "estimate value", "ci_low": "95 % CI low", "ci_high": "95 % CI high",
    "p_value": "p", "difference": "difference", "stage": "stage", "detail": "detail",
    "expected": "sites expected", "usable": "usable visits",
    "all_photos_excluded": "all photos excluded", "missed": "missed (no photo)",
    "usable_percent": "usable (%)", "photos": "photos used", "threshold_percent":
    "threshold (%)", "confirmed": "confirmed at next visit", "hazard_ratio": "hazard ratio",
    "characteristic": "characteristic", "hr_ci_low": "HR 95 % CI low",
    "hr_ci_high": "HR 95 % CI high",
}


def header(name: str) -> str:
    """The page header of a column.

    Examples
    --------
    >>> header("healed_percent"), header("some_new_column")
    ('healed %', 'some new column')
    """
    return HEADERS.get(name, name.replace("_", " "))


def _cell(v: object) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return f"{float(v):.0f}" if float(v).is_integer() and abs(v) >= 1000 else f"{v:.2f}"
    return html.escape(str(v))


def html_table(df: pd.DataFrame, *, caption: str | None = None,
               csv: str | None = None) -> str:
    """An HTML table in a sideways-scrolling container, with human headers.

    Parameters
    ----------
    df : DataFrame
    caption : str, optional
    csv : str, optional
        Name of the CSV file beside the report that holds the same table (linked).

    Examples
    --------
    >>> t = html_table(pd.DataFrame({"n": [2], "healed_percent": [95.0]}))
    >>> "<th>healed %</th>" in t and "<td>2</td>" in t and "95.00" in t
    True
    """
    text_cols = [_text(df[c]) for c in df.columns]
    left = ' class="l"'
    head = "".join(f"<th{left if t else ''}>{html.escape(header(c))}</th>"
                   for c, t in zip(df.columns, text_cols, strict=True))
    body = []
    for row in df.itertuples(index=False):
        cells = "".join(f"<td{left if t else ''}>{_cell(v)}</td>"
                        for v, t in zip(row, text_cols, strict=True))
        body.append(f"<tr>{cells}</tr>")
    cap = ""
    if caption or csv:
        link = f' <a href="{html.escape(csv)}">{html.escape(csv)}</a>' if csv else ""
        cap = f"<caption>{html.escape(caption or '')}{link}</caption>"
    return (f'<div class="scroll"><table class="data">{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _text(s: pd.Series) -> bool:
    return s.dtype == object and not all(isinstance(v, int | float | bool | np.number)
                                         for v in s.dropna())


def numbers_at_risk(times: dict[str, np.ndarray], days: list[float]) -> pd.DataFrame:
    """Donor sites still at risk (not healed, not censored before) at each day, per group.

    Parameters
    ----------
    times : mapping group -> observed days (event or censoring day) of its sites
    days : the days of the table's columns

    Examples
    --------
    >>> numbers_at_risk({"a": np.array([3., 7, 7, 14])}, [0, 7, 14]).to_dict("records")
    [{'group': 'a', 'day 0': 4, 'day 7': 3, 'day 14': 1}]
    """
    rows = []
    for g, t in times.items():
        t = np.asarray(t, float)
        rows.append({"group": g} | {f"day {d:g}": int((t >= d).sum()) for d in days})
    return pd.DataFrame(rows)
