"""`convdet train`: train a spec's classifier on MNIST + background and save its detector."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from convdet.options import MAX_SEED, choice, factor_range, given, names, number
from convdet.runtime.defaults import ARCH_NAMES, POOLINGS
from convdet.runtime.defaults import STYLES as STYLE_NAMES

STYLES = ",".join(STYLE_NAMES)  # the stage-2 styles, the default of --styles
ARCHS = ",".join(ARCH_NAMES)  # the architecture specs (export.specs.ARCHS)

CHECKPOINT = "checkpoint"  # the folder in --out where an unfinished run keeps its state
LEGS = "legs"  # the folder in a recipe's --out holding its earlier legs, legs/1, legs/2, ...
# The options a recipe sets for each of its legs, with their defaults for a single run (None on
# the parser, so that giving one beside --recipe is an error rather than silently overridden).
LEG_DEFAULTS = {
    "epochs": 30,
    "scene_epochs": 12,
    "seed": 0,
    "mark_weight": 3.0,
    "real_share": 0.1,
    "real_scale": (1.0, 1.0),
    "padded_windows": False,
    "init": None,
}

HELP = "train a classifier (digits + background) and convolutionalize it [needs convdet[train]]"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `convdet train`: stage 1 trains the 28x28 classifier on augmented digits and
    background patches; stage 2 fine-tunes the convolutionalized detector on whole scenes.
    Values are checked in `run` so errors stay one line."""
    parser.add_argument(
        "--arch",
        default="basic",
        metavar=ARCHS.replace(",", "|"),
        help="architecture spec of the classifier and its detector (default: basic)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="NPZ",
        help="Keras-layout MNIST .npz to train on (default: keras.datasets download)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the trained run: classifier.keras, detector.keras and run.json "
        "(settings, metrics, history), as `convdet export` and --init read it",
    )
    parser.add_argument(
        "--pooling",
        metavar="|".join(POOLINGS),
        help="pooling before the detector head (default: the spec's)",
    )
    parser.add_argument(
        "--epochs",
        metavar="N",
        help="stage 1 epochs over the training digits, augmented anew each epoch and "
        "joined by new background patches (default: 30)",
    )
    parser.add_argument(
        "--batch-size",
        default="128",
        metavar="N",
        help="28x28 images per stage 1 batch, also of the window batches stage 2 interleaves "
        "with its scenes (default: 128)",
    )
    parser.add_argument(
        "--learning-rate",
        default="0.003",
        metavar="X",
        help="stage 1's initial Adam learning rate, cosine-decayed to 2%% of it over the "
        "epochs (default: 0.003)",
    )
    parser.add_argument(
        "--label-smoothing",
        default="0.05",
        metavar="X",
        help="label smoothing of stage 1's cross-entropy loss (default: 0.05)",
    )
    parser.add_argument(
        "--background-ratio",
        default="0.8",
        metavar="X",
        help="background patches drawn per training digit each stage 1 epoch (default: 0.8)",
    )
    parser.add_argument(
        "--background-mix",
        default="",
        metavar="LIST",
        help="relative weights of the kinds of background patch, e.g. "
        "'offcentre=4,seam=2,blank=1'; kinds not named keep theirs (default: blank, noise, "
        "gradient, texture 1 each, offcentre 4, seam 2, camera 4, zoomed 1.5)",
    )
    parser.add_argument(
        "--scene-epochs",
        metavar="N",
        help="epochs of stage 2, fine-tuning the detector on scenes with a target for every "
        "grid cell (default: 12; 0: off)",
    )
    parser.add_argument(
        "--scenes-per-epoch",
        default="2400",
        metavar="N",
        help="stage 2 scenes generated anew each epoch, shared evenly among --styles "
        "(default: 2400)",
    )
    parser.add_argument(
        "--styles",
        default=STYLES,
        metavar="LIST",
        help=f"comma-separated scene styles of stage 2: {STYLES.replace(',', ', ')} "
        "(default: all of them)",
    )
    parser.add_argument(
        "--real",
        type=Path,
        metavar="COCO",
        help="a COCO folder of real images with digit boxes: its train split joins stage 2's "
        "scenes (its dev and test splits never do)",
    )
    parser.add_argument(
        "--real-share",
        metavar="X",
        help="real images per synthetic scene with --real (default: 0.1)",
    )
    parser.add_argument(
        "--real-scale",
        metavar="LO,HI",
        help="with --real, shrink each real image by a factor drawn log-uniformly from LO..HI "
        "(at most 1) as well, so its digits also train at the sizes the image pyramid gives "
        "the larger ones (default: 1,1: their own size)",
    )
    parser.add_argument(
        "--teacher",
        metavar="RUN",
        help="distil from this run's classifier (a `convdet train --out` directory): its "
        "softened probabilities are mixed into the targets",
    )
    parser.add_argument(
        "--distill-weight",
        default="0.5",
        metavar="X",
        help="share of the teacher's probabilities in the targets (default: 0.5)",
    )
    parser.add_argument(
        "--init",
        type=Path,
        metavar="RUN",
        help="skip stage 1 and fine-tune the detector of this run (a `convdet train --out` "
        "directory of the same --arch) with stage 2 from where it ended; or of an ONNX file "
        "`convdet export` wrote, such as a shipped model (models/wide.onnx). An --arch that "
        "grows from another (wide_res from wide) starts from a run or file of that one, its "
        "new blocks passing their input through until trained",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="go on with the unfinished run in --out (killed or stopped: each stage saves its "
        "state in DIR/checkpoint after every epoch), with the same options",
    )
    parser.add_argument(
        "--recipe",
        action="store_true",
        help="train --arch the way its shipped model was made (wide, deep): the recipe's "
        "runs one after another, the earlier ones in DIR/legs, the last in DIR; needs --real; "
        "sets --epochs, --scene-epochs, --seed, --mark-weight, --real-share, --real-scale, "
        "--padded-windows and --init itself",
    )
    parser.add_argument(
        "--mark-weight",
        metavar="X",
        help="stage 2 loss weight of background cells near ink: print, lines, scribbles, parts "
        "of digits (default: 3; digit cells weigh 4, other cells 1)",
    )
    parser.add_argument(
        "--padded-windows",
        action="store_true",
        default=None,
        help="stage 2 trains the classifier cell on 28x28 windows padded to 32x32 (bottom and "
        "right, as frames are padded) instead of alone; the export then writes ONNX graphs "
        "with explicit padding, which OpenCV 5.0's new DNN engine also reads right",
    )
    parser.add_argument(
        "--limit",
        metavar="N",
        help="train on the first N training digits only, a tenth of them held out for "
        "validation: quick runs and tests (default: all of them)",
    )
    parser.add_argument(
        "--seed",
        metavar="N",
        help="random seed of the weights, augmentation, background patches and stage 2 "
        "scenes (default: 0)",
    )


