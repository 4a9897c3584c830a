"""The bundle: one directory holding everything the server needs, verifiable and pickle-free.

Layout (format version 5)::

    manifest.json      format, source sha256, counts, schema, config, versions, metrics, file sha256s
    preprocess.npz     transform specs, scaling and PCA arrays
    index.faiss        the FAISS index (faiss.write_index)
    tracks.npz         ids, names, artists, metadata, genres (CSR), raw features, vectors
    moods.npz          per-track mood, strength and core flag; exemplars for assigning new tracks
    moods.json         cluster descriptions (name, size, centroid, top genres)
    genre_model.ubj    XGBoost model in its own UBJSON format (absent when the catalog has no labels)
    genre_oof.npz      per track, the out-of-fold genre probabilities by-id queries use (with the model)
    genre_linear.npz   a logistic regression blended into the genre model (small catalogs, where the folds chose it)
    index_new_tracks.faiss  from 20,000 tracks beside a flat index: the IVF index unfiltered new-track queries search
    neighbours.npz     the head of each track's "more like this" ranking (engine/_table.py)
    neighbour_blocks.npz  with a flat index: each track's whole block 1 (``musicrec add`` merges new tracks in)
    moodmap.npz        the 2-D mood map (engine/_moodmap.py)
    evaluation.npz     the genre cross-validation's confusion matrices, hits, reliability bins (_diagnostics.py)

The optional files are there when their build made them; ``manifest.json`` lists every file a bundle holds.

A bundle is written under a temporary name in the destination's directory and renamed into
place only when complete, so a reader never sees half a bundle. Loading verifies the format
version and the sha256 of every file, refuses files the manifest does not list, and reads
arrays with ``allow_pickle=False``: nothing in a bundle is executed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import sys
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from ._errors import BundleError, BundleIntegrityError, BundleNotFound, BundleVersionError, shown
from ._inputfile import special_kind
from ._manifest import check_manifest_shapes

FORMAT = "musicrec-bundle"
# 2: the similar section, genre-ranked neighbour table; 3: the table holds block 1 of the one
# ranking (engine/_ranking.py); 4: genre_oof.npz, cross-fitted probabilities of catalog tracks
# (engine/_crossfit.py), which the neighbour table was ranked with; 5: genre_linear.npz, a linear part of the
# genre model (engine/_linear.py), which a reader of version 4 would leave out of every prediction
FORMAT_VERSION = 5
# A version-4 bundle is a version-5 one without genre_linear.npz: it loads as it is.
READABLE_VERSIONS = (4, 5)
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 << 20  # a Spotify bundle's is 24 KB: past this it is no manifest, and read whole


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_bundle_dir(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``out``; once complete it is loaded as a server would load it
    (:func:`engine.load_bundle`: checksums, shapes, finite values) and only then renamed to ``out``, so
    nothing that would not load is ever written (or pointed at by ``--current``). On any error it is removed,
    with any parent directories this call created. ``out`` must not exist yet."""
    out = Path(out)
    check_new_bundle_dir(out)
    parent = out.parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BundleError(f"cannot write {out}: cannot create {parent} ({exc.strerror or exc})") from None
    remove_stale_partials(parent)
    tmp = parent / partial_name(out.name, parent)
    starting = tmp.with_name(tmp.name.replace(PARTIAL, STARTING))  # not a partial's name until it is locked
    try:
        starting.mkdir()
        held = os.open(starting, os.O_RDONLY)  # locked while this build lives: a dead build's is found unlocked
    except OSError as exc:  # a folder that cannot be written to (read-only, /proc), a name it refuses
        _remove_created(created)
        raise BundleError(f"cannot write {out}: {exc.strerror or exc}") from None
    try:
        with contextlib.suppress(OSError):  # a file system without locks (NFS on a directory): built unlocked,
            fcntl.flock(held, fcntl.LOCK_EX)  # and there a cleanup cannot lock it either, so it removes nothing
        os.rename(starting, tmp)
        yield tmp
        _check_loads(tmp, out)
        _fsync_tree(tmp)
        if out.exists():  # created by someone else while we were building
            raise BundleError(f"output {out} appeared while the bundle was being built; not replacing it")
        os.rename(tmp, out)
        _fsync_dir(parent)
    except BaseException as exc:
        shutil.rmtree(tmp if tmp.exists() else starting, ignore_errors=True)
        _remove_created(created)
        if isinstance(exc, OSError) and (written := _writing(exc, tmp)) is not None:  # a full disk: no bug
            raise BundleError(f"cannot write {out}: {exc.strerror or exc}{written}") from exc
        raise
    finally:
        os.close(held)


