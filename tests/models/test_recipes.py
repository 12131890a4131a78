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
