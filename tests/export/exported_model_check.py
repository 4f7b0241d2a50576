"""Scores an export the way a user without deeplab_dpc would: run as a script.

    python tests/export/exported_model_check.py EXPORT_DIR 'DATA/val-*' NUM_CLASSES IGNORE_LABEL

Reads the split's TFRecords with TensorFlow alone, predicts with the SavedModel
(plain `tf.saved_model.load`; each image alone [H, W, 3] and as a batch of one
[1, H, W, 3]) and, when present, with the float and quantized TFLite models,
and prints one JSON line: each model's mIOU over one confusion matrix, and the
share of pixels where each other model agrees with the unbatched SavedModel.
Imports neither deeplab_dpc nor the tests package, and says so.
"""
import glob
import json
import os
import sys

import numpy as np
import tensorflow as tf


def examples(pattern):
    features = {"image/encoded": tf.io.FixedLenFeature((), tf.string),
                "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string)}
    for record in tf.data.TFRecordDataset(sorted(glob.glob(pattern))):
        ex = tf.io.parse_single_example(record, features)
        yield (tf.io.decode_image(ex["image/encoded"], channels=3).numpy(),
               tf.io.decode_png(ex["image/segmentation/class/encoded"]).numpy()[..., 0])


def miou(matrix):
    tp = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - tp
    return float(np.mean(tp[union > 0] / union[union > 0]))


def tflite_predict(path):
    try:  # TFLite's interpreter now ships as LiteRT; tf.lite's copy is deprecated
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    image_index = interpreter.get_input_details()[0]["index"]
    semantic_index = interpreter.get_output_details()[0]["index"]

    def predict(image):
        interpreter.set_tensor(image_index, image)
        interpreter.invoke()
        return interpreter.get_tensor(semantic_index)
    return predict


def main(export_dir, pattern, num_classes, ignore_label):
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    predictors = {
        "saved_model": lambda image: serve(image=tf.constant(image))["semantic"].numpy(),
        # [1, H, W, 3] -> [1, H, W], as the reference's clients call its export
        "saved_model_batched":
            lambda image: serve(image=tf.constant(image[None]))["semantic"].numpy()[0],
    }
    for name in ("float", "dynamic_range_quant"):
        path = os.path.join(export_dir, f"deeplab_{name}.tflite")
        if os.path.exists(path):
            predictors[f"tflite_{name}"] = tflite_predict(path)
    matrices = {k: np.zeros((num_classes, num_classes), np.int64) for k in predictors}
    agree = {k: 0 for k in predictors}
    pixels = 0
    for image, label in examples(pattern):
        reference = None
        for name, predict in predictors.items():
            prediction = predict(image)
            reference = prediction if reference is None else reference
            agree[name] += int((prediction == reference).sum())
            keep = label != ignore_label
            np.add.at(matrices[name], (label[keep], prediction[keep]), 1)
        pixels += label.size
    print(json.dumps({
        "deeplab_dpc_imported": "deeplab_dpc" in sys.modules or "tests" in sys.modules,
        "class_names": [n.decode() for n in loaded.class_names.numpy()],
        "model_config": json.loads(loaded.model_config_json.numpy()),
        "miou": {k: miou(m) for k, m in matrices.items()},
        "agreement_with_saved_model": {k: v / pixels for k, v in agree.items()},
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
