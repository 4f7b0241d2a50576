"""Every flagfile of experiments/ under --dry_run, against the paper's protocol.

EXPECTED is typed from the paper (Sec. 4: crop 769x769 on Cityscapes and 513x513 on
PASCAL, batch 16 for the real tasks, output stride 16 for Table 1; Xception-71 with the
decoder at stride 4) and the reference docs (90K Cityscapes iterations; its train.py
default of 30K where the paper gives none), not from the flagfiles' own headers. The
quickstart's row is README's.
"""
import glob
import json
import os

from tests.zoo import harness

PUBLISHED = json.load(open(os.path.join(
    harness.CELLS, "dense_prediction_cell_branch5_top1_cityscapes.json")))
ASPP_RATES = [6, 12, 18]
# flagfile: (dataset, classes, backbone, crop, batch, steps, output stride, decoder, head,
#            atrous rates, cell)
EXPECTED = {
    "cityscapes_mobilenet_v2_aspp": ("cityscapes", 19, "mobilenet_v2", [769, 769], 16, 90000,
                                     16, None, "aspp", ASPP_RATES, None),
    "cityscapes_mobilenet_v2_dpc": ("cityscapes", 19, "mobilenet_v2", [769, 769], 16, 90000,
                                    16, None, "dpc", [], PUBLISHED),
    "cityscapes_xception_71_aspp": ("cityscapes", 19, "xception_71", [769, 769], 16, 90000,
                                    16, 4, "aspp", ASPP_RATES, None),
    "cityscapes_xception_71_dpc": ("cityscapes", 19, "xception_71", [769, 769], 16, 90000,
                                   16, 4, "dpc", [], PUBLISHED),
    "pascal_voc_xception_71_dpc": ("pascal_voc_seg", 21, "xception_71", [513, 513], 16, 30000,
                                   16, 4, "dpc", [], PUBLISHED),
    "pascal_person_part_xception_71_dpc": ("pascal_person_part", 7, "xception_71", [513, 513],
                                           16, 30000, 16, 4, "dpc", [], PUBLISHED),
    "quickstart": ("synthetic", 8, "mobilenet_v2", [257, 513], 8, 500, 16, None, "dpc", [],
                   PUBLISHED),
}


def _flagfiles():
    return {os.path.basename(p)[:-len(".flags")]: p
            for p in glob.glob(os.path.join(harness.ROOT, "experiments", "*.flags"))}


def test_every_flagfile_dry_runs_to_the_papers_settings_and_writes_nothing(tmp_path):
    from tests.run_fixtures import write_synthetic_split

    files = _flagfiles()
    assert set(files) == set(EXPECTED), "a flagfile without a row here, or a row without one"
    data = tmp_path / "synthetic"
    write_synthetic_split(str(data), "train", num_images=2)
    names = sorted(files)
    requests = [[f"--flagfile={files[n]}"] for n in names]
    # The quickstart again, on data: the input pipeline yields one real batch.
    requests.append([f"--flagfile={files['quickstart']}", f"--dataset_dir={data}"])
    work = harness.workdir(tmp_path)
    before = harness.listing(work)
    answers = harness.dry_runs("deeplab_dpc.train", requests, work, tmp_path)
    assert harness.listing(work) == before, "a dry run wrote into the working directory"
    for name, answer in zip(names + ["quickstart+data"], answers):
        assert answer["error"] is None, (name, answer["error"])
        report = answer["report"]
        settings, model = report["settings"], report["model"]["config"]
        row = EXPECTED[name.split("+")[0]]
        got = (settings["dataset"], model["num_classes"], model["backbone"],
               settings["train_crop_size"], settings["train_batch_size"],
               settings["training_number_of_steps"], model["output_stride"],
               model["decoder_output_stride"], model["head"], model["atrous_rates"],
               model["cell"])
        assert got == row, (name, got)
        assert report["model"]["parameters"] > 0 and report["model"]["multiply_adds"] > 0
        assert report["model"]["image_size"] == row[3]
    batch = answers[-1]["report"]["batch"]
    assert batch["image"]["shape"] == [8, 257, 513, 3] and batch["label"]["shape"] == [
        8, 257, 513, 1]
    assert all(a["report"]["batch"] is None for a in answers[:-1])  # no data there
    missing = [n for n in answers[0]["report"]["notes"] if "--tf_initial_checkpoint" in n]
    assert missing, answers[0]["report"]["notes"]  # a checkpoint that is not here


def test_an_unknown_flag_in_a_flagfile_fails_its_dry_run(tmp_path):
    bad = tmp_path / "bad.flags"
    bad.write_text(open(_flagfiles()["quickstart"]).read() + "--train_crop_sise=65,65\n")
    [answer] = harness.dry_runs("deeplab_dpc.train", [[f"--flagfile={bad}"]],
                                harness.workdir(tmp_path), tmp_path)
    assert answer["report"] is None and "train_crop_sise" in answer["error"]
