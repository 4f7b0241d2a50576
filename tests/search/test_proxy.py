"""The proxy task: the real head on the real features, able to tell context from none,
deterministic, resumable, and stopped early by its rule."""
import os
import subprocess
import sys

import numpy as np
import pytest

from deeplab_dpc import spec
from tests.search import caches

# A cell that uses every kind of op, so the equality below covers all of them.
CELL = spec.CellSpec((spec.Branch(-1, spec.SeparableConv(1, 3)),
                      spec.Branch(0, spec.PyramidPooling(1, 2)),
                      spec.Branch(-1, spec.Conv1x1())))
POOL = spec.CellSpec((spec.Branch(-1, spec.PyramidPooling(1, 1)),))
ONE = spec.CellSpec((spec.Branch(-1, spec.Conv1x1()),))


def short_settings(**overrides):
    from deeplab_dpc.search.proxy import ProxySettings

    return ProxySettings(**{**dict(
        training_number_of_steps=60, batch_size=8, base_learning_rate=0.05,
        batch_norm_decay=0.9, dpc_filters=16, flip=False, save_interval_steps=1000,
        loss_resolution="logits"), **overrides})


@pytest.fixture(scope="module")
def context_cache(tmp_path_factory):
    return caches.write_context_cache(str(tmp_path_factory.mktemp("context")))


# ------------------------------------------------------------- proxy == end to end
def _tiny_run(tmp_path):
    """A calibrated tiny DeepLab (BN decay 0.9, the test's cell), its images and run dir."""
    from deeplab_dpc.data import datasets
    from deeplab_dpc.model import DeepLab
    from tests.records import TINY_MODEL, write_records
    from tests.run_fixtures import calibrated_tiny_model, save_run

    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (4, 33, 49, 3)).astype(np.uint8)
    labels = rng.integers(0, 3, (4, 33, 49)).astype(np.uint8)
    labels[:, :4] = 255
    calibrated = calibrated_tiny_model(3, image_size=(33, 49))
    model = DeepLab(3, **dict(TINY_MODEL, cell=CELL, dropout_rate=0.1))
    source = calibrated.backbone
    for a, b in zip(model.backbone.weights, source.weights):
        a.assign(b)
    info = datasets.DatasetInfo("tiny", 3)
    data = str(tmp_path / "data")
    examples = [(images[i], labels[i], f"tiny_{i}") for i in range(4)]
    write_records(data, "train", examples)
    write_records(data, "minival", examples)
    datasets.write_dataset_info(data, info)
    save_run(tmp_path / "run", model, info)
    return model, images, labels, data, info


def _cache_from_run(run, data, info, folder, dtype):
    from deeplab_dpc.cache_features import backbone
    from deeplab_dpc.cache_features.writer import CacheRequest, write_cache

    extractor, settings, _ = backbone.from_run(run)
    request = CacheRequest(folder, ("train", "minival"), 1.0, False, dtype)
    write_cache(extractor, request, settings, data, info, progress=False, log=lambda l: None)
    return folder, extractor


