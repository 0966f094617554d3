"""Detection defaults chosen by measurement (models/README.md, ablation), shared by the
Python API and the commands; a module of its own so `convdet --help` stays import-light."""

# Minimum digit probability of a grid cell. On 300 test scenes (models/README.md), F1 was
# 0.9787 at 0.3, 0.9786 at 0.5 and 0.9774 at 0.7 with the shipped deep model, and 0.9772,
# 0.9742 and 0.9674 with a max4 variant (recall falls faster than precision rises).
DEFAULT_CONF = 0.3
