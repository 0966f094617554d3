"""Detection defaults chosen by measurement (models/README.md, ablation), shared by the
Python API and the commands; a module of its own so `convdet --help` stays import-light."""

# Minimum digit probability of a grid cell. On 300 test scenes (models/README.md), F1 was
# 0.9787 at 0.3, 0.9786 at 0.5 and 0.9774 at 0.7 with the shipped deep model, and 0.9772,
# 0.9742 and 0.9674 with a max4 variant (recall falls faster than precision rises).
DEFAULT_CONF = 0.3

# Resize factors a detector accepts: at 1/20 a 640x480 frame still has a few cells, at 8x its
# digits of 2 px become 16 px; further out a frame is all padding or needs gigabytes (a
# 320x240 frame at 100x: 3 GB) for digits no real input holds.
MIN_SCALE = 0.05
MAX_SCALE = 8.0
