"""Allow `python -m convdet ...` as well as the `convdet` console script."""

from convdet.cli import main

raise SystemExit(main())
