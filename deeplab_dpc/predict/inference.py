"""Prediction as the reference DeepLab does it.

`predict_probabilities` is the one prediction path: eval, vis, predict, the
SavedModel and TFLite all call it, so an export cannot drift from what eval
measured (deeplab2#110). Per scale the image is resized bilinearly (align
corners) to the reference's `(size - 1) * scale + 1`, the logits are brought
back to the image size, softmaxed, and the probabilities are averaged over
scales and left-right flips.
"""
import tensorflow as tf

from deeplab_dpc.errors import InputError
from deeplab_dpc.layers.ops import resize_bilinear


def check_scales(scales):
    """Scales as a tuple of positive floats; InputError otherwise."""
    scales = tuple(float(s) for s in scales)
    if not scales or min(scales) <= 0:
        raise InputError(f"scales must be positive numbers, got {list(scales)}")
    return scales


def scaled_size(size, scale):
    """The reference's `scale_dimension`: (size - 1) * scale + 1, truncated, so that the
    corner pixels of the scaled image stay on those of the original."""
    return tf.maximum(tf.cast((tf.cast(size, tf.float32) - 1.0) * scale + 1.0, tf.int32), 1)


def predict_probabilities(model, images, scales=(1.0,), add_flipped_images=False):
    """Class probabilities [B, H, W, C] of float RGB images [B, H, W, 3] in [0, 255].

    Works for any H, W: the model is fully convolutional and its logits are
    resized (align corners) to H x W before the softmax.
    """
    scales = check_scales(scales)
    size = tf.shape(images)[1:3]
    total = 0.0
    for scale in scales:
        x = images if scale == 1.0 else resize_bilinear(images, scaled_size(size, scale))
        if add_flipped_images:  # one model call on [images; flipped images]
            x = tf.concat([x, tf.reverse(x, [2])], 0)
        logits = resize_bilinear(tf.cast(model(x, training=False), tf.float32), size)
        probabilities = tf.nn.softmax(logits)
        if add_flipped_images:
            # Align-corners resizing commutes with the flip: undo it after resizing.
            plain, flipped = tf.split(probabilities, 2, axis=0)
            probabilities = plain + tf.reverse(flipped, [2])
        total += probabilities
    return total / (len(scales) * (2 if add_flipped_images else 1))


def predict_labels(model, images, scales=(1.0,), add_flipped_images=False):
    """Argmax of `predict_probabilities`: int32 [B, H, W]."""
    probabilities = predict_probabilities(model, images, scales, add_flipped_images)
    return tf.argmax(probabilities, -1, output_type=tf.int32)
