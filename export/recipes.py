"""The training recipes of the shipped models, as data: `convdet train --arch A --recipe` runs
A's legs one after another, each a `convdet train` run fine-tuning the one before (`--init`).

A recipe is a chain because stage 2 went on while its loss kept falling, and each new leg draws
scenes the legs before did not see (its own seed). Every leg trains on the same digits
(`--data`) and, with `real`, on the train split of a COCO folder of real handwriting (`--real`).
Settings not named here are `convdet train`'s defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Leg:
    """One run of a recipe. `epochs` is stage 1's (only the first leg has a stage 1; the
    others start from the previous leg's detector); `scene_epochs`, `seed`, `mark_weight`,
    `real_share`, `real_scale` and `padded_windows` are those of `convdet train`.
    `from_export` starts from the previous leg's detector as exported to ONNX (batch norm
    folded into the convolutions), the way a leg trained from a shipped file
    (`--init models/A.onnx`) started."""

    scene_epochs: int
    seed: int = 0
    epochs: int | None = None
    mark_weight: float = 3.0
    real_share: float = 0.1
    real_scale: tuple[float, float] = (1.0, 1.0)
    padded_windows: bool = False
    from_export: bool = False


@dataclass(frozen=True)
class Recipe:
    """The legs that made a shipped model, and whether stage 2 needs real images (`--real`).
    A recipe that `grows` another architecture's model first runs that one's recipe, and its
    legs start from the detector that one ends with (export.specs.ArchSpec.grows_from)."""

    legs: tuple[Leg, ...]
    real: bool = True
    grows: str | None = None

    def __post_init__(self) -> None:
        if not self.legs:
            raise ValueError("a recipe has legs")
        if self.grows is None and self.legs[0].epochs is None:
            raise ValueError("a recipe starts with a leg that has a stage 1 (epochs)")
        if any(leg.epochs is not None for leg in self.legs[0 if self.grows else 1 :]):
            raise ValueError("only the first leg of a recipe that grows none has a stage 1")
        if self.grows is None and self.legs[0].from_export:
            raise ValueError("a recipe's first leg has no leg before it to start from")


# Keyed by architecture (export.specs.ARCHS). basic and separable ship from an older version
# of the training code (the model card says which); today's code cannot remake them exactly.
RECIPES: dict[str, Recipe] = {
    # 20 + 150 stage-2 epochs, about 8.5 hours on 2 CPU cores. From the fifth leg on, the
    # background cells near print, lines and scribbles weigh 5, and from the sixth real
    # handwriting has a larger share of the scenes; from the eighth the classifier cell reads
    # padded windows, so the ONNX export has explicit pads. The ninth started from the
    # eighth's exported file (its run was gone by then). The last five were the first trained
    # on camera pages whose hands write wider or narrower and whose slashes run longer (a run of
    # the recipe today draws every leg's pages so).
    "wide": Recipe(
        legs=(
            Leg(14, epochs=20),
            Leg(10),
            Leg(20, seed=1),
            Leg(16, seed=2),
            Leg(16, seed=3, mark_weight=5.0),
            Leg(8, seed=4, mark_weight=5.0, real_share=0.3),
            Leg(10, seed=5, mark_weight=5.0, real_share=0.4),
            Leg(8, seed=7, mark_weight=5.0, real_share=0.4, padded_windows=True),
            Leg(8, seed=8, mark_weight=5.0, real_share=0.4, padded_windows=True, from_export=True),
            Leg(8, seed=9, mark_weight=5.0, real_share=0.4, padded_windows=True),
            Leg(8, seed=10, mark_weight=5.0, real_share=0.8, padded_windows=True),
            Leg(8, seed=11, mark_weight=5.0, real_share=1.0, padded_windows=True),
            Leg(16, seed=12, mark_weight=5.0, real_share=1.0, padded_windows=True),
        )
    ),
    # The first leg predates the weighting of print and line cells (all background weighs 1).
    # The last reads the classifier cell on padded windows (explicit pads in the ONNX export);
    # it was trained from the exported file of the leg before, its run being gone by then.
    "deep": Recipe(
        legs=(
            Leg(10, epochs=50, mark_weight=1.0),
            Leg(10),
            Leg(6, seed=2, padded_windows=True, from_export=True),
        )
    ),
}
