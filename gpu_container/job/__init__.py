"""The generator container's job, split by concern.

* :mod:`.spec`: what the job is (the Batch environment read into a :class:`JobContext`).
* :mod:`.failures`: which errors are transient (Batch retries) and which are final.
* :mod:`.storage`: S3 I/O (weights, the source photo, the "is it still current?" check, the
  asset and thumbnail writes with their provenance metadata).
* :mod:`.events`: the meshdrop events the job emits (progress and terminal ones).
* :mod:`.run`: one job end to end, mapping every outcome to an exit code.

``gpu_container/entrypoint.py`` stays the container's entry (``python -m
gpu_container.entrypoint``), a thin process entry.
"""
