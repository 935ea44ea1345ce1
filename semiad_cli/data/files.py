"""Where dataset files live, whether they are intact, and the decoded-array cache.

* Data root: the ``root`` argument (config key ``data_root``), else the env var
  ``SEMIAD_DATA_ROOT``, else ``../shared/data`` next to the current directory or
  next to the repository (the parent of the ``semiad_cli`` package).
* Integrity: each file is checked against the checksum in its folder's SOURCE.md.
  The verdict is remembered (keyed by path, size and mtime) in
  ``<cache>/verified.json``, so a 140 MB file is hashed once, not on every load.
* Missing or corrupt files raise one ``DataError`` that names the file, the
  full path looked for, the setting to change and the official source. When a
  download URL is known and ``SEMIAD_DOWNLOAD`` is not ``0``, one short attempt
  is made first (into the cache, never into the read-only data root).
* Cache: ``SEMIAD_CACHE_DIR`` (default ``~/.cache/semiad``); decoded arrays are
  stored as ``.npy`` and written atomically (temp file + ``os.replace``), with the
  sha256 of each file in the entry's ``meta.json``: changed bytes are caught on
  load and the entry is rebuilt from the source files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semiad_cli.atomic import atomic_write, write_bytes_atomic
from semiad_cli.errors import DataError

log = logging.getLogger(__name__)

ENV_ROOT = "SEMIAD_DATA_ROOT"
ENV_CACHE = "SEMIAD_CACHE_DIR"
ENV_DOWNLOAD = "SEMIAD_DOWNLOAD"
CONFIG_KEY = "data_root"
DOWNLOAD_TIMEOUT_S = 5.0
CACHE_FORMAT = 1  # bump to invalidate every decoded-array cache entry

_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset, relative to the data root.

    Args:
        relpath: path under the data root, e.g. ``"mnist/train-images-idx3-ubyte.gz"``.
        checksums: accepted digests as ``"sha256:<hex>"`` or ``"md5:<hex>"`` (the
            shared copy's sha256 and, when it differs, the official file's digest, so a
            freshly downloaded official file also passes). Empty: no byte check.
        source: official page or download address, named in error messages.
        url: direct download address of a file that passes ``checksums``; ``None``
            when the official source needs a browser or a form.
    """

    relpath: str
    checksums: tuple[str, ...] = ()
    source: str = ""
    url: str | None = None


