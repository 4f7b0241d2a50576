"""The reference DeepLab training loss, split into a sum and a normalizer.

The reference loss is softmax cross-entropy on logits upsampled (bilinear,
align corners) to the label size, ignore pixels weighing 0, summed and divided
by the number of counted pixels. With hard pixel mining only the top-k pixel
losses of the batch are summed.

Under tf.distribute each replica (and each accumulated micro-batch) sees part
of the batch. Dividing each part by its own count and averaging would weigh a
pixel of a mostly-ignored crop more than one of a full crop, so the loop sums
`pixel_loss_sum` locally and divides by the `normalizer` summed over every
replica and micro-batch: any split of a batch then gives the same update.
The normalizer depends on the labels only, so it is known before the forward
pass and the gradient is computed in one pass.
"""
import tensorflow as tf

from deeplab_dpc.layers.ops import resize_bilinear


def top_k_ratio(step, top_k_percent_pixels=1.0, hard_example_mining_step=0):
    """The fraction of pixels kept at `step`: as the reference, it ramps linearly
    from 1.0 to `top_k_percent_pixels` over `hard_example_mining_step` steps."""
    if top_k_percent_pixels >= 1.0:
        return tf.constant(1.0)
    if not hard_example_mining_step:
        return tf.constant(float(top_k_percent_pixels))
    ramp = tf.minimum(1.0, tf.cast(step, tf.float32) / float(hard_example_mining_step))
    return 1.0 - ramp * (1.0 - top_k_percent_pixels)


def _labels_2d(labels):
    """[B, H, W, 1] or [B, H, W] labels -> [B, H, W] int32."""
    labels = tf.cast(labels, tf.int32)
    return labels[..., 0] if labels.shape.rank == 4 else labels


def pixel_losses(logits, labels, ignore_label):
    """Per-pixel cross-entropy [B, H, W] at the label size, 0 at ignore pixels.

    16-bit logits (mixed precision) are cast to float32 first; float64 stays.
    """
    labels = _labels_2d(labels)
    if logits.dtype in (tf.float16, tf.bfloat16):
        logits = tf.cast(logits, tf.float32)
    logits = resize_bilinear(logits, tf.shape(labels)[1:3])
    valid = tf.not_equal(labels, ignore_label)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(valid, labels, 0), logits=logits)
    return tf.where(valid, losses, 0.0)


def _top_k(labels, ratio):
    num_pixels = tf.size(labels)
    return tf.maximum(tf.cast(ratio * tf.cast(num_pixels, tf.float32), tf.int32), 1)


def pixel_loss_sum(logits, labels, ignore_label, ratio=1.0):
    """The summed loss of one (local) batch: all pixels, or its top `ratio` of them.

    As the reference, the top-k selection runs over every pixel of the batch
    (ignore pixels have loss 0 and come last).
    """
    losses = tf.reshape(pixel_losses(logits, labels, ignore_label), [-1])
    if isinstance(ratio, float) and ratio >= 1.0:
        return tf.reduce_sum(losses)
    return tf.reduce_sum(tf.math.top_k(losses, _top_k(labels, ratio), sorted=False).values)


def normalizer(labels, ignore_label, ratio=1.0):
    """What the summed loss of this batch is divided by: the number of valid pixels,
    or with top-k at most k of them. (The reference counts the selected pixels whose
    loss is non-zero; that differs only when a valid pixel's loss underflows to 0.)"""
    valid = tf.reduce_sum(tf.cast(tf.not_equal(_labels_2d(labels), ignore_label), tf.float32))
    if isinstance(ratio, float) and ratio >= 1.0:
        return valid
    return tf.minimum(valid, tf.cast(_top_k(labels, ratio), tf.float32))


def softmax_cross_entropy(logits, labels, ignore_label, ratio=1.0):
    """The reference loss of one whole batch (sum / normalizer; 0 if nothing counts)."""
    total = pixel_loss_sum(logits, labels, ignore_label, ratio)
    return tf.math.divide_no_nan(total, tf.cast(normalizer(labels, ignore_label, ratio),
                                                total.dtype))