def remove_stale_partials(folder: Path) -> list[str]:
    """Remove the temporary directories of builds into ``folder`` that died (killed, out of memory) and return
    their names: each build holds a lock on its own while it lives (:func:`atomic_bundle_dir`), which the
    system drops when the process ends, however it ends. A live build's, locked, is left alone."""
    removed = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(".") and PARTIAL in p.name
                      and p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    for path in candidates:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # locked: a build in progress
            continue
        finally:
            os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


# errors of a write that are the file system's, whichever file (numpy's savez names none)
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})  # (EIO: a read's too)


def _writing(exc: OSError, tmp: Path) -> str | None:
    """`` (writing NAME)`` (or "") when ``exc`` is a failed write of the bundle being built in ``tmp``, else None
    (an error reading something, which stays what it was)."""
    name = Path(os.fsdecode(exc.filename)) if exc.filename is not None else None
    inside = name is not None and name.is_relative_to(tmp)
    if not inside and exc.errno not in _WRITE_ERRNOS:
        return None
    return f" (writing {name.relative_to(tmp)})" if inside and name != tmp else ""


def _remove_created(created: list[Path]) -> None:
    for directory in created:  # innermost first; stops at one something else was put in meanwhile
        try:
            directory.rmdir()
        except OSError:
            break


PARTIAL = ".partial-"
STARTING = ".pending-"  # as long as PARTIAL: the name a partial directory has until its build holds its lock


def partial_name(name: str, parent: Path) -> str:
    """The hidden name a bundle ``name`` is written under until complete: ``.<name>.partial-<random>`` (a name the
    file system accepts for the bundle must not fail for being 19 bytes longer as the temporary one)."""
    return fitting_name(".", name, f"{PARTIAL}{uuid.uuid4().hex[:8]}", parent)


