r"""Converts ADE20K (ADEChallengeData2016) to DeepLab TFRecords; reference flags, or
`--ade20k_root` for the folders not given.

    python -m tfrecords_tools.build_ade20k_data \
        --ade20k_root=ADE20K/ADEChallengeData2016 --output_dir=ADE20K/tfrecord
"""
from absl import flags

from deeplab_dpc import cli
from deeplab_dpc.data.convert import sources

flags.DEFINE_string("train_image_folder", None, "Training images (images/training).")
flags.DEFINE_string("train_image_label_folder", None, "Training labels (annotations/training).")
flags.DEFINE_string("val_image_folder", None, "Validation images (images/validation).")
flags.DEFINE_string("val_image_label_folder", None, "Validation labels (annotations/validation).")
flags.DEFINE_string("ade20k_root", None,
                    "ADEChallengeData2016 folder; fills the --train_*/--val_* folders not given.")
flags.DEFINE_string("output_dir", "./tfrecord", "Folder for the shards and dataset_info.json.")
flags.DEFINE_integer("num_shards", 4, "Shards per split.")
flags.DEFINE_integer("num_workers", 0, "Shards written in parallel; 0: one per CPU core.")
FLAGS = flags.FLAGS


def main(_):
    sources.convert_ade20k(
        output_dir=FLAGS.output_dir, train_image_folder=FLAGS.train_image_folder,
        train_image_label_folder=FLAGS.train_image_label_folder,
        val_image_folder=FLAGS.val_image_folder,
        val_image_label_folder=FLAGS.val_image_label_folder, ade20k_root=FLAGS.ade20k_root,
        num_shards=FLAGS.num_shards, num_workers=FLAGS.num_workers)


if __name__ == "__main__":
    cli.run(main)