# ---------------------------------------------------------------------------------- locations
def _candidate_roots() -> list[Path]:
    return [Path.cwd() / ".." / "shared" / "data", _REPO_ROOT / ".." / "shared" / "data"]


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root, by precedence: ``root`` argument, ``$SEMIAD_DATA_ROOT``, ``../shared/data``.

    The first two are returned even when they do not exist (the error then comes
    with the missing file); the fallbacks are used only when they exist. When none
    exists the repository-relative fallback is returned, so error messages show it.
    """
    if root is not None and str(root) not in ("", "None", "null"):
        return Path(os.path.expanduser(str(root))).resolve()
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(os.path.expanduser(env)).resolve()
    candidates = _candidate_roots()
    for cand in candidates:
        if cand.is_dir():
            return cand.resolve()
    return candidates[-1].resolve()


def cache_dir() -> Path:
    """``$SEMIAD_CACHE_DIR`` or ``~/.cache/semiad`` (created on demand)."""
    path = Path(os.path.expanduser(os.environ.get(ENV_CACHE) or "~/.cache/semiad"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def download_dir() -> Path:
    return cache_dir() / "downloads"


def _where_to_change() -> str:
    return f"set the config key {CONFIG_KEY}=<dir> or the environment variable {ENV_ROOT}"


def missing_file_error(path: Path, what: str, source: str, extra: str = "") -> DataError:
    msg = (
        f"{what}: file not found: {path} ; {_where_to_change()} to the folder that holds "
        f"'{path.parent.name}/{path.name}'"
    )
    if source:
        msg += f"; official source: {source}"
    if extra:
        msg += f"; {extra}"
    return DataError(msg)


# ---------------------------------------------------------------------------------- integrity
def _digests(path: Path, algorithms: Sequence[str]) -> dict[str, str]:
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def sha256_file(path: str | os.PathLike) -> str:
    return _digests(Path(path), ["sha256"])["sha256"]


def _verified_db() -> Path:
    return cache_dir() / "verified.json"


def _read_db() -> dict:
    try:
        return json.loads(_verified_db().read_text())
    except (OSError, ValueError):
        return {}


def _stat_key(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def verify_file(
    path: str | os.PathLike, checksums: Sequence[str], *, what: str = "", source: str = ""
) -> None:
    """Raise ``DataError`` unless ``path`` matches one of ``checksums`` (cached by path+size+mtime)."""
    path = Path(path).resolve()
    if not checksums:
        return
    if not path.is_file():
        raise missing_file_error(path, what or path.name, source)
    wanted = tuple(sorted(checksums))
    entry = _read_db().get(str(path))
    stat = _stat_key(path)
    if entry and entry.get("stat") == stat and entry.get("accepted") == list(wanted):
        return
    algos = sorted({c.split(":", 1)[0] for c in wanted})
    got = _digests(path, algos)
    if not any(got[c.split(":", 1)[0]] == c.split(":", 1)[1].lower() for c in wanted):
        shown = ", ".join(f"{a}={got[a]}" for a in algos)
        msg = (
            f"{what or path.name}: checksum mismatch for {path} (got {shown}; expected one of "
            f"{', '.join(wanted)}); the file is corrupt or a different version — replace it"
        )
        if source:
            msg += f" from the official source {source}"
        msg += f", or point {CONFIG_KEY} / {ENV_ROOT} at an intact copy"
        raise DataError(msg)
    db = _read_db()
    db[str(path)] = {"stat": stat, "accepted": list(wanted)}
    try:
        write_bytes_atomic(_verified_db(), json.dumps(db, indent=0, sort_keys=True).encode())
    except OSError as exc:  # a read-only cache only costs a re-hash next time
        log.warning("could not record checksum verdict in %s: %s", _verified_db(), exc)


def download_allowed() -> bool:
    return os.environ.get(ENV_DOWNLOAD, "1").strip().lower() not in ("0", "false", "no", "off")


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with path.open("wb") as fh:  # a file object: np.save(path) would append ".npy" to the temp name
        np.save(fh, arr, allow_pickle=False)


def try_download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> bool:
    """Fetch ``url`` into ``dest`` (atomically). Any failure is logged and returns ``False``."""
    if not download_allowed():
        return False

    def fetch(tmp: Path) -> None:
        with urllib.request.urlopen(url, timeout=timeout) as resp, tmp.open("wb") as fh:  # noqa: S310
            while chunk := resp.read(1 << 20):
                fh.write(chunk)

    try:
        log.info("downloading %s -> %s", url, dest)
        atomic_write(dest, fetch)
        return True
    except Exception as exc:  # network absent, HTTP error, disk full: never fatal here
        log.info("download of %s failed: %s", url, exc)
        return False


def locate(spec: DataFile, root: str | os.PathLike | None = None, *, what: str = "") -> Path:
    """Path of an intact copy of ``spec``: under the data root, else a cached download.

    Tries one download when the file is absent everywhere and ``spec.url`` is set.
    Raises ``DataError`` (missing or checksum mismatch) otherwise.
    """
    base = resolve_root(root)
    path = base / spec.relpath
    what = what or spec.relpath
    if path.is_file():
        verify_file(path, spec.checksums, what=what, source=spec.source)
        return path
    fallback = download_dir() / spec.relpath
    if fallback.is_file():
        verify_file(fallback, spec.checksums, what=what, source=spec.source)
        return fallback
    if spec.url and try_download(spec.url, fallback):
        verify_file(fallback, spec.checksums, what=what, source=spec.source)
        return fallback
    raise missing_file_error(path, what, spec.source or spec.url or "")


# ---------------------------------------------------------------------------------- array cache
def _cache_key(name: str, inputs: Sequence[Path], params: dict | None) -> str:
    parts = [str(CACHE_FORMAT), name, json.dumps(params or {}, sort_keys=True, default=str)]
    for p in inputs:
        p = Path(p).resolve()
        st = p.stat()
        parts.append(f"{p}|{st.st_size}|{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def _npy_sha256(path: Path) -> str:
    """sha256 of a cache file's bytes (not ``_digests``: that one is for data files, whose verdicts are cached)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _load_entry(folder: Path) -> dict[str, np.ndarray]:
    """The arrays of a cache entry whose bytes match the digests in its ``meta.json``; ``ValueError`` otherwise."""
    meta = json.loads((folder / "meta.json").read_text())
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), dict):
        raise ValueError("meta.json records no sha256 digests (an older semiad wrote it)")
    arrays = {}
    for key in meta["keys"]:
        path = folder / f"{key}.npy"
        if _npy_sha256(path) != meta["sha256"].get(key):
            raise ValueError(f"{path.name} does not match its recorded sha256 (changed on disk)")
        arrays[key] = np.load(path, allow_pickle=False)
    return arrays


def cached_arrays(
    name: str, inputs: Sequence[Path], build: Callable[[], dict[str, np.ndarray]], params: dict | None = None
) -> dict[str, np.ndarray]:
    """Decoded arrays of ``inputs``: from ``<cache>/arrays/<name>-<key>/`` or built and stored.

    The key covers the input files' paths, sizes and mtimes and ``params``, so a
    changed file or option never reads stale arrays. ``meta.json`` records the
    sha256 of every ``.npy``; an entry whose bytes differ (a disk error, an edit),
    or whose record is missing or unreadable, is rebuilt with a warning, because
    changed bytes in a valid ``.npy`` would otherwise load silently and change the
    results. Arrays must not be object dtype (they are saved without pickle). A
    cache that cannot be written is skipped with a warning.
    """
    folder = cache_dir() / "arrays" / f"{name}-{_cache_key(name, inputs, params)}"
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        try:
            return _load_entry(folder)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("rebuilding array cache %s from its source files: %s", folder, exc)
    elif folder.is_dir() and any(folder.glob("*.npy")):
        log.warning("rebuilding array cache %s from its source files: meta.json is missing", folder)
    arrays = build()
    digests: dict[str, str] = {}

    def save(tmp: Path, key: str, arr: np.ndarray) -> None:
        _save_npy(tmp, arr)
        digests[key] = _npy_sha256(tmp)

    try:
        folder.mkdir(parents=True, exist_ok=True)
        meta_path.unlink(missing_ok=True)  # a stale record must not vouch for half-rewritten arrays
        for key, arr in arrays.items():
            atomic_write(folder / f"{key}.npy", lambda tmp, key=key, arr=arr: save(tmp, key, arr))
        # meta.json last: its presence means every array is complete and its digest recorded
        write_bytes_atomic(meta_path, json.dumps({"keys": list(arrays), "name": name, "sha256": digests}).encode())
    except OSError as exc:
        log.warning("could not write array cache %s: %s", folder, exc)
    return arrays


def array_digest(arrays: Sequence[np.ndarray]) -> str:
    """sha256 over the raw bytes (C order) of ``arrays``: a content checksum independent of compression."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
