"""Real images with per-digit boxes in COCO form, read as a scene set, and their fixed splits.

A COCO folder holds `annotations.json` (images, annotations with `bbox` = x, y, width, height
and `category_id`, categories whose names are the digits) and the image files under the paths
the annotations name, directly or in `images/`. Each image becomes one `Truth` whose objects
are its digit boxes (tight ink boxes, as people draw them) and whose one written line is all of
them left to right: a cheque amount, a meter reading or a date read as one string.

`CocoImageIds` reads only a COCO file's image list, so that detections written as COCO results
carry the ids of the ground truth they are scored against.

Splits are fixed by file name, not by order or a seed, so that a file never moves between
them when the set grows: the SHA-256 of the name picks "test" (25%, held out: never used to
train or to tune), "dev" (15%, for choosing settings) or "train" (60%).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import numpy as np
from convdet.data.scenes import SceneSet, Truth
from convdet.runtime.defaults import COCO_SPLITS as SPLITS
from convdet.runtime.errors import DataError, OptionError

ANNOTATIONS_FILE = "annotations.json"
_SPLIT_BUCKETS = (("test", 5), ("dev", 3), ("train", 12))  # out of 20


def split_of(file_name: str) -> str:
    """The fixed split ("train", "dev" or "test") of an image, from its file name alone."""
    bucket = int.from_bytes(hashlib.sha256(Path(file_name).name.encode()).digest()[:4], "big")
    bucket %= sum(size for _, size in _SPLIT_BUCKETS)
    for split, size in _SPLIT_BUCKETS:
        if bucket < size:
            return split
        bucket -= size
    raise AssertionError("unreachable: the buckets cover 0..19")


def is_coco_folder(path: str | Path) -> bool:
    """True if `path` is a folder holding a COCO `annotations.json`."""
    return (Path(path) / ANNOTATIONS_FILE).is_file()


def _digit_of_category(categories: list[dict[str, Any]]) -> dict[int, int]:
    """category_id -> digit 0..9, from category names "0".."9"; other categories are dropped."""
    digits = {}
    for category in categories:
        name = str(category.get("name", "")).strip()
        if len(name) == 1 and name.isdigit():
            digits[int(category["id"])] = int(name)
    if not digits:
        raise DataError("no category is named after a digit 0-9")
    return digits


def _image_path(root: Path, file_name: str) -> str:
    """The image's path relative to `root`: as named, or under images/."""
    for relative in (file_name, f"images/{file_name}"):
        if (root / relative).is_file():
            return relative
    raise DataError(f"{root}: image {file_name!r} not found (nor under images/)")


def load_coco_set(path: str | Path, split: str = "all", style: str = "") -> SceneSet:
    """Read a COCO folder as a scene set of one `split` (see the module doc); every truth gets
    style `style` (default: the folder's name). DataError naming the file when it is wrong."""
    root = Path(path)
    if split not in SPLITS:
        raise OptionError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    annotations_path = root / ANNOTATIONS_FILE
    try:
        coco = json.loads(annotations_path.read_text(encoding="utf-8"))
        digits = _digit_of_category(coco["categories"])
        objects: dict[int, list[tuple[list[float], int]]] = {}
        for annotation in coco["annotations"]:
            category = int(annotation["category_id"])
            if category in digits:
                x, y, width, height = (float(v) for v in annotation["bbox"])
                box = [x, y, x + width, y + height]
                objects.setdefault(int(annotation["image_id"]), []).append((box, digits[category]))
        images = sorted(coco["images"], key=lambda image: str(image["file_name"]))
        truths = _truths(root, images, objects, split, style or root.resolve().name)
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise DataError(
            f"{annotations_path}: not a COCO digit annotation file ({error})"
        ) from error
    manifest = {"source": str(root), "format": "coco", "split": split, "images": len(truths)}
    return SceneSet(root=root, manifest=manifest, truths=tuple(truths))


