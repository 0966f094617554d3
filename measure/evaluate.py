"""Detection quality against scene ground truth: counts, P/R/F1, confusion, readouts, count
match, string figures and the report.

Detections are matched to truth objects one to one by the rule in `convdet.measure.matching`
(same class, box centre inside the grown truth box): matched detections are true positives,
unmatched detections false positives, unmatched truths false negatives. Localization matches
(the same rule without the class) fill the confusion matrix (true class x detected class, with
a "none" row for detections on no digit and a "none" column for digits no detection landed on)
and the mean localization error, the mean distance in pixels between the centres of
localization-matched detection and truth boxes.

Readouts measure how a stage classifies the truth digits themselves. "isolated": the 28x28
classifier on each digit alone (each truth frame of the preprocessed scene cut out at 28x28,
see `isolated_classifier`); F1 on scenes is meant to come close to it. "grid": the argmax of
the scene's grid cell under each truth centre, before any grouping (`detector_functions`).

Count match: the fraction of images where the number of detections equals the number of digits.

Strings, for images whose truth carries written lines (e.g. COCO folders: one line per image). The
detections are read into lines as the Detector reads them (`convdet.runtime.reading.group_lines`);
read lines are assigned to truth lines and each truth line's read string is aligned with the true
one (rules and counts in `convdet.measure.matching`), giving digit precision, recall and F1.
Exact match: the fraction of truth lines whose read string equals the true one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from convdet.data.scenes import SceneSet, isolated_crops
from convdet.measure.matching import box_centres, match_greedy, string_counts
from convdet.runtime.classifier_cell import classifier_cell_scores
from convdet.runtime.modelinfo import ModelContractError
from convdet.runtime.reading import group_lines

if TYPE_CHECKING:
    from convdet.runtime.detector import Detector, Result

FRAME_READOUTS = ("isolated",)  # readouts that cut each truth box as an MNIST frame
NUM_DIGITS = 10
# Tally counters that merging adds up as plain numbers.
_SUMMED = (
    "loc_error_sum",
    "loc_matches",
    "count_matches",
    "line_images",
    "lines",
    "lines_exact",
    "string_tp",
    "string_fp",
    "string_fn",
)


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, and 1.0 for 0/0 (nothing to find and nothing claimed)."""
    return numerator / denominator if denominator else 1.0


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 from true positives, false positives and false negatives."""
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def _mean(total: float, count: float) -> float | None:
    """total / count, None when nothing was measured."""
    return float(total / count) if count else None


@dataclass
class Tally:
    """Running counts for one group of images (a style, or all): per class and confusion."""

    num_classes: int = NUM_DIGITS
    images: int = 0
    tp: np.ndarray = field(init=False)
    fp: np.ndarray = field(init=False)
    fn: np.ndarray = field(init=False)
    confusion: np.ndarray = field(init=False)
    loc_error_sum: float = 0.0
    loc_matches: int = 0
    count_matches: int = 0  # images with as many detections as digits
    # Strings (see the module doc): images and truth lines measured, lines read exactly, and
    # the aligned digits: true positives, false positives, false negatives.
    line_images: int = 0
    lines: int = 0
    lines_exact: int = 0
    string_tp: int = 0
    string_fp: int = 0
    string_fn: int = 0
    # readout name -> (2, num_classes) counts: digits read right, digits read, per true class.
    readouts: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = self.num_classes
        self.tp, self.fp, self.fn = (np.zeros(k, dtype=np.int64) for _ in range(3))
        self.confusion = np.zeros((k + 1, k + 1), dtype=np.int64)

    def add_image(
        self,
        truth_boxes: np.ndarray,
        truth_classes: np.ndarray,
        det_boxes: np.ndarray,
        det_classes: np.ndarray,
        det_scores: np.ndarray,
        truth_lines: Sequence[Sequence[int]] = (),
        read_lines: Sequence[Sequence[int]] = (),
    ) -> None:
        """Match one image's detections to its truth and add the counts; with `truth_lines`
        (object indices) also the string counts of `read_lines` (detection indices)."""
        k = self.num_classes
        truth_classes = np.asarray(truth_classes, dtype=np.int64).reshape(-1)
        det_classes = np.asarray(det_classes, dtype=np.int64).reshape(-1)
        for name, classes in (("truth", truth_classes), ("detection", det_classes)):
            if classes.size and (classes.min() < 0 or classes.max() >= k):
                raise ValueError(f"{name} class ids must be in 0..{k - 1}, got {classes}")
        self.images += 1
        matched = match_greedy(truth_boxes, truth_classes, det_boxes, det_classes, det_scores)
        hit = matched >= 0
        found = np.zeros(len(truth_classes), dtype=bool)
        found[matched[hit]] = True
        self.tp += np.bincount(det_classes[hit], minlength=k)
        self.fp += np.bincount(det_classes[~hit], minlength=k)
        self.fn += np.bincount(truth_classes[~found], minlength=k)

        located = match_greedy(truth_boxes, None, det_boxes, None, det_scores)
        on_digit = located >= 0
        np.add.at(self.confusion, (truth_classes[located[on_digit]], det_classes[on_digit]), 1)
        np.add.at(self.confusion, (k, det_classes[~on_digit]), 1)
        landed = np.zeros(len(truth_classes), dtype=bool)
        landed[located[on_digit]] = True
        np.add.at(self.confusion, (truth_classes[~landed], k), 1)
        offsets = box_centres(det_boxes)[on_digit] - box_centres(truth_boxes)[located[on_digit]]
        self.loc_error_sum += float(np.linalg.norm(offsets, axis=1).sum())
        self.loc_matches += int(on_digit.sum())
        self.count_matches += int(len(det_classes) == len(truth_classes))
        if truth_lines:
            counts = string_counts(truth_classes, truth_lines, det_classes, read_lines, located)
            self.string_tp += counts.tp
            self.string_fp += counts.fp
            self.string_fn += counts.fn
            self.lines_exact += counts.exact
            self.line_images += 1
            self.lines += len(truth_lines)

    def _readout(self, name: str) -> np.ndarray:
        """The (2, num_classes) counts of readout `name`, created empty on first use."""
        return self.readouts.setdefault(name, np.zeros((2, self.num_classes), dtype=np.int64))

    def add_readout(self, name: str, truth_classes: np.ndarray, predicted: np.ndarray) -> None:
        """Add per-digit class readings (e.g. "isolated"); background counts as wrong."""
        truth_classes = np.asarray(truth_classes, dtype=np.int64).reshape(-1)
        correct = truth_classes == np.asarray(predicted).reshape(-1)
        counts = self._readout(name)
        counts[0] += np.bincount(truth_classes[correct], minlength=self.num_classes)
        counts[1] += np.bincount(truth_classes, minlength=self.num_classes)

    def accuracy(self, name: str, class_id: int | None = None) -> float | None:
        """Fraction of digits readout `name` got right (of one class); None if unmeasured."""
        if name not in self.readouts:
            return None
        right, total = (
            self.readouts[name] if class_id is None else self.readouts[name][:, [class_id]]
        )
        return _mean(right.sum(), total.sum())

    def merge(self, other: Tally) -> None:
        """Add another tally's counts into this one."""
        self.images += other.images
        for name in ("tp", "fp", "fn", "confusion"):
            getattr(self, name).__iadd__(getattr(other, name))
        for name, counts in other.readouts.items():
            self._readout(name).__iadd__(counts)
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def precision(self) -> float:
        """Matched detections / all detections."""
        return _ratio(self.tp.sum(), self.tp.sum() + self.fp.sum())

    @property
    def recall(self) -> float:
        """Matched truths / all truths."""
        return _ratio(self.tp.sum(), self.tp.sum() + self.fn.sum())

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall, from the counts: 2TP / (2TP + FP + FN)."""
        tp = self.tp.sum()
        return _ratio(2 * tp, 2 * tp + self.fp.sum() + self.fn.sum())

    @property
    def count_match(self) -> float | None:
        """Fraction of images with as many detections as digits; None before any image."""
        return _mean(self.count_matches, self.images)

    @property
    def string_exact(self) -> float | None:
        """Fraction of truth lines read exactly; None when no truth carried lines."""
        return _mean(self.lines_exact, self.lines)

    def string_figures(self) -> dict[str, float]:
        """Precision, recall and F1 of the digits aligned in strings (rules in matching)."""
        return _prf(self.string_tp, self.string_fp, self.string_fn)

    @property
    def loc_error(self) -> float | None:
        """Mean centre distance (pixels) of localization matches; None when there are none."""
        return _mean(self.loc_error_sum, self.loc_matches)

    def per_class(self) -> list[dict[str, float]]:
        """Precision, recall, F1, support and readout accuracies of each class."""
        rows = []
        for c in range(self.num_classes):
            tp, fp, fn = int(self.tp[c]), int(self.fp[c]), int(self.fn[c])
            rows.append(
                {
                    "class_id": c,
                    **_prf(tp, fp, fn),
                    "support": tp + fn,
                    **{f"{name}_accuracy": self.accuracy(name, c) for name in self.readouts},
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        """The figures as plain JSON-ready values."""
        return {
            "images": self.images,
            "objects": int(self.tp.sum() + self.fn.sum()),
            "detections": int(self.tp.sum() + self.fp.sum()),
            "tp": int(self.tp.sum()),
            "fp": int(self.fp.sum()),
            "fn": int(self.fn.sum()),
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            **{f"{name}_accuracy": self.accuracy(name) for name in self.readouts},
            "loc_error_px": self.loc_error,
            "count_match": self.count_match,
            **(self._string_summary() if self.lines else {}),
            "per_class": self.per_class(),
            "confusion": self.confusion.tolist(),
        }

    def _string_summary(self) -> dict[str, Any]:
        """The string figures, prefixed "string_", with their counts."""
        figures = {f"string_{name}": value for name, value in self.string_figures().items()}
        return {
            "line_images": self.line_images,
            "lines": self.lines,
            "lines_exact": self.lines_exact,
            "string_exact_match": self.string_exact,
            "string_tp": self.string_tp,
            "string_fp": self.string_fp,
            "string_fn": self.string_fn,
            **figures,
        }


# detect(image) -> (boxes (N, 4), class ids (N,), scores (N,));
# a readout(image, truth boxes) -> the class (or background) it gives each truth digit.
DetectFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
ReadoutFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def isolated_classifier(detector: Detector) -> ReadoutFn:
    """Readout "isolated": the detector's classifier verdict on each truth digit alone.

    The scene goes through the detector's own preprocessing (polarity, lighting), each truth
    frame is cut out at 28x28 and run through the model as its classifier cell was trained to
    read it (alone, or padded to a multiple of the stride: `Preprocessor.windows`), read at the
    model's `classifier_cell`. ModelContractError if the metadata lacks that cell.
    """
    cell = detector.info.classifier_cell
    if cell is None:
        raise ModelContractError(
            f"{detector.model_path}: metadata lacks classifier_cell, so isolated accuracy "
            "cannot be measured; re-export the model"
        )

    def classify(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        prepared, _ = detector.preprocessor.prepare(image)
        windows = detector.preprocessor.windows(np.stack(isolated_crops(prepared, boxes)))
        return classifier_cell_scores(detector.backend.run, windows, cell).argmax(axis=-1)

    return classify


def detector_functions(detector: Detector) -> tuple[DetectFn, dict[str, ReadoutFn]]:
    """`detect` for `detector` and its readouts: "isolated" (see `isolated_classifier`) and,
    when the first scale is 1, "grid": the argmax of the grid cell under each truth centre.

    F1 against them splits the loss: isolated -> grid is what convolutionalization and scene
    context cost, grid -> F1 what grouping (and the other scales) cost.
    """
    last: dict[str, Result] = {}

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        last["result"] = result = detector(image)
        found = result.detections
        return found.xyxy, found.class_id, found.score

    def grid(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        result = last["result"]  # evaluate_scene_set runs detect on this image first
        rows_cols = result.scores.shape[:2]
        centres = np.floor(box_centres(boxes)).astype(np.int64)
        cells = [
            result.geometry.pixel_cells(length, count)[np.clip(centres[:, axis], 0, length - 1)]
            for axis, length, count in (
                (1, image.shape[0], rows_cols[0]),
                (0, image.shape[1], rows_cols[1]),
            )
        ]
        classes = result.scores[cells[0], cells[1]].argmax(axis=-1)
        return np.where((cells[0] >= 0) & (cells[1] >= 0), classes, result.background)

    readouts = {"isolated": isolated_classifier(detector)}
    if detector.scales[0] == 1.0:  # Result.scores is the first scale's grid
        readouts["grid"] = grid
    return detect, readouts


def evaluate_scene_set(
    scenes: SceneSet,
    detect: DetectFn,
    readouts: dict[str, ReadoutFn] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Tally]:
    """Run `detect` on every scene and tally per style; key "all" sums the styles.

    Each readout, called on a scene right after `detect`, adds its accuracy on the truth digits
    (readouts of MNIST frames, such as "isolated", skip scenes whose truth boxes are tight ink:
    their 28x28 crops would squash them); scenes whose truth carries lines add the string
    counts of the detections read into lines.
    """
    tallies: dict[str, Tally] = {}
    for number, truth in enumerate(scenes.truths, start=1):
        image = scenes.image(truth)
        tally = tallies.setdefault(truth.style, Tally())
        boxes, classes, scores = detect(image)
        lines = group_lines(boxes) if truth.lines else []
        tally.add_image(truth.boxes, truth.classes, boxes, classes, scores, truth.lines, lines)
        for name, read in (readouts or {}).items():
            if len(truth.classes) and not (name in FRAME_READOUTS and truth.box_kind == "ink"):
                tally.add_readout(name, truth.classes, read(image, truth.boxes))
        if progress is not None:
            progress(number, len(scenes.truths))
    total = Tally()
    for tally in tallies.values():
        total.merge(tally)
    return {**dict(sorted(tallies.items())), "all": total}


def _figure(value: float | None, spec: str) -> str:
    """`value` formatted by `spec`, or "-" when it was not measured."""
    return "-" if value is None else format(value, spec)


def format_report(tallies: dict[str, Tally], labels: Iterable[str] | None = None) -> str:
    """A readable table of `evaluate_scene_set`'s tallies: P/R/F1, readout accuracies,
    localization error and count match per style, string figures of the styles with lines, F1
    per class and style, and the confusion matrix of all styles."""
    names = list(labels or [str(c) for c in range(NUM_DIGITS)])[:NUM_DIGITS]
    readouts = list(tallies["all"].readouts)
    width = max(11, *(len(style) + 2 for style in tallies))
    lines = [
        f"{'style':<{width}}{'images':>7}{'digits':>8}{'dets':>7}{'P':>8}{'R':>8}{'F1':>8}"
        + "".join(f"{name:>10}" for name in readouts)
        + f"{'F1-iso':>8}{'loc px':>8}{'count':>8}"
    ]
    for style, t in tallies.items():
        s = t.summary()
        accuracies = [t.accuracy(name) for name in readouts]
        isolated = t.accuracy("isolated")
        lines.append(
            f"{style:<{width}}{s['images']:>7}{s['objects']:>8}{s['detections']:>7}"
            f"{t.precision:>8.4f}{t.recall:>8.4f}{t.f1:>8.4f}"
            + "".join(f"{_figure(a, '.4f'):>10}" for a in accuracies)
            + f"{_figure(None if isolated is None else t.f1 - isolated, '+.4f'):>8}"
            + f"{_figure(t.loc_error, '.2f'):>8}{_figure(t.count_match, '.4f'):>8}"
        )
    with_lines = {style: t for style, t in tallies.items() if t.lines}
    if with_lines:
        lines += [
            "",
            f"{'strings':<{width}}{'images':>7}{'lines':>8}{'exact':>8}"
            f"{'digit P':>9}{'digit R':>9}{'digit F1':>9}",
        ]
        for style, t in with_lines.items():
            figures = t.string_figures()
            lines.append(
                f"{style:<{width}}{t.line_images:>7}{t.lines:>8}{_figure(t.string_exact, '.4f'):>8}"
                + "".join(f"{figures[name]:>9.4f}" for name in ("precision", "recall", "f1"))
            )
    lines += [
        "",
        f"{'F1 per class':<{width + 1}}" + "".join(f"{style:>{width}}" for style in tallies),
    ]
    per_class = {style: t.per_class() for style, t in tallies.items()}
    for c, name in enumerate(names):
        row = "".join(f"{per_class[style][c]['f1']:>{width}.4f}" for style in tallies)
        lines.append(f"  {name:<{width - 1}}{row}")
    confusion = tallies["all"].confusion
    header = [*names, "none"]
    lines += ["", "confusion (rows: true class, columns: detected class; all styles)"]
    lines.append("      " + "".join(f"{h:>6}" for h in header))
    for name, row in zip(header, confusion, strict=True):
        lines.append(f"{name:>6}" + "".join(f"{v:>6}" for v in row))
    return "\n".join(lines)
