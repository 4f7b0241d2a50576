r"""Converts PASCAL-Person-Part (7 classes) to DeepLab TFRecords; flags as VOC's.

    python -m tfrecords_tools.build_person_part_data --image_folder=VOC2010/JPEGImages \
        --semantic_segmentation_folder=pascal_person_part_gt --list_folder=lists \
        --output_dir=./tfrecord
"""
from absl import flags

from deeplab_dpc import cli
from deeplab_dpc.data.convert import sources

flags.DEFINE_string("image_folder", None, "Folder of images.")
flags.DEFINE_string("semantic_segmentation_folder", None,
                    "Folder of single-channel part labels (0..6, 255 ignored).")
flags.DEFINE_string("list_folder", None,
                    "Folder of split lists (*.txt; a name, or an image path, per line).")
flags.DEFINE_string("image_format", "jpg", "Image file extension.")
flags.DEFINE_string("label_format", "png", "Label file extension.")
flags.DEFINE_string("output_dir", "./tfrecord", "Folder for the shards and dataset_info.json.")
flags.DEFINE_integer("num_shards", 4, "Shards per split.")
flags.DEFINE_integer("num_workers", 0, "Shards written in parallel; 0: one per CPU core.")
FLAGS = flags.FLAGS


def main(_):
    sources.convert_person_part(
        image_folder=FLAGS.image_folder,
        semantic_segmentation_folder=FLAGS.semantic_segmentation_folder,
        list_folder=FLAGS.list_folder, output_dir=FLAGS.output_dir,
        image_format=FLAGS.image_format, label_format=FLAGS.label_format,
        num_shards=FLAGS.num_shards, num_workers=FLAGS.num_workers)


if __name__ == "__main__":
    cli.run(main)
