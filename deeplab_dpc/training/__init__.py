"""Training: the loop, its loss, learning-rate schedule, checkpoints and strategies.

`config` imports no TensorFlow, so a binary can validate its flags before paying
for the import; the other modules do.
"""
