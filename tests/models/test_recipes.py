import pytest

from models.recipes import starter


def test_recipe_seeds_are_disjoint_from_the_evaluation_seed():
    from pipeline.config import EVAL_SEED

    assert starter.EVAL_SEED == EVAL_SEED
    assert EVAL_SEED not in (*starter.TRAIN_SEEDS, starter.VAL_SEED)
    assert starter.STARTER_TRAIN.seed != EVAL_SEED


def test_recipe_refuses_the_eval_seed_for_a_training_study(tmp_path):
    with pytest.raises(ValueError, match="evaluation seed"):
        starter.synth_study(tmp_path / "synth-x", starter.EVAL_SEED, subjects=1, size="40x30")


@pytest.mark.parametrize("seed", [918_273, 640_117])
def test_recipe_refuses_a_retired_evaluation_seed(tmp_path, seed):
    assert seed in starter.RETIRED_EVAL_SEEDS
    assert starter.EVAL_SEED not in starter.RETIRED_EVAL_SEEDS
    assert not set(starter.RETIRED_EVAL_SEEDS) & {*starter.TRAIN_SEEDS, starter.VAL_SEED}
    with pytest.raises(ValueError, match="retired"):
        starter.synth_study(tmp_path / "ds-eval", seed, subjects=1, size="40x30")


def test_cached_study_is_reused_only_when_it_matches(tmp_path):
    import json
    from importlib.metadata import version

    d = tmp_path / "synth-7"
    (d / "truth").mkdir(parents=True)
    (d / "manifest.csv").write_text("subject_id,visit_day,site,file\n")
    (d / "truth" / "photos.csv").write_text("file\n")
    meta = {"generator": f"donorsite-synth {version('donorsite')}", "seed": 7,
            "config": {"n_subjects": 2, "width": 40, "height": 30}}
    (d / "study.json").write_text(json.dumps(meta))
    assert starter._same_study(d, 7, 2, "40x30")
    assert not starter._same_study(d, 8, 2, "40x30")       # another seed
    assert not starter._same_study(d, 7, 3, "40x30")       # another size of study
    (d / "study.json").write_text(json.dumps({**meta, "generator": "donorsite-synth 0.0.1"}))
    assert not starter._same_study(d, 7, 2, "40x30")       # an older generator
