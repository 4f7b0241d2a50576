"""What users segment their images with: the exported module and `Segmenter`.

`ServingModule` is what a SavedModel holds (the model, its prediction settings
and its metadata as variables); `Segmenter` wraps one built from a checkpoint
or loaded from a SavedModel behind the same `predict`.
"""
import json
import types

import numpy as np
import tensorflow as tf

from deeplab_dpc.errors import InputError
from deeplab_dpc.predict.inference import check_scales, predict_probabilities

IMAGE_ERROR = ("image must be a uint8 tensor of shape [height, width, 3] "
               "or [batch, height, width, 3]")
EMPTY_ERROR = ("image is empty: it needs at least one row and one column "
               "(and a batch at least one image)")


class ServingModule(tf.Module):
    """The exported object: `serve(image)` and the metadata to use its answer.

    `serve` takes a uint8 image [H, W, 3] of any size and returns
    {"semantic": int32 [H, W], "probabilities": float32 [H, W, C]}, or a batch
    [N, H, W, 3] (one size for all) and returns [N, H, W] and [N, H, W, C]:
    unbatched because users' images differ in size, batched because the
    reference's clients send [1, H, W, 3]. Either way the images go through the
    model as one batch, on the same code path, so a batched image gets the
    answer it gets alone. The input spec leaves the rank open so that a wrong
    rank reaches the in-graph check and fails with `IMAGE_ERROR` (a SavedModel
    signature does not check shapes itself); the spec's dtype refuses non-uint8
    input. The outputs' rank follows the input's.

    The model config (cell included), class names and colormap are string and
    integer variables, so a plain `tf.saved_model.load` reads them without this
    package: `loaded.model_config_json.numpy()`, or the `metadata` signature.
    """

    def __init__(self, model, dataset_info, scales=(1.0,), add_flipped_images=False):
        super().__init__(name="deeplab")
        # The Keras model stays out of the SavedModel's object graph (saving would walk
        # its ~40k trackable children); its variables are all the functions need.
        self._keras = types.SimpleNamespace(model=model)
        self.model_variables = list(model.variables)
        self.scales = check_scales(scales)
        self.add_flipped_images = bool(add_flipped_images)
        config = model.get_config()
        names = list(dataset_info.class_names) or [
            f"class_{i}" for i in range(dataset_info.num_classes)]

        def constant(value):
            return tf.Variable(value, trainable=False)

        self.model_config_json = constant(json.dumps(config))
        self.cell_spec_json = constant(json.dumps(config["cell"]) if config.get("cell") else "")
        self.dataset_info_json = constant(json.dumps(dataset_info.to_dict()))
        self.class_names = constant(names)
        self.colormap = constant(  # int32: uint8 variables lack GPU kernels
            dataset_info.colormap_array()[:dataset_info.num_classes].astype(np.int32))
        self.inference_scales = constant(list(self.scales))
        self.flipped_images_added = constant(self.add_flipped_images)

    @property
    def model(self):
        return self._keras.model

    def predict_batch(self, images):
        """The predictions for uint8 images [N, H, W, 3] (traceable at any size)."""
        probabilities = predict_probabilities(
            self.model, tf.cast(images, tf.float32), self.scales, self.add_flipped_images)
        return {"semantic": tf.argmax(probabilities, -1, output_type=tf.int32),
                "probabilities": probabilities}

    def predict(self, image):
        """The prediction for one uint8 [H, W, 3] image: a batch of one (TFLite's path)."""
        return {k: v[0] for k, v in self.predict_batch(image[tf.newaxis]).items()}

    @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8, name="image")])
    def serve(self, image):
        rank = tf.debugging.assert_rank_in(image, [3, 4], message=IMAGE_ERROR)
        with tf.control_dependencies([rank]):
            channels = tf.debugging.assert_equal(tf.shape(image)[-1], 3, message=IMAGE_ERROR)
            # [H, W, 3] is a batch of one: [1, H, W, 3].
            batch_shape = tf.concat([tf.ones([4 - tf.rank(image)], tf.int32), tf.shape(image)], 0)
        with tf.control_dependencies([channels]):
            # An empty image would otherwise fail deep inside batch norm.
            nonempty = tf.debugging.assert_positive(batch_shape[:3], message=EMPTY_ERROR)
        with tf.control_dependencies([nonempty]):
            images = tf.reshape(image, batch_shape)
        # Static only: `tf.ensure_shape` could fail first, with a message about shapes.
        images.set_shape([None, None, None, 3])
        out = self.predict_batch(images)
        # Back to the input's rank: [H, W(, C)] for an image, [N, H, W(, C)] for a batch.
        pixels = tf.shape(image)[:-1]
        return {"semantic": tf.reshape(out["semantic"], pixels),
                "probabilities": tf.reshape(out["probabilities"], tf.concat(
                    [pixels, tf.shape(out["probabilities"])[-1:]], 0))}

    @tf.function(input_signature=[])
    def metadata(self):
        return {"model_config_json": tf.identity(self.model_config_json),
                "cell_spec_json": tf.identity(self.cell_spec_json),
                "dataset_info_json": tf.identity(self.dataset_info_json),
                "class_names": tf.identity(self.class_names),
                "colormap": tf.identity(self.colormap),
                "inference_scales": tf.identity(self.inference_scales),
                "add_flipped_images": tf.identity(self.flipped_images_added)}


