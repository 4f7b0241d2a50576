"""`python -m deeplab_dpc.predict` on images of every bit depth, as a user runs it."""
import numpy as np
from PIL import Image

from deeplab_dpc.data import synthetic
from tests import run_fixtures
from tests.cli_utils import run_binary


def test_a_16_bit_png_gets_the_labels_of_the_same_image_in_8_bits(tmp_path):
    """A model whose labels follow the image: the 16-bit file must segment as its 8-bit
    twin does, and not as the all-white image a plain RGB conversion made of it."""
    model = run_fixtures.calibrated_tiny_model(len(synthetic.CLASSES))
    run_fixtures.save_run(tmp_path / "run", model, synthetic.INFO)
    scene = synthetic.generate_scene(synthetic.scene_rng(0, "val", 0), 65, 97)[0]
    photos = tmp_path / "photos"
    photos.mkdir()
    grey = np.asarray(Image.fromarray(scene).convert("L"))
    Image.fromarray(grey).save(photos / "eight.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(photos / "sixteen.png")  # I;16
    Image.fromarray(np.full_like(grey, 255)).save(photos / "white.png")
    out = tmp_path / "out"
    result = run_binary("deeplab_dpc.predict", f"--checkpoint_dir={tmp_path / 'run'}",
                        f"--image_glob={photos}/*.png", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no TensorFlow start-up log either
    labels = {name: np.asarray(Image.open(out / f"{name}.png"))
              for name in ("eight", "sixteen", "white")}
    assert len(np.unique(labels["eight"])) > 1  # not a constant map
    np.testing.assert_array_equal(labels["sixteen"], labels["eight"])
    assert (labels["sixteen"] != labels["white"]).mean() > 0.05
