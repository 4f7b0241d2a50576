"""Side by side with peers, and what deployment costs; rows into BENCHMARKS.md.

Usage: python bench/peers.py [--sections backbone head model serving precision pipeline]
                             [--steps 20] [--quick]

Every figure is the median over --steps timed steps after warm-up, with min and max;
the two sides of a comparison alternate step by step in one process, at the same
output stride, dtype, input size and batch. Peers: keras.applications.MobileNetV2 (the
same architecture up to its 320-channel layer) for our backbone; keras-hub's DeepLabV3
(`pip install keras-hub`) for our ASPP head and, with our backbone inside it, for the
whole model. Each section rewrites its table in BENCHMARKS.md, headed by the machine
and the command. GPU rows are written only when run on a GPU.
"""
import argparse
import datetime
import os
import platform
import re
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
BENCHMARKS = os.path.join(ROOT, "BENCHMARKS.md")
SECTIONS = ("backbone", "head", "model", "serving", "precision", "pipeline")


def interleaved(functions, steps, warmup=3):
    """{name: [seconds]} of `steps` calls of each function, alternating; each call must
    return only once its work is done (a numpy value)."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(steps):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return times


def row(what, side, seconds, images):
    ms = 1000 * np.asarray(seconds)
    return {"what": what, "side": side, "min": ms.min(), "median": float(np.median(ms)),
            "max": ms.max(), "images_per_s": images / (float(np.median(ms)) / 1000)}


def _train_step(model, output, loss_fn=None):
    """A jitted-off training step of `model` on its output (mean square unless
    `loss_fn`), SGD; returns a function of (inputs, targets)."""
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.SGD(0.001, momentum=0.9)
    loss_fn = loss_fn or (lambda out, _: tf.reduce_mean(tf.square(tf.cast(out, tf.float32))))

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(output(model(x, training=True)), y)
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return lambda x, y=None: step(x, y).numpy()


def _forward(model, output):
    import tensorflow as tf

    fn = tf.function(lambda x: output(model(x, training=False)))
    return lambda x: fn(x).numpy()


def bench_backbone(args):
    """Our MobileNet-v2 vs keras.applications' at output stride 32."""
    import keras
    import tensorflow as tf

    from deeplab_dpc.backbones import build_backbone

    size, batch = (321, 321) if not args.quick else (97, 97), 8 if not args.quick else 2
    x = tf.random.uniform((batch, *size, 3), -1, 1)
    ours = build_backbone("mobilenet_v2", output_stride=32)
    full = keras.applications.MobileNetV2(input_shape=(*size, 3), include_top=False,
                                          weights=None)
    peer = keras.Model(full.input, full.get_layer("block_16_project_BN").output)
    assert ours.count_params() == peer.count_params(), (ours.count_params(), peer.count_params())
    what = f"MobileNet-v2 to 320 ch, OS 32, {size[0]}x{size[1]}, batch {batch}, float32"
    pick = lambda out: out["features"]  # noqa: E731
    same = lambda out: out  # noqa: E731
    fwd_o, fwd_p = _forward(ours, pick), _forward(peer, same)
    times = interleaved({"ours": lambda: fwd_o(x), "keras.applications": lambda: fwd_p(x)},
                        args.steps)
    rows = [row(f"forward: {what}", k, v, batch) for k, v in times.items()]
    tr_o, tr_p = _train_step(ours, pick), _train_step(peer, same)
    times = interleaved({"ours": lambda: tr_o(x), "keras.applications": lambda: tr_p(x)},
                        args.steps)
    return rows + [row(f"training step: {what}", k, v, batch) for k, v in times.items()]


def bench_head(args):
    """Our ASPP vs keras-hub's on identical feature tensors."""
    import tensorflow as tf

    from deeplab_dpc.layers import ASPP

    try:
        from keras_hub.src.models.deeplab_v3.deeplab_v3_layers import SpatialPyramidPooling
    except ImportError as e:
        return [{"what": f"keras-hub not importable ({e}); no head comparison", "side": "-"}]
    batch = 8 if not args.quick else 2
    features = tf.random.normal((batch, 33, 33, 320))  # a 513x513 crop at OS 16
    heads = {"ours (3x3 atrous convs)": ASPP(256, (6, 12, 18), separable=False,
                                             dropout_rate=0.0),
             "keras-hub SpatialPyramidPooling": SpatialPyramidPooling([6, 12, 18], 256),
             "ours (separable, as DeepLab v3+)": ASPP(256, (6, 12, 18), dropout_rate=0.0)}
    for layer in heads.values():
        layer(features)
    what = "ASPP 6/12/18 + image pooling on 33x33x320, batch %d, float32" % batch
    same = lambda out: out  # noqa: E731
    fwd = {k: _forward(v, same) for k, v in heads.items()}
    times = interleaved({k: (lambda f=f: f(features)) for k, f in fwd.items()}, args.steps)
    rows = [row(f"forward: {what}", k, v, batch) for k, v in times.items()]
    steps = {k: _train_step(v, same) for k, v in heads.items()}
    times = interleaved({k: (lambda f=f: f(features)) for k, f in steps.items()}, args.steps)
    return rows + [row(f"training step: {what}", k, v, batch) for k, v in times.items()]


