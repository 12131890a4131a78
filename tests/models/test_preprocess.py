import numpy as np
import pytest

from models.config import ModelConfig
from models.errors import InputShapeError
from models.preprocess import to_working, working_image


def test_downsampling_area_averages():
    cfg = ModelConfig(px_per_mm=2.5)
    img = np.zeros((400, 600, 3), np.float32)
    img[::2, ::2] = 1.0  # a fine checkerboard: INTER_AREA gives its mean, not aliasing
    work, scale = to_working(img, mm_per_px=0.1, config=cfg)
    assert scale == pytest.approx(0.25) and work.shape == (100, 150, 3)
    assert work.dtype == np.float32 and np.allclose(work, 0.25, atol=1e-6)


def test_upsampling_and_no_scale():
    up, s = to_working(np.full((10, 20, 3), 0.5, np.float32), mm_per_px=1.0,
                       config=ModelConfig(px_per_mm=2.0))
    assert up.shape == (20, 40, 3) and s == 2.0
    same, s = to_working(np.zeros((10, 20, 3), np.uint8), mm_per_px=None,
                         config=ModelConfig(px_per_mm=None))
    assert same.shape == (10, 20, 3) and s == 1.0 and same.dtype == np.float32


def test_bad_inputs():
    with pytest.raises(InputShapeError, match="mm_per_px.*-1"):
        to_working(np.zeros((4, 4, 3), np.float32), mm_per_px=-1, config=ModelConfig())
    with pytest.raises(InputShapeError, match="\\(4, 4\\)"):
        to_working(np.zeros((4, 4), np.float32), mm_per_px=0.1, config=ModelConfig())


def test_working_image_corrects_the_resampled_photo():
    class Cal:
        mm_per_px = 0.2
        seen = None

        def correct(self, image):
            Cal.seen = image.shape
            return np.clip(np.asarray(image, np.float32) * 2, 0, 1)

    photo = np.full((200, 300, 3), 51, np.uint8)
    work, scale = working_image(photo, Cal(), config=ModelConfig(px_per_mm=2.5))
    assert Cal.seen == (100, 150, 3) and work.shape == (100, 150, 3) and scale == 0.5
    assert np.allclose(work, 0.4, atol=1e-6)
