"""The input pipeline: augmentation alignment, scale set, padding, seeds, sharding."""
import numpy as np
import pytest
import tensorflow as tf

from deeplab_dpc import common
from deeplab_dpc.data import input_pipeline as ip
from deeplab_dpc.errors import InputError
from tests import records

IGNORE = 255




def ramp_example(height=48, width=64, seed=0):
    """An image whose pixels say where they come from, and a random per-pixel label.

    R = column, G = row, B = 0: bilinear resizing reproduces a linear ramp exactly,
    so after augmentation every image pixel still names its source pixel, and the
    label there must be the source label at the nearest source pixel. Any
    disagreement of scale, crop offset or flip between image and label shows up
    on almost every pixel, because neighbouring labels differ.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:height, :width]
    image = np.stack([cols, rows, np.zeros_like(rows)], -1).astype(np.uint8)
    label = rng.integers(0, 19, (height, width)).astype(np.uint8)
    label[5:20, 30:50] = IGNORE  # a void region of the dataset's own
    return image, label


def check_aligned(image, label, source_label):
    """Asserts one augmented example is consistent with `ramp_example`'s source."""
    padded = image[..., 2] == ip.MEAN_PIXEL
    assert np.all(image[padded] == ip.MEAN_PIXEL)
    assert np.all(label[padded] == IGNORE)
    assert np.all(image[~padded, 2] == 0)
    h, w = source_label.shape
    matches = np.zeros(label.shape, bool)
    # Nearest neighbour picks round(ramp value); accept either side of exact ties.
    for dy in (-0.01, 0.01):
        for dx in (-0.01, 0.01):
            y = np.clip(np.floor(image[..., 1] + 0.5 + dy), 0, h - 1).astype(int)
            x = np.clip(np.floor(image[..., 0] + 0.5 + dx), 0, w - 1).astype(int)
            matches |= label == source_label[y, x]
    assert np.all(matches[~padded]), f"{np.sum(~matches[~padded])} misaligned pixels"
    columns = image[0, ~padded[0], 0]  # row 0 is never padded: padding is at the bottom
    return padded.any(), columns[-1] < columns[0]  # (was padded, was flipped)


@pytest.fixture(scope="module")
def ramp_records(tmp_path_factory):
    d = tmp_path_factory.mktemp("ramp")
    image, label = ramp_example()
    path = records.write_shard(d / "train-00000-of-00001.tfrecord", [(image, label, "ramp")])
    return path, label


def test_training_augmentation_keeps_image_and_label_aligned(ramp_records):
    path, source_label = ramp_records
    ds = ip.build_dataset(path, is_training=True, batch_size=8, crop_size=(40, 56),
                          ignore_label=IGNORE, seed=1)
    seen_pad, seen_flip = set(), set()
    for batch in ds.take(3):
        assert batch[ip.IMAGE].shape == (8, 40, 56, 3) and batch[ip.IMAGE].dtype == tf.float32
        assert batch[ip.LABEL].shape == (8, 40, 56, 1) and batch[ip.LABEL].dtype == tf.int32
        assert list(batch[ip.FILENAME].numpy()) == [b"ramp"] * 8
        for image, label in zip(batch[ip.IMAGE].numpy(), batch[ip.LABEL].numpy()[..., 0]):
            padded, flipped = check_aligned(image, label, source_label)
            seen_pad.add(padded)
            seen_flip.add(flipped)
    # Both branches of padding and flipping were exercised.
    assert seen_pad == {True, False} and seen_flip == {True, False}


def test_check_aligned_catches_a_one_pixel_shift(ramp_records):
    """The alignment check itself is sharp enough to see a 1-pixel crop mismatch."""
    _, source_label = ramp_records
    image, _ = ramp_example()
    image = image.astype(np.float32)
    check_aligned(image[:, :-1], source_label[:, :-1].astype(np.int32), source_label)
    with pytest.raises(AssertionError, match="misaligned"):
        check_aligned(image[:, :-1], source_label[:, 1:].astype(np.int32), source_label)


