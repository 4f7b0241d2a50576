"""The proxy task's feature cache (paper Sec. 3.3): a backbone's last feature map of
every image of some splits, computed once and written as TFRecords, so that
candidate cells train on it without running the backbone.

`format` defines the files (record keys, `cache_config.json`, `manifest.json`) and
reads them (`FeatureCache`); `writer` runs a backbone over a dataset to write them.
`python -m deeplab_dpc.cache_features` is the binary.
"""
