"""Loading the reference DeepLab's TF1 checkpoints into our Keras models.

`names` is the table: which reference variable each Keras weight of `DeepLab`
takes, and which checkpoint variables may stay unused. `converter` reads a TF1
checkpoint by name into a model (also what `--tf_initial_checkpoint` uses for
one); `run_directory` writes the result as a run directory, which is what
`python -m deeplab_dpc.import_tf1_checkpoint` does.
"""
