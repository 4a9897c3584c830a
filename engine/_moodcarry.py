"""A rebuild keeps what it can of the moods of the bundle it replaces, and says how far they moved.

``read_current`` reads the bundle ``--current`` points at, when it is this catalog's: its checksums verified, its
mood space the same columns, at least half of the new catalog's tracks (by id) in it. Otherwise the build compares and
keeps nothing, and says why. From it the build takes three things:
- its method, where the two catalogs lie either side of a size the method changes at and the new one within 10% of
  it (``MoodConfig.keeping_regime``; the methods on either side agree at ARI 0.33-0.41: benchmarks/RESULTS.md,
  "Where the mood method changes"). With the defaults since 2026-12-06 the method is the same at every size, so
  this applies to a configuration that sets a larger ``fit_sample`` (or ``coassoc_until``);
- its cut, at the boundary between clusters and a continuum (below);
- ``against_current``: the ARI between its moods and the new build's, over the tracks both hold.

With the defaults (at any size: a larger catalog is fitted on 4,999 of its tracks) the moods are k-means cells
where HDBSCAN finds five density moods or more in the mood space, and octants where it finds fewer
(engine/_moodcoassoc.py). A catalog between the two, whose shares' counts fall on both sides, can take one cut in
one build and the other in a rebuild of a slightly changed catalog, and the two cuts agree at about ARI 0.75. There
every choice is as good as the other; the one that holds still is the one the catalog already has. So a build given
``--current`` (the symlink it will repoint) reads the cut of the bundle that link points at and keeps it where its
own count splits, or where the current bundle's count did (``KeptCut``), as its stability check's 90% refit keeps
the build's (engine/_moodstability.py). Where both counts' shares agree, the new count decides: a catalog that has
left the boundary takes its own cut.

A cut is kept only where the build's moods count density moods (``coassoc_ks`` "density" with octants for a
continuum: the defaults at any size); otherwise, or for a kept K larger than a fit's share of
the new tracks (engine/_moodcoassoc.py), the build says why not and its count decides.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._arrays import load_npz
from ._bundle import read_verified_manifest
from ._catalog import stored_strings
from ._errors import BundleError
from ._moodcoassoc import DENSITY_KS, OCTANT_AXES, KeptCut, cut_of, cut_text
from ._moodconfig import MoodConfig
from ._moodspace import MoodSpace

SAME_CATALOG = 0.5  # at least this share of the new catalog's tracks in the current bundle: a rebuild of it


@dataclasses.dataclass(frozen=True, eq=False)
class Current:
    """The bundle a rebuild replaces, as far as its moods go (``read_current``)."""

    name: str
    fit_tracks: int  # the tracks its moods clustered
    regime: str | None  # the method they took (``MoodConfig.regime``); None in bundles from before 2026-12-06
    coassoc: dict[str, Any]  # its moods' co-association facts (its cut: ``cut_of``)
    ids: np.ndarray
    labels: np.ndarray  # its mood of each of ``ids``
    shared: float  # the share of the new catalog's tracks it holds


def read_current(link: str | os.PathLike[str] | None, space: MoodSpace,
                 ids: np.ndarray) -> tuple[Current | None, dict[str, Any]]:
    """The bundle ``link`` points at, for a rebuild of ``ids`` (its tracks) in ``space``: (it, or None, and what the
    report says: the bundle, or why it is not read as this catalog's current bundle)."""
    if link is None:
        return None, {"none": "no --current link given"}
    link = Path(link)
    if not link.is_symlink() or not link.exists():
        return None, {"none": f"{link} points at no bundle yet"}
    target = link.resolve()
    try:
        manifest = read_verified_manifest(target)
        moods = _mapping(manifest["metrics"].get("moods"))
        theirs = list(_mapping(moods.get("space")).get("features") or [])
        if theirs != list(space.names):
            return None, {"bundle": str(target), "none": f"its mood space is {theirs or 'unknown'}, not this build's "
                                                         f"{list(space.names)}"}
        held = stored_strings(load_npz(target / "tracks.npz"), "ids")
        labels = load_npz(target / "moods.npz")["labels"]
        fit_tracks = int(moods.get("fit_tracks", len(held)))
        regime = moods.get("regime")
        if regime is not None and not isinstance(regime, str):
            raise TypeError(f"the manifest's mood method is {regime!r}")
        coassoc = _mapping(moods.get("coassoc"))
        if len(labels) != len(held):
            raise ValueError(f"{len(labels)} mood labels for {len(held)} tracks")
    except (BundleError, OSError, KeyError, ValueError, TypeError) as exc:  # a damaged bundle is being replaced
        return None, {"bundle": str(target), "none": f"it cannot be read ({exc})"}
    share = float((_rows_of(ids, held) >= 0).mean()) if len(ids) else 0.0
    if share < SAME_CATALOG:
        return None, {"bundle": str(target), "none": f"it holds {share:.0%} of this catalog's tracks, under "
                                                     f"{SAME_CATALOG:.0%}: another catalog, not a rebuild"}
    return Current(target.name, fit_tracks, regime, coassoc, held, labels, share), {"bundle": str(target),
                                                                            "shared_tracks": round(share, 4)}


def cut_to_keep(current: Current | None, said: dict[str, Any], config: MoodConfig, space: MoodSpace,
                tracks: int) -> tuple[KeptCut | None, dict[str, Any]]:
    """The cut of the bundle ``read_current`` read (``said``: what it said of it), for a build of ``tracks`` tracks
    with ``config`` in ``space``, to keep where its count of density moods splits or the bundle's did: (the cut or
    None, what the report says: the bundle, its cut, or why none is kept)."""
    if current is None:
        return None, said
    resolved = config.resolved(config.clustered(tracks))
    if (not resolved.coassoc_bags or resolved.coassoc_ks != DENSITY_KS or resolved.coassoc_continuum != "octants"
            or len(space.columns) < OCTANT_AXES):
        return None, {**said, "none": "this build's moods do not count density moods (the cut is not chosen by a "
                                      "count)"}
    try:  # the manifest has no checksum: an edited one is read as far as it goes
        cut = cut_of(current.coassoc)
        sides = current.coassoc.get("density_sides") or [0, 0]
        split = min(int(side) for side in sides) > 0  # its own count split too
    except (KeyError, ValueError, TypeError) as exc:
        return None, {**said, "none": f"it cannot be read ({exc})"}
    if cut is None:
        return None, {**said, "none": "its moods are not one fit's cut (no medoid fit at one K)"}
    when = "whatever this build's count, as its own count split" if split else "if this build's count splits"
    return KeptCut(cut, f"the previous bundle {current.name}", split), {
        **said, "cut": cut, "split": split, "says": f"{cut_text(cut)}, kept {when}"}


def against_current(current: Current, ids: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """How far a rebuild's moods (``labels`` of its tracks ``ids``) moved from the current bundle's: the adjusted
    Rand index over the tracks both hold."""
    from sklearn.metrics import adjusted_rand_score

    rows = _rows_of(ids, current.ids)
    found = rows >= 0
    theirs = current.labels[rows[found]]
    return {"bundle": current.name, "shared_tracks": int(found.sum()),
            "ari": round(float(adjusted_rand_score(theirs, labels[found])), 4) if found.sum() > 1 else None}


def _rows_of(ids: np.ndarray, held: np.ndarray) -> np.ndarray:
    """The row of each of ``ids`` in ``held`` (-1 where it has none), by a dict: numpy compares ids held as Python
    objects element by element (``np.isin`` of the Spotify catalog's 89,583 ids against themselves took 81-96 s:
    benchmarks/RESULTS.md), and as fixed-width strings sizes every id to the longest (audio ids are paths)."""
    at = {track: row for row, track in enumerate(held.tolist())}
    return np.fromiter((at.get(track, -1) for track in ids.tolist()), dtype=np.int64, count=len(ids))


def _mapping(value: Any) -> dict[str, Any]:
    """A manifest entry that must be a mapping (the manifest has no checksum): {} when absent, TypeError otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"the manifest's moods metrics hold {type(value).__name__} where a mapping belongs")
    return value