def _truths(
    root: Path,
    images: list[dict[str, Any]],
    objects: dict[int, list[tuple[list[float], int]]],
    split: str,
    style: str,
) -> list[Truth]:
    """One Truth per image of `split`, its digits left to right as one written line."""
    truths = []
    for image in images:
        file_name = str(image["file_name"])
        if split != "all" and split_of(file_name) != split:
            continue
        placed = sorted(objects.get(int(image["id"]), []), key=lambda item: item[0][0] + item[0][2])
        boxes = np.array([box for box, _ in placed], dtype=np.float64).reshape(-1, 4)
        truths.append(
            Truth(
                file=_image_path(root, file_name),
                width=int(image["width"]),
                height=int(image["height"]),
                style=style,
                boxes=boxes,
                classes=np.array([digit for _, digit in placed], dtype=np.int64),
                indices=np.arange(len(placed), dtype=np.int64),
                lines=(tuple(range(len(placed))),) if placed else (),
                box_kind="ink",
            )
        )
    return truths


class CocoImageIds:
    """The image ids of a COCO ground-truth file by file name, so that COCO results score
    against it (pycocotools matches results to truths by image_id alone). An input is matched
    by its path relative to its SOURCE folder, else by its base name when a single image of the
    file has that base name (a file_name of images/x.png is matched by x.png); each image is
    given to one input, as a second one's detections would count against it twice."""

    def __init__(self, path: Path, ids: dict[str, int]) -> None:
        self.path = path
        self.ids = ids
        names_of: dict[str, list[str]] = {}
        for name in ids:
            names_of.setdefault(PurePosixPath(name).name, []).append(name)
        self.by_base = {base: names[0] for base, names in names_of.items() if len(names) == 1}
        self.given: dict[int, str] = {}

    @classmethod
    def load(cls, path: str | Path) -> CocoImageIds:
        """The ids of the "images" list ({"id", "file_name"}, other keys ignored) of the COCO
        file `path`; DataError naming the file when it cannot be read, is not JSON, or has no
        images, an image without an integer id or a file_name, or one file_name twice."""
        path = Path(path)
        if path.exists() and not path.is_file():  # a FIFO would block, a device never end
            raise DataError(f"{path}: not a regular file (a folder, device or FIFO)")
        try:
            coco = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise DataError(f"{path}: unreadable: {error.strerror or error}") from None
        except ValueError as error:  # not UTF-8, or not JSON
            raise DataError(f"{path}: not a COCO JSON file ({error})") from None
        images = coco.get("images") if isinstance(coco, dict) else None
        if not isinstance(images, list) or not images:
            raise DataError(f'{path}: not a COCO file with images (no "images" list, or empty)')
        ids: dict[str, int] = {}
        for position, image in enumerate(images):
            ok = isinstance(image, dict) and isinstance(image.get("file_name"), str)
            image_id = image.get("id") if ok else None
            if not ok or not isinstance(image_id, int) or isinstance(image_id, bool):
                raise DataError(
                    f'{path}: image {position} of "images" has no integer "id" and '
                    '"file_name" string'
                )
            name = PurePosixPath(image["file_name"]).as_posix()
            if name in ids:
                raise DataError(f"{path}: file_name {name!r} is named by two images")
            ids[name] = image_id
        return cls(path, ids)

    def take(self, relpath: PurePath, source: str) -> int:
        """The id of the image that the input `source` at `relpath` (relative to its SOURCE
        folder) is, now given to it; DataError saying why it has none (no such file name, or
        its image given to an earlier input)."""
        name = PurePosixPath(relpath.as_posix()).as_posix()
        found = name if name in self.ids else self.by_base.get(PurePosixPath(name).name)
        if found is None:
            alone = "" if name == relpath.name else f", nor one alone named {relpath.name}"
            raise DataError(f"not in --coco-images {self.path} (no image named {name}{alone})")
        image_id = self.ids[found]
        if image_id in self.given:
            raise DataError(
                f"its --coco-images image ({found}, id {image_id}) is already "
                f"{self.given[image_id]}'s"
            )
        self.given[image_id] = source
        return image_id
