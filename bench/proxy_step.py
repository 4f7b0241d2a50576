"""The proxy task's costs and fidelity: step time, trial throughput, cache size, memory.

Usage: python bench/proxy_step.py [--workdir DIR] [--backbone_steps 150]
       [--tables step,throughput,size,fidelity,memory] [--quick]

First trains the quickstart configuration (experiments/quickstart.flags: MobileNet-v2
depth 0.5, output stride 16, published DPC, whole scenes at half size 257x513, batch
8) for --backbone_steps with `train_deeplab`, then caches its features of the
synthetic train and minival splits at image scale 0.5 (17x33x160 per image) with
`from_run` + `write_cache`, once as float16 and once as float32. Then prints:

1. Step time (ms, median of --timed_steps after --warmup_steps) at batch 8: the proxy
   step of the published cell with 256 and 64 filters, loss at "label" and "logits"
   resolution, against the end-to-end DeepLab step. Every row is timed the same way:
   a `loop.TrainStep` called directly on a fresh model, fed by its real input pipeline
   (the cache's, or the TFRecords'), one wall-clock time per call with the loss read
   back (so the step has finished). The backbone run's own per-step wall time (between
   `loop.train`'s log lines, log_steps=1) is shown as a cross-check. CPU rows always;
   GPU rows when TensorFlow sees a GPU.
2. Trials/hour of `workers.run_search` on a fresh study (5 branches, random cells) with
   1 and 2 workers at the demo's settings (64 filters, loss_resolution="logits", batch
   8, BN decay 0.9, lr 0.05, --trial_steps): finished trials / wall time of the call,
   which includes every trial's model building and scoring; one worker runs in this
   process (TensorFlow loaded), two are spawned processes whose start-up counts.
3. Cache bytes per image, float16 vs float32 (shard sizes / image count), and an
   analytic extrapolation to Cityscapes train (see `cache_size`).
4. The mIOU of one proxy trial (published cell, demo settings) on each cache.
5. Worker RSS (VmRSS) over --memory_trials short trials of random cells in this process.

--quick shrinks everything to check the script in a few minutes (numbers meaningless).
Times are wall clock: run it on an idle machine (the load average is printed).
"""
import argparse
import dataclasses
import glob
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from search_demo import proxy_settings  # noqa: E402 (the demo's settings, beside us)

# Cityscapes train at scale 1.0, taken as 1025x2049 (DeepLab's eval crop) -> 65x129
# features at output stride 16; the writer, which does not pad, would give 64x128 (-2%).
CITYSCAPES_IMAGES, CITYSCAPES_LABEL, CITYSCAPES_CELLS = 2975, (1025, 2049), (65, 129)
BACKBONE_CHANNELS = (("MobileNet-v2 depth 1.0", 320), ("Xception", 2048))


def rss_mb():
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def quickstart_config(logdir, dataset_dir, steps):
    """The quickstart TrainConfig, parsed by the train binary itself from its flag file,
    shortened to `steps` with a log line per step (for per-step wall times)."""
    import importlib

    from absl import flags

    importlib.import_module("deeplab_dpc.train.__main__")  # defines the binary's flags
    flags.FLAGS([sys.argv[0], f"--flagfile={ROOT}/experiments/quickstart.flags",
                 f"--train_logdir={logdir}"])
    config = importlib.import_module("deeplab_dpc.train.__main__").make_config(dataset_dir)
    return dataclasses.replace(config, training_number_of_steps=steps, log_steps=1,
                               save_interval_steps=steps)


def train_backbone(config):
    """Runs `train_deeplab`; returns the median wall time (ms) between its step lines
    after the first few (tracing), or None when the run was already complete."""
    from deeplab_dpc.train.deeplab import train_deeplab

    stamps = []

    def log(line):
        if line.startswith("step "):
            stamps.append(time.perf_counter())
            if len(stamps) % 25 == 1:
                print(f"  backbone {line}", flush=True)

    train_deeplab(config, log=log)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])][3:]
    return 1000 * statistics.median(gaps) if gaps else None


def subset_dataset(source, target, images):
    """A dataset dir holding only the first `images` records of train and minival."""
    import tensorflow as tf

    from deeplab_dpc import common

    if not os.path.exists(os.path.join(target, "done")):
        os.makedirs(target, exist_ok=True)
        for split in ("train", "minival"):
            paths = sorted(glob.glob(os.path.join(source, f"{split}-*")))
            path = os.path.join(target, common.SHARD_PATTERN.format(
                split=split, index=0, num_shards=1))
            with tf.io.TFRecordWriter(path) as writer:
                for record in tf.data.TFRecordDataset(paths).take(images):
                    writer.write(record.numpy())
        open(os.path.join(target, "done"), "w").close()
    return target


