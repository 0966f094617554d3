"""`ConvdetError`: the base of every error convdet reports to a user as one line.

The command line catches these (and only these, besides OSError) and prints their message;
anything else is a bug and keeps its traceback. Each subclass also keeps the builtin base its
callers catch (`OSError` for files and devices, `ValueError` for content), so code written
against those still works. Free of imports: the parser for `--help` imports this module.
"""


class ConvdetError(Exception):
    """A user-facing error: a bad input, option, model file or output path, said in one line."""


class DataError(ConvdetError, ValueError):
    """A file or folder the user named whose content convdet cannot use (an .npz that is not
    MNIST, a folder that is not a scene set, a COCO file without images), naming the file."""


class OptionError(ConvdetError, ValueError):
    """Options a run refuses before it starts (an unknown name or choice, a value out of range,
    a model its backend does not run, an output over an input), said in one line naming the
    option."""
