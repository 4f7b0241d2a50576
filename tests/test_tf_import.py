"""The TensorFlow start-up filter drops exactly the known lines and passes the rest."""

from deeplab_dpc import tf_import

DROPPED = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796158019.587137    7809 cudart_stub.cc:31] Could not find cuda drivers "
    "on your machine, GPU will not be used.",
    "E0000 00:00:1796160251.374515    1774 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1796158019.664313    7809 cpu_feature_guard.cc:227] This TensorFlow binary "
    "is optimized to use available CPU instructions in performance-critical operations.",
    "I0000 00:00:1796521543.523335   14019 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results due to floating-point round-off "
    "errors from different computation orders. To turn them off, set the environment "
    "variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "E0000 00:00:1796524004.436547    4806 util.cc:131] oneDNN supports DT_HALF only on "
    "platforms with AVX-512. Falling back to the default Eigen-based implementation if "
    "present.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
]
KEPT = [
    "E0000 00:00:1.1 1 cuda_platform.cc:52] failed call to cuInit: CUDA_ERROR_OUT_OF_MEMORY",
    "F0000 00:00:1.1 1 some_op.cc:9] Check failed: x == y",
    "error: --flag is wrong",
    "Traceback (most recent call last):",
]


def test_the_filter_drops_known_start_up_lines_only(tmp_path):
    out = tmp_path / "stderr"
    with open(out, "wb") as f:
        process = tf_import.start_filter(stdout=f.fileno())
        process.communicate("\n".join(DROPPED[:2] + KEPT[:2] + DROPPED[2:] + KEPT[2:])
                            .encode() + b"\n", timeout=60)
    assert process.returncode == 0
    assert out.read_text().splitlines() == KEPT
