"""`fer-edge batch`: an archive of images and videos classified on a Ray cluster (or on this
machine) into three Parquet datasets, resumably. inputs.py turns the command line into tasks,
worker.py is the actor that runs them (one Classifier each), outputs.py writes and reads the
datasets, job.py drives Ray Data. Needs pip install 'fer-edge[ray]'."""

from .job import batch  # noqa: F401  (the Python API: fer_edge.batch.batch(inputs, out=...))
