"""Output in a log file, CI or the studio's job log is written as whole lines: no wrap at Rich's 80 columns for a
non-terminal, no progress bar's last frame, no blank line between epochs."""

from __future__ import annotations

import io

from rich.console import Console

from imgclf._console import console, is_live
from imgclf.training.callbacks import RichProgress


def test_a_long_line_stays_one_line_when_not_a_terminal(capsys):
    line = "Skipped 3 unreadable files: " + "/data/very/long/path/to/a/picture.jpg " * 6
    console().print(line.strip())
    assert capsys.readouterr().err == line.strip() + "\n"  # 250 characters, one line


def test_epochs_are_one_line_each_without_a_bar_in_a_log():
    log = io.StringIO()
    target = Console(file=log, highlight=False, width=80)
    assert not is_live(target)
    progress = RichProgress(console=target)
    progress.set_params({"epochs": 2, "steps": 3})
    progress.on_train_begin()
    for epoch in range(2):
        progress.on_epoch_begin(epoch)
        for batch in range(3):
            progress.on_train_batch_end(batch, {"loss": 0.5, "accuracy": 0.75})
        progress.on_epoch_end(epoch, {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.7,
                                      "seconds": 1.25})  # fmt: skip
    progress.on_train_end()
    lines = log.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [["Epoch", "1/2"], ["Epoch", "2/2"]]
    assert "━" not in log.getvalue() and "val_accuracy 0.7000" in lines[1]