@pytest.mark.parametrize("scale", [0.5, 0.75, 1.0, 1.3, 2.0])
def test_scale_pad_crop_equals_resize_then_pad_then_crop(scale):
    """The one-step window resampling matches the reference's three steps."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3)).astype(np.uint8)
    label = rng.integers(0, 19, (37, 53, 1)).astype(np.uint8)
    crop = np.array([30, 40])
    size = ip.scaled_size(image.shape[:2], scale).numpy()
    full_image = tf.image.resize(image.astype(np.float32), size, method="bilinear")
    full_label = tf.image.resize(label, size, method="nearest")
    pads = [[0, max(crop[0] - size[0], 0)], [0, max(crop[1] - size[1], 0)], [0, 0]]
    full_image = np.pad(full_image.numpy(), pads, constant_values=ip.MEAN_PIXEL)
    full_label = np.pad(full_label.numpy(), pads, constant_values=IGNORE)
    for top in {0, full_image.shape[0] - crop[0]}:
        for left in {0, (full_image.shape[1] - crop[1]) // 2, full_image.shape[1] - crop[1]}:
            got_image, got_label = ip.scale_pad_crop(
                image, label, tf.constant(scale), tf.constant([top, left]), crop, IGNORE)
            window = np.s_[top:top + crop[0], left:left + crop[1]]
            # Only float32 rounding differs; a half-pixel shift would differ by tens.
            np.testing.assert_allclose(got_image.numpy(), full_image[window], atol=0.01)
            np.testing.assert_array_equal(got_label.numpy(), full_label[window])


def test_padding_is_bottom_right_with_mean_pixel_and_ignore(ramp_records):
    path, source_label = ramp_records
    ds = ip.build_dataset(path, is_training=False, batch_size=1, crop_size=(50, 70),
                          ignore_label=IGNORE)
    ex = next(iter(ds))
    image, label = ex[ip.IMAGE][0].numpy(), ex[ip.LABEL][0, ..., 0].numpy()
    np.testing.assert_array_equal(image[:48, :64], ramp_example()[0])
    np.testing.assert_array_equal(label[:48, :64], source_label)
    assert np.all(image[48:] == 127.5) and np.all(image[:, 64:] == 127.5)
    assert np.all(label[48:] == IGNORE) and np.all(label[:, 64:] == IGNORE)
    assert ex[ip.ORIGINAL_SIZE].numpy().tolist() == [[48, 64]]


def test_eval_without_crop_returns_the_decoded_example(ramp_records):
    path, source_label = ramp_records
    ex = next(iter(ip.build_dataset(path, is_training=False, batch_size=1)))
    np.testing.assert_array_equal(ex[ip.IMAGE][0].numpy(), ramp_example()[0])
    np.testing.assert_array_equal(ex[ip.LABEL][0, ..., 0].numpy(), source_label)


def test_eval_crop_smaller_than_image_is_an_error(ramp_records):
    ds = ip.build_dataset(ramp_records[0], is_training=False, batch_size=1, crop_size=(40, 40))
    with pytest.raises(tf.errors.InvalidArgumentError, match="eval crop_size"):
        next(iter(ds))


@pytest.mark.parametrize("step, allowed", [
    (0.25, {0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0}),
    (0.5, {0.5, 1.0, 1.5, 2.0}),
])
def test_scales_come_only_from_the_configured_set(ramp_records, step, allowed):
    # Without a crop the output size shows the scale drawn: int(48 * s) x int(64 * s).
    ds = ip.build_dataset(ramp_records[0], is_training=True, batch_size=1,
                          scale_factor_step_size=step, seed=2)
    sizes = {tuple(ex[ip.IMAGE].shape[1:3]) for ex in ds.take(40)}
    expected = {(int(48 * s), int(64 * s)) for s in allowed}
    assert sizes <= expected
    assert len(sizes) >= len(allowed) - 1  # and (nearly) all of them are drawn


def test_continuous_scale_and_config_validation():
    config = ip.InputConfig(min_scale_factor=0.5, max_scale_factor=2.0, scale_factor_step_size=0)
    assert config.scale_factors() is None
    scales = [float(ip.random_scale(tf.constant([i, 0]), config)) for i in range(20)]
    assert all(0.5 <= s <= 2.0 for s in scales) and len(set(scales)) == 20
    assert ip.InputConfig(min_scale_factor=1, max_scale_factor=1).scale_factors() == (1.0,)
    with pytest.raises(InputError, match="does not divide"):
        ip.InputConfig(scale_factor_step_size=0.4)
    with pytest.raises(InputError, match="min_scale_factor"):
        ip.InputConfig(min_scale_factor=2.0, max_scale_factor=1.0)
    with pytest.raises(InputError, match="crop_size"):
        ip.InputConfig(crop_size=(0, 5))


@pytest.fixture(scope="module")
def sharded_records(tmp_path_factory):
    """4 shards x 2 small examples, each example named after its shard."""
    d = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    for shard in range(4):
        examples = [(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
                     rng.integers(0, 19, (24, 32), dtype=np.uint8), f"s{shard}_{i}")
                    for i in range(2)]
        records.write_shard(d / common.SHARD_PATTERN.format(split="train", index=shard, num_shards=4),
                      examples)
    return str(d / "train-*.tfrecord")


def _take(pattern, seed, n=3):
    ds = ip.build_dataset(pattern, is_training=True, batch_size=2, crop_size=(20, 28), seed=seed)
    return [{k: v.numpy() for k, v in batch.items()} for batch in ds.take(n)]


def test_seeded_runs_repeat_exactly_and_seeds_differ(sharded_records):
    a, b, c = _take(sharded_records, 7), _take(sharded_records, 7), _take(sharded_records, 8)
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert any(not np.array_equal(x[ip.IMAGE], z[ip.IMAGE]) for x, z in zip(a, c))


def test_workers_read_disjoint_files_and_per_replica_batches(sharded_records):
    names = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2)
        ds = ip.build_dataset(sharded_records, is_training=False, batch_size=4,
                              input_context=context)
        batches = [b[ip.FILENAME].numpy() for b in ds]
        assert [len(b) for b in batches] == [2, 2]  # global 4 over 2 replicas
        names.append({n.decode().split("_")[0] for b in batches for n in b})
    assert not names[0] & names[1]
    assert names[0] | names[1] == {"s0", "s1", "s2", "s3"}


def test_fewer_files_than_pipelines_is_a_clear_error(ramp_records):
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0)
    with pytest.raises(InputError, match="cannot be sharded over 2 input pipelines"):
        ip.build_dataset(ramp_records[0], is_training=True, batch_size=2, input_context=context)


def test_missing_files_and_bad_labels(tmp_path):
    with pytest.raises(InputError, match="no files match"):
        ip.build_dataset(str(tmp_path / "none-*"), is_training=False, batch_size=1)
    image = np.zeros((8, 8, 3), np.uint8)
    path = records.write_shard(tmp_path / "rgb_label.tfrecord", [(image, image, "rgb")])
    ds = ip.build_dataset(str(path), is_training=False, batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="single-channel PNG"):
        next(iter(ds))


# Resizing to a range (the reference's min/max_resize_value and resize_factor).

def resize_config(min_size, max_size=None, factor=None):
    return ip.InputConfig(min_resize_value=min_size, max_resize_value=max_size,
                          resize_factor=factor)


@pytest.mark.parametrize("size, resize, expected", [
    # ADE20K's min = max = 513, factor 16. The short side to 513 would make the long side
    # 500 * 513/375 = 684 > 513, so the long side goes to 513 instead: 375 * 513/500 =
    # 384.75 -> 384. The factor rounds up to 16k + 1: 384 - 1 = 383 = 23*16 + 15, so +1
    # = 385; 513 - 1 = 512 = 32*16 already.
    ((375, 500), (513, 513, 16), (385, 513)),
    ((500, 375), (513, 513, 16), (513, 385)),  # portrait: the same, transposed
    ((375, 500), (513, 513, None), (384, 513)),  # no factor: 384.75 floors to 384
    ((375, 500), (513, None, None), (513, 684)),  # min only: 500 * 513/375 = 684 exactly
    ((375, 500), (513, None, 16), (513, 689)),  # 684 - 1 = 683 = 42*16 + 11, so +5
    ((200, 300), (100, 1000, None), (100, 150)),  # min shrinks too: 300 * 100/200 = 150
    ((300, 400), (320, 640, None), (320, 426)),  # 400 * 320/300 = 426.7 <= 640: min rules
    # With factor 16 a max of 500 means 497 (the largest 16k + 1 <= 500): 684 > 497, so
    # 375 * 497/500 = 372.75 -> 372 -> 385 (371 = 23*16 + 3, so +13); 497 stays.
    ((375, 500), (500, 500, 16), (385, 497)),
    # Float32, as the reference: 695 * (385/695) comes out just below 385 and floors to
    # 384; 2048 * 385/695 = 1134.5 -> 1134.
    ((695, 2048), (385, None, None), (384, 1134)),
    # A 1 x 1000 strip: 1 * 100/1000 = 0.1 floors to 0, kept at 1 (the reference fails).
    ((1, 1000), (100, 100, None), (1, 100)),
])
def test_resized_size_by_hand(size, resize, expected):
    assert resize_config(*resize).resized_size(*size) == expected


def test_resized_size_without_min_is_the_input_size():
    assert ip.InputConfig().resized_size(375, 500) == (375, 500)


@pytest.mark.parametrize("resize", [(513, 513, 16), (513, None, None), (385, 700, 8),
                                    (64, 96, None)])
def test_tf_size_rule_equals_resized_size(resize):
    """The graph's float32 sizes equal the pure-Python rule, on many image sizes."""
    config = resize_config(*resize)
    grid = [(h, w) for h in range(1, 1100, 13) for w in (1, 37, 375, 500, 695, 1024, 2048)]
    ds = tf.data.Dataset.from_tensor_slices(np.array(grid, np.int32)).map(
        lambda s: ip._range_size(s, *resize)).batch(len(grid))
    got = [tuple(s) for s in next(iter(ds)).numpy().tolist()]
    assert got == [config.resized_size(h, w) for h, w in grid]


