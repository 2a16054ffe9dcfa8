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


def check_positive_int(name: str, value) -> int:
    """``value`` as an int when it is a positive int (``bool`` is not).

    Raises:
        ImgclfError: e.g. ``count must be a positive int. Received: 0``.
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ImgclfError(f"{name} must be a positive int. Received: {value!r}")
    return int(value)


def check_one_of(name: str, value, allowed):
    """``value`` when it is one of ``allowed`` (a value of any type, even an unhashable one, is checked).

    Raises:
        ImgclfError: e.g. ``color_mode must be one of ['grayscale', 'rgb']. Received: []``.
    """
    try:
        ok = value in allowed
    except TypeError:  # an unhashable value (a list from a YAML file) against a dict or set
        ok = False
    if not ok:
        shown = sorted(allowed) if isinstance(allowed, (dict, set, frozenset)) else list(allowed)
        raise ImgclfError(f"{name} must be one of {shown}. Received: {value!r}")
    return value
