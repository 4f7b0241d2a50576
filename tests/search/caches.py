"""Small feature caches for the search tests, written by the real cache writer.

The "backbone" is a stride-16 subsampler, so a cache holds exactly the feature
maps a test designs: `context_images` puts a cue in the first column of cells
and labels only cells at least `CUE_DISTANCE` cells away with the class the cue
names, so only a head that sees that far can be right.
"""
import os

import numpy as np

from tests.records import write_records

STRIDE, CUE_DISTANCE, IGNORE = 16, 10, 255
CELLS = (4, 14)  # feature map of a context image (h, w); cue in column 0


def subsample_extractor(images):
    """A 'backbone' of output stride 16: the pixel under each cell, scaled to [-1, 1]."""
    return images[:, ::STRIDE, ::STRIDE, :] / 127.5 - 1.0


def context_images(num, seed):
    """(image uint8 [h, w, 3], label [h, w], name): the cue (channel 0 of column 0:
    white or black) says class 0 or 1; channels 1-2 are noise everywhere; labels
    are the class at cells >= CUE_DISTANCE columns from the cue, else ignore."""
    rng = np.random.default_rng(seed)
    h, w = (CELLS[0] - 1) * STRIDE + 1, (CELLS[1] - 1) * STRIDE + 1
    out = []
    for i in range(num):
        cls = i % 2
        image = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        image[..., 0] = 128
        image[:, :STRIDE // 2 + 1, 0] = 255 if cls == 0 else 0
        label = np.full((h, w), IGNORE, np.uint8)
        label[:, CUE_DISTANCE * STRIDE - STRIDE // 2:] = cls
        out.append((image, label, f"context_{seed}_{i}"))
    return out


def write_context_cache(folder, num_train=16, num_minival=8, dtype="float32", flip=False,
                        images_per_shard=100):
    """A cache of context images (train and minival) written by `write_cache`."""
    from deeplab_dpc.cache_features.writer import CacheRequest, write_cache
    from deeplab_dpc.data import datasets

    data = os.path.join(folder, "data")
    info = datasets.DatasetInfo("context", 2, ignore_label=IGNORE, class_names=("a", "b"))
    write_records(data, "train", context_images(num_train, 1))
    write_records(data, "minival", context_images(num_minival, 2))
    datasets.write_dataset_info(data, info)
    settings = dict(backbone=dict(model_variant="subsample", depth_multiplier=1.0,
                                  output_stride=STRIDE, feature_channels=3),
                    source=dict(kind="test", weights_sha256="none"))
    request = CacheRequest(os.path.join(folder, "cache"), ("train", "minival"), 1.0, flip,
                           dtype, images_per_shard=images_per_shard)
    write_cache(subsample_extractor, request, settings, data, info, progress=False,
                log=lambda line: None)
    return request.feature_cache_dir