def write_caches(run, dataset_dir, info, workdir):
    """{dtype: cache dir} of the run's backbone at image scale 0.5 (as the binary does)."""
    from deeplab_dpc.cache_features import backbone
    from deeplab_dpc.cache_features.writer import CacheRequest, write_cache

    extractor, settings, run_config = backbone.from_run(run)
    settings["train"] = run_config.get("train", {})
    caches = {}
    for dtype in ("float16", "float32"):
        caches[dtype] = os.path.join(workdir, f"cache_{dtype}")
        request = CacheRequest(caches[dtype], ("train", "minival"), 0.5, cache_dtype=dtype)
        start = time.time()
        write_cache(extractor, request, settings, dataset_dir, info, progress=False,
                    log=lambda line: print(f"  {line}", flush=True))
        print(f"  {dtype} cache: {time.time() - start:.0f} s", flush=True)
    return caches


def time_steps(config, model_fn, dataset_fn, ignore_label, device, warmup, timed):
    """Median ms of `timed` calls of a `loop.TrainStep` after `warmup` calls."""
    import keras
    import tensorflow as tf

    from deeplab_dpc.common import IMAGE, LABEL
    from deeplab_dpc.train import loop

    strategy = tf.distribute.get_strategy()
    # One micro-batch per step: the loop's [N, b, ...] layout with N = 1. Built outside
    # the device scope: the input pipeline stays on the CPU, as in training.
    iterator = iter(strategy.distribute_datasets_from_function(lambda ctx: dataset_fn(
        ctx).map(lambda e: {IMAGE: e[IMAGE][None], LABEL: e[LABEL][None]})))
    with tf.device(device):
        keras.utils.set_random_seed(0)
        model = model_fn()
        step = tf.Variable(0, dtype=tf.int64, trainable=False)
        # A constant rate: the schedule costs nothing measurable, and is not what is timed.
        optimizer = keras.optimizers.SGD(config.base_learning_rate, momentum=config.momentum)
        optimizer.build(model.trainable_variables)
        train_step = loop.TrainStep(config, model, optimizer, step, strategy, ignore_label)
        times = []
        for _ in range(warmup + timed):
            start = time.perf_counter()
            xent, _, _ = train_step(iterator)
            float(xent)  # waits for the step
            times.append(time.perf_counter() - start)
    keras.backend.clear_session()
    return 1000 * statistics.median(times[warmup:])


def step_table(args, e2e_config, cache, devices, e2e_log_ms):
    from deeplab_dpc import spec
    from deeplab_dpc.data import datasets
    from deeplab_dpc.search import proxy
    from deeplab_dpc.train import deeplab

    cell, info = spec.published_cell(), datasets.get_dataset_info(
        e2e_config.dataset, e2e_config.dataset_dir)
    rows = []
    for device in devices:
        for filters in (256, 64):
            for resolution in ("label", "logits"):
                s = proxy.ProxySettings(batch_size=8, batch_norm_decay=0.9,
                                        base_learning_rate=0.05, dpc_filters=filters,
                                        loss_resolution=resolution)
                ms = time_steps(proxy._train_config(cache, s, 0, tempfile.gettempdir()),
                                lambda: proxy.build_proxy_model(cell, cache, s),
                                lambda ctx: proxy.proxy_dataset(cache, s, 0, ctx),
                                cache.ignore_label, device, args.warmup_steps, args.timed_steps)
                rows.append((device, f"proxy, {filters} filters, loss at {resolution}", ms))
                print(f"  {device} {rows[-1][1]}: {ms:.0f} ms", flush=True)
        ms = time_steps(e2e_config, lambda: deeplab.build_model(e2e_config, info.num_classes),
                        deeplab.default_dataset_fn(e2e_config, info), info.ignore_label,
                        device, args.warmup_steps, args.timed_steps)
        rows.append((device, "end-to-end DeepLab (quickstart)", ms))
    e2e = {d: ms for d, name, ms in rows if name.startswith("end-to-end")}
    shape = cache.feature_shape("train")
    print(f"\n## Step time, batch 8, features {'x'.join(map(str, shape))} (median of "
          f"{args.timed_steps} steps after {args.warmup_steps})\n")
    print("| device | step | ms/step | x faster than end-to-end |\n| --- | --- | --- | --- |")
    for device, name, ms in rows:
        print(f"| {device[1:4]} | {name} | {ms:.1f} | {e2e[device] / ms:.1f} |")
    default = "GPU" if len(devices) > 1 else "CPU"
    print(f"| {default} | end-to-end, backbone run's log lines (cross-check) | "
          + (f"{e2e_log_ms:.1f} | |" if e2e_log_ms else "n/a (run already complete) | |"))
    if len(devices) == 1:
        print("\nGPU: not measured")


