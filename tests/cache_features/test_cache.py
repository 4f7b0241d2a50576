"""The feature cache: what it stores is what the backbone gives image by image (at
float16's rounding), labels and scaled sizes follow eval's resize, a hold-out splits
train reproducibly, a killed binary resumes to the same bytes, and folders holding
anything else are refused without being touched."""
import filecmp
import json
import os

import numpy as np
import pytest

from deeplab_dpc.errors import InputError
from tests.cli_utils import run_binary

SIZE = (33, 49)  # at stride 16: 3x4 features; at scale 0.5: 17x25, 2x2 features
NUM_TRAIN, NUM_MINIVAL, CHANNELS = 7, 2, 80  # MobileNet-v2 depth 0.25: 320 / 4 channels
IGNORE = 255


def _examples(rng, num, prefix):
    images = rng.integers(0, 256, (num, *SIZE, 3)).astype(np.uint8)
    labels = rng.integers(0, 3, (num, *SIZE)).astype(np.uint8)
    labels[:, :3] = IGNORE
    return [(images[i], labels[i], f"{prefix}_{i}") for i in range(num)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A dataset with train and minival, one with train only, a calibrated tiny run
    on the first, and that run's backbone with the settings the binary gives it."""
    from deeplab_dpc.cache_features import backbone
    from deeplab_dpc.data import datasets
    from tests.records import write_records
    from tests.run_fixtures import calibrated_tiny_model, save_run

    root = tmp_path_factory.mktemp("cache")
    rng = np.random.default_rng(3)
    info = datasets.DatasetInfo("tiny", 3, ignore_label=IGNORE, class_names=("a", "b", "c"))
    train, minival = _examples(rng, NUM_TRAIN, "train"), _examples(rng, NUM_MINIVAL, "minival")
    data, train_only = str(root / "data"), str(root / "train_only")
    write_records(data, "train", train)
    write_records(data, "minival", minival, info)
    write_records(train_only, "train", train, info)
    model = calibrated_tiny_model(3, image_size=SIZE)
    prefix = save_run(root / "run", model, info,
                      train_settings={"dataset": "tiny", "dataset_dir": data})
    extractor, settings, config = backbone.from_run(str(root / "run"))
    settings["train"] = config["train"]  # as the binary records it
    return dict(root=root, info=info, data=data, train_only=train_only, model=model,
                prefix=prefix, run=str(root / "run"), extractor=extractor,
                settings=settings, examples={"train": train, "minival": minival})


def _write(world, folder, data=None, settings=None, log=None, **request):
    """`write_cache` of the run's backbone, of train in shards of 2 images unless told."""
    from deeplab_dpc.cache_features.writer import CacheRequest, write_cache

    request = {"splits": ("train",), "images_per_shard": 2, **request}
    return write_cache(world["extractor"], CacheRequest(str(folder), **request),
                       settings or world["settings"], data or world["data"], world["info"],
                       progress=False, log=log or (lambda line: None))


@pytest.fixture(scope="module")
def caches(world):
    """Two caches of train that differ only in dtype (tests leave them as they are):
    float16 is the binary's default, and the kill test compares its bytes with it."""
    root = world["root"]
    return {dtype: (root / dtype, _write(world, root / dtype, cache_dtype=dtype))
            for dtype in ("float16", "float32")}


def _features(world, images):
    """The backbone on each image alone, [N, h, w, c] float32."""
    return np.stack([world["extractor"](np.asarray(image, np.float32)[None]).numpy()[0]
                     for image in images])


def _records(cache, split):
    return list(cache.dataset(split).as_numpy_iterator())


def _count_records(path):
    import tensorflow as tf

    return sum(1 for _ in tf.data.TFRecordDataset(str(path)))


def _snapshot(folder):
    return sorted((n, os.path.getsize(os.path.join(folder, n)), os.stat(
        os.path.join(folder, n)).st_mtime_ns) for n in os.listdir(folder))


TRAIN_SHARDS = [f"train-0000{i}-of-00004.tfrecord" for i in range(4)]  # 7 images, 2 a shard
ALL_FILES = ["cache_config.json", "manifest.json", *TRAIN_SHARDS]


# ------------------------------------------------------------------------ round trips
def test_a_cache_of_a_run_holds_its_backbone_features_and_the_labels(world, caches):
    from deeplab_dpc.cache_features import format as fmt
    from deeplab_dpc.cache_features.writer import weights_hash

    (path16, half), (path32, full) = caches["float16"], caches["float32"]
    cache16, cache32 = fmt.FeatureCache(path16), fmt.FeatureCache(path32)
    images, labels, names = zip(*world["examples"]["train"])
    expected = _features(world, images)
    assert expected.shape == (NUM_TRAIN, 3, 4, CHANNELS)  # ceil(33 / 16), ceil(49 / 16)
    assert np.abs(expected).max() > 0.1 and np.std(expected) > 0.01  # calibrated: not ~0

    feats16, labels16 = cache16.arrays("train")
    feats32, labels32 = cache32.arrays("train")
    assert feats16.dtype == feats32.dtype == np.float32  # read back as float32
    # The cache runs the backbone as a graph: it differs from eager by ~1e-6 of the max.
    atol = 1e-5 * np.abs(expected).max()
    assert np.abs(feats32 - expected).max() <= atol
    # float16 keeps 11 significant bits: rounding moves a value by <= 2**-11 of it...
    np.testing.assert_array_less(np.abs(feats16 - expected), 2 ** -10 * np.abs(expected) + atol)
    # ... and the float16 cache is exactly the float32 one rounded.
    np.testing.assert_array_equal(feats16, feats32.astype(np.float16).astype(np.float32))
    assert not np.array_equal(feats16, feats32)
    for got in (labels16, labels32):  # scale 1: the source labels, ignore pixels included
        np.testing.assert_array_equal(got, np.stack(labels)[..., None])
    records = _records(cache16, "train")
    assert [r["filename"].decode() for r in records] == list(names)
    assert "features_flipped" not in records[0]  # no cache_flip
    assert cache16.count("train") == NUM_TRAIN
    assert cache16.feature_shape("train") == (3, 4, CHANNELS)
    assert cache16.label_shape("train") == SIZE
    assert (cache16.num_classes, cache16.ignore_label, cache16.class_names) == (
        3, IGNORE, ("a", "b", "c"))
    assert (cache16.output_stride, cache16.feature_channels) == (16, CHANNELS)

    manifest = json.loads((path16 / "manifest.json").read_text())
    assert half == manifest and sorted(os.listdir(path16)) == ALL_FILES
    assert {s: p["count"] for s, p in manifest["splits"].items()} == {"train": 7}
    assert manifest["splits"]["train"]["shards"] == TRAIN_SHARDS
    assert [_count_records(path16 / n) for n in TRAIN_SHARDS] == [2, 2, 2, 1]
    assert manifest["splits"]["train"]["feature_shape"] == [3, 4, CHANNELS]
    assert manifest["splits"]["train"]["shard_sha256"] == [
        fmt.file_sha256(path16 / n) for n in TRAIN_SHARDS]
    source = manifest["settings"]["source"]
    assert source["checkpoint"] == os.path.abspath(world["prefix"])
    assert source["weights_sha256"] == weights_hash(world["model"].backbone.weights)
    assert manifest["settings"]["backbone"] == dict(
        model_variant="mobilenet_v2", depth_multiplier=0.25, output_stride=16,
        feature_channels=CHANNELS)
    assert manifest["content_hash"] == fmt.content_hash(manifest["settings"], manifest["splits"])
    assert json.loads((path16 / "cache_config.json").read_text()) == manifest["settings"]
    differ = {k for k in manifest["settings"] if manifest["settings"][k] != full["settings"][k]}
    assert differ == {"dtype"} and half["content_hash"] != full["content_hash"]

    # A rerun with the same settings finds the cache complete and touches nothing.
    before, lines = _snapshot(path16), []
    assert _write(world, path16, cache_dtype="float16", log=lines.append) == half
    assert _snapshot(path16) == before
    assert lines == [f"{path16} already holds this cache (content hash "
                     f"{half['content_hash'][:12]})"]


def test_half_scale_resizes_as_eval_does_and_cache_flip_flips(world, tmp_path):
    import tensorflow as tf

    from deeplab_dpc.cache_features.format import FeatureCache
    from deeplab_dpc.layers.ops import resize_bilinear

    _write(world, tmp_path / "c", splits=("minival",), image_scale=0.5, cache_flip=True,
           cache_dtype="float32")
    cache = FeatureCache(tmp_path / "c")
    assert cache.image_scale == 0.5 and cache.flipped
    # (size - 1) * scale + 1: (33 - 1) / 2 + 1 = 17, (49 - 1) / 2 + 1 = 25; at stride 16
    # ceil(17 / 16) = ceil(25 / 16) = 2.
    assert ((SIZE[0] - 1) * 0.5 + 1, (SIZE[1] - 1) * 0.5 + 1) == (17, 25)
    assert cache.label_shape("minival") == (17, 25)
    assert cache.feature_shape("minival") == (2, 2, CHANNELS)
    images, labels, _ = zip(*world["examples"]["minival"])
    records = _records(cache, "minival")
    # Align corners at an exact factor 2: output pixel i sits on source pixel 2i.
    np.testing.assert_array_equal(np.stack([r["label"] for r in records]),
                                  np.stack(labels)[:, ::2, ::2, None])
    small = [resize_bilinear(tf.constant(i, tf.float32)[None], [17, 25])[0].numpy()
             for i in images]
    plain, flipped = _features(world, small), _features(world, [i[:, ::-1] for i in small])
    got_plain = np.stack([r["features"] for r in records])
    got_flipped = np.stack([r["features_flipped"] for r in records])
    assert got_plain.shape == got_flipped.shape == (2, 2, 2, CHANNELS)
    atol = 1e-5 * np.abs(plain).max()
    assert np.abs(got_plain - plain).max() <= atol
    assert np.abs(got_flipped - flipped).max() <= atol  # the flipped image's own features
    assert np.abs(got_flipped - got_plain).max() > 1000 * atol  # not the same map


# --------------------------------------------------------------------------- hold-out
def test_holdout_from_train_moves_seeded_train_images_to_minival(world, tmp_path):
    from deeplab_dpc.cache_features.format import FeatureCache

    manifest = _write(world, tmp_path / "a", data=world["train_only"], holdout_from_train=3,
                      holdout_seed=4)
    cache = FeatureCache(tmp_path / "a")
    assert (cache.count("minival"), cache.count("train")) == (3, 4)
    names = {s: [r["filename"].decode() for r in _records(cache, s)] for s in cache.splits}
    source = [e[2] for e in world["examples"]["train"]]
    held = sorted(int(i) for i in np.random.default_rng(4).choice(NUM_TRAIN, 3, replace=False))
    assert manifest["holdout_indices"] == held
    assert names["minival"] == [source[i] for i in held]  # in file order
    assert names["train"] == [n for i, n in enumerate(source) if i not in held]
    assert not set(names["minival"]) & set(names["train"])
    assert sorted(names["minival"] + names["train"]) == sorted(source)
    assert manifest["splits"]["minival"]["source_split"] == "train"
    assert {s: (p["count"], p["shards"]) for s, p in manifest["splits"].items()} == {
        "train": (4, ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]),
        "minival": (3, ["minival-00000-of-00002.tfrecord", "minival-00001-of-00002.tfrecord"])}
    # The held-out images' features and labels are those of the same source images.
    feats, labels = cache.arrays("minival")
    images, source_labels = zip(*[world["examples"]["train"][i][:2] for i in held])
    np.testing.assert_array_equal(labels, np.stack(source_labels)[..., None])
    expected = _features(world, images)
    np.testing.assert_array_less(np.abs(feats - expected), 2 ** -10 * np.abs(expected)
                                 + 1e-5 * np.abs(expected).max())


