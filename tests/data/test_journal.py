"""The one journal of moved files (imgclf.data.journal.Journal) that relabel and quarantine keep."""

import pytest

from imgclf.data.journal import Journal
from imgclf.errors import ImgclfError


def _journal(tmp_path):
    return Journal(tmp_path / ".moves" / "manifest.json", "test journal", lambda r: isinstance(r, dict) and "a" in r,
                   "a list of records with a")  # fmt: skip


def test_a_journal_is_written_whole_and_read_back_checked(tmp_path):
    journal = _journal(tmp_path)
    assert journal.read() == []  # none yet
    journal.write([{"a": 1}, {"a": 2}])
    assert journal.read() == [{"a": 1}, {"a": 2}]
    for text, why in (("{}", "expected a list of records with a"), ('[{"b": 1}]', "expected a list of records with a"),
                      ("[1, 2", "unreadable"), (b"\xff\xfe[", "unreadable")):  # fmt: skip
        journal.path.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(ImgclfError, match=why) as info:
            journal.read()
        assert "test journal" in str(info.value) and "nothing was moved" in str(info.value)