def name_max(folder: Path) -> int:
    """The longest file name ``folder``'s file system takes, in bytes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def fitting_name(prefix: str, name: str, suffix: str, folder: Path) -> str:
    """``prefix + name + suffix``, with ``name`` cut short where the whole would be longer than ``folder``'s file
    system takes (for a temporary file beside ``name``)."""
    limit, stem = name_max(folder), name
    while len(stem) > 1 and len(os.fsencode(f"{prefix}{stem}{suffix}")) > limit:
        stem = stem[:-1]
    return f"{prefix}{stem}{suffix}"


def check_new_bundle_dir(out: str | os.PathLike[str]) -> None:
    """Refuse a new bundle's directory ``out`` that exists (bundles are immutable), whose parent is a file, or
    that cannot be looked at (a name too long for the file system)."""
    out = Path(out)
    try:
        exists = out.exists() or out.is_symlink()
    except OSError as exc:  # ENAMETOOLONG, a folder on the way that cannot be entered
        raise BundleError(f"cannot write {out}: {exc.strerror or exc}") from None
    if exists:
        raise BundleError(f"output {out} already exists; choose a new directory (bundles are immutable)")
    problem = parent_problem(out)
    if problem:
        raise BundleError(f"cannot write {out}: {problem}")


def _check_loads(tmp: Path, out: Path) -> None:
    """Refuse a bundle just written that :func:`engine.load_bundle` would refuse (a bug: every input it is made
    from was checked), naming ``out`` rather than the temporary directory."""
    from ._loaded import load_bundle  # it imports this module

    try:
        load_bundle(tmp)
    except BundleError as exc:
        raise BundleError(f"{out}: the bundle just written would not load, so it was not kept (a bug: please "
                          f"report it): {str(exc).replace(str(tmp), str(out))}") from None


def write_manifest(bundle_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Add the file checksums and format fields, then write manifest.json (last, on purpose)."""
    files = {p.name: sha256_file(p) for p in sorted(bundle_dir.iterdir()) if p.name != MANIFEST}
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": files}
    (bundle_dir / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return full


_KINDS = {str: "text", dict: "an object"}


def _dig(data: Any, dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``, or None where a level is missing or not an object."""
    for key in dotted.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def read_verified_manifest(bundle_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the manifest and check format, version, the file list and every sha256."""
    bundle_dir = Path(bundle_dir)
    try:
        is_dir = bundle_dir.is_dir()
    except OSError as exc:  # a name too long, a folder on the way that cannot be entered
        raise BundleNotFound(f"{shown(str(bundle_dir), 200)}: not a bundle directory ({exc.strerror or exc})") from None
    if not is_dir:
        raise BundleNotFound(f"{bundle_dir}: not a bundle directory (it does not exist or is not a directory)")
    path = bundle_dir / MANIFEST
    try:
        if path.is_symlink():  # a bundle holds its own files: a link is read elsewhere, and can change under it
            raise BundleIntegrityError(f"{path}: is a link, not the bundle's own manifest; the bundle was modified")
        found = path.stat()  # before any open: opening a FIFO blocks
        if not stat.S_ISREG(found.st_mode):
            raise BundleIntegrityError(f"{path}: is not a regular file ({special_kind(path)}), not the bundle's "
                                       "manifest; the bundle is damaged: rebuild it")
        if found.st_size > MAX_MANIFEST_BYTES:
            raise BundleIntegrityError(f"{path}: {found.st_size:,} bytes, more than any manifest holds "
                                       f"({MAX_MANIFEST_BYTES:,}); the bundle is damaged: rebuild it")
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise BundleIntegrityError(f"{bundle_dir}: no {MANIFEST}; not a bundle, or an interrupted build"
                                   + _bundles_inside(bundle_dir)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleIntegrityError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise BundleIntegrityError(f"{path}: nested deeper than JSON's reader goes; the manifest was edited or is "
                                   "damaged: rebuild the bundle") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleIntegrityError(f"{path}: not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        newer = type(version) is int and version > max(READABLE_VERSIONS)
        raise BundleVersionError(
            f"{bundle_dir}: bundle format version {version!r}, but this engine reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}; "
            + ("a newer musicrec built it: upgrade musicrec to load it" if newer
               else "rebuild the bundle with this version of musicrec"))
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise BundleIntegrityError(f"{path}: no 'files' checksum table (file name -> sha256 text)")
    # the manifest itself has no checksum: what loading reads from it is checked for its shape here, so an
    # edited manifest is refused by name instead of failing later with a bare KeyError or TypeError
    # (keys every bundle has: a build writes them all, and `musicrec add` keeps its base's schema and source)
    for key, kind in (("created_at", str), ("source", dict), ("schema", dict), ("config", dict), ("counts", dict),
                      ("metrics", dict)):
        if not isinstance(manifest.get(key), kind):
            raise BundleIntegrityError(f"{path}: '{key}' is missing or not {_KINDS[kind]}; the manifest was "
                                       "edited or is damaged: rebuild the bundle")
    # serve's start-up line, ServerInfo and musicrec add read the index kind; the report (musicrec report,
    # the console) prints the source's path and checksum
    for dotted in ("metrics.index.kind", "source.path", "source.sha256"):
        if not isinstance(_dig(manifest, dotted), str):
            raise BundleIntegrityError(f"{path}: '{dotted}' is missing or not text; the manifest was edited or is "
                                       "damaged: rebuild the bundle")
    check_manifest_shapes(manifest, path)  # what the report reads
    present = {p.name for p in bundle_dir.iterdir()} - {MANIFEST}
    if unexpected := sorted(present - set(files)):
        raise BundleIntegrityError(f"{bundle_dir}: file(s) not listed in the manifest: {unexpected}")
    if missing := sorted(set(files) - present):
        raise BundleIntegrityError(f"{bundle_dir}: file(s) listed in the manifest are missing: {missing}")
    for name, expected in files.items():
        if Path(name).name != name:
            raise BundleIntegrityError(f"{path}: file entry {name!r} is not a plain file name")
        if (bundle_dir / name).is_symlink():  # read elsewhere, and its target can change after the checksum
            raise BundleIntegrityError(f"{bundle_dir / name}: is a link, not a file of the bundle's own; the bundle "
                                       "was modified")
        if not (bundle_dir / name).is_file():
            raise BundleIntegrityError(f"{bundle_dir / name}: is not a regular file (a directory?); the bundle was "
                                       "modified or is damaged")
        actual = sha256_file(bundle_dir / name)
        if actual != expected:
            raise BundleIntegrityError(
                f"{bundle_dir / name}: checksum mismatch (manifest {expected[:12]}..., file {actual[:12]}...); "
                "the bundle was modified or corrupted")
    return manifest


def _bundles_inside(folder: Path) -> str:
    """"; it holds bundles: give one of them, such as F/current" when ``folder`` is where bundles go, else ""."""
    try:
        held = sorted(p.name for p in folder.iterdir() if (p / MANIFEST).is_file())
    except OSError:
        return ""
    if not held:
        return ""
    first = "current" if "current" in held else held[-1]
    return f"; it holds {len(held)} bundle{'s' if len(held) > 1 else ''}: give one of them, such as {folder / first}"


def parent_problem(path: str | os.PathLike[str]) -> str | None:
    """Why nothing could be created at ``path`` because of the folders above it: the nearest one that
    exists is not a directory, or cannot be entered. None when it can (missing ones are created)."""
    try:
        for parent in Path(path).parents:
            if parent.exists() or parent.is_symlink():
                return None if parent.is_dir() else f"{parent} is not a directory"
    except OSError as exc:  # a folder on the way that cannot be entered
        return exc.strerror or str(exc)
    return None


def check_current_link(link: str | os.PathLike[str]) -> None:
    """Refuse, before any work, a ``current`` path that :func:`publish` could not or must not replace:
    an existing file or directory (only a symlink is repointed, so nothing else is lost) or a path
    under a file."""
    link = Path(link)
    try:
        if link.is_symlink():
            return
        if link.exists():
            kind = "directory" if link.is_dir() else "file"
            raise BundleError(f"{link}: exists and is a {kind}, not a symlink; not replacing it (give a new path "
                              "or the symlink to repoint, such as bundles/current)")
    except OSError as exc:  # a folder on the way that cannot be entered
        raise BundleError(f"{link}: {exc.strerror or exc}") from None
    problem = parent_problem(link)
    if problem:
        raise BundleError(f"{link}: {problem}")


def publish(bundle_dir: str | os.PathLike[str], link: str | os.PathLike[str], *,
            expected: str | os.PathLike[str] | None = None) -> None:
    """Point the symlink ``link`` at ``bundle_dir`` atomically (rename over the old link), so a
    server watching ``link`` sees either the old bundle or the new one, never neither. Only a symlink
    is replaced (:func:`check_current_link`); missing parent directories are created. ``expected``: the
    bundle ``link`` pointed at when the work began; a link repointed since (another build or update finished
    meanwhile) is left alone, as a :class:`BundleError`, so that the other's work is not lost."""
    link = Path(link)
    check_current_link(link)
    if expected is not None and link.is_symlink() and os.path.realpath(link) != os.path.realpath(expected):
        raise BundleError(f"{link} was repointed while this one was made (it points at {os.path.realpath(link)} "
                          f"now, not at {os.path.realpath(expected)}): not repointing it, which would drop what "
                          "that one holds")
    link.parent.mkdir(parents=True, exist_ok=True)
    target = Path(os.path.relpath(Path(bundle_dir).resolve(), link.parent.resolve()))
    tmp = link.parent / f".{link.name}.tmp-{uuid.uuid4().hex[:8]}"
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_tree(root: Path) -> None:
    for p in root.iterdir():
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_VERSIONED = ("numpy", "pandas", "scikit-learn", "scipy", "faiss-cpu", "hdbscan", "xgboost-cpu", "xgboost")


def library_versions() -> dict[str, str]:
    """Python's and the libraries' versions, for a manifest (a bundle says what wrote it)."""
    out = {"python": sys.version.split()[0]}
    for dist in _VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    try:
        out["musicrec"] = metadata.version("musicrec")
    except metadata.PackageNotFoundError:
        out["musicrec"] = "0+unknown"
    return out
