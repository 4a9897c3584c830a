"""Pickle-free array storage helpers for bundles."""

from __future__ import annotations

import itertools
import os
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np

from ._errors import BundleIntegrityError


def pack_strings(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as one UTF-8 byte blob plus offsets: compact, and loadable without pickle
    (numpy object arrays would need it; fixed-width ``<U`` arrays waste space on long names)."""
    encoded = [str(v).encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets


def unpack_strings(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_strings`; an object array of str."""
    data = blob.tobytes()
    bounds = offsets.tolist()
    return np.array([data[a:b].decode("utf-8") for a, b in itertools.pairwise(bounds)],
                    dtype=object)


def save_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {name!r} has dtype object, which would need pickle; pack it first")
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})


def load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load every array eagerly with ``allow_pickle=False`` (an object array is refused)."""
    try:
        # our own handle: np.load leaks its file when the archive is not a valid zip
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except zipfile.BadZipFile as exc:  # (a ValueError's sibling: not the refusal below)
        raise BundleIntegrityError(f"{path}: not an npz archive ({exc})") from None
    except ValueError as exc:  # numpy's message for object arrays under allow_pickle=False, or a file no format
        raise BundleIntegrityError(f"{path}: refused to load ({exc})") from None
