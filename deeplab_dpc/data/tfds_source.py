"""tensorflow-datasets as a source for the input pipeline (`tfds:cityscapes`).

tfds' `cityscapes` builder reads the two manual-download zips
(leftImg8bit_trainvaltest.zip, gtFine_trainvaltest.zip) and stores, per image,
`image_left` (uint8 [1024, 2048, 3] PNG) and `segmentation_label` (the
`*_gtFine_labelIds.png` as is: Cityscapes *label ids* 0..33, not train ids).
We read both still encoded, so decoding runs in the pipeline's parallel map
exactly as for our TFRecords, and map label ids to train ids there.

Other tfds segmentation builders do not fit: `voc` carries boxes only, and
`scene_parse150` downloads from its host and stores instance annotations.
"""
import dataclasses

from deeplab_dpc.data import datasets
from deeplab_dpc.errors import InputError

PREFIX = "tfds:"

# tfds builder family -> (image feature, label feature, label value -> class id table).
_BUILDERS = {
    "cityscapes": ("image_left", "segmentation_label",
                   datasets.cityscapes_label_id_to_train_id_table),
}


def is_tfds(source):
    return isinstance(source, str) and source.startswith(PREFIX)


@dataclasses.dataclass(frozen=True)
class PreparedSplit:
    """A split of a prepared tfds builder, ready to read."""

    builder: object
    split: str
    num_shards: int
    image_key: str
    label_key: str
    label_table: object  # label value -> class id


def prepare(source, *, split, data_dir=None, manual_dir=None):
    """Prepares the builder if needed (from the zips in `manual_dir`) and finds `split`."""
    import tensorflow_datasets as tfds

    name = source[len(PREFIX):]
    family = name.split("/")[0].split(":")[0]
    if family not in _BUILDERS:
        raise InputError(f"{source}: unsupported tfds dataset; supported: "
                         f"{', '.join(PREFIX + b for b in _BUILDERS)}")
    image_key, label_key, table = _BUILDERS[family]
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for bad names/configs
        raise InputError(f"{source}: {str(e).splitlines()[0]}") from None
    if label_key not in builder.info.features:
        raise InputError(f"{source}: this config has no {label_key!r} feature")
    if not builder.is_prepared():
        try:
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
        except AssertionError as e:  # tfds' "download the files manually" message
            raise InputError(f"{source}: {str(e).splitlines()[0]}") from None
    try:
        num_shards = builder.info.splits[split].num_shards
    except (KeyError, ValueError):  # tfds raises either, by version
        raise InputError(f"{source}: no split {split!r}; has "
                         f"{', '.join(builder.info.splits)}") from None
    return PreparedSplit(builder, split, num_shards, image_key, label_key, table())


def read(prepared, *, shuffle_files=False, seed=None, input_context=None):
    """Dataset of (image bytes, label bytes, image_id), still encoded."""
    import tensorflow_datasets as tfds

    p = prepared
    ds = p.builder.as_dataset(
        p.split, shuffle_files=shuffle_files,
        decoders={p.image_key: tfds.decode.SkipDecoding(),
                  p.label_key: tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(input_context=input_context, shuffle_seed=seed,
                                    try_autocache=False))
    return ds.map(lambda ex: (ex[p.image_key], ex[p.label_key], ex["image_id"]))