def throughput_table(args, cache_dir, workdir, gpus):
    from deeplab_dpc.search import sampler, workers

    rows = []
    for n in (1, 2):
        if gpus and n > gpus:  # run_search gives each worker its own GPU
            rows.append((n, None, None, None))
            continue
        study = os.path.join(tempfile.mkdtemp(prefix="study_", dir=workdir), "study.sqlite")
        config = workers.SearchConfig(study, cache_dir, args.trials,
                                      proxy_settings(args.trial_steps),
                                      sampler.SamplerSettings(num_branches=5), num_workers=n)
        start = time.time()
        counts = workers.run_search(config, log=lambda line: print(f"  {line}", flush=True))
        wall = time.time() - start
        finished = sum(counts[s] for s in ("done", "stopped", "failed"))
        rows.append((n, finished, wall, finished / wall * 3600))
    device = "1 GPU" if gpus else f"{os.cpu_count()} CPU cores"
    print(f"\n## Trial throughput, demo settings, {args.trial_steps} steps/trial ({device})\n")
    print("| workers | trials | wall s | trials/hour |\n| --- | --- | --- | --- |")
    for n, finished, wall, rate in rows:
        print(f"| {n} | " + (f"{finished} | {wall:.0f} | {rate:.0f} |" if finished is not None
                             else "skipped: one worker per GPU | | |"))


def cache_size(caches):
    """Bytes per image from the shards; Cityscapes extrapolated as feature values x
    bytes per value + this cache's per-image overhead, its label PNG scaled by pixel
    count (assumed: Cityscapes labels compress like the synthetic ones)."""
    import numpy as np
    import tensorflow as tf

    from deeplab_dpc.cache_features import format as fmt

    per = {}
    print("\n## Cache size (train split)\n")
    print("| dtype | images | bytes/image | feature values | other (label PNG) |\n"
          "| --- | --- | --- | --- | --- |")
    for dtype, path in caches.items():
        cache = fmt.FeatureCache(path)
        shards = cache.shard_paths("train")
        count = cache.count("train")
        total = sum(os.path.getsize(p) for p in shards)
        values = int(np.prod(cache.feature_shape("train"))) * np.dtype(dtype).itemsize
        png = statistics.mean(
            len(tf.train.Example.FromString(r.numpy()).features.feature[fmt.LABEL_KEY]
                .bytes_list.value[0]) for r in tf.data.TFRecordDataset(shards))
        per[dtype] = (total / count - values, png, cache.label_shape("train"))
        print(f"| {dtype} | {count} | {total / count:,.0f} | {values:,} | "
              f"{total / count - values:,.0f} ({png:,.0f}) |")
    other, png, label = per["float16"]
    ratio = CITYSCAPES_LABEL[0] * CITYSCAPES_LABEL[1] / (label[0] * label[1])
    overhead = other - png + png * ratio
    cells = CITYSCAPES_CELLS[0] * CITYSCAPES_CELLS[1]
    print(f"\nCityscapes train ({CITYSCAPES_IMAGES} images, {CITYSCAPES_LABEL[0]}x"
          f"{CITYSCAPES_LABEL[1]} -> {CITYSCAPES_CELLS[0]}x{CITYSCAPES_CELLS[1]} features): "
          f"feature values x bytes + {overhead / 1e3:.0f} kB/image overhead (this cache's "
          f"label PNG scaled by {ratio:.1f}x pixels, assuming Cityscapes labels compress "
          "alike; the rest of the record as measured)\n")
    print("| backbone | channels | dtype | MB/image | GB total |\n| --- | --- | --- | --- | --- |")
    for name, channels in BACKBONE_CHANNELS:
        for dtype, size in (("float16", 2), ("float32", 4)):
            image = cells * channels * size + overhead
            print(f"| {name} | {channels} | {dtype} | {image / 1e6:.2f} | "
                  f"{image * CITYSCAPES_IMAGES / 1e9:.1f} |")


