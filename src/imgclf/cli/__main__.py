"""``python -m imgclf.cli``: the imgclf command line."""

from imgclf.cli import main

main()