def _check_options(args: argparse.Namespace) -> None:
    """Convert and check option values in place; one-line CommandError on the first bad one.
    The options a recipe sets stay None when not given."""
    args.arch = choice("--arch", ARCH_NAMES)(args.arch)
    args.pooling = given(args.pooling, choice("--pooling", POOLINGS))
    args.epochs = given(args.epochs, number("--epochs", int, 1))
    args.batch_size = number("--batch-size", int, 1)(args.batch_size)
    args.learning_rate = number("--learning-rate", float, 0.0)(args.learning_rate)
    args.label_smoothing = number("--label-smoothing", float, 0.0, 1.0)(args.label_smoothing)
    args.background_ratio = number("--background-ratio", float, 0.0)(args.background_ratio)
    args.scene_epochs = given(args.scene_epochs, number("--scene-epochs", int, 0))
    args.scenes_per_epoch = number("--scenes-per-epoch", int, 1)(args.scenes_per_epoch)
    args.styles = names("--styles", STYLE_NAMES)(args.styles)
    args.real_share = given(args.real_share, number("--real-share", float, 0.0, 1.0))
    args.real_scale = given(args.real_scale, factor_range("--real-scale"))
    args.distill_weight = number("--distill-weight", float, 0.0, 1.0)(args.distill_weight)
    args.mark_weight = given(args.mark_weight, number("--mark-weight", float, 0.0))
    args.limit = given(args.limit, number("--limit", int, 1))
    args.seed = given(args.seed, number("--seed", int, 0, MAX_SEED))


