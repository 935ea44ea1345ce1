"""Data-root resolution, checksum verification (and its cache), missing-file errors, array cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from semiad_cli.data import files
from semiad_cli.data.files import DataFile
from semiad_cli.data.sources.odds import load_odds
from semiad_cli.errors import DataError

SHARED = files.resolve_root(None)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv(files.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setenv(files.ENV_DOWNLOAD, "0")
    monkeypatch.delenv(files.ENV_ROOT, raising=False)


def _need(rel: str) -> Path:
    path = SHARED / rel
    if not path.is_file():
        pytest.skip(f"shared data file {path} is absent")
    return path


def test_root_precedence(tmp_path, monkeypatch):
    work = tmp_path / "proj" / "work"
    work.mkdir(parents=True)
    (tmp_path / "proj" / "shared" / "data").mkdir(parents=True)
    monkeypatch.chdir(work)
    # 3. fallback: ../shared/data relative to the current directory
    assert files.resolve_root(None) == (tmp_path / "proj" / "shared" / "data").resolve()
    # 2. the environment variable beats the fallback
    monkeypatch.setenv(files.ENV_ROOT, str(tmp_path / "env"))
    assert files.resolve_root(None) == (tmp_path / "env").resolve()
    # 1. an explicit root (config data_root) beats the environment; null-ish values do not count
    assert files.resolve_root(tmp_path / "explicit") == (tmp_path / "explicit").resolve()
    assert files.resolve_root("None") == (tmp_path / "env").resolve()


def test_root_fallback_repo_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ../shared/data here
    root = files.resolve_root(None)
    assert root == (files._REPO_ROOT / ".." / "shared" / "data").resolve()


def test_checksum_mismatch_names_file(tmp_path):
    src = _need("odds/thyroid.mat")
    root = tmp_path / "data"
    (root / "odds").mkdir(parents=True)
    bad = root / "odds" / "thyroid.mat"
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match="thyroid.mat") as err:
        load_odds(name="thyroid", root=root)
    assert "checksum mismatch" in str(err.value) and str(bad) in str(err.value)


def test_missing_file_message(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(DataError) as err:
        load_odds(name="cardio", root=root)
    msg = str(err.value)
    assert str(root / "odds" / "cardio.mat") in msg
    assert files.ENV_ROOT in msg and files.CONFIG_KEY in msg and "odds.cs.stonybrook.edu" in msg


def test_missing_mnist_names_source_url(tmp_path):
    from semiad_cli.data.sources.images import load_mnist

    with pytest.raises(DataError, match="yann.lecun.com") as err:
        load_mnist(root=tmp_path)
    assert str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") in str(err.value)


def test_verification_is_cached(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"hello")
    good = "sha256:" + files.sha256_file(path)
    files.verify_file(path, [good])
    calls = []
    real = files._digests
    monkeypatch.setattr(files, "_digests", lambda p, a: calls.append(p) or real(p, a))
    files.verify_file(path, [good])
    assert calls == []  # same path, size and mtime: no re-hash
    path.write_bytes(b"hellO")  # same size, new content and mtime
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(DataError, match="checksum mismatch"):
        files.verify_file(path, [good])
    assert len(calls) == 1


def test_md5_alternative_accepted(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    files.verify_file(path, ["sha256:" + "0" * 64, "md5:900150983cd24fb0d6963f7d28e17f72"])


def test_download_fallback_into_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(files.ENV_DOWNLOAD, "1")
    origin = tmp_path / "origin.bin"
    origin.write_bytes(b"payload")
    spec = DataFile(
        "x/origin.bin", ("sha256:" + files.sha256_file(origin),), source="here", url=origin.as_uri()
    )
    got = files.locate(spec, tmp_path / "no-root")
    assert got == files.download_dir() / "x" / "origin.bin" and got.read_bytes() == b"payload"
    # a download that fails (or is disabled) ends in the missing-file error
    monkeypatch.setenv(files.ENV_DOWNLOAD, "0")
    spec2 = DataFile("x/other.bin", (), source="https://example.org/other", url=origin.as_uri())
    with pytest.raises(DataError, match="example.org/other"):
        files.locate(spec2, tmp_path / "no-root")


def test_cached_arrays_reused_and_keyed_by_input(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("1")
    calls = []

    def build():
        calls.append(1)
        return {"a": np.arange(5), "s": np.array(["x", "yy"])}

    first = files.cached_arrays("t", [inp], build)
    second = files.cached_arrays("t", [inp], build)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["a"], second["a"])
    assert second["s"].tolist() == ["x", "yy"]
    files.cached_arrays("t", [inp], build, params={"other": 1})
    assert len(calls) == 2  # different options: different entry
    folder = next((files.cache_dir() / "arrays").iterdir())
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_unwritable_cache_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a dir")  # the cache "dir" is a file: every write fails
    monkeypatch.setattr(files, "cache_dir", lambda: blocker)
    out = files.cached_arrays("t", [blocker], lambda: {"a": np.ones(2)})
    assert out["a"].sum() == 2


def _entry(name: str) -> Path:
    (folder,) = [p for p in (files.cache_dir() / "arrays").iterdir() if p.name.startswith(f"{name}-")]
    return folder


def test_changed_bytes_in_a_cached_array_are_rebuilt(tmp_path, caplog):
    inp = tmp_path / "in.bin"
    inp.write_bytes(b"source")
    calls = []

    def decode():
        calls.append(1)
        return {"X": np.arange(1000, dtype=np.float32).reshape(100, 10), "y": np.arange(100) % 2}

    fresh = decode()
    files.cached_arrays("t", [inp], decode)
    npy = _entry("t") / "X.npy"
    data = bytearray(npy.read_bytes())
    data[-40:-36] = np.float32(1234.5).tobytes()  # one value changed; header and size intact
    npy.write_bytes(bytes(data))
    assert np.load(npy)[-1, 0] == 1234.5  # a valid .npy that np.load reads without complaint
    with caplog.at_level("WARNING", logger=files.__name__):
        out = files.cached_arrays("t", [inp], decode)
    assert len(calls) == 3  # the fresh decode above, the first fill, the rebuild
    np.testing.assert_array_equal(out["X"], fresh["X"])
    np.testing.assert_array_equal(out["y"], fresh["y"])
    assert "X.npy does not match its recorded sha256" in caplog.text
    caplog.clear()
    again = files.cached_arrays("t", [inp], decode)  # the rebuilt entry is trusted again, silently
    assert len(calls) == 3 and not caplog.text
    np.testing.assert_array_equal(again["X"], fresh["X"])


@pytest.mark.parametrize("meta", [None, b"{not json", b'{"keys": ["a"], "name": "t"}'])
def test_missing_or_unusable_digest_record_rebuilds(tmp_path, caplog, meta):
    inp = tmp_path / "in.bin"
    inp.write_bytes(b"source")
    calls = []

    def decode():
        calls.append(1)
        return {"a": np.arange(7)}

    files.cached_arrays("t", [inp], decode)
    record = _entry("t") / "meta.json"
    record.unlink() if meta is None else record.write_bytes(meta)
    with caplog.at_level("WARNING", logger=files.__name__):
        out = files.cached_arrays("t", [inp], decode)
    assert len(calls) == 2 and out["a"].tolist() == list(range(7))
    assert "rebuilding array cache" in caplog.text
