"""``imgclf ARGS`` in-process, as a user types it: through the console-script entry point."""

import sys

import pytest


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run ``imgclf ARGS`` in-process through the console-script entry point: (exit code, stdout, stderr)."""
    from imgclf import cli

    monkeypatch.setattr(sys, "argv", ["imgclf", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


def cli_train(*args) -> None:
    """``imgclf train ARGS`` for module-scoped fixtures (no monkeypatch/capsys there); asserts success."""
    from imgclf import cli

    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["imgclf", "train", *map(str, args)])
    try:
        with pytest.raises(SystemExit) as info:
            cli.main()
    finally:
        mp.undo()
    assert (info.value.code or 0) == 0
