"""`ConvdetError`: the base of every error convdet reports to a user as one line.

The command line catches these (and only these) and prints their message; anything else is a
bug and keeps its traceback. Each subclass also keeps the builtin base its callers catch
(`OSError` for files and devices, `ValueError` for content), so code written against those
still works.
"""


class ConvdetError(Exception):
    """A user-facing error: a bad input, option, model file or output path, said in one line."""
