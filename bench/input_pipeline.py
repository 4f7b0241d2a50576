"""Images/s of the training input pipeline (769x769 crops of 1024x2048 PNGs).

Usage: python bench/input_pipeline.py [--cores 1 2] [--batches 10]

Writes a few synthetic Cityscapes-sized records to a temp dir, then measures each
core count in its own process: CPU affinity and TF's thread pools must be set
before TensorFlow starts, and cannot be changed after.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

NUM_RECORDS = 6
BATCH_SIZE = 2


def write_records(directory):
    """Cityscapes-like PNGs: smooth gradients with noisy stripes (~1-2 MB, like real ones)."""
    import numpy as np
    import tensorflow as tf

    from deeplab_dpc import common

    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:1024, :2048]
    for i in range(NUM_RECORDS):
        image = np.stack([cols // 8, rows // 4, (rows + cols + 40 * i) // 12], -1) % 256
        image[::3] += rng.integers(0, 8, image[::3].shape)
        label = ((rows // 128 + cols // 256 + i) % 19)[..., None]
        bytes_ = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
        feature = {
            common.IMAGE_ENCODED: bytes_(tf.io.encode_png(image.astype(np.uint8)).numpy()),
            common.LABEL_ENCODED: bytes_(tf.io.encode_png(label.astype(np.uint8)).numpy()),
            common.IMAGE_FILENAME: bytes_(f"synthetic_{i}".encode()),
        }
        path = os.path.join(directory, common.SHARD_PATTERN.format(
            split="train", index=i, num_shards=NUM_RECORDS))
        with tf.io.TFRecordWriter(path) as writer:
            writer.write(tf.train.Example(
                features=tf.train.Features(feature=feature)).SerializeToString())
    return os.path.getsize(path)


def measure(directory, cores, batches):
    """Runs in a fresh process: pins it to `cores` CPUs, then times the pipeline."""
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(cores)
    from deeplab_dpc.data import input_pipeline

    ds = input_pipeline.build_dataset(
        os.path.join(directory, "train-*"), is_training=True, batch_size=BATCH_SIZE,
        crop_size=(769, 769), seed=0)
    options = tf.data.Options()
    options.threading.private_threadpool_size = cores
    it = iter(ds.with_options(options))
    next(it)  # warm-up: tracing, first decodes, buffers filling
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * BATCH_SIZE / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--measure", nargs=2, metavar=("DIR", "CORES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(measure(args.measure[0], int(args.measure[1]), args.batches))
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as directory:
        size = write_records(directory)
        print(f"{NUM_RECORDS} records of 1024x2048 PNG (~{size / 1e6:.1f} MB each), "
              f"crop 769x769, batch {BATCH_SIZE}, {args.batches} timed batches")
        print(f"{'cores':>5} | {'images/s':>8} | {'ms/image':>8}")
        for cores in args.cores:
            out = subprocess.run(
                [sys.executable, __file__, "--measure", directory, str(cores),
                 "--batches", str(args.batches)],
                check=True, capture_output=True, text=True).stdout
            rate = float(out.split()[-1])
            print(f"{cores:>5} | {rate:8.2f} | {1000 / rate:8.0f}")


if __name__ == "__main__":
    main()
