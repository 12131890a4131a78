"""The fixed FUSeg development / held-out split."""

from pathlib import Path

import pytest

from models.fuseg import HELD_OUT_FRACTION, fuseg_split, fuseg_stems

FUSEG = next((p for p in (Path(__file__).resolve().parents[3] / "shared/datasets/fuseg/train",
                          Path("/work/shared/datasets/fuseg/train")) if p.is_dir()), None)


def test_split_depends_only_on_the_stem():
    stems = [f"{i:04d}" for i in range(2000)]
    held = [s for s in stems if fuseg_split(s) == "held_out"]
    assert abs(len(held) / len(stems) - HELD_OUT_FRACTION) < 0.03
    assert [fuseg_split(s) for s in stems] == [fuseg_split(s + ".png") for s in stems]


def test_unknown_split_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="split must be"):
        fuseg_stems(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="not a FUSeg folder"):
        fuseg_stems(tmp_path, "held_out")


@pytest.mark.skipif(FUSEG is None, reason="FUSeg not found beside the checkout")
def test_shared_fuseg_split_is_disjoint_and_complete():
    dev, held = fuseg_stems(FUSEG, "development"), fuseg_stems(FUSEG, "held_out")
    assert not set(dev) & set(held)
    assert len(dev) + len(held) == len(list((FUSEG / "images").glob("*.jpg")))
    assert 0.15 < len(held) / (len(dev) + len(held)) < 0.25
