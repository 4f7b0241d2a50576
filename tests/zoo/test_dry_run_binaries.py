"""`--dry_run` of every other binary: the network and settings they would use, one
batch where the data is there, and nothing written."""
import os

from tests.cli_utils import run_binary
from tests.zoo import harness


def _tiny_run(tmp_path):
    from deeplab_dpc.data import synthetic
    from tests.run_fixtures import calibrated_tiny_model, save_run, write_synthetic_split

    data = tmp_path / "data"
    write_synthetic_split(str(data), "val", num_images=2)
    run = tmp_path / "run"
    model = calibrated_tiny_model(synthetic.INFO.num_classes)
    save_run(run, model, synthetic.INFO, step=3,
             train_settings={"dataset": "synthetic", "dataset_dir": str(data)})
    return run, data, model


def test_eval_vis_export_and_predict_dry_runs_use_the_runs_network(tmp_path):
    run, data, model = _tiny_run(tmp_path)
    out = tmp_path / "out"
    requests = {
        "deeplab_dpc.eval": [[f"--checkpoint_dir={run}", f"--eval_logdir={out}/eval",
                              "--eval_split=val"],
                             # A model flag that contradicts the run is refused ...
                             [f"--checkpoint_dir={run}", f"--eval_logdir={out}/eval",
                              "--model_variant=xception_65"],
                             # ... and so is a preset, and another output stride.
                             [f"--checkpoint_dir={run}", f"--eval_logdir={out}/eval",
                              "--model_preset=quickstart"],
                             [f"--checkpoint_dir={run}", f"--eval_logdir={out}/eval",
                              "--output_stride=8"]],
        "deeplab_dpc.vis": [[f"--checkpoint_dir={run}", f"--vis_logdir={out}/vis",
                             "--vis_split=val", "--vis_batch_size=4"]],
        "deeplab_dpc.export": [[f"--checkpoint_path={run}", f"--export_path={out}/export",
                                "--crop_size=65", "--crop_size=97", "--num_classes=8"],
                               # The dry run refuses what the real run refuses.
                               [f"--checkpoint_path={run}", f"--export_path={out}/export",
                                "--num_classes=99"]],
    }
    work = harness.workdir(tmp_path)
    answers = {m: harness.dry_runs(m, r, work, tmp_path) for m, r in requests.items()}
    assert not out.exists(), "a dry run wrote its output"
    config = model.get_config()
    for module, [answer, *_] in answers.items():
        assert answer["error"] is None, (module, answer["error"])
        got = answer["report"]["model"]["config"]
        assert {k: got[k] for k in ("backbone", "head", "cell", "depth_multiplier")} == {
            k: config[k] for k in ("backbone", "head", "cell", "depth_multiplier")}
    eval_batch = answers["deeplab_dpc.eval"][0]["report"]["batch"]
    assert eval_batch["image"]["shape"] == [1, 97, 193, 3]  # one synthetic scene
    assert answers["deeplab_dpc.eval"][0]["report"]["model"]["image_size"] == [97, 193]
    assert "--model_variant does not match" in answers["deeplab_dpc.eval"][1]["error"]
    # The quickstart preset is MobileNet-v2 at depth 0.5; the run's is 0.25.
    assert "--model_preset=quickstart does not match" in answers["deeplab_dpc.eval"][2]["error"]
    assert "depth_multiplier = 0.25" in answers["deeplab_dpc.eval"][2]["error"]
    assert "another output stride is not supported" in answers["deeplab_dpc.eval"][3]["error"]
    assert "--num_classes=99 does not match" in answers["deeplab_dpc.export"][1]["error"]
    assert answers["deeplab_dpc.vis"][0]["report"]["batch"] is not None
    assert any("vis_batch_size" in n for n in answers["deeplab_dpc.vis"][0]["notes"])
    assert answers["deeplab_dpc.export"][0]["report"]["model"]["image_size"] == [65, 97]


def test_the_other_binaries_dry_run_without_writing(tmp_path):
    run, data, _ = _tiny_run(tmp_path)
    out = tmp_path / "out"
    study = out / "study.sqlite"
    commands = {
        "deeplab_dpc.stats": ["--model_variant=mobilenet_v2", "--depth_multiplier=0.5",
                              "--crop_size=65,65", "--num_classes=8"],
        "deeplab_dpc.cache_features": [f"--checkpoint_dir={run}",
                                       f"--feature_cache_dir={out}/cache"],
        "deeplab_dpc.import_tf1_checkpoint": [f"--tf1_checkpoint={tmp_path}/absent.ckpt",
                                              f"--output_dir={out}/imported",
                                              "--num_classes=21"],
        "deeplab_dpc.search": [f"--study={study}", f"--feature_cache_dir={out}/cache",
                               "--num_trials=4"],
        "deeplab_dpc.rerank": [f"--study={study}", "--top_k=2"],
        "deeplab_dpc.analyze": [f"--study={study}", f"--output_dir={out}/analysis"],
        "deeplab_dpc.predict": [f"--checkpoint_dir={run}", f"--image_glob={tmp_path}/*.png",
                                f"--output_dir={out}/predict"],
    }
    for module, args in commands.items():
        result = run_binary(module, *args, "--dry_run", cwd=tmp_path)
        assert result.returncode == 0, (module, result.stderr[-2000:])
        assert result.stdout.startswith(f"dry run of {module}"), (module, result.stdout)
        if module not in ("deeplab_dpc.search", "deeplab_dpc.rerank", "deeplab_dpc.analyze"):
            assert "trainable parameters" in result.stdout and "multiply-adds" in result.stdout
    assert not out.exists(), os.listdir(out)
