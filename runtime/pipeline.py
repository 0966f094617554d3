"""The detection pipeline: source -> detector -> annotators and sinks, what `convdet detect`,
the benchmark, the soak test and a distributed batch all run.

Three stages overlap: a reader thread takes frames from the source into a bounded queue, the
detector runs in the calling thread (so a detector, and its temporal state, needs no locks),
and a writer thread takes each outcome from a second bounded queue to the outputs (records,
then the annotated frame). The reader is never more than the two queues, and the frame each
stage holds, ahead of the writer. An exception in the writer stops the pipeline and is raised
in the caller once both threads are joined; a source's exception is raised after the frames
before it are written, as the source raised it in order.

    with source, Outputs(options, targets, source, detector.labels, reporter) as outputs:
        run_pipeline(source, detector, outputs, reporter, options)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import AbstractContextManager
from queue import Empty, Full, Queue
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from convdet.runtime.options import QUEUE_SIZE, PipelineOptions
from convdet.runtime.records import Outcome, analyse

if TYPE_CHECKING:
    from convdet.runtime.detector import Detector
    from convdet.runtime.outputs import Outputs
    from convdet.runtime.sources import Frame, Source

In = TypeVar("In")
Out = TypeVar("Out")
POLL_SECONDS = 0.05  # how often a stage blocked on a queue looks whether the run stopped


class Reporter(Protocol):
    """How a run tells its caller what happens: `message` a line about the run, `failure` an
    input or output that failed (from any thread), `recorded` an outcome whose record was just
    written (count it; a failed one is also a failure), `step` after each outcome is done."""

    def message(self, text: str) -> None: ...

    def failure(self, what: str, why: str) -> None: ...

    def recorded(self, outcome: Outcome) -> None: ...

    def step(self) -> None: ...


def run_pipeline(
    source: Source,
    detector: Detector,
    outputs: Outputs,
    reporter: Reporter,
    options: PipelineOptions,
    guard: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
) -> None:
    """Run every frame of `source` through `detector` (results kept to the options' classes)
    and `outputs`, until the source ends or the window is closed. A frame's record is written
    and counted inside one `guard()` block (the CLI's: a signal does not split it), before it is
    drawn, so a run stopped at any point counts exactly the records that are there. With
    `io_threads` 0, and for a live camera or stream, every stage runs in the calling thread;
    with a window, the sinks do (a window belongs to the thread that opened it)."""
    classes = options.model.classes

    def process(frame: Frame) -> Outcome:
        image_id, refused = outputs.number(frame)
        return analyse(detector, frame, classes, refused, image_id)

    def sink(outcome: Outcome) -> bool:
        with guard():
            outputs.write(outcome)
            reporter.recorded(outcome)
        if outcome.result is not None and not outputs.draw(outcome):
            return False
        reporter.step()
        return True

    # A camera's or stream's own thread keeps only its newest frame, and its records and
    # saved video are timed as they are written (`time`, the video's measured rate): a
    # reader or a writer behind would queue stale frames and shift those times.
    threads = options.io_threads != 0 and not source.live
    run_stages(
        source,
        process,
        sink,
        depth=options.queue_size,
        read_ahead=threads,
        write_behind=threads and outputs.window is None,
    )


def run_stages(
    items: Iterable[In],
    process: Callable[[In], Out],
    sink: Callable[[Out], bool],
    *,
    depth: int = QUEUE_SIZE,
    read_ahead: bool = True,
    write_behind: bool = True,
) -> None:
    """`sink(process(item))` for each of `items` in order, until `sink` returns False: `items`
    read in a thread up to `depth` ahead (`read_ahead`), `process` in the calling thread,
    `sink` in a thread behind it (`write_behind`), fed through a queue of `depth`."""
    stop = threading.Event()
    failed: list[BaseException] = []  # the source's exception, raised after what came before
    reader = _Reader(items, depth, stop) if read_ahead else None
    inputs = reader.items(failed) if reader is not None else _until_failure(items, failed)
    writer = _Writer(sink, depth, stop) if write_behind else None
    completed = False
    try:
        for item in inputs:
            outcome = process(item)
            if not (sink(outcome) if writer is None else writer.put(outcome)):
                break
        completed = True
    finally:
        try:
            if writer is not None:
                writer.finish(drain=completed)
        finally:
            if reader is not None:
                reader.close()
    if failed:
        raise failed[0]


def _until_failure(items: Iterable[In], failed: list[BaseException]) -> Iterator[In]:
    """`items`, ending at the first exception they raise, which is put in `failed`."""
    try:
        yield from items
    except Exception as error:
        failed.append(error)


def _put(queue: Queue[Any], item: object, stop: threading.Event) -> bool:
    """Put `item` in `queue`, waiting for room; False (not put) once `stop` is set."""
    while not stop.is_set():
        with contextlib.suppress(Full):
            queue.put(item, timeout=POLL_SECONDS)
            return True
    return False


class _End:
    """The last item of a queue: the stage before it has finished."""


END = _End()


class _Failed:
    """The item a reader puts when its source raised `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _get(queue: Queue[Any], stop: threading.Event) -> Any:
    """The next item of `queue`, waiting for one; END once `stop` is set."""
    while not stop.is_set():
        with contextlib.suppress(Empty):
            return queue.get(timeout=POLL_SECONDS)
    return END


class _Reader:
    """A thread taking `items` into a queue of `depth` until they end or `stop` is set; the
    items' iterator is closed in that thread (a source's generator belongs to it)."""

    def __init__(self, items: Iterable[Any], depth: int, stop: threading.Event) -> None:
        self.queue: Queue[Any] = Queue(depth)
        self.stop = stop
        self.thread = threading.Thread(
            target=self._run, args=(items,), name="convdet-pipeline-read", daemon=True
        )
        self.thread.start()

    def _run(self, items: Iterable[Any]) -> None:
        iterator = iter(items)
        last: object = END
        try:
            for item in iterator:
                if not _put(self.queue, item, self.stop):
                    return
        except BaseException as error:  # the caller's to raise, in order
            last = _Failed(error)
        finally:
            if isinstance(iterator, Generator):
                iterator.close()
        _put(self.queue, last, self.stop)

    def items(self, failed: list[BaseException]) -> Iterator[Any]:
        """The items read, in order, ending early when the run stops; the source's exception,
        if it raised one, is put in `failed`."""
        while (item := _get(self.queue, self.stop)) is not END:
            if isinstance(item, _Failed):
                failed.append(item.error)
                return
            yield item

    def close(self) -> None:
        """Stop reading and wait for the thread (it leaves after the item it is reading)."""
        self.stop.set()
        self.thread.join()


class _Writer:
    """A thread giving each item put to `sink`; it stops the run (`stop`) when `sink` returns
    False or raises, and `finish` raises what it raised."""

    def __init__(self, sink: Callable[[Any], bool], depth: int, stop: threading.Event) -> None:
        self.queue: Queue[Any] = Queue(depth)
        self.sink = sink
        self.stop = stop
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="convdet-pipeline-write", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while (item := _get(self.queue, self.stop)) is not END:
                if not self.sink(item):
                    break
        except BaseException as error:  # KeyboardInterrupt too: a signal held in a sink
            self.failure = error
        finally:
            self.stop.set()

    def put(self, item: object) -> bool:
        """Queue `item` for the sink; False once the run stopped."""
        return _put(self.queue, item, self.stop)

    def finish(self, drain: bool) -> None:
        """Wait for the thread: after the items queued (`drain`), else after the one it is on;
        then raise what the sink raised."""
        try:
            if not drain or not _put(self.queue, END, self.stop):
                self.stop.set()
            self.thread.join()
        except BaseException:  # interrupted while waiting: the thread leaves after its item
            self.stop.set()
            raise
        if self.failure is not None:
            raise self.failure
