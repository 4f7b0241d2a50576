"""Datasets: the registry, the synthetic scenes and the tf.data input pipeline."""
