"""Detection batches larger than one process: `convdet detect --engine ray` runs the runtime's
own per-input work (`convdet.runtime.records.record_for`) on Ray Data actors, on this machine or
a cluster. Nothing here imports Ray until a run starts, so the package costs nothing without
the `convdet[ray]` extra.

- `convdet.batch.inputs`: SOURCE as the batch's inputs (local files, object-store prefixes);
- `convdet.batch.parts`: the output layout, part files written whole, and their assembly;
- `convdet.batch.worker`: the actor holding one Detector;
- `convdet.batch.engine`: the Ray job, its progress and its summary.
"""