def test_holdout_is_refused_when_the_dataset_has_a_minival_split(world, tmp_path):
    with pytest.raises(InputError, match="the dataset has a minival split") as e:
        _write(world, tmp_path / "c", holdout_from_train=2)
    assert "\n" not in str(e.value) and e.value.params == ("holdout_from_train",)
    assert not os.path.exists(tmp_path / "c")
    with pytest.raises(InputError, match="leaves no training image of the 7"):
        _write(world, tmp_path / "c", data=world["train_only"], holdout_from_train=7)
    assert not os.path.exists(tmp_path / "c")
    # A split the dataset lacks: the message names the splits asked for (--splits).
    with pytest.raises(InputError, match=r"^splits: dataset_dir .* has no 'bogus' split") as e:
        _write(world, tmp_path / "c", splits=("train", "bogus"))
    assert "--splits: --dataset_dir" in e.value.as_flags()
    assert not os.path.exists(tmp_path / "c")


def test_holdout_seed_decides_the_held_out_images():
    from deeplab_dpc.cache_features.writer import CacheRequest, plan_splits

    def plan(seed):
        return plan_splits(CacheRequest("unused", holdout_from_train=3, holdout_seed=seed),
                           {"train": 20}, has_minival=False)

    assert plan(0) == plan(0)
    assert plan(0)["minival"][1] != plan(1)["minival"][1]
    for p in (plan(0), plan(1)):
        assert sorted(p["minival"][1] + p["train"][1]) == list(range(20))


