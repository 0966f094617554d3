"""Subcommands of `convdet`.

Each module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
Modules stay import-light: TensorFlow, onnxruntime and LiteRT are imported inside `run`,
so `convdet --help` and the runtime commands work without the training extra.
"""
