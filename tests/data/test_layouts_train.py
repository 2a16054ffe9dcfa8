"""Other dataset layouts train end to end: Kaggle flat folders and the Microsoft PetImages layout."""

from __future__ import annotations

import yaml
from helpers import PET_IMAGES, requires_shared, run_cli, square_image


def test_train_on_kaggle_flat_folder(tmp_path, monkeypatch, capsys):
    flat = tmp_path / "train"
    flat.mkdir()
    for i in range(12):
        square_image("tl", 40, i).save(flat / f"cat.{i}.jpg")
        square_image("br", 40, 100 + i).save(flat / f"dog.{i}.jpg")
    code, _, err = run_cli(monkeypatch, capsys, "train", flat, "--target-size", 32, 32, "--epochs", 1,
                           "--runs-dir", tmp_path / "runs", "--name", "flat")  # fmt: skip
    assert code == 0 and "Found 19 training images belonging to 2 classes: cat, dog" in err
    assert (tmp_path / "runs" / "flat" / "model.keras").is_file()


@requires_shared(PET_IMAGES)
def test_train_on_shared_petimages(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "train", PET_IMAGES, "--target-size", 64, 64, "--epochs", 1,
                           "--runs-dir", tmp_path, "--name", "pets")  # fmt: skip
    assert code == 0 and "belonging to 2 classes: Cat, Dog" in err
    config = yaml.safe_load((tmp_path / "pets" / "config.yaml").read_text())
    assert config["data"]["train_images"] == 32 and config["data"]["validation_images"] == 8
