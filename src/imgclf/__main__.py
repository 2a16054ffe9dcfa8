"""``python -m imgclf``: the imgclf command line."""

from imgclf.cli import main

main()
