"""deeplab-dpc: the Dense Prediction Cell and its architecture search for TF2 / Keras 3."""
import setuptools

setuptools.setup(
    name="deeplab-dpc",
    version="0.1.0",
    description=(
        "DeepLab with the Dense Prediction Cell (Chen et al., NeurIPS 2018) and the "
        "architecture search that found it, for TensorFlow 2 / Keras 3."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["deeplab_dpc*", "tfrecords_tools*"]),
    package_data={"deeplab_dpc": ["cells/*.json"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "tensorflow-datasets>=4.9",
        "tensorboard",  # tf.summary's scalar/image ops; TensorFlow no longer pulls it in
        "numpy",
        "absl-py",
        "pillow",
        "h5py",
        "tqdm",
        "importlib_resources",  # tensorflow-datasets needs it to prepare data, undeclared
        "scipy>=1.11",  # the analysis: rank correlation, exact permutation p-values
    ],
    extras_require={
        # `pip install deeplab-dpc[gpu]` pulls the CUDA wheels TensorFlow publishes for Linux.
        "gpu": ["tensorflow[and-cuda]>=2.16"],
        # Distributed search on a Ray cluster (`python -m deeplab_dpc.search --backend=ray`).
        "ray": ["ray[tune]>=2.9"],
        # `python -m deeplab_dpc.analyze`'s figures.
        "plots": ["matplotlib"],
        # The tests run the Ray backend too, on a local instance, draw the figures and
        # execute the notebooks.
        "test": ["pytest", "pytest-xdist", "hypothesis", "scipy", "matplotlib",
                 "ray[tune]>=2.9", "nbclient", "nbformat", "ipykernel"],
    },
    license="Apache-2.0",
)
