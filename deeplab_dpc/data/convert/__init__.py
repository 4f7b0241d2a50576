"""Writing DeepLab TFRecords: `writer` validates (image, label) pairs and writes the
shards and `dataset_info.json`; `sources` finds the pairs of Cityscapes, PASCAL VOC
2012, PASCAL-Person-Part, ADE20K and users' folders. The binaries in
`tfrecords_tools/` and the synthetic set (`data.synthetic`) are built on them."""
