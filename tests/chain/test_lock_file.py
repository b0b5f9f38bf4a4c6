"""The database's lock file (issue 20 point 4): opened without following links, refused
when it is not a regular file of its own, never written through to another file."""

from __future__ import annotations

import os

import pytest

from chain.chain import Chain, ChainError, ChainLockedError


def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    (tmp_path / "c.db.lock").symlink_to(victim)
    with pytest.raises(ChainError, match="symbolic link"):
        Chain(tmp_path / "c.db")
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "c.db").exists()  # refused before the database was opened
    # A dangling link is refused the same way (it would create the target).
    (tmp_path / "d.db.lock").symlink_to(tmp_path / "created-by-link")
    with pytest.raises(ChainError, match="symbolic link"):
        Chain(tmp_path / "d.db")
    assert not (tmp_path / "created-by-link").exists()


@pytest.mark.parametrize("kind", ["directory", "fifo", "hard link"])
def test_a_lock_file_that_is_no_regular_file_of_its_own_is_refused(tmp_path, kind):
    lock = tmp_path / "c.db.lock"
    other = tmp_path / "other.txt"
    if kind == "directory":
        lock.mkdir()
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        other.write_text("keep me")
        os.link(other, lock)
    with pytest.raises(ChainError, match="regular file|hard links|cannot open"):
        Chain(tmp_path / "c.db")
    if kind == "hard link":
        assert other.read_text() == "keep me"


def test_a_regular_lock_file_is_reused_and_still_locks(tmp_path):
    (tmp_path / "c.db.lock").write_text("pid 1 (stale)")
    with Chain(tmp_path / "c.db"):
        assert (tmp_path / "c.db.lock").read_text() == f"pid {os.getpid()}"
        with pytest.raises(ChainLockedError, match=f"in use by pid {os.getpid()}"):
            Chain(tmp_path / "c.db")
    with Chain(tmp_path / "new.db"):
        pass
    assert (tmp_path / "new.db.lock").stat().st_mode & 0o077 == 0  # the owner's only
