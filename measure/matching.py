"""The matching rule: which detection counts for which truth digit, and how a read string lines
up with the true one; `convdet.measure.evaluate` counts with it, the export's int8 check and the
benchmark compare two runs' detections by it.

Matching rule. A detection matches a truth object when both have the same class and the detection's
box centre lies inside the truth box (in generated scenes the placed 28x28 MNIST frame, scaled, see
convdet.data.scenes; in COCO folders the tight ink box drawn around the digit, see
convdet.data.coco) grown by 30% about its centre, i.e. width and height times 1.3, edges included.
Detections are taken in order of decreasing score (ties: detector order); each takes the nearest
(by centre distance) still-unmatched truth it qualifies for, so matching is one-to-one and a
second detection of the same digit is a false positive. Unmatched detections are false
positives, unmatched truths false negatives.

The same greedy pass without the class condition gives "localization matches": the truth digit
each detection landed on, whatever class either carries.

Strings, for images whose truth carries written lines. Each read line is assigned to the truth
line holding most of its localization-matched digits (ties: the earlier truth line; none: no
truth line), so a misread digit still counts in its line. A truth line's read string is the
concatenation, in reading order, of the read lines assigned to it (a number read as two lines
because of a wide gap is still read whole). Read and true strings are aligned by a shortest edit
(Levenshtein) alignment, the one with the most matches among equally short ones: aligned equal
digits are true positives, the other read digits false positives, the other true digits false
negatives (a substitution is one of each); digits of read lines assigned to no truth line are
false positives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from convdet.runtime.detections import Detections

GROW = 0.3


def box_centres(boxes: np.ndarray) -> np.ndarray:
    """(N, 2) centres of (N, 4) xyxy boxes."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, :2] + boxes[:, 2:]) / 2.0


def match_greedy(
    truth_boxes: np.ndarray,
    truth_classes: np.ndarray | None,
    det_boxes: np.ndarray,
    det_classes: np.ndarray | None,
    det_scores: np.ndarray,
    grow: float = GROW,
) -> np.ndarray:
    """For each detection, the index of the truth it matches or -1 (rule in the module doc).

    Pass None for both class arrays to match on location only.
    """
    truth_boxes = np.asarray(truth_boxes, dtype=np.float64).reshape(-1, 4)
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    truth_centres = box_centres(truth_boxes)
    half = (truth_boxes[:, 2:] - truth_boxes[:, :2]) * (1.0 + grow) / 2.0
    low, high = truth_centres - half, truth_centres + half
    matched = np.full(len(det_boxes), -1, dtype=np.int64)
    free = np.ones(len(truth_boxes), dtype=bool)
    for d in np.argsort(-np.asarray(det_scores, dtype=np.float64), kind="stable"):
        centre = (det_boxes[d, :2] + det_boxes[d, 2:]) / 2.0
        ok = free & np.all((low <= centre) & (centre <= high), axis=1)
        if truth_classes is not None and det_classes is not None:
            ok &= np.asarray(truth_classes) == det_classes[d]
        if ok.any():
            candidates = np.flatnonzero(ok)
            distances = np.linalg.norm(truth_centres[candidates] - centre, axis=1)
            t = candidates[np.argmin(distances)]
            matched[d] = t
            free[t] = False
    return matched


def agreeing_detections(expected: Detections, found: Detections) -> int:
    """How many of `found` lie on one of `expected`'s of the same class, one to one, by the
    evaluation's rule (`match_greedy`, `expected` as the truth): two runs' detections compared."""
    matches = match_greedy(
        expected.xyxy, expected.class_id, found.xyxy, found.class_id, found.score
    )
    return int((matches >= 0).sum())


class StringCounts(NamedTuple):
    """One image's string counts: aligned digits read right (tp), read in excess (fp) and missed
    (fn), and the truth lines read exactly."""

    tp: int
    fp: int
    fn: int
    exact: int


def string_counts(
    truth_classes: np.ndarray,
    truth_lines: Sequence[Sequence[int]],
    det_classes: np.ndarray,
    read_lines: Sequence[Sequence[int]],
    located: np.ndarray,
) -> StringCounts:
    """Assign `read_lines` (detection indices) to `truth_lines` (object indices) by the
    localization matches `located` and count the aligned digits (rule in the module doc)."""
    truth_classes = np.asarray(truth_classes, dtype=np.int64).reshape(-1)
    det_classes = np.asarray(det_classes, dtype=np.int64).reshape(-1)
    line_of = np.full(len(truth_classes) + 1, -1, dtype=np.int64)  # [-1]: no object
    for number, line in enumerate(truth_lines):
        line_of[list(line)] = number
    assigned: list[list[int]] = [[] for _ in truth_lines]
    tp = fp = fn = exact = 0
    for read in read_lines:
        votes = line_of[located[np.asarray(read, dtype=np.int64)]]
        votes = votes[votes >= 0]
        if votes.size:
            assigned[int(np.bincount(votes).argmax())] += list(read)
        else:
            fp += len(read)
    for line, indices in zip(truth_lines, assigned, strict=True):
        read_digits = det_classes[np.array(indices, dtype=np.int64)]
        true_digits = truth_classes[np.array(line, dtype=np.int64)]
        matches = alignment_matches(read_digits, true_digits)
        tp += matches
        fp += len(read_digits) - matches
        fn += len(true_digits) - matches
        exact += int(np.array_equal(read_digits, true_digits))
    return StringCounts(tp, fp, fn, exact)


def alignment_matches(read: Sequence[int], true: Sequence[int]) -> int:
    """How many equal symbols a shortest edit (Levenshtein) alignment of `read` and `true` pairs
    up, taking the alignment with the most of them among equally short ones."""
    # Written here, a row-vectorized DP, rather than taken from a library: the runtime stays
    # numpy + OpenCV (board installs), and the metric needs that one tie-break defined.
    # Cost = step * edits - matches: one edit outweighs any number of matches.
    read, true = np.asarray(read).reshape(-1), np.asarray(true).reshape(-1)
    if not len(read) or not len(true):
        return 0
    step = len(true) + 1
    offsets = np.arange(len(true) + 1) * step
    row = offsets.copy()  # row[j]: the cost of aligning the read symbols so far with true[:j]
    for symbol in read:
        best = np.empty_like(row)
        best[0] = row[0] + step
        # Pair the symbol with true[j - 1] (a match or a substitution), or leave it out.
        best[1:] = np.minimum(row[:-1] + np.where(true == symbol, -1, step), row[1:] + step)
        # Then leave true symbols out along the row: row[j] = min over k <= j of best[k] + edits.
        row = np.minimum.accumulate(best - offsets) + offsets
    edits = -(-row[-1] // step)
    return int(edits * step - row[-1])