def _check_init(init: Path, arch: str) -> None:
    """CommandError unless `init` is a finished training run of `arch` (or of the architecture
    it grows from) or such an ONNX detector that `convdet export` wrote."""
    from convdet.cli import CommandError
    from convdet.export.specs import ARCHS

    starts = {arch, ARCHS[arch].grows_from} - {None}
    wanted = " or ".join(repr(name) for name in sorted(starts))

    if init.suffix == ".onnx":
        from convdet.export.from_onnx import ExportedModelError, exported_info

        try:
            exported = exported_info(init).arch
        except ExportedModelError as error:
            raise CommandError(f"--init {init}: {error}") from None
        if exported not in starts:
            raise CommandError(f"--init {init}: a detector of --arch {exported!r} (need {wanted})")
        return
    try:
        run = json.loads((init / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CommandError(f"--init {init}: not a convdet train run ({error})") from None
    if run.get("arch") not in starts or not (init / "classifier.keras").is_file():
        raise CommandError(
            f"--init {init}: a run of --arch {run.get('arch')!r} (need {wanted}, with "
            "classifier.keras)"
        )


def _checkpoint(out: Path, resume: bool, config: dict[str, object]) -> Path:
    """The checkpoint folder of a run in `out`, holding `config`; CommandError when an
    unfinished run is there without `resume`, or `resume` finds none or other options."""
    from convdet.cli import CommandError

    folder = out / CHECKPOINT
    saved = folder / "config.json"
    if not resume:
        if folder.exists():
            raise CommandError(
                f"--out {out}: holds an unfinished run ({folder}); add --resume to go on with "
                "it, or choose another --out"
            )
        folder.mkdir(parents=True)
        saved.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return folder
    try:
        before = json.loads(saved.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CommandError(f"--resume: {out} holds no unfinished run ({saved})") from None
    keys = config.keys() | before.keys()
    changed = sorted(key for key in keys if config.get(key) != before.get(key))
    if changed:
        raise CommandError(
            f"--resume: options differ from the unfinished run's ({', '.join(changed)})"
        )
    return folder


def run(args: argparse.Namespace) -> int:
    """Train one run, or with --recipe each leg of --arch's recipe in turn."""
    _check_options(args)
    if args.recipe:
        return _run_recipe(args)
    for name, default in LEG_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return _train(args)


def _run_recipe(args: argparse.Namespace) -> int:
    """The legs of --arch's recipe, each fine-tuning the one before; finished legs are kept
    and skipped with --resume, so a recipe of several hours can span sessions."""
    from convdet.cli import CommandError
    from convdet.export.recipes import RECIPES

    given = [name for name in LEG_DEFAULTS if getattr(args, name) is not None]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise CommandError(f"--recipe sets {options} itself; leave them out")
    recipe = RECIPES.get(args.arch)
    if recipe is None:
        raise CommandError(
            f"--recipe: no recipe for --arch {args.arch} (have {', '.join(RECIPES)})"
        )
    if recipe.real and args.real is None:
        raise CommandError(
            f"--recipe: the {args.arch} recipe trains on real handwriting too; give --real COCO"
        )
    out: Path = args.out
    started = (out / LEGS).exists() or (out / CHECKPOINT).exists()
    if started and not args.resume:
        raise CommandError(
            f"--out {out}: holds an unfinished recipe; add --resume to go on with it, or choose "
            "another --out"
        )
    previous = None
    if recipe.grows is not None:
        grown = argparse.Namespace(**vars(args))
        grown.arch, grown.out = recipe.grows, out / LEGS / recipe.grows
        print(f"{args.arch} recipe: grows the {recipe.grows} recipe's detector ({grown.out})")
        _run_recipe(grown)
        previous = grown.out
    for leg_number, leg in enumerate(recipe.legs, 1):
        leg_out = out if leg_number == len(recipe.legs) else out / LEGS / str(leg_number)
        if (leg_out / "run.json").is_file() and not (leg_out / CHECKPOINT).exists():
            print(f"{args.arch} recipe: leg {leg_number} of {len(recipe.legs)} done ({leg_out})")
        else:
            print(f"{args.arch} recipe: leg {leg_number} of {len(recipe.legs)} -> {leg_out}")
            leg_args = argparse.Namespace(**vars(args))
            leg_args.out = leg_out
            leg_args.resume = (leg_out / CHECKPOINT).exists()
            leg_args.init = previous
            if leg.from_export:
                leg_args.init = _exported_detector(previous)
            leg_args.epochs = LEG_DEFAULTS["epochs"] if leg.epochs is None else leg.epochs
            leg_args.scene_epochs = leg.scene_epochs
            leg_args.seed = leg.seed
            leg_args.mark_weight = leg.mark_weight
            leg_args.real_share = leg.real_share
            leg_args.real_scale = leg.real_scale
            leg_args.padded_windows = leg.padded_windows
            _train(leg_args)
        previous = leg_out
    return 0


def _exported_detector(run_dir: Path) -> Path:
    """The ONNX detector of a finished run as `convdet export` writes it, kept in the run
    (written once, through a temporary name, so a killed write is not taken for a file)."""
    path = run_dir / "detector.onnx"
    if not path.is_file():
        import keras

        from convdet.export.package import model_info
        from convdet.export.to_onnx import to_onnx

        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        partial = path.with_name(path.name + ".partial")
        to_onnx(keras.models.load_model(run_dir / "detector.keras"), model_info(run), partial)
        partial.replace(path)
    return path


def _train(args: argparse.Namespace) -> int:
    """Train, print test accuracy for digits and background, save the run."""
    from convdet.cli import CommandError
    from convdet.export.background import BackgroundMix
    from convdet.export.distill import Distillation

    if args.data is not None and not args.data.is_file():
        raise CommandError(f"--data {args.data}: no such file")
    from convdet.data.coco import is_coco_folder

    if args.real is not None and not is_coco_folder(args.real):
        raise CommandError(f"--real {args.real}: not a COCO folder (no annotations.json)")
    if args.init is not None:
        _check_init(args.init, args.arch)
    mix = BackgroundMix.parse(args.background_mix)
    distillation = None if args.teacher is None else Distillation(args.teacher, args.distill_weight)

    from convdet.export.data import load_mnist
    from convdet.export.finetune import FinetuneConfig
    from convdet.export.train import TrainConfig, save_run, train

    config = TrainConfig(
        arch=args.arch,
        pooling=args.pooling,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        label_smoothing=args.label_smoothing,
        background_ratio=args.background_ratio,
        limit=args.limit,
        seed=args.seed,
        mix=mix,
        scenes=FinetuneConfig(
            epochs=args.scene_epochs,
            scenes_per_epoch=args.scenes_per_epoch,
            styles=args.styles,
            real=None if args.real is None else str(args.real),
            real_share=args.real_share if args.real is not None else 0.0,
            real_scale=args.real_scale,
            mark_weight=args.mark_weight,
            padded_windows=args.padded_windows,
        ),
        init=None if args.init is None else str(args.init),
        distillation=distillation,
    )
    from dataclasses import asdict

    data = load_mnist(args.data)
    options = json.loads(json.dumps({**asdict(config), "data": data.source}))
    checkpoint = _checkpoint(args.out, args.resume, options)
    result = train(data, config, checkpoint)
    save_run(result, config, data, args.out)
    shutil.rmtree(checkpoint)  # the run is saved: nothing is left to resume
    metrics = result.metrics
    print(
        f"{args.arch}: digit accuracy {metrics['digit_accuracy']:.2%} on {len(data.x_test)} test "
        f"digits, background recall {metrics['background_recall']:.2%}; saved to {args.out}"
    )
    return 0
