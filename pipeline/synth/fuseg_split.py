"""The project's fixed FUSeg split, for the generator's users (defined in :mod:`models.fuseg`,
which training needs without importing ``pipeline``)."""

from models.fuseg import FUSEG_DEFAULT, HELD_OUT_FRACTION, SPLIT_SALT, fuseg_split, fuseg_stems

__all__ = ["fuseg_split", "fuseg_stems", "SPLIT_SALT", "HELD_OUT_FRACTION", "FUSEG_DEFAULT"]
