"""What the tests share, imported as ``from helpers import …`` (``tests/`` is on the path: pytest's
``pythonpath``): pictures made with Pillow, ``../shared``'s paths, the CLI in-process, trained runs, waiting, free
ports, and the studio's (``helpers.studio``)."""

from helpers.cli import cli_train, run_cli
from helpers.network import free_port, free_ports
from helpers.pictures import square_image, write_class_folder, write_colour_classes, write_pictures, write_split_folder
from helpers.runs import Crash, crash_after, squares_run
from helpers.shared import CATS_AND_DOGS, HAPPY_OR_SAD, PET_IMAGES, SHARED, SQUEEZENET, requires_shared
from helpers.waiting import wait_for_line, wait_until

__all__ = ["CATS_AND_DOGS", "HAPPY_OR_SAD", "PET_IMAGES", "SHARED", "SQUEEZENET", "Crash", "cli_train", "crash_after",
           "free_port", "free_ports", "requires_shared", "run_cli", "square_image", "squares_run", "wait_for_line",
           "wait_until", "write_class_folder", "write_colour_classes", "write_pictures",
           "write_split_folder"]  # fmt: skip
