"""Detection defaults chosen by measurement (models/README.md, ablation) and the names of the
choices the commands offer, shared by the Python API and the commands; a module of its own,
free of imports, so `convdet --help` shows them without loading numpy or OpenCV."""

# Minimum score of a detection (its peak cell's digit probability times its class's share), and
# the digit probability at which the grid colours a cell. Measured with the wide model: camera dev
# scenes F1 0.631 / 0.658 / 0.641 and ORAND-CAR-A dev box F1 0.730 / 0.701 / 0.725 for a cell
# threshold of 0.3 (box scores could be lower), box scores >= 0.3, and box scores >= 0.2; classic
# dev 0.982 throughout. 0.2 keeps real handwriting's figures with the score meaning what it says.
DEFAULT_CONF = 0.2

# Resize factors a detector accepts: at 1/20 a 640x480 frame still has a few cells, at 8x its
# digits of 2 px become 16 px; further out a frame is all padding or needs gigabytes (a
# 320x240 frame at 100x: 3 GB) for digits no real input holds.
MIN_SCALE = 0.05
MAX_SCALE = 8.0

# Frame polarity (runtime.preprocess): invert to light-on-dark when the frame has dark ink on
# paper ("auto", decided per frame), always ("on") or never ("off").
INVERT_MODES = ("auto", "on", "off")
# Sparse inference (runtime.sparse): only where cells see ink when it pays, always, or never.
SPARSE_MODES = ("auto", "on", "off")
# Cells -> boxes (runtime.grouping): local peaks + NMS, or connected components.
GROUPING_METHODS = ("peaks", "components")

# Scene styles (data.scenes): MNIST frames on plain canvases, and handwriting photographed on
# real-looking pages (data.camera).
CLASSIC_STYLES = ("mnist", "paper", "multiscale")
CAMERA_STYLES = ("notebook", "strings", "large", "clutter", "empty")
STYLES = (*CLASSIC_STYLES, *CAMERA_STYLES)
# The fixed splits of a COCO folder (data.coco), and the splits of a Keras MNIST .npz
# (data.digits), in the order of its arrays.
COCO_SPLITS = ("train", "dev", "test", "all")
MNIST_SPLITS = ("train", "test")

# The architecture specs (export.specs.ARCHS, whose keys tests check against these) and the
# pooling before the detector head.
ARCH_NAMES = ("basic", "deep", "separable", "wide", "wide_res")
POOLINGS = ("none", "max3", "max4")
