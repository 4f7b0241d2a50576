"""Converters from public segmentation datasets to DeepLab TFRecords."""
