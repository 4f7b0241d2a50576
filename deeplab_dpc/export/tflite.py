"""TFLite export of MobileNet-v2 models: float and dynamic-range quantized."""
import os

import tensorflow as tf

from deeplab_dpc import files
from deeplab_dpc.errors import InputError

TFLITE_BACKBONES = ("mobilenet_v2",)  # the mobile backbone; Xception is for servers
TFLITE_FILES = {False: "deeplab_float.tflite", True: "deeplab_dynamic_range_quant.tflite"}


def check_tflite(model_config, crop_size):
    """TFLite export needs a MobileNet-v2 model and a fixed input size."""
    backbone = model_config.get("backbone")
    if backbone not in TFLITE_BACKBONES:
        raise InputError(f"TFLite export supports {', '.join(TFLITE_BACKBONES)} models only; "
                         f"this checkpoint's backbone is {backbone}")
    if not crop_size:
        raise InputError("TFLite export needs crop_size=height,width (TFLite models have a "
                         "fixed input size)", param="crop_size")


def convert_to_tflite(module, crop_size, quantize=(False, True)):
    """TFLite models (bytes), one per `quantize` entry, of `module.predict` for ONE
    uint8 image [h, w, 3].

    Input 0 is the image; output 0 `semantic` (int32 [h, w]), output 1
    `probabilities` (float32 [h, w, C]): the SavedModel's outputs at one size.
    Quantizing is dynamic-range quantization: int8 weights, float activations,
    no calibration data needed.
    """
    check_tflite(module.model.get_config(), crop_size)
    spec = tf.TensorSpec([crop_size[0], crop_size[1], 3], tf.uint8, name="image")

    def predict(image):
        out = module.predict(image)
        return out["semantic"], out["probabilities"]

    function = tf.function(predict).get_concrete_function(spec)  # traced once for all
    models = []
    for q in quantize:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
        # The default route through a temporary SavedModel leaves Keras 3 weights as
        # TFLite resource variables that nothing initialises (NaN outputs, TF 2.21);
        # freezing them into constants works, at the price of the signature table
        # (hence the documented input and output order).
        converter.experimental_lower_to_saved_model = False
        if q:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        models.append(converter.convert())
    return models


def export_tflite(module, crop_size, output_dir):
    """Writes the float and the dynamic-range quantized TFLite models; returns their paths."""
    paths = []
    for quantize, model in zip((False, True), convert_to_tflite(module, crop_size)):
        paths.append(files.write_atomically(os.path.join(output_dir, TFLITE_FILES[quantize]),
                                            model))
    return paths
