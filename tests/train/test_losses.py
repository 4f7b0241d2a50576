"""The training loss against a NumPy transcription of the reference's."""
import numpy as np
import pytest
import tensorflow as tf

from deeplab_dpc.train import losses

IGNORE = 255


def _reference_loss(logits, labels, top_k=1.0):
    """The reference: align-corners upsampling, softmax cross-entropy, ignore pixels
    weigh 0; mean over valid pixels, or with top-k the sum of the k largest pixel
    losses of the whole batch over how many of them are non-zero."""
    b, h, w, c = logits.shape
    H, W = labels.shape[1:3]

    def coords(n_out, n_in):  # align_corners: corners of input and output coincide
        x = np.arange(n_out) * (n_in - 1) / (n_out - 1)
        lo = np.floor(x).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, x - lo

    y0, y1, fy = coords(H, h)
    x0, x1, fx = coords(W, w)
    top = logits[:, y0][:, :, x0] * (1 - fx)[:, None] + logits[:, y0][:, :, x1] * fx[:, None]
    bot = logits[:, y1][:, :, x0] * (1 - fx)[:, None] + logits[:, y1][:, :, x1] * fx[:, None]
    up = top * (1 - fy)[:, None, None] + bot * fy[:, None, None]
    log_p = up - np.log(np.exp(up).sum(-1, keepdims=True))
    valid = labels != IGNORE
    pixel = np.where(valid, -np.take_along_axis(log_p, np.where(valid, labels, 0)[..., None],
                                                -1)[..., 0], 0.0).ravel()
    if top_k >= 1.0:
        return pixel.sum() / valid.sum()
    kept = np.sort(pixel)[::-1][:int(top_k * pixel.size)]
    return kept.sum() / np.count_nonzero(kept)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (2, 5, 5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, (2, 17, 17, 1)).astype(np.int32)
    labels[0, :9] = IGNORE  # about half of the first image
    labels[rng.random(labels.shape) < 0.1] = IGNORE
    return logits, labels


def test_mean_over_valid_pixels_with_ignore_excluded(batch):
    logits, labels = batch
    ours = losses.softmax_cross_entropy(logits, labels, IGNORE).numpy()
    np.testing.assert_allclose(ours, _reference_loss(logits, labels[..., 0]), rtol=1e-5)
    assert losses.normalizer(labels, IGNORE).numpy() == np.sum(labels != IGNORE)
    # Ignore pixels weigh nothing: with logits at the label size (no upsampling mixes
    # pixels), any logits there leave the loss as it was; one valid pixel's change moves it.
    rng = np.random.default_rng(1)
    full = rng.normal(0, 2, labels.shape[:3] + (4,)).astype(np.float32)
    ignored = (labels == IGNORE)  # [B, H, W, 1], broadcast over the classes
    before = losses.softmax_cross_entropy(full, labels, IGNORE).numpy()
    scrambled = np.where(ignored, rng.normal(0, 50, full.shape), full).astype(np.float32)
    after = losses.softmax_cross_entropy(scrambled, labels, IGNORE).numpy()
    np.testing.assert_allclose(after, before, rtol=1e-6)
    b, y, x = np.argwhere(~ignored[..., 0])[0]
    moved = full.copy()
    moved[b, y, x] += rng.normal(0, 5, 4).astype(np.float32)
    assert abs(losses.softmax_cross_entropy(moved, labels, IGNORE).numpy() - before) > 1e-5


@pytest.mark.parametrize("top_k", [0.1, 0.5])
def test_top_k_percent_pixels(batch, top_k):
    logits, labels = batch
    ours = losses.softmax_cross_entropy(logits, labels, IGNORE, ratio=top_k).numpy()
    np.testing.assert_allclose(ours, _reference_loss(logits, labels[..., 0], top_k), rtol=1e-5)


def test_parts_of_a_batch_sum_to_the_whole(batch):
    """What the loop relies on: local sums over a shared normalizer add up."""
    logits, labels = batch
    whole = losses.softmax_cross_entropy(logits, labels, IGNORE).numpy()
    parts = [losses.pixel_loss_sum(logits[i:i + 1], labels[i:i + 1], IGNORE) for i in (0, 1)]
    total = sum(losses.normalizer(labels[i:i + 1], IGNORE) for i in (0, 1))
    np.testing.assert_allclose((parts[0] + parts[1]).numpy() / total.numpy(), whole, rtol=1e-6)


def test_all_ignored_gives_zero():
    labels = np.full((1, 9, 9, 1), IGNORE, np.int32)
    assert losses.softmax_cross_entropy(np.zeros((1, 3, 3, 2), np.float32), labels,
                                        IGNORE).numpy() == 0.0


def test_hard_example_mining_ramps_linearly_from_one():
    ratio = [float(losses.top_k_ratio(s, 0.2, 100)) for s in (0, 50, 100, 500)]
    np.testing.assert_allclose(ratio, [1.0, 0.6, 0.2, 0.2], rtol=1e-6)
    assert float(losses.top_k_ratio(tf.constant(7), 0.2, 0)) == pytest.approx(0.2)
    assert float(losses.top_k_ratio(7, 1.0, 100)) == 1.0
