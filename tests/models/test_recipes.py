import pytest

from models.recipes import starter
from models.recipes.starter import StudySpec


def _seeds() -> set[int]:
    return {s.seed for s in (*starter.TRAIN_STUDIES, *starter.VAL_STUDIES)}


def test_recipe_seeds_are_disjoint_from_the_evaluation_seeds():
    from pipeline.config import EVAL_SEED

    assert starter.EVAL_SEED == EVAL_SEED
    assert not {EVAL_SEED, starter.LOGO_EVAL_SEED} & _seeds()
    assert starter.STARTER_TRAIN.seed not in (EVAL_SEED, starter.LOGO_EVAL_SEED)


@pytest.mark.parametrize("seed", [starter.EVAL_SEED, starter.LOGO_EVAL_SEED])
def test_recipe_refuses_an_eval_seed_for_a_training_study(tmp_path, seed):
    with pytest.raises(ValueError, match="evaluation seed"):
        starter.synth_study(tmp_path / "synth-x", StudySpec(seed, 1, "40x30"))


@pytest.mark.parametrize("seed", [918_273, 640_117, 283_519])
def test_recipe_refuses_a_retired_evaluation_seed(tmp_path, seed):
    assert seed in starter.RETIRED_EVAL_SEEDS
    assert starter.EVAL_SEED not in starter.RETIRED_EVAL_SEEDS
    assert not set(starter.RETIRED_EVAL_SEEDS) & _seeds()
    with pytest.raises(ValueError, match="retired"):
        starter.synth_study(tmp_path / "ds-eval", StudySpec(seed, 1, "40x30"))


def test_leaving_out_a_generator_removes_its_studies_and_share():
    train, val, shares = starter.data_plan("b")
    assert train and val and all(s.appearance != "b" for s in train + val)
    assert "b" not in shares and sum(shares.values()) == pytest.approx(1.0)
    full_train, _, full = starter.data_plan(None)
    assert any(s.appearance == "b" for s in full_train) and full["b"] > 0
    # the other sources keep their proportions
    assert shares["fuseg"] / shares["a-wide"] == pytest.approx(full["fuseg"] / full["a-wide"])


def test_cached_study_is_reused_only_when_it_matches(tmp_path):
    import json
    from importlib.metadata import version

    d = tmp_path / "synth-7"
    (d / "truth").mkdir(parents=True)
    (d / "manifest.csv").write_text("subject_id,visit_day,site,file\n")
    (d / "truth" / "photos.csv").write_text("file\n")
    meta = {"generator": f"donorsite-synth {version('donorsite')}", "seed": 7,
            "config": {"n_subjects": 2, "width": 40, "height": 30, "variety": "wide"}}
    (d / "study.json").write_text(json.dumps(meta))
    assert starter._same_study(d, StudySpec(7, 2, "40x30", "wide"))
    assert not starter._same_study(d, StudySpec(8, 2, "40x30", "wide"))       # another seed
    assert not starter._same_study(d, StudySpec(7, 3, "40x30", "wide"))       # another size
    assert not starter._same_study(d, StudySpec(7, 2, "40x30"))               # another variety
    assert not starter._same_study(d, StudySpec(7, 2, "40x30", "wide", "b"))  # another model
    (d / "study.json").write_text(json.dumps({**meta, "generator": "donorsite-synth 0.0.1"}))
    assert not starter._same_study(d, StudySpec(7, 2, "40x30", "wide"))       # older generator