def bench_model(args):
    """Whole models: our DeepLab vs keras-hub's DeepLabV3 with our backbone inside."""
    import keras
    import tensorflow as tf

    from deeplab_dpc.model import DeepLab

    # keras-hub upsamples the head's output 4x and concatenates it with the stride-4
    # features, so it needs a size divisible by 16 (DeepLab's are 16k + 1).
    size, batch = (320, 320) if not args.quick else (96, 96), 4 if not args.quick else 2
    ours = DeepLab(21, backbone="mobilenet_v2", head="aspp", atrous_rates=(6, 12, 18),
                   aspp_with_separable_conv=False, decoder_output_stride=4, dropout_rate=0.0)
    try:
        from keras_hub.models import DeepLabV3Backbone, DeepLabV3ImageSegmenter

        # keras-hub reads a level's stride from its key (P4: 16) and upsamples the head
        # by 2**level / 4 to the image: our output-stride-16 features are P4.
        encoder = ours.backbone
        encoder.pyramid_outputs = {"P2": encoder.output["low_level"],
                                   "P4": encoder.output["features"]}
        backbone = DeepLabV3Backbone(encoder, "P4", 4, [6, 12, 18], low_level_feature_key="P2",
                                     image_shape=(*size, 3))
        peer = DeepLabV3ImageSegmenter(backbone, 21)
    except Exception as e:  # noqa: BLE001 (any failure is the finding)
        return [{"what": f"keras-hub's DeepLabV3 could not take our backbone: "
                         f"{type(e).__name__}: {str(e)[:150]}", "side": "-"}]
    x = tf.random.uniform((batch, *size, 3), 0, 255)
    labels = tf.random.uniform((batch, *size), 0, 21, tf.int32)
    assert tuple(peer(x[:1]).shape[1:3]) == size, peer(x[:1]).shape  # logits at image size

    def upsampled_xent(out, y):
        logits = tf.image.resize(out, tf.shape(y)[1:3])
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            y, logits, from_logits=True))

    what = f"MobileNet-v2 + ASPP + decoder, {size[0]}x{size[1]}, batch {batch}, float32"
    steps = {"ours": _train_step(ours, lambda o: o, upsampled_xent),
             "keras-hub DeepLabV3": _train_step(peer, lambda o: o, upsampled_xent)}
    times = interleaved({k: (lambda f=f: f(x, labels)) for k, f in steps.items()}, args.steps)
    return [row(f"training step: {what}", k, v, batch) for k, v in times.items()]


def bench_serving(args):
    """SavedModel and TFLite latency per image (the quickstart's network)."""
    import tensorflow as tf

    from deeplab_dpc.data import synthetic
    from deeplab_dpc.export import saved_model, tflite
    from deeplab_dpc.model import DeepLab
    from deeplab_dpc.predict.serving import ServingModule

    model = DeepLab(8, backbone="mobilenet_v2", head="dpc", depth_multiplier=0.5)
    module = ServingModule(model, synthetic.INFO)
    out = tempfile.mkdtemp()
    loaded = tf.saved_model.load(saved_model.export_saved_model(module, os.path.join(out, "sm")))
    serve = loaded.signatures["serving_default"]
    rows = []
    sizes = [(513, 513), (1025, 2049)] if not args.quick else [(65, 97)]
    for size in sizes:
        image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
        interpreter = tf.lite.Interpreter(model_content=tflite.convert_to_tflite(
            module, size, quantize=(False,))[0], num_threads=os.cpu_count())
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]

        def run_tflite():
            interpreter.set_tensor(index, image)
            interpreter.invoke()

        times = interleaved({"SavedModel": lambda: serve(image=tf.constant(image))[
            "semantic"].numpy(), "TFLite float": run_tflite}, args.steps)
        what = f"one image {size[0]}x{size[1]}, MobileNet-v2 0.5 + DPC, CPU"
        rows += [row(f"latency: {what}", k, v, 1) for k, v in times.items()]
    return rows


