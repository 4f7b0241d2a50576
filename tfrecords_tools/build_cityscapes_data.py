r"""Converts Cityscapes (gtFine) to DeepLab TFRecords; flags as the reference converter.

    python -m tfrecords_tools.build_cityscapes_data \
        --cityscapes_root=./cityscapes --output_dir=./cityscapes/tfrecord
"""
from absl import flags

from deeplab_dpc import cli
from deeplab_dpc.data.convert import sources

flags.DEFINE_string("cityscapes_root", "./cityscapes", "Folder holding leftImg8bit/ and gtFine/.")
flags.DEFINE_list("splits", [], "Subset of train,val,test to convert; empty: every one present.")
flags.DEFINE_string("output_dir", "./tfrecord", "Folder for the shards and dataset_info.json.")
flags.DEFINE_integer("num_shards", 10, "Shards per split.")
flags.DEFINE_integer("num_workers", 0, "Shards written in parallel; 0: one per CPU core.")
FLAGS = flags.FLAGS


def main(_):
    sources.convert_cityscapes(
        cityscapes_root=FLAGS.cityscapes_root, output_dir=FLAGS.output_dir,
        splits=FLAGS.splits, num_shards=FLAGS.num_shards, num_workers=FLAGS.num_workers)


if __name__ == "__main__":
    cli.run(main)
