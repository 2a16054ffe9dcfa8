"""Augmentation from the command line: presets, flags, YAML config, and the preview pictures."""

from __future__ import annotations

import yaml
from helpers import run_cli
from PIL import Image


def test_train_with_preset_and_flag_records_augmentation(split_data, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "train", split_data, "--target-size", "32", "32", "--epochs", "1",
                           "--augment", "course", "--rotation-range", "15", "--vertical-flip",
                           "--runs-dir", tmp_path, "--name", "aug")  # fmt: skip
    assert code == 0 and "Augmenting training images" in err
    config = yaml.safe_load((tmp_path / "aug" / "config.yaml").read_text())
    assert config["augment"]["rotation_range"] == 15  # the flag overrides the preset's 40
    assert config["augment"]["width_shift_range"] == 0.2 and config["augment"]["vertical_flip"] is True


def test_train_from_yaml_config_and_rerun_from_run_config(split_data, tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": str(split_data), "target_size": [28, 28], "epochs": 1, "batch_size": 12,
        "augment": {"zoom_range": 0.1, "fill_mode": "reflect"},
    }))  # fmt: skip
    code, _, _ = run_cli(
        monkeypatch, capsys, "train", "--config", cfg, "--epochs", "2", "--runs-dir", tmp_path, "--name", "a"
    )
    assert code == 0
    first = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert first["epochs"] == 2 and first["batch_size"] == 12 and first["target_size"] == [28, 28]
    assert first["augment"]["zoom_range"] == [0.9, 1.1] and first["augment"]["fill_mode"] == "reflect"
    # A run's own config.yaml reproduces it.
    code, _, _ = run_cli(
        monkeypatch, capsys, "train", "--config", tmp_path / "a" / "config.yaml", "--runs-dir", tmp_path, "--name", "b"
    )
    second = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert code == 0 and {k: v for k, v in second.items() if k != "data"} == {
        k: v for k, v in first.items() if k != "data"
    }


def test_bad_config_key(tmp_path, split_data, monkeypatch, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("epochz: 3\n")
    code, _, err = run_cli(monkeypatch, capsys, "train", split_data, "--config", cfg, "--runs-dir", tmp_path)
    assert code == 2 and "unknown setting 'epochz'" in err


def test_bad_range_flag(split_data, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "train", split_data, "--zoom-range", "a,b", "--runs-dir", tmp_path)
    assert code == 2 and "Received: 'a,b'" in err


def test_preview_writes_both_grids(split_data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "grid.png"
    code, stdout, _ = run_cli(monkeypatch, capsys, "preview", split_data, "--out", out, "--count", "9",
                              "--target-size", "48", "48")  # fmt: skip
    assert code == 0
    batch = tmp_path / "grid-batch.png"
    assert str(out) in stdout and str(batch) in stdout
    for path in (out, batch):
        with Image.open(path) as im:
            assert im.size[0] >= 3 * 48 and im.size[1] >= 3 * 48  # a 3x3 grid of 48-px images


def test_image_quality_flags_are_recorded_and_checked(split_data, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "train", split_data, "--target-size", "32", "32", "--epochs", "1",
                           "--downscale-range", "0.5", "--jpeg-quality-range", "40,90",
                           "--runs-dir", tmp_path, "--name", "q")  # fmt: skip
    assert code == 0 and "downscale_range=[0.5, 1.0]" in err
    config = yaml.safe_load((tmp_path / "q" / "config.yaml").read_text())
    assert config["augment"]["downscale_range"] == [0.5, 1.0] and config["augment"]["jpeg_quality_range"] == [40, 90]
    code, _, err = run_cli(monkeypatch, capsys, "preview", split_data, "--out", tmp_path / "p.png",
                           "--jpeg-quality-range", "50.5")  # fmt: skip
    assert code == 2 and "expected an integer or LOW,HIGH. Received: '50.5'" in err


def test_augmentation_options_are_declared_once_for_every_command():
    """Each ``Augmentation`` field is one option, declared once (``imgclf.settings.AUGMENTATION_OPTIONS``) and
    generated into every command that augments, with the same help."""
    import dataclasses

    import typer

    from imgclf.cli import app
    from imgclf.pipeline.augment import Augmentation
    from imgclf.settings import AUGMENTATION_OPTIONS

    assert [o.name for o in AUGMENTATION_OPTIONS] == [f.name for f in dataclasses.fields(Augmentation)]
    commands = typer.main.get_command(app).commands
    for name in ("train", "preview", "lr-find"):
        params = {p.name: p for p in commands[name].params}
        for option in AUGMENTATION_OPTIONS:
            assert params[option.name].help == option.help, (name, option.name)