class Segmenter:
    """Segments users' images: uint8 [H, W, 3] of any size -> class ids [H, W]
    (or a batch [N, H, W, 3] of one size -> [N, H, W]).

        segmenter = Segmenter.from_checkpoint("runs/dpc")      # or from_saved_model
        labels = segmenter.predict(image)
        labels, probabilities = segmenter.predict(image, with_probabilities=True)
        segmenter.class_names[labels[0, 0]], segmenter.colorize(labels)
    """

    def __init__(self, module):
        """`module`: a `ServingModule`, or the object `tf.saved_model.load` returns."""
        self._module = module
        meta = module.metadata()
        self.class_names = tuple(n.decode() for n in meta["class_names"].numpy())
        self.colormap = meta["colormap"].numpy().astype(np.uint8)
        self.model_config = json.loads(meta["model_config_json"].numpy())
        self.num_classes = len(self.class_names)

    @classmethod
    def from_checkpoint(cls, checkpoint_dir_or_path, scales=(1.0,), add_flipped_images=False):
        from deeplab_dpc.run_dir import load_model

        model, info = load_model(checkpoint_dir_or_path)
        return cls(ServingModule(model, info, scales, add_flipped_images))

    @classmethod
    def from_saved_model(cls, export_dir):
        if not tf.io.gfile.exists(f"{export_dir}/saved_model.pb"):
            raise InputError(f"{export_dir} is not a SavedModel directory (no saved_model.pb)")
        try:
            return cls(tf.saved_model.load(export_dir))
        except (tf.errors.OpError, ValueError, OSError, AttributeError) as e:
            raise InputError(f"cannot load SavedModel {export_dir}: "
                             f"{' '.join(str(e).split())[:200]}") from None

    def predict(self, image, with_probabilities=False):
        """int32 labels [H, W] (and float32 probabilities [H, W, C]); for a batch
        [N, H, W, 3], [N, H, W] (and [N, H, W, C])."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (3, 4) or image.shape[-1] != 3:
            raise InputError(f"{IMAGE_ERROR}, got {image.dtype} {list(image.shape)}")
        if min(image.shape[:-1]) < 1:
            raise InputError(f"{EMPTY_ERROR}, got shape {list(image.shape)}")
        out = self._module.serve(tf.constant(image))
        labels = out["semantic"].numpy()
        return (labels, out["probabilities"].numpy()) if with_probabilities else labels

    def colorize(self, labels):
        """uint8 RGB [..., 3] of class ids [...] through the model's colormap."""
        return self.colormap[np.clip(labels, 0, len(self.colormap) - 1)]
