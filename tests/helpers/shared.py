"""Paths to ``../shared`` (read-only data beside the checkout; CI has it) and the mark that skips without it."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CATS_AND_DOGS = SHARED / "datasets" / "cats_and_dogs_filtered"
PET_IMAGES = SHARED / "datasets" / "pet-images-condensed"
HAPPY_OR_SAD = SHARED / "datasets" / "happy-or-sad"
SQUEEZENET = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"


def requires_shared(path: Path):
    """Skip a test when a ../shared dataset is absent (CI has it)."""
    return pytest.mark.skipif(
        not path.exists(), reason=f"shared data not found at {path} (../shared beside the checkout)"
    )
