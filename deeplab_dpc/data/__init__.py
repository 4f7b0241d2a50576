"""Data: `datasets` (the registry and dataset_info.json), `input_pipeline` (tf.data with
DeepLab's augmentation), `tfds_source` (tensorflow-datasets' Cityscapes), `synthetic`
(the project's own street-and-harbour set) and `convert/` (writing DeepLab TFRecords).
"""
