"""fer_edge/edge/fileio.py: atomic writes that reach the disk."""

import pytest


def test_atomic_writes_reach_the_disk_without_touching_the_umask(tmp_path, monkeypatch):
    """fileio.atomic_path: the file and its folder entry are fsynced before and after the
    rename, the new file gets 0666 less the umask, and the process's umask is never changed
    (os.umask is how it would be: made to fail here)."""
    import os

    from fer_edge.edge import fileio

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    monkeypatch.setattr(os, "umask", lambda *a: (_ for _ in ()).throw(AssertionError("umask")))
    target = tmp_path / "sub" / "out.json"
    fileio.write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n' and len(synced) == 2
    current = int(next(line.split()[1] for line in open("/proc/self/status")
                       if line.startswith("Umask:")), 8)
    assert target.stat().st_mode & 0o777 == 0o666 & ~current
    with pytest.raises(RuntimeError), fileio.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]   # no temporary left
