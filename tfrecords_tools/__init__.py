"""Converter binaries, `python -m tfrecords_tools.build_*_data`, named and flagged as the
reference DeepLab's scripts; each parses its flags and calls `deeplab_dpc.data.convert`."""