def test_a_bare_backbone_without_weights_is_the_same_on_every_build():
    """Random weights are seeded: a rerun of a killed `--model_variant` cache (another
    process) builds the same backbone, so its settings match and it resumes."""
    import keras

    from deeplab_dpc.cache_features import backbone

    _, first = backbone.bare("mobilenet_v2", 0.25)
    keras.utils.set_random_seed(1)  # whatever the process drew before
    _, second = backbone.bare("mobilenet_v2", 0.25)
    assert first == second and first["source"]["backbone_weights"] is None
    assert first["backbone"]["feature_channels"] == CHANNELS


# ------------------------------------------------------------------------- kill, resume
def _run(args, kill_after=None):
    env = dict(os.environ)
    if kill_after:
        env["DEEPLAB_DPC_KILL_AFTER"] = kill_after
    result = run_binary("deeplab_dpc.cache_features", *args, timeout=300, env=env)
    expected = -9 if kill_after else 0  # -9: died of SIGKILL
    assert result.returncode == expected, (result.returncode, result.stderr[-2000:])
    return result


def test_a_killed_binary_resumes_to_the_bytes_of_an_uninterrupted_run(world, caches, tmp_path):
    from deeplab_dpc import files
    from deeplab_dpc.cache_features.format import FeatureCache

    whole = caches["float16"][0]  # written in-process, uninterrupted, same settings
    out = tmp_path / "out"
    args = [f"--checkpoint_dir={world['run']}", "--dataset=tiny",
            f"--dataset_dir={world['data']}", "--splits=train", "--images_per_shard=2",
            f"--feature_cache_dir={out}"]
    # 7 train images in shards of 2, 2, 2, 1; killed after the 5th image: two shards are
    # complete, the third is a temporary.
    _run(args, kill_after="caching:5")
    names = os.listdir(out)
    assert "manifest.json" not in names
    assert sorted(n for n in names if not files.is_temporary(n)) == [
        "cache_config.json", *TRAIN_SHARDS[:2]]
    assert len([n for n in names if files.is_temporary(n)]) == 1
    for name in ("cache_config.json", *TRAIN_SHARDS[:2]):
        assert filecmp.cmp(out / name, whole / name, shallow=False), name
    with pytest.raises(InputError, match="is incomplete"):
        FeatureCache(out)
    kept = os.stat(out / TRAIN_SHARDS[0]).st_mtime_ns

    resumed = _run(args)
    assert "caching: 3/3 images" in resumed.stdout  # only the 7 - 4 images not yet cached
    assert os.stat(out / TRAIN_SHARDS[0]).st_mtime_ns == kept
    assert sorted(os.listdir(out)) == ALL_FILES  # the temporary is gone
    for name in ALL_FILES:  # shards, settings and manifest alike
        assert filecmp.cmp(out / name, whole / name, shallow=False), name
    assert FeatureCache(out).content_hash == FeatureCache(whole).content_hash


