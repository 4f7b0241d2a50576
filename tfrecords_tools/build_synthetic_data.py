r"""Writes the project's synthetic street-and-harbour dataset (the default of every binary).

    python -m tfrecords_tools.build_synthetic_data --output_dir=datasets/synthetic

Image/label folders, split lists, DeepLab TFRecords and dataset_info.json; see
`deeplab_dpc/data/synthetic.py` and BUILD_NOTES.md for its design.
"""
from absl import flags

from deeplab_dpc import cli
from deeplab_dpc.errors import InputError

flags.DEFINE_string("output_dir", "datasets/synthetic", "Folder for the dataset.")
flags.DEFINE_list("image_size", ["513", "1025"], "Scene size as height,width in pixels.")
flags.DEFINE_integer("seed", 0, "Dataset seed: the same seed writes the same scenes.")
flags.DEFINE_list("splits", ["train=300", "minival=50", "val=100", "test=50"],
                  "Scenes per split as split=count (splits: train, minival, val, test).")
flags.DEFINE_integer("num_shards", 4, "TFRecord shards per split.")
flags.DEFINE_integer("num_workers", 0, "Processes generating scenes; 0: one per core.")
FLAGS = flags.FLAGS


def _splits(values):
    """`split=count` values -> ((split, count), ...)."""
    pairs = [v.split("=", 1) for v in values]
    if any(len(p) != 2 for p in pairs):
        raise InputError(f"--splits: expected split=count, got {','.join(values)}")
    counts = cli.parse_ints([p[1] for p in pairs], "splits", expected="split=count values")
    return tuple((p[0], n) for p, n in zip(pairs, counts))


def main(_):
    from deeplab_dpc.data import synthetic

    height, width = cli.parse_size(FLAGS.image_size, "image_size")
    splits = _splits(FLAGS.splits)
    config = synthetic.SyntheticConfig(height=height, width=width, seed=FLAGS.seed,
                                       splits=splits, num_shards=FLAGS.num_shards)
    synthetic.write_dataset(FLAGS.output_dir, config, num_workers=FLAGS.num_workers)
    print(f"Wrote {FLAGS.output_dir}")


if __name__ == "__main__":
    cli.run(main)