@pytest.mark.parametrize("resize", [(100, None, None), (30, 40, None), (65, 65, 16)])
def test_resize_to_range_shape_and_alignment(resize):
    """Image bilinear, label nearest, both align-corners: on the ramp every label is
    the source label at the source pixel its image pixel names; the labels are input
    values only, the dataset's void region included."""
    image, label = ramp_example()
    got_image, got_label = ip.resize_to_range(image, label[..., None], *resize)
    assert got_image.dtype == tf.float32 and got_label.dtype == tf.uint8
    expected = resize_config(*resize).resized_size(48, 64)
    assert got_image.shape == expected + (3,) and got_label.shape == expected + (1,)
    got_label = got_label.numpy()[..., 0]
    check_aligned(got_image.numpy(), got_label, label)
    assert set(np.unique(got_label)) <= set(np.unique(label)) and IGNORE in got_label
    # Corners coincide (align_corners=True): the last pixel names the last source pixel.
    np.testing.assert_allclose(got_image[-1, -1, :2], [63, 47], atol=1e-4)


def test_eval_resizes_then_pads(ramp_records):
    # 48x64, min = max = 65, factor 16: 64 * 65/48 = 86.7 > 65, so 48 * 65/64 = 48.75 ->
    # 48 -> 49 (47 = 2*16 + 15); 64 -> 65. Padded to the 65x65 crop.
    path, source_label = ramp_records
    ds = ip.build_dataset(path, is_training=False, batch_size=1, crop_size=(65, 65),
                          ignore_label=IGNORE, min_resize_value=65, max_resize_value=65,
                          resize_factor=16)
    ex = next(iter(ds))
    image, label = ex[ip.IMAGE][0].numpy(), ex[ip.LABEL][0, ..., 0].numpy()
    want_image, want_label = ip.resize_to_range(ramp_example()[0], source_label[..., None],
                                                65, 65, 16)
    np.testing.assert_array_equal(image[:49], want_image.numpy())
    np.testing.assert_array_equal(label[:49], want_label.numpy()[..., 0])
    assert np.all(image[49:] == ip.MEAN_PIXEL) and np.all(label[49:] == IGNORE)
    assert ex[ip.ORIGINAL_SIZE].numpy().tolist() == [[48, 64]]  # the decoded size