def fidelity_table(args, caches):
    from deeplab_dpc import spec
    from deeplab_dpc.search import proxy

    scores = {dtype: proxy.run_trial(spec.published_cell(), path,
                                     proxy_settings(args.trial_steps)).score
              for dtype, path in caches.items()}
    print(f"\n## One proxy trial, published cell, demo settings, {args.trial_steps} steps\n")
    print("| cache | mIOU % |\n| --- | --- |")
    for dtype, miou in scores.items():
        print(f"| {dtype} | {100 * miou:.2f} |")
    print(f"| float16 - float32 | {100 * (scores['float16'] - scores['float32']):+.2f} |")


def memory_table(args, cache_dir):
    from deeplab_dpc import spec
    from deeplab_dpc.search import proxy

    settings = proxy_settings(args.memory_steps)
    rss = []
    for i in range(args.memory_trials):
        proxy.run_trial(spec.sample(5, i), cache_dir, settings)
        rss.append(rss_mb())
    n = len(rss)
    print(f"\n## Worker RSS over {n} trials of {args.memory_steps} steps (random cells, "
          "one process)\n")
    print("| after trial | RSS MB |\n| --- | --- |")
    for k in sorted({k for k in (1, 10, 25, 50) if k <= n} | {n}):
        print(f"| {k} | {rss[k - 1]:.0f} |")
    first = 10 if n > 10 else 1
    print(f"| growth {first} -> {n} | {rss[-1] - rss[first - 1]:+.0f} "
          f"({(rss[-1] - rss[first - 1]) / max(n - first, 1):+.1f} per trial) |")


TABLES = ("step", "throughput", "size", "fidelity", "memory")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="backbone run, caches, studies (default: a "
                        "temporary directory, removed at the end); rerunning reuses them")
    parser.add_argument("--backbone_steps", type=int, default=150)
    parser.add_argument("--images", type=int, help="cache only the first N images of each "
                        "split (default: whole splits)")
    parser.add_argument("--warmup_steps", type=int, default=5)
    parser.add_argument("--timed_steps", type=int, default=20)
    parser.add_argument("--trial_steps", type=int, default=400)
    parser.add_argument("--trials", type=int, default=4, help="trials per worker count")
    parser.add_argument("--memory_trials", type=int, default=50)
    parser.add_argument("--memory_steps", type=int, default=20)
    parser.add_argument("--tables", default=",".join(TABLES),
                        help=f"which tables, of {','.join(TABLES)}")
    parser.add_argument("--quick", action="store_true", help="tiny everything, to check "
                        "the script")
    args = parser.parse_args()
    tables = set(args.tables.split(","))
    if tables - set(TABLES):
        parser.error(f"--tables: unknown {sorted(tables - set(TABLES))}")
    if args.quick:
        args.backbone_steps, args.images, args.warmup_steps, args.timed_steps = 20, 16, 2, 5
        args.trial_steps, args.trials, args.memory_trials = 20, 2, 5
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from deeplab_dpc.tf_import import import_tensorflow

    tf = import_tensorflow()
    from deeplab_dpc.cache_features.format import FeatureCache
    from deeplab_dpc.data import datasets, synthetic

    workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="proxy_step_"))
    gpus = len(tf.config.list_physical_devices("GPU"))
    devices = ["/CPU:0"] + (["/GPU:0"] if gpus else [])
    start = time.time()
    print(f"workdir {workdir}, {os.cpu_count()} cores, {gpus} GPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)

    dataset_dir = synthetic.ensure_dataset(synthetic.default_dataset_dir())
    info = datasets.get_dataset_info("synthetic", dataset_dir)
    config = quickstart_config(os.path.join(workdir, "backbone"), dataset_dir,
                               args.backbone_steps)
    print(f"training the quickstart backbone for {args.backbone_steps} steps", flush=True)
    e2e_log_ms = train_backbone(config)
    cache_source = dataset_dir if not args.images else subset_dataset(
        dataset_dir, os.path.join(workdir, f"dataset_{args.images}"), args.images)
    print("caching features", flush=True)
    caches = write_caches(config.train_logdir, cache_source, info, workdir)

    if "step" in tables:
        step_table(args, config, FeatureCache(caches["float16"]), devices, e2e_log_ms)
    if "throughput" in tables:
        throughput_table(args, caches["float16"], workdir, gpus)
    if "size" in tables:
        cache_size(caches)
    if "fidelity" in tables:
        fidelity_table(args, caches)
    if "memory" in tables:
        memory_table(args, caches["float16"])
    print(f"\ntotal {(time.time() - start) / 60:.1f} min, load average "
          f"{os.getloadavg()[0]:.1f}")
    if not args.workdir:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
