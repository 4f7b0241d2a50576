"""The tf.distribute strategy for a training run, and who the chief is."""
import tensorflow as tf

from deeplab_dpc.errors import InputError
from deeplab_dpc.train.config import STRATEGIES


def make_strategy(name="default", num_gpus=None, tpu=None, communication_options=None):
    """A strategy by name.

    mirrored: `num_gpus` None = every visible GPU (TF's default); N > 0 = the
    first N GPUs; 0 = every logical CPU device (how the tests fake replicas).
    multi_worker_mirrored: the cluster comes from TF_CONFIG; must be created
    before TensorFlow runs any op. tpu: `tpu` is the TPU name or grpc address.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if num_gpus is None:
            return tf.distribute.MirroredStrategy()
        kind = "GPU" if num_gpus else "CPU"
        devices = [d.name for d in tf.config.list_logical_devices(kind)]
        if num_gpus:
            if len(devices) < num_gpus:
                raise InputError(f"num_gpus={num_gpus} but {len(devices)} GPU(s) are visible",
                                 param="num_gpus")
            devices = devices[:num_gpus]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=communication_options)
    if name == "tpu":  # untested here: the documented resolver + TPUStrategy lines.
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise InputError(f"distribution_strategy {name!r}: expected one of {', '.join(STRATEGIES)}",
                     param="distribution_strategy")


def task(strategy):
    """(task_type, task_id) of this process; (None, 0) outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None, 0
    return resolver.task_type, resolver.task_id or 0


def is_chief(strategy):
    """The chief writes checkpoints, summaries and the run config; every other
    worker only takes part in the collective ops."""
    task_type, task_id = task(strategy)
    if task_type is None:
        return True
    if "chief" in strategy.cluster_resolver.cluster_spec().as_dict():
        return task_type == "chief"
    return task_type == "worker" and task_id == 0
