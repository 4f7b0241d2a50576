r"""Converts PASCAL VOC 2012 to DeepLab TFRecords, one split per list; reference flags.

    python -m tfrecords_tools.build_voc2012_data \
        --image_folder=VOCdevkit/VOC2012/JPEGImages \
        --semantic_segmentation_folder=VOCdevkit/VOC2012/SegmentationClassRaw \
        --list_folder=VOCdevkit/VOC2012/ImageSets/Segmentation --output_dir=./tfrecord
"""
from absl import flags

from deeplab_dpc import cli
from deeplab_dpc.data.convert import sources

flags.DEFINE_string("image_folder", "./VOCdevkit/VOC2012/JPEGImages", "Folder of images.")
flags.DEFINE_string("semantic_segmentation_folder", "./VOCdevkit/VOC2012/SegmentationClassRaw",
                    "Labels: SegmentationClass palette PNGs or SegmentationClassRaw.")
flags.DEFINE_string("list_folder", "./VOCdevkit/VOC2012/ImageSets/Segmentation",
                    "Folder of split lists (*.txt, one image name per line).")
flags.DEFINE_string("image_format", "jpg", "Image file extension.")
flags.DEFINE_string("label_format", "png", "Label file extension.")
flags.DEFINE_string("train_aug_label_folder", None,
                    "Optional SBD-converted labels for train_aug.txt, searched first.")
flags.DEFINE_string("output_dir", "./tfrecord", "Folder for the shards and dataset_info.json.")
flags.DEFINE_integer("num_shards", 4, "Shards per split.")
flags.DEFINE_integer("num_workers", 0, "Shards written in parallel; 0: one per CPU core.")
FLAGS = flags.FLAGS


def main(_):
    sources.convert_voc2012(
        image_folder=FLAGS.image_folder,
        semantic_segmentation_folder=FLAGS.semantic_segmentation_folder,
        list_folder=FLAGS.list_folder, output_dir=FLAGS.output_dir,
        image_format=FLAGS.image_format, label_format=FLAGS.label_format,
        train_aug_label_folder=FLAGS.train_aug_label_folder,
        num_shards=FLAGS.num_shards, num_workers=FLAGS.num_workers)


if __name__ == "__main__":
    cli.run(main)