def bench_precision(args):
    """Training step with mixed precision and XLA on and off (the quickstart model)."""
    import keras
    import tensorflow as tf

    from deeplab_dpc.model import DeepLab

    size, batch = (257, 513) if not args.quick else (65, 97), 8 if not args.quick else 2
    x = tf.random.uniform((batch, *size, 3), 0, 255)
    y = tf.random.uniform((batch, *size), 0, 8, tf.int32)
    steps = {}
    for policy, jit in (("float32", False), ("float32", True), ("mixed_bfloat16", False),
                        ("mixed_float16", False)):
        keras.mixed_precision.set_global_policy(policy)
        model = DeepLab(8, backbone="mobilenet_v2", head="dpc", depth_multiplier=0.5)
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
        if policy == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)

        @tf.function(jit_compile=jit)
        def step(model=model, optimizer=optimizer):
            with tf.GradientTape() as tape:
                logits = tf.cast(tf.image.resize(model(x, training=True), size), tf.float32)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                    y, logits, from_logits=True))
                scaled = optimizer.scale_loss(loss)
            optimizer.apply(tape.gradient(scaled, model.trainable_variables),
                            model.trainable_variables)
            return loss

        steps[f"{policy}, XLA {'on' if jit else 'off'}"] = lambda s=step: s().numpy()
    keras.mixed_precision.set_global_policy("float32")
    times = interleaved(steps, args.steps)
    what = f"training step, MobileNet-v2 0.5 + DPC, {size[0]}x{size[1]}, batch {batch}, CPU"
    rows = [row(what, k, v, batch) for k, v in times.items()]
    if not tf.config.list_physical_devices("GPU"):
        rows.append({"what": what.replace("CPU", "GPU"), "side": "not measured here (no GPU)"})
    return rows


def bench_pipeline(args):
    """Input pipeline images/s against what a training step consumes (quickstart)."""
    import tensorflow as tf

    from deeplab_dpc.data import input_pipeline, synthetic
    from deeplab_dpc.model import DeepLab

    data = synthetic.ensure_dataset(synthetic.default_dataset_dir())
    batch, crop = 8, (257, 513)
    ds = iter(input_pipeline.build_dataset(
        os.path.join(data, "train-*"), is_training=True, batch_size=batch, crop_size=crop,
        min_scale_factor=0.5, max_scale_factor=0.5, scale_factor_step_size=0, seed=0))
    model = DeepLab(8, backbone="mobilenet_v2", head="dpc", depth_multiplier=0.5)
    step = _train_step(model, lambda o: o)
    x = tf.random.uniform((batch, *crop, 3), 0, 255)
    what = f"quickstart: crops {crop[0]}x{crop[1]} of 513x1025 at scale 0.5, batch {batch}"
    # Alone, batches drawn back to back: what the pipeline can deliver.
    alone = interleaved({"input pipeline alone (per batch)": lambda: next(ds)["image"].numpy()},
                        args.steps)
    # Interleaved: what a step consumes, and how long it then waits for the next batch
    # (the pipeline prefetches while the step runs).
    fed = interleaved({"training step": lambda: step(x),
                       "wait for the next batch after a step": lambda: next(ds)["image"].numpy()},
                      args.steps)
    return [row(what, k, v, batch) for k, v in {**alone, **fed}.items()]


def machine():
    import keras
    import tensorflow as tf

    cpu = "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        found = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
        cpu = found.group(1) if found else cpu
    gpus = tf.config.list_physical_devices("GPU")
    return (f"{cpu}, {os.cpu_count()} cores{', ' + str(len(gpus)) + ' GPU' if gpus else ''}; "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}, Python "
            f"{platform.python_version()}")


def write_section(name, rows, header):
    lines = [f"<!-- section:{name} -->", f"### {name}", "", header, "",
             "| what | side | min ms | median ms | max ms | images/s (median) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "median" in r:
            lines.append(f"| {r['what']} | {r['side']} | {r['min']:.1f} | {r['median']:.1f} | "
                         f"{r['max']:.1f} | {r['images_per_s']:.1f} |")
        else:
            lines.append(f"| {r['what']} | {r['side']} | | | | |")
    block = "\n".join(lines + [f"<!-- end:{name} -->"])
    text = open(BENCHMARKS).read() if os.path.exists(BENCHMARKS) else (
        "# Benchmarks\n\nWritten by `python bench/peers.py`; each section says where and how "
        "it was measured. Medians over the timed steps after warm-up; the sides of a "
        "comparison alternate step by step in one process.\n")
    pattern = re.compile(rf"<!-- section:{name} -->.*?<!-- end:{name} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else (
        text.rstrip("\n") + "\n\n" + block + "\n")
    from deeplab_dpc import files

    files.write_atomically(BENCHMARKS, text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and no BENCHMARKS.md: a check that it runs")
    args = parser.parse_args()
    from deeplab_dpc.tf_import import import_tensorflow

    import_tensorflow()
    where = machine()
    for name in args.sections:
        rows = globals()[f"bench_{name}"](args)
        command = f"python bench/peers.py --sections {name} --steps {args.steps}"
        header = (f"{where}. `{command}`, {args.steps} timed steps, "
                  f"{datetime.date.today().isoformat()}.")
        print(f"\n## {name}\n{header}")
        for r in rows:
            print(f"  {r['what']} | {r['side']}" + (
                f" | median {r['median']:.1f} ms [{r['min']:.1f}, {r['max']:.1f}] | "
                f"{r['images_per_s']:.1f} img/s" if "median" in r else ""), flush=True)
        if not args.quick:
            write_section(name, rows, header)


if __name__ == "__main__":
    main()
