r"""Writes the project's synthetic street-and-harbour dataset (the default of every binary).

    python -m tfrecords_tools.build_synthetic_data --output_dir=datasets/synthetic

Image/label folders, split lists, DeepLab TFRecords and dataset_info.json; see
`deeplab_dpc/data/synthetic.py` and BUILD_NOTES.md for its design.
"""
from absl import flags

from deeplab_dpc import cli

flags.DEFINE_string("output_dir", "datasets/synthetic", "Folder for the dataset.")
flags.DEFINE_list("image_size", ["513", "1025"], "Scene size as height,width in pixels.")
flags.DEFINE_integer("seed", 0, "Dataset seed: the same seed writes the same scenes.")
flags.DEFINE_list("splits", ["train=300", "minival=50", "val=100", "test=50"],
                  "Scenes per split as split=count (splits: train, minival, val, test).")
flags.DEFINE_integer("num_shards", 4, "TFRecord shards per split.")
flags.DEFINE_integer("num_workers", 0, "Processes generating scenes; 0: one per core.")
FLAGS = flags.FLAGS


def _parse(values, flag, convert):
    try:
        return convert(values)
    except ValueError:
        raise cli.InputError(f"--{flag}: cannot parse {','.join(values)}") from None


def main(_):
    from deeplab_dpc.data import synthetic

    height, width = _parse(FLAGS.image_size, "image_size", lambda v: [int(x) for x in v])
    splits = _parse(FLAGS.splits, "splits",
                    lambda v: tuple((s.split("=")[0], int(s.split("=")[1])) for s in v))
    config = synthetic.SyntheticConfig(height=height, width=width, seed=FLAGS.seed,
                                       splits=splits, num_shards=FLAGS.num_shards)
    synthetic.write_dataset(FLAGS.output_dir, config, num_workers=FLAGS.num_workers)
    print(f"Wrote {FLAGS.output_dir}")


if __name__ == "__main__":
    cli.run(main)