def test_three_proxy_steps_equal_three_end_to_end_steps_with_a_frozen_backbone(tmp_path):
    import tensorflow as tf

    from deeplab_dpc import run_dir
    from deeplab_dpc.model import DeepLab
    from deeplab_dpc.search import proxy
    from deeplab_dpc.train import loop

    model, images, labels, data, info = _tiny_run(tmp_path)
    folder, extractor = _cache_from_run(str(tmp_path / "run"), data, info,
                                        str(tmp_path / "cache"), "float32")
    cache = proxy.as_cache(folder)
    # The round trip: what the cache holds is what the backbone gives.
    feats, cached_labels = cache.arrays("train")
    direct = np.concatenate([extractor(tf.constant(image[None], tf.float32)).numpy()
                             for image in images])
    np.testing.assert_allclose(feats, direct, rtol=0, atol=1e-5 * np.abs(direct).max())
    np.testing.assert_array_equal(cached_labels[..., 0], labels)

    settings = short_settings(training_number_of_steps=3, batch_size=4, dpc_filters=16,
                              loss_resolution="label", weight_decay=4e-5, dropout_rate=0.1)
    head_weights = {w.path: w.numpy() for w in model.head_layer.weights + model.get_layer(
        "logits").weights}
    dropout_state = [v.numpy() for v in run_dir.rng_variables(model)]

    def same_start(m):
        for w in m.weights:
            if w.path in head_weights:
                w.assign(head_weights[w.path])
        for v, value in zip(run_dir.rng_variables(m), dropout_state):
            v.assign(value)

    def initialize(m):
        same_start(m)
        assert sum(w.path in head_weights for w in m.weights) == len(head_weights)

    proxy_result = loop.train(
        proxy._train_config(cache, settings, 0, str(tmp_path / "proxy")),
        lambda: proxy.build_proxy_model(CELL, cache, settings),
        lambda ctx: proxy.proxy_dataset(cache, settings, 0, ctx), 255,
        hooks=loop.TrainHooks(initialize=initialize), log=lambda line: None)

    backbone_layers = set()

    def end_to_end_model():
        m = DeepLab.from_config(model.get_config())
        m.set_weights(model.get_weights())
        m.backbone.trainable = False
        backbone_layers.update(id(l) for l in m.backbone._flatten_layers())
        return m

    # Dropout's mask goes by position in the batch: feed the images in the proxy's order.
    order = []
    for batch in proxy.proxy_dataset(cache, settings, 0).take(3):
        order.append([next(k for k in range(4) if np.array_equal(f, feats[k]))
                      for f in batch["image"].numpy()])
    assert sorted(order[0]) == [0, 1, 2, 3]

    def images_fn(ctx):
        return tf.data.Dataset.from_tensor_slices(
            {"image": tf.constant(images[order], tf.float32),
             "label": tf.constant(labels[order][..., None], tf.int32)})

    full_result = loop.train(
        proxy._train_config(cache, settings, 0, str(tmp_path / "full")), end_to_end_model,
        images_fn, 255, hooks=loop.TrainHooks(
            initialize=initialize, trains_batch_norm=lambda l: id(l) not in backbone_layers),
        log=lambda line: None)

    assert len(proxy_result.losses) == len(full_result.losses) == 3
    np.testing.assert_allclose(proxy_result.losses, full_result.losses, rtol=1e-5)
    assert proxy_result.losses[0] != proxy_result.losses[2]  # it did learn something
    full = {w.path: w.numpy() for w in full_result.model.weights}
    compared = 0
    for w in proxy_result.model.weights:
        if w.path in head_weights:
            np.testing.assert_allclose(w.numpy(), full[w.path], rtol=1e-5, atol=1e-5,
                                       err_msg=w.path)
            compared += 1
    assert compared == len(head_weights)
    # The backbone did not move.
    for a, b in zip(full_result.model.backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_float16_cache_gives_the_float32_forward_pass_within_its_rounding(tmp_path):
    from deeplab_dpc.search import proxy

    _, _, _, data, info = _tiny_run(tmp_path)
    run = str(tmp_path / "run")
    c32 = proxy.as_cache(_cache_from_run(run, data, info, str(tmp_path / "c32"), "float32")[0])
    c16 = proxy.as_cache(_cache_from_run(run, data, info, str(tmp_path / "c16"), "float16")[0])
    f32, _ = c32.arrays("train")
    f16, _ = c16.arrays("train")
    np.testing.assert_allclose(f16, f32, rtol=2 ** -10, atol=1e-6)
    assert not np.array_equal(f16, f32)  # float16 did round
    assert c16.content_hash != c32.content_hash
    settings = short_settings(dpc_filters=16)
    head = proxy.build_proxy_model(CELL, c32, settings)
    out32, out16 = head(f32, training=False).numpy(), head(f16, training=False).numpy()
    scale = np.abs(out32).max()
    assert np.abs(out16 - out32).max() <= 1e-2 * scale


# ----------------------------------------------------------------- what the proxy sees
def test_the_proxy_tells_context_from_no_context(context_cache):
    from deeplab_dpc.search import proxy

    for seed in (0, 1):
        pooled = proxy.run_trial(POOL, context_cache, short_settings(), seed)
        local = proxy.run_trial(ONE, context_cache, short_settings(), seed)
        assert pooled.score >= 0.9, (seed, pooled.score)
        assert local.score <= 0.6, (seed, local.score)
        assert pooled.steps == 60 and not pooled.stopped


def test_a_trial_is_a_pure_function_of_its_inputs(context_cache):
    from deeplab_dpc.search import proxy

    settings = short_settings(training_number_of_steps=20, crop_size=(3, 12), flip=True)
    a = proxy.run_trial(CELL, context_cache, settings, 3)
    b = proxy.run_trial(CELL, context_cache, settings, 3)
    c = proxy.run_trial(CELL, context_cache, settings, 4)
    assert a.score == b.score and a.final_loss == b.final_loss
    assert a.per_class_iou == b.per_class_iou
    assert c.final_loss != a.final_loss  # the seed matters
    assert a.cache_hash == proxy.as_cache(context_cache).content_hash
    assert a.seed == 3 and a.steps == 20 and a.search_split == "minival"


def test_the_result_reports_the_heads_cost_from_the_complexity_counter(context_cache):
    from deeplab_dpc.search import proxy

    settings = short_settings(training_number_of_steps=1, dpc_filters=16)
    result = proxy.run_trial(ONE, context_cache, settings, 0)
    # 1x1 conv 3 -> 16 channels on a 4x14 map (49x209 image at stride 16).
    assert result.params == 3 * 16
    assert result.madds == 4 * 14 * 3 * 16
    assert result.complexity_image_size == [49, 209]
    sized = proxy.run_trial(ONE, context_cache, short_settings(
        training_number_of_steps=1, complexity_image_size=(1025, 2049)), 0)
    assert sized.madds == 65 * 129 * 3 * 16


def test_a_trial_leaves_no_traced_graph_alive(context_cache):
    # TensorFlow's gradient registry keeps each traced all_reduce's gradient, and with
    # it the whole step graph, for good: 9 MB per trial on the bench's head until the
    # trial dropped them. A worker runs thousands of trials in one process.
    import gc

    from tensorflow.python.framework import func_graph, ops

    from deeplab_dpc.search import proxy

    def alive():
        gc.collect()
        return (sum(isinstance(o, func_graph.FuncGraph) for o in gc.get_objects()),
                len(ops._gradient_registry._registry))

    before = alive()
    for seed in (0, 1):
        proxy.run_trial(CELL, context_cache, short_settings(training_number_of_steps=2), seed)
        assert alive() == before


def test_loss_at_the_logits_takes_the_labels_at_the_feature_cells(context_cache):
    import tensorflow as tf

    from deeplab_dpc.search import proxy

    cache = proxy.as_cache(context_cache)
    full = short_settings(loss_resolution="label", batch_size=16)
    cells = short_settings(loss_resolution="logits", batch_size=16)
    a = next(iter(proxy.proxy_dataset(cache, full, 0)))
    b = next(iter(proxy.proxy_dataset(cache, cells, 0)))
    np.testing.assert_array_equal(a["image"], b["image"])
    assert tuple(a["label"].shape[1:3]) == (49, 209) and tuple(b["label"].shape[1:3]) == (4, 14)
    np.testing.assert_array_equal(b["label"], a["label"][:, ::16, ::16])
    # The cue column is labelled ignore, the far columns with the cue's class.
    assert (b["label"][:, :, 0] == 255).numpy().all()
    del tf


def test_random_crops_take_the_matching_label_pixels(context_cache):
    from deeplab_dpc.search import proxy

    cache = proxy.as_cache(context_cache)
    feats, labels = cache.arrays("train")
    settings = short_settings(crop_size=(2, 5), flip=True, loss_resolution="label",
                              batch_size=16)
    batch = next(iter(proxy.proxy_dataset(cache, settings, 7)))
    found = 0
    for crop, label in zip(batch["image"].numpy(), batch["label"].numpy()):
        for f, l in zip(feats, labels):
            for flip in (False, True):
                f2, l2 = (f[:, ::-1], l[:, ::-1]) if flip else (f, l)
                for top in range(f.shape[0] - 1):
                    for left in range(f.shape[1] - 4):
                        if np.array_equal(f2[top:top + 2, left:left + 5], crop):
                            np.testing.assert_array_equal(
                                l2[top * 16:top * 16 + 17, left * 16:left * 16 + 65], label)
                            found += 1
    assert found >= 16


# --------------------------------------------------------------- resume, early stop
def test_a_killed_trial_resumes_from_its_checkpoint(tmp_path, context_cache):
    from deeplab_dpc.search import proxy

    settings = short_settings(training_number_of_steps=12, save_interval_steps=4,
                              crop_size=(3, 12), flip=True)
    trial_dir = str(tmp_path / "trial")
    code = (
        "import sys; from deeplab_dpc.search import proxy; from tests.search import test_proxy as t;"
        f"proxy.run_trial(t.CELL, {context_cache!r}, t.short_settings(training_number_of_steps=12,"
        f"save_interval_steps=4, crop_size=(3, 12), flip=True), 5, {trial_dir!r})")
    env = dict(os.environ, DEEPLAB_DPC_KILL_AFTER="train step:6")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=os.getcwd(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    assert sorted(n for n in os.listdir(trial_dir) if n.startswith("ckpt-4"))
    lines = []
    resumed = proxy.run_trial(CELL, context_cache, settings, 5, trial_dir, log=lines.append)
    assert resumed.steps == 12
    assert any(line.startswith("resumed from") and line.endswith("ckpt-4 at step 4")
               for line in lines), lines  # steps 1-4 were not run again
    fresh = proxy.run_trial(CELL, context_cache, settings, 5)
    assert resumed.score == fresh.score
    assert resumed.final_loss == pytest.approx(fresh.final_loss, rel=1e-6)


def test_early_stopping_asks_the_rule_at_its_step_and_marks_the_trial(context_cache):
    from deeplab_dpc.search import proxy

    asked = []
    settings = short_settings(training_number_of_steps=30, early_stopping_step=10)
    stopped = proxy.run_trial(ONE, context_cache, settings, 0,
                              stopper=lambda step, score: asked.append((step, score)) or True)
    assert stopped.stopped and stopped.steps == 10
    assert asked == [(10, stopped.score)] and stopped.intermediate == {10: stopped.score}
    kept = proxy.run_trial(ONE, context_cache, settings, 0, stopper=lambda step, score: False)
    assert not kept.stopped and kept.steps == 30 and kept.intermediate == {10: stopped.score}
    # Pausing at step 10 does not change the run: the same as never asking.
    plain = proxy.run_trial(ONE, context_cache, settings, 0)
    assert plain.final_loss == pytest.approx(kept.final_loss, rel=1e-6)
    assert plain.score == kept.score


def test_the_learning_curve_pauses_the_trial_without_changing_its_schedule(context_cache):
    """Scored every 20 steps of the 60-step schedule on which the pooling cell learns the
    far cue (>= 0.9, see above): the last point is the trial's own score, reached from
    a lower one."""
    from deeplab_dpc.search import proxy

    settings = short_settings()
    curve = proxy.learning_curve(POOL, context_cache, settings, seed=1, every=20)
    assert [step for step, _ in curve] == [20, 40, 60]
    assert curve[-1][1] == pytest.approx(proxy.run_trial(POOL, context_cache, settings, 1).score,
                                         abs=1e-6)
    assert curve[0][1] < curve[-1][1] and curve[-1][1] >= 0.9
