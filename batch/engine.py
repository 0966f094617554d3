"""`convdet detect SOURCE --engine ray --json FILE`: an image batch on Ray Data, on a local Ray
started for the run or an existing cluster (`--address`), with the records `convdet detect
--json` writes for the same files, each input exactly once in FILE (layout: `convdet.batch.parts`).

Ray Data reads the input table (index, source, path, error) in blocks of --batch-size rows;
`map_batches` runs `DetectWorker` on a fixed pool of --actors actors, each holding one
Detector, which Ray restarts when its process dies (Ray Data's actor pools default to
unlimited actor restarts and task retries), and the driver writes each block's records as a
part file as it arrives, showing progress and the final summary as `convdet detect` does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from convdet.batch.inputs import BatchError, Inputs, pending, resolve_inputs
from convdet.batch.parts import assemble, part_path, parts, parts_folder, settle, write_part
from convdet.runtime.jsonl import JsonlSink
from convdet.runtime.options import PipelineOptions, load_detector, model_path
from convdet.runtime.records import run_id
from convdet.runtime.sources import DEFAULT_MAX_PIXELS
from convdet.runtime.targets import plan_targets, resume_line

from convdet.options import parse_classes
from convdet.progress import DetectReporter

NOT_INSTALLED = "--engine ray needs ray, which is not installed: pip install 'convdet[ray]'"
DEFAULT_BATCH_SIZE = 64  # inputs per block, task and part file


def import_ray() -> Any:
    """The `ray` module with Ray Data loaded; BatchError (one line, exit 2) without the extra."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise BatchError(NOT_INSTALLED) from None
    return ray


def run(
    args: argparse.Namespace,
    options: PipelineOptions,
    deferred: Callable[[], AbstractContextManager[None]],
) -> int:
    """Run `convdet detect --engine ray` for the checked `args` and their `options`; `deferred`
    makes a block a signal does not split (the CLI's), around the final file's assembly.
    Exit status as `convdet detect`: 1 when any input failed."""
    ray = import_ray()
    inputs = resolve_inputs(
        args.source, recursive=args.recursive, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS
    )
    plan_targets(options.outputs, args.source, inputs.local)  # --json over an input: refused
    out, folder = Path(args.json), parts_folder(args.json)
    messages = []
    if settle(out, folder):
        messages.append(f"{out} was assembled by a run that stopped right after; done")
    left = parts(folder)
    if left and not args.resume:
        raise BatchError(
            f"{folder} holds the records of an unfinished run; finish it with --resume "
            "--append, or remove that folder"
        )
    with JsonlSink(out, append=args.append) as sink:  # refused without --append, as detect
        if sink.repaired:
            messages.append(
                f"{out}: removed an incomplete last line ({sink.repaired} bytes, from a run "
                "that was killed or ran out of space) before appending"
            )
    if left:
        assemble(out, folder)
        messages.append(f"{out}: joined the {len(left)} part files an unfinished run left")
    indices, retrying = list(range(len(inputs.sources))), None
    if args.resume:
        indices, failed = pending(inputs, args.json, args.retry_failed)
        retrying = failed if args.retry_failed else None
        total = len(inputs.sources)
        messages.append(
            resume_line(args.json, total, len(indices), None if retrying is None else len(failed))
        )
    options = _worker_options(options, args.classes)
    # Progress and the summary's rate count from when Ray is up, its actors starting.
    with ray_session(ray, args.address) if indices else contextlib.nullcontext():
        reporter = DetectReporter(len(indices), sys.stdout, "images", args.progress_every, False)
        reporter.retrying = retrying
        for message in messages:
            reporter.message(message)
        try:
            if indices:
                _detect(ray, args, options, inputs, indices, folder, reporter)
            with deferred():
                assemble(out, folder)
        finally:
            reporter.close()
            reporter.summary(None)
    return 1 if reporter.failed else 0


def _worker_options(options: PipelineOptions, classes: str | None) -> PipelineOptions:
    """`options` as every worker needs them: a model file as an absolute path (workers start
    elsewhere; a shipped model's name is found in each machine's install), one inference
    thread per actor unless --threads, and --classes as the model's class ids (the model is
    loaded here once, so a bad model or class is refused before Ray starts)."""
    model = options.model
    model_path(model.model, model.backend)  # a model the backend does not run: refused here
    detector = load_detector(model)
    kept = parse_classes(classes, detector.labels, detector.info.background)
    given = model.model
    if given is not None and Path(given).is_file():  # a shipped model's name stays a name
        given = str(Path(given).resolve())
    return replace(
        options, model=replace(model, model=given, threads=model.threads or 1, classes=kept)
    )


def _detect(
    ray: Any,
    args: argparse.Namespace,
    options: PipelineOptions,
    inputs: Inputs,
    indices: list[int],
    folder: Path,
    reporter: DetectReporter,
) -> None:
    """Run the inputs at `indices` on the Ray job, writing each block's records, stamped with
    this run's id, as a part file in `folder` as it arrives, and counting them in `reporter`."""
    import pyarrow as pa
    from convdet.batch.worker import DetectWorker

    size = args.batch_size or DEFAULT_BATCH_SIZE
    table = pa.table(
        {
            "index": indices,
            "source": [inputs.sources[i] for i in indices],
            "path": [inputs.paths[i] for i in indices],
            "error": [inputs.errors[i] for i in indices],
        }
    )
    run = run_id()
    threads = options.model.threads or 1
    actors = args.actors or max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
    dataset = ray.data.from_arrow(
        [table.slice(start, size) for start in range(0, len(indices), size)]
    ).map_batches(
        DetectWorker,
        fn_constructor_args=(options,),
        batch_size=size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=threads,
    )
    for block in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        rows = sorted(zip(block["index"], block["record"], strict=True))
        records = [{**json.loads(text), "run": run} for _index, text in rows]
        write_part(part_path(folder, int(rows[0][0]), int(rows[-1][0])), records)
        for record in records:
            _count(reporter, record)


def _count(reporter: DetectReporter, record: dict[str, Any]) -> None:
    """Count one written record in `reporter` as `convdet detect` does: a failure (its line),
    or a processed image and its digits; an earlier failure run again as retried."""
    if "error" in record:
        reporter.failure(record["source"], record["error"])
    else:
        reporter.processed += 1
        reporter.counts.update(found["label"] for found in record["detections"])
    if reporter.retrying is not None and record["source"] in reporter.retrying:
        reporter.retried += 1
    reporter.step()


@contextlib.contextmanager
def ray_session(ray: Any, address: str | None) -> Iterator[None]:
    """Ray for the run: the caller's when it already initialised Ray (and gave no address),
    else a connection to the cluster at `address` (or $RAY_ADDRESS, as Ray reads it) or a
    local Ray on this machine's CPUs (loopback only, no dashboard, no usage statistics), shut
    down afterwards. Ray's and Ray Data's own progress bars and notes stay off: the run's
    progress is the project's."""
    started = not ray.is_initialized() or address is not None
    if started:
        # "local": a new Ray of its own, never the cluster a `ray start` on this machine began.
        local = {"address": "local", "include_dashboard": False, "_node_ip_address": "127.0.0.1"}
        if address or os.environ.get("RAY_ADDRESS"):
            local = {"address": address}
        else:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(log_to_driver=False, logging_level=logging.WARNING, **local)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