def test_training_resizes_before_the_random_scale_and_crops(ramp_records):
    path, source_label = ramp_records
    resize = dict(min_resize_value=65, max_resize_value=65, resize_factor=16)
    # Scale 1, no crop: the output is the resized 49x65 (see test_eval_resizes_then_pads).
    ds = ip.build_dataset(path, is_training=True, batch_size=1, min_scale_factor=1.0,
                          max_scale_factor=1.0, seed=3, **resize)
    assert next(iter(ds))[ip.IMAGE].shape == (1, 49, 65, 3)
    # The random scale applies to the resized image: 2 x (49 x 65), where the decoded
    # 48 x 64 would give 96 x 128.
    ds = ip.build_dataset(path, is_training=True, batch_size=1, min_scale_factor=2.0,
                          max_scale_factor=2.0, seed=3, **resize)
    assert next(iter(ds))[ip.IMAGE].shape == (1, 98, 130, 3)
    ds = ip.build_dataset(path, is_training=True, batch_size=4, crop_size=(40, 56),
                          ignore_label=IGNORE, seed=3, **resize)
    batch = next(iter(ds))
    assert batch[ip.IMAGE].shape == (4, 40, 56, 3) and batch[ip.LABEL].shape == (4, 40, 56, 1)
    assert set(np.unique(batch[ip.LABEL])) <= set(np.unique(source_label)) | {IGNORE}


@pytest.mark.parametrize("kwargs, param", [
    (dict(min_resize_value=0), "min_resize_value"),
    (dict(min_resize_value=-513), "min_resize_value"),
    (dict(min_resize_value=512.5), "min_resize_value"),
    (dict(min_resize_value="513"), "min_resize_value"),
    (dict(min_resize_value=513, max_resize_value=0), "max_resize_value"),
    (dict(min_resize_value=513, resize_factor=0), "resize_factor"),
    (dict(min_resize_value=513, max_resize_value=512), "min_resize_value"),
    (dict(max_resize_value=513), "max_resize_value"),  # max without min
    (dict(resize_factor=16), "resize_factor"),  # a factor alone
])
def test_bad_resize_values_are_one_line_errors_naming_the_parameter(kwargs, param):
    with pytest.raises(InputError, match=param) as error:
        ip.InputConfig(**kwargs)
    assert param in error.value.params and "\n" not in str(error.value)
    assert f"--{param}" in error.value.as_flags()


def test_build_dataset_checks_resize_values_before_reading(tmp_path):
    with pytest.raises(InputError, match="max_resize_value"):
        ip.build_dataset(str(tmp_path / "none-*"), is_training=False, batch_size=1,
                         min_resize_value=600, max_resize_value=513)
