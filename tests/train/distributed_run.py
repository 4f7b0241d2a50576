"""One tiny training run on a fixed global batch, under a chosen strategy.

Run as a script for the strategies that need a fresh process:
    python -m tests.train.distributed_run mirrored OUT.npz LOGDIR
    TF_CONFIG=... python -m tests.train.distributed_run worker OUT.npz LOGDIR
(`mirrored` splits the CPU into two logical devices, which must happen before
TensorFlow initialises them; `worker` joins a MultiWorkerMirroredStrategy.)
The same functions run the single-device reference in the test process.

Every step's global batch is fixed: replica 0's half has 5% ignore pixels,
replica 1's half 80%, so a per-replica mean would weigh pixels differently
from one device. Dropout is off (masks depend on the split); BN trains and is
synchronized across replicas.
"""
import sys

import numpy as np

from tests.train import toy_data

STEPS, GLOBAL_BATCH, SIZE = 3, 4, 33


def global_batches():
    """images [STEPS, B, S, S, 3] float32, labels [STEPS, B, S, S, 1] int32."""
    rng = np.random.default_rng(7)
    images, labels = [], []
    for _ in range(STEPS * GLOBAL_BATCH):
        image, label = toy_data.toy_scene(rng, SIZE, SIZE)
        images.append(image.astype(np.float32))
        labels.append(label[..., None].astype(np.int32))
    images = np.stack(images).reshape(STEPS, GLOBAL_BATCH, SIZE, SIZE, 3)
    labels = np.stack(labels).reshape(STEPS, GLOBAL_BATCH, SIZE, SIZE, 1)
    second_half = labels[:, GLOBAL_BATCH // 2:]
    second_half[rng.random(second_half.shape) < 0.8] = toy_data.IGNORE
    return images, labels


def dataset_fn(input_context):
    """Per-replica batches: each input pipeline yields, step by step, the slices of
    the global batch that belong to its replicas, in replica order."""
    import tensorflow as tf

    images, labels = global_batches()
    replicas = input_context.num_replicas_in_sync
    local = replicas // input_context.num_input_pipelines
    b = GLOBAL_BATCH // replicas
    first = input_context.input_pipeline_id * local
    take = [(s, slice(r * b, (r + 1) * b)) for s in range(STEPS)
            for r in range(first, first + local)]
    return tf.data.Dataset.from_tensor_slices({
        "image": np.stack([images[s, sl] for s, sl in take]),
        "label": np.stack([labels[s, sl] for s, sl in take])}).repeat()


def config(logdir, dataset_dir):
    return toy_data.tiny_config(
        logdir, dataset_dir, model=dict(dropout_rate=0.0), train_batch_size=GLOBAL_BATCH,
        sync_batch_norm=True, training_number_of_steps=STEPS, save_interval_steps=STEPS)


def run(strategy, logdir, dataset_dir):
    """Trains; returns {"losses": [...], "w0".. : every model weight, BN statistics included}."""
    import keras

    from deeplab_dpc.train import deeplab

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        result = deeplab.train_deeplab(config(logdir, dataset_dir), strategy, dataset_fn,
                            log=lambda _: None)
    finally:
        keras.config.set_dtype_policy(previous)
    out = {f"w{i}": w.numpy() for i, w in enumerate(result.model.weights)}
    out["losses"] = np.array(result.losses)
    return out


def main(mode, out_path, logdir, dataset_dir):
    import tensorflow as tf

    from deeplab_dpc.train import distribute

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = distribute.make_strategy("mirrored", num_gpus=0)
        assert strategy.num_replicas_in_sync == 2
    else:  # bounded collectives: a lost peer fails the run instead of hanging it
        strategy = distribute.make_strategy(
            "multi_worker_mirrored", communication_options=tf.distribute.experimental.
            CommunicationOptions(timeout_seconds=120))
    np.savez(out_path, **run(strategy, logdir, dataset_dir))


if __name__ == "__main__":
    main(*sys.argv[1:])
