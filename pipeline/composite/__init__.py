"""Real and out-of-distribution pictures composited beside the DS-CAL-1 sticker, written as
studies ``donorsite process`` processes and ``python -m pipeline.evaluate`` scores (issue 15).
"""

from pipeline.composite.build import FUSEG_KIND, OOD_KIND, make_fuseg_study, make_ood_study
from pipeline.composite.canvas import Composite, compose
from pipeline.composite.errors import CompositeError

__all__ = ["make_fuseg_study", "make_ood_study", "compose", "Composite", "CompositeError",
           "FUSEG_KIND", "OOD_KIND"]
