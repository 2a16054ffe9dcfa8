"""``python -m imgclf``: the imgclf command line."""

from imgclf.cli import console

if __name__ == "__main__":  # importing it (a documentation tool does) runs nothing
    console()
