"""The synthetic donor-site study generator (``donorsite synth``).

Real donor-site photos with tissue masks are not public, so the project makes its own
trial-shaped studies: subjects randomized 1:1 to ``msc`` and ``control``, photos of the
healing donor site with the calibration sticker beside it, and the ground truth (label
masks, areas in the skin plane, healed %, the true photo <-> sticker homography).

Examples
--------
>>> from pipeline.synth import StudyConfig
>>> StudyConfig.from_cli(seed=1, subjects=2, days="0,7", size="320x240").n_photos
4
"""

from pipeline.synth.config import StudyConfig
from pipeline.synth.errors import StudyConfigError, StudyExistsError, SynthError
from pipeline.synth.study import StudyResult, generate_study, plan_subjects

__all__ = ["StudyConfig", "StudyResult", "SynthError", "StudyConfigError", "StudyExistsError",
           "generate_study", "plan_subjects"]
