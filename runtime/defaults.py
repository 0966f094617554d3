"""Detection defaults chosen by measurement (models/README.md, ablation), shared by the
Python API and the commands; a module of its own so `convdet --help` stays import-light."""

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
