"""``python -m imgclf.cli``: the imgclf command line."""

from imgclf.cli import main

if __name__ == "__main__":  # importing it (a documentation tool does) runs nothing
    main()
