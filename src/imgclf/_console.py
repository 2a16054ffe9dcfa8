"""The Rich consoles imgclf prints its lines on.

On a terminal Rich wraps to the window and draws progress bars. Anywhere else — a log file, CI, the studio's job
log — Rich would wrap at 80 columns and print a finished bar's last frame: there imgclf writes whole lines
(``soft_wrap``) and draws no bar (:func:`is_live`).
"""

from __future__ import annotations

from rich.console import Console


def console(stderr: bool = True) -> Console:
    """A console on stderr (or stdout) without Rich's highlighting, writing whole lines when not a terminal."""
    made = Console(stderr=stderr, highlight=False)
    if not made.is_terminal:
        made.soft_wrap = True  # a long line stays one line in a log: no wrap at 80 columns
    return made


def is_live(target: Console) -> bool:
    """Whether ``target`` can redraw in place (a progress bar): a terminal, not a file or a pipe."""
    return target.is_terminal and not target.is_dumb_terminal
