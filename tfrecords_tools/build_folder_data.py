r"""Converts a user's own folders of images and labels (matched by file stem) to TFRecords.

    python -m tfrecords_tools.build_folder_data --image_folder=images \
        --semantic_segmentation_folder=labels --num_classes=3 --dataset_name=mine \
        --label_map=label_map.json --output_dir=./tfrecord
"""
from absl import flags

from deeplab_dpc import cli
from deeplab_dpc.data.convert import sources

flags.DEFINE_string("image_folder", None, "Folder of PNG/JPEG images.")
flags.DEFINE_string("semantic_segmentation_folder", None,
                    "Folder of single-channel labels, same file stems as the images.")
flags.DEFINE_string("output_dir", "./tfrecord", "Folder for the shards and dataset_info.json.")
flags.DEFINE_string("split", "train", "Split name for all images (without --list_folder).")
flags.DEFINE_string("list_folder", None, "Optional folder of split lists (*.txt of stems).")
flags.DEFINE_integer("num_classes", None, "Number of classes (ids 0..num_classes-1).")
flags.DEFINE_integer("ignore_label", 255, "Label value ignored in training and evaluation.")
flags.DEFINE_list("class_names", [], "Optional comma-separated names, one per class.")
flags.DEFINE_string("dataset_name", None, "Name written to dataset_info.json.")
flags.DEFINE_string("label_map", None,
                    'Optional JSON {"pixel value": class id}; unlisted values -> ignore.')
flags.DEFINE_integer("num_shards", 4, "Shards per split.")
flags.DEFINE_integer("num_workers", 0, "Shards written in parallel; 0: one per CPU core.")
FLAGS = flags.FLAGS


def main(_):
    sources.convert_folder(
        image_folder=FLAGS.image_folder,
        semantic_segmentation_folder=FLAGS.semantic_segmentation_folder,
        output_dir=FLAGS.output_dir, num_classes=FLAGS.num_classes,
        dataset_name=FLAGS.dataset_name, ignore_label=FLAGS.ignore_label,
        class_names=FLAGS.class_names, label_map=FLAGS.label_map, split=FLAGS.split,
        list_folder=FLAGS.list_folder, num_shards=FLAGS.num_shards,
        num_workers=FLAGS.num_workers)


if __name__ == "__main__":
    cli.run(main)