# --------------------------------------------------------------------- refused folders
def test_a_folder_with_another_cache_is_refused_and_left_alone(world, caches):
    folder = caches["float16"][0]
    before = _snapshot(folder)
    deeper = json.loads(json.dumps(world["settings"]))
    deeper["backbone"]["depth_multiplier"] = 0.5
    for changes, field in ((dict(settings=deeper), "backbone.depth_multiplier"),
                           (dict(cache_dtype="float32"), "dtype"),
                           (dict(image_scale=0.5), "image_scale"),
                           (dict(cache_flip=True), "cache_flip"),
                           (dict(data=world["train_only"]), "dataset.dataset_dir")):
        with pytest.raises(InputError) as e:
            _write(world, folder, **changes)
        assert str(e.value) == (f"feature_cache_dir {folder} holds a cache with other settings "
                                f"(differs in {field}); use a new feature_cache_dir"), field
        assert e.value.params == ("feature_cache_dir",)
        assert _snapshot(folder) == before


def test_an_incomplete_cache_is_finished_and_one_with_other_settings_refused(
        world, caches, tmp_path):
    import shutil

    from deeplab_dpc.cache_features.format import FeatureCache

    source, manifest = caches["float16"]
    folder = tmp_path / "c"
    shutil.copytree(source, folder)
    os.remove(folder / "manifest.json")  # as if killed before the last write
    with pytest.raises(InputError, match=r"is incomplete \(no manifest.json\); rerun"):
        FeatureCache(folder)
    before = _snapshot(folder)
    with pytest.raises(InputError, match="differs in dtype"):
        _write(world, folder, cache_dtype="float32")
    assert _snapshot(folder) == before
    assert _write(world, folder) == manifest  # nothing left to compute: the manifest only
    shards = [s for s in before if s[0].endswith(".tfrecord")]
    assert [s for s in _snapshot(folder) if s[0].endswith(".tfrecord")] == shards
    assert filecmp.cmp(folder / "manifest.json", source / "manifest.json", shallow=False)


def test_a_non_empty_folder_that_is_not_a_cache_is_refused(world, tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(InputError) as e:
        _write(world, folder)
    assert str(e.value) == (f"feature_cache_dir {folder} is not empty and holds no feature "
                            "cache (found notes.txt); use a new folder")
    assert os.listdir(folder) == ["notes.txt"]


def test_reading_a_folder_that_is_no_complete_cache_is_one_line(tmp_path):
    from deeplab_dpc.cache_features.format import FeatureCache

    (tmp_path / "empty").mkdir()
    (tmp_path / "started").mkdir()
    (tmp_path / "started" / "cache_config.json").write_text("{}")
    for folder, message in (("nowhere", "does not exist"),
                            ("empty", "is not a feature cache: no manifest.json"),
                            ("started", "is incomplete (no manifest.json); rerun "
                                        "cache_features to finish it")):
        with pytest.raises(InputError) as e:
            FeatureCache(tmp_path / folder)
        assert message in str(e.value) and "\n" not in str(e.value), folder
        assert str(tmp_path / folder) in str(e.value)
        assert e.value.params == ("feature_cache_dir",)
