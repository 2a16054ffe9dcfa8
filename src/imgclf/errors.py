"""The one exception type imgclf raises for bad input.

The CLI turns an :class:`ImgclfError` into a one-line message and a non-zero exit code, with no
traceback; anything else is a bug and keeps its traceback.
"""


class ImgclfError(ValueError):
    """Bad input from the user: a wrong path, setting or file.

    The message names the bad value and what was expected, e.g.
    ``target_size must be two positive ints. Received: (0, 150)``.
    Subclasses :class:`ValueError` so callers that catch ``ValueError`` keep working.
    """
