"""Multi-scale, flipped prediction against a numpy re-implementation; the Segmenter API."""
import numpy as np
import pytest
import tensorflow as tf

from deeplab_dpc.predict import inference, serving
from deeplab_dpc.data import synthetic
from deeplab_dpc.errors import InputError
from tests import run_fixtures


@pytest.fixture(scope="module")
def model():
    return run_fixtures.calibrated_tiny_model(len(synthetic.CLASSES))


def np_resize(x, height, width):
    """Bilinear with align_corners=True: output corners sit on input corners."""
    def axis(n_out, n_in):
        pos = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        lo = np.floor(pos).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), pos - lo

    y0, y1, wy = axis(height, x.shape[1])
    x0, x1, wx = axis(width, x.shape[2])
    rows = x[:, y0] * (1 - wy)[None, :, None, None] + x[:, y1] * wy[None, :, None, None]
    return rows[:, :, x0] * (1 - wx)[None, None, :, None] + rows[:, :, x1] * wx[None, None, :, None]


def np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_predict(model, images, scales, flip):
    """The reference's recipe, step by step, in numpy (the model itself is given)."""
    h, w = images.shape[1:3]
    outputs = []
    for s in scales:
        scaled = np_resize(images, int((h - 1) * s + 1), int((w - 1) * s + 1))
        for flipped in (False, True) if flip else (False,):
            x = scaled[:, :, ::-1] if flipped else scaled
            logits = np_resize(model(tf.constant(x, tf.float32), training=False).numpy(), h, w)
            outputs.append(np_softmax(logits[:, :, ::-1] if flipped else logits))
    return np.mean(outputs, axis=0)


def test_scaled_size_is_the_references_rule():
    sizes = [inference.scaled_size(n, s).numpy() for n, s in
             [(97, 0.75), (193, 0.75), (513, 0.5), (65, 1.25), (3, 0.1)]]
    assert sizes == [73, 145, 257, 81, 1]


def test_multi_scale_and_flip_average_matches_numpy(model):
    images = np.random.default_rng(1).uniform(0, 255, (2, 33, 49, 3)).astype(np.float32)
    scales = (0.75, 1.25)
    got = inference.predict_probabilities(model, images, scales, add_flipped_images=True)
    want = np_predict(model, images, scales, flip=True)
    assert got.shape == (2, 33, 49, len(synthetic.CLASSES))
    # float32 against float64 resizing, amplified by the sharpened logits
    np.testing.assert_allclose(got.numpy(), want, atol=1e-3)
    single = inference.predict_probabilities(model, images).numpy()
    assert np.abs(single - want).max() > 0.1  # the averaging is not a no-op here
    top2 = np.sort(want, -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-3  # pixels without a near tie
    labels = inference.predict_labels(model, images, scales, True).numpy()
    np.testing.assert_array_equal(labels[clear], want.argmax(-1)[clear])


def test_scales_must_be_positive(model):
    with pytest.raises(InputError, match="scales must be positive"):
        inference.predict_probabilities(model, np.zeros((1, 9, 9, 3), np.float32), (1.0, 0))


def test_segmenter_from_checkpoint_segments_any_size(model, tmp_path):
    run_fixtures.save_run(tmp_path, model, synthetic.INFO, step=5)
    segmenter = serving.Segmenter.from_checkpoint(tmp_path, scales=(0.5, 1.0),
                                                    add_flipped_images=True)
    assert segmenter.class_names == synthetic.CLASSES
    np.testing.assert_array_equal(segmenter.colormap, synthetic.COLORMAP)
    assert segmenter.model_config["cell"] == model.get_config()["cell"]
    rng = np.random.default_rng(2)
    for shape in [(65, 97, 3), (50, 31, 3)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        labels, probabilities = segmenter.predict(image, with_probabilities=True)
        assert labels.shape == shape[:2] and probabilities.shape == shape[:2] + (8,)
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
        want = np_predict(model, image[None].astype(np.float32), (0.5, 1.0), flip=True)[0]
        np.testing.assert_allclose(probabilities, want, atol=1e-3)
        assert segmenter.colorize(labels).shape == shape
    batch = rng.integers(0, 256, (2, 50, 31, 3), dtype=np.uint8)
    labels, probabilities = segmenter.predict(batch, with_probabilities=True)
    assert labels.shape == (2, 50, 31) and probabilities.shape == (2, 50, 31, 8)
    for i, image in enumerate(batch):
        np.testing.assert_array_equal(labels[i], segmenter.predict(image))
    for bad in (np.zeros((9, 9, 3), np.float32), np.zeros((9, 9), np.uint8),
                np.zeros((1, 1, 9, 9, 3), np.uint8), np.zeros((2, 9, 9, 4), np.uint8)):
        with pytest.raises(InputError, match=r"uint8 tensor of shape \[height, width, 3\] "
                                             r"or \[batch, height, width, 3\]"):
            segmenter.predict(bad)
    # An empty image: a clear message, in Python and in the traced serving function
    # (what a SavedModel client calls), not an error deep inside batch norm.
    for empty in ((0, 5, 3), (0, 5, 5, 3), (2, 5, 0, 3)):
        with pytest.raises(InputError, match="image is empty"):
            segmenter.predict(np.zeros(empty, np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="image is empty"):
        segmenter._module.serve(tf.zeros([5, 0, 3], tf.uint8))


def test_serving_takes_an_image_or_a_batch_of_them(model):
    """serve([H, W, 3]) -> [H, W(, C)]; serve([N, H, W, 3]) -> [N, H, W(, C)], each image
    answered as it is alone; other ranks and channel counts, and empty images, fail in
    the graph with messages that say so (as a SavedModel client sees them)."""
    module = serving.ServingModule(model, synthetic.INFO, (0.75, 1.0), add_flipped_images=True)
    images = np.random.default_rng(4).integers(0, 256, (2, 33, 49, 3), dtype=np.uint8)
    alone = [module.serve(tf.constant(image)) for image in images]
    for out in alone:
        assert out["semantic"].shape == (33, 49) and out["probabilities"].shape == (33, 49, 8)
        assert out["semantic"].dtype == tf.int32 and out["probabilities"].dtype == tf.float32
    for batch in (images[:1], images):
        out = module.serve(tf.constant(batch))
        assert out["semantic"].shape == batch.shape[:3]
        assert out["probabilities"].shape == batch.shape[:3] + (8,)
        for i, want in enumerate(alone[:len(batch)]):
            np.testing.assert_array_equal(out["semantic"][i], want["semantic"])
            np.testing.assert_allclose(out["probabilities"][i], want["probabilities"], atol=1e-5)
    assert module.serve.experimental_get_tracing_count() == 1  # one graph for both
    for shape in ([33, 49], [1, 2, 33, 49, 3], [33, 49, 4], [2, 33, 49, 1]):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[height, width, 3\] "
                                                                 r"or \[batch, height, width, 3\]"):
            module.serve(tf.zeros(shape, tf.uint8))
    for shape in ([0, 49, 3], [1, 33, 0, 3], [0, 33, 49, 3]):
        with pytest.raises(tf.errors.InvalidArgumentError, match="image is empty"):
            module.serve(tf.zeros(shape, tf.uint8))
