"""Librosa-style feature catalogs of planted genres: tables shaped like GTZAN's features_30_sec.csv.

A catalog is ``filename, length, <the 57 GTZAN descriptors>, label, artist``: one row per clip,
``label`` the planted genre, ``artist`` who played it. Clips are synthesized with the engine's own
synthesizer (engine/audio/_synth.py) and described by the engine's own extraction
(``engine.audio.describe``, what ``musicrec extract`` runs on each decoded file), so the numbers are
what a user's ``musicrec extract`` would write for such audio. The clips are never written to disk:
a 22,050 Hz float clip handed to ``describe`` is what ``musicrec extract`` gets after decoding a
22,050 Hz WAV (up to the file's 16-bit rounding).

Genres: the synthesizer's five styles plus five more (jazz, metal, classical, reggae, pop), each a
planted tempo range, mode and keys, instrument timbre, drum pattern and loudness. Neighbouring genres
overlap on purpose (pop vs electronic, rock vs metal, ambient vs classical, folk vs jazz). Each artist
plays their own variant of the genre (tempo range shifted, timbre brighter or darker, attack, level,
noise, sometimes a neighbouring genre's drum kit) and each song varies again (tempo, key, brightness,
and with probability ``confusion`` another genre's drums or instrument), so an artist-grouped split is
harder than a random one, as with real catalogs.

Deterministic by seed (same seed, same table on any machine with the same library versions).
Cached under ``/tmp/musicrec-catalogs/`` (``$MUSICREC_CATALOGS`` overrides), keyed by every
parameter and the extractor version, so benchmarks and tests pay the extraction once::

    from benchmarks.catalogs import catalog
    path = catalog(seed=0)          # ~1,000 clips of 10 genres, 100 artists; built on first call

or ``.venv/bin/python benchmarks/catalogs.py --seed 0`` (prints the path and what the build cost).
Cost: see ``--help`` and the ``<csv>.catalog.json`` sidecar (synthesis and extraction seconds).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import dataclasses
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.audio import EXTRACTOR_VERSION, GTZAN_FEATURES, STYLES, ExtractorParams, song  # noqa: E402

SR = ExtractorParams().sample_rate  # the synthesizer's rate too: clips go to describe() as they are
Style = type(STYLES[0])


def _style(name: str, bpm: tuple[float, float], minor: bool, roots: tuple[int, ...], partials: tuple[float, ...],
           decay: float, kick_every: int, snare_on: tuple[int, ...], hats: int, notes_per_beat: int, level_db: float,
           noise: float) -> Style:
    return dataclasses.replace(STYLES[0], name=name, bpm=bpm, minor=minor, roots=roots, partials=partials,
                               decay=decay, kick_every=kick_every, snare_on=snare_on, hats=hats,
                               notes_per_beat=notes_per_beat, level_db=level_db, noise=noise)

# Bump when the generator changes what it plants, so cached tables are rebuilt.
GENERATOR_VERSION = 1
CACHE_DIR = Path(os.environ.get("MUSICREC_CATALOGS", "/tmp/musicrec-catalogs"))

# Five more planted genres beside the synthesizer's five (ambient, rock, electronic, folk, hiphop).
# Fields: name, bpm range, minor, keys, partials, decay, kick_every, snare_on, hats, notes_per_beat,
# level_db, noise.
EXTRA_STYLES: tuple[Style, ...] = (
    _style("jazz", (100, 138), False, (5, 10, 3), (1.0, 0.45, 0.25, 0.12), 1.6, 0, (2, 6), 3, 2, -21.0, 0.006),
    _style("metal", (140, 172), True, (4, 11, 6), (1.0, 1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6), 0.1, 1,
          (2, 6), 2, 4, -10.0, 0.06),
    _style("classical", (58, 84), False, (0, 7, 2, 9), (1.0, 0.55, 0.3, 0.18, 0.1), 0.6, 0, (), 0, 2, -25.0,
          0.002),
    _style("reggae", (68, 82), False, (7, 0, 5), (1.0, 0.35, 0.12), 2.4, 4, (4,), 1, 2, -17.0, 0.008),
    _style("pop", (98, 122), False, (0, 7, 9, 4), (1.0, 0.6, 0.3, 0.15, 0.08), 0.5, 4, (2, 6), 2, 2, -13.0,
          0.008),
)  # fmt: skip
GENRES: tuple[Style, ...] = STYLES + EXTRA_STYLES
# Which genre's drums or instrument an artist borrows first: the musically nearest.
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "ambient": ("classical", "folk"), "rock": ("metal", "pop"), "electronic": ("pop", "hiphop"),
    "folk": ("jazz", "classical"), "hiphop": ("reggae", "electronic"), "jazz": ("folk", "classical"),
    "metal": ("rock", "electronic"), "classical": ("ambient", "jazz"), "reggae": ("hiphop", "pop"),
    "pop": ("electronic", "rock"),
}  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True)
class CatalogSpec:
    """Everything that decides a catalog's rows (the cache key)."""

    seed: int = 0
    genres: int = 10  # the first N of GENRES
    artists_per_genre: int = 10
    songs_per_artist: int = 10
    seconds: float = 10.0  # clip length: GTZAN's are 30 s; 10 s costs a third of the extraction
    confusion: float = 0.15  # chance a song borrows another genre's drums, and (apart) its instrument
    artist_spread: float = 1.0  # scales how far an artist's variant strays from the genre

    def key(self) -> str:
        return (f"catalog-s{self.seed}-g{self.genres}-a{self.artists_per_genre}-n{self.songs_per_artist}"
                f"-{self.seconds:g}s-c{self.confusion:g}-v{self.artist_spread:g}"
                f"-gen{GENERATOR_VERSION}-x{EXTRACTOR_VERSION}")

    @property
    def tracks(self) -> int:
        return self.genres * self.artists_per_genre * self.songs_per_artist


@dataclasses.dataclass(frozen=True)
class Clip:
    """One planted clip: what to synthesize (picklable, so workers synthesize it themselves)."""

    filename: str
    label: str
    artist: str
    style: Style
    bpm: float
    root: int
    seed: int
    brightness: float
    detune: float
    swing: float
    drums: Style | None
    timbre: Style | None


def artist_style(style: Style, rng: np.random.Generator, spread: float) -> Style:
    """An artist's own variant of ``style``: tempo range shifted up to +-8%, timbre tilted, attack
    and loudness moved, background noise scaled."""
    shift = 1 + spread * rng.uniform(-0.08, 0.08)
    tilt = float(np.exp(spread * rng.normal(0, 0.25)))
    partials = tuple(a * tilt**i for i, a in enumerate(style.partials))
    decay = style.decay * float(np.exp(spread * rng.normal(0, 0.4)))
    return dataclasses.replace(
        style, bpm=(style.bpm[0] * shift, style.bpm[1] * shift), partials=partials, decay=decay,
        level_db=style.level_db + spread * rng.uniform(-3, 3),
        noise=style.noise * float(np.exp(spread * rng.normal(0, 0.5))),
        notes_per_beat=(max(1, style.notes_per_beat + int(rng.integers(-1, 2))) if rng.random() < 0.3 * spread
                        else style.notes_per_beat))


def plan(spec: CatalogSpec) -> list[Clip]:
    """The clips of ``spec`` in a fixed order (genre, artist, song), all randomness from ``spec.seed``."""
    if not 2 <= spec.genres <= len(GENRES):
        raise ValueError(f"genres must be 2..{len(GENRES)}, got {spec.genres}")
    genres = GENRES[:spec.genres]
    by_name = {g.name: g for g in genres}
    rng = np.random.default_rng([spec.seed, 17])
    clips: list[Clip] = []
    for genre in genres:
        near = [by_name[n] for n in NEIGHBOURS[genre.name] if n in by_name] or [g for g in genres if g is not genre]
        others = [g for g in genres if g is not genre]
        for a in range(spec.artists_per_genre):
            artist = f"{genre.name.title()} Artist {a + 1:02d}"
            own = artist_style(genre, rng, spec.artist_spread)
            kit = near[int(rng.integers(len(near)))] if rng.random() < 0.2 * spec.artist_spread else None
            brightness, detune, swing = rng.uniform(0.75, 1.15), rng.uniform(0, 12), rng.uniform(0, 0.15)
            for k in range(spec.songs_per_artist):
                drums = kit
                timbre = None
                if spec.confusion and rng.random() < spec.confusion:
                    drums = others[int(rng.integers(len(others)))]
                if spec.confusion and rng.random() < spec.confusion:
                    timbre = others[int(rng.integers(len(others)))]
                clips.append(Clip(
                    filename=f"{genre.name}.{a + 1:02d}.{k + 1:03d}.wav", label=genre.name, artist=artist,
                    style=own, bpm=float(rng.uniform(*own.bpm)), root=int(own.roots[(a + k) % len(own.roots)]),
                    seed=int(rng.integers(2**31)), brightness=float(brightness * rng.uniform(0.92, 1.08)),
                    detune=float(detune), swing=float(swing), drums=drums, timbre=timbre))
    return clips


def describe_clip(clip: Clip, seconds: float) -> tuple[dict[str, float], int, float, float]:
    """Synthesize and describe one clip: (descriptors, samples, synthesis s, extraction s)."""
    from engine.audio import describe

    t0 = time.process_time()
    y = song(clip.style, bpm=clip.bpm, root=clip.root, seconds=seconds, sr=SR, seed=clip.seed,
             brightness=clip.brightness, detune=clip.detune, swing=clip.swing, drums=clip.drums, timbre=clip.timbre)
    t1 = time.process_time()
    row = describe(y, SR, ExtractorParams())
    return row, len(y), t1 - t0, time.process_time() - t1


def _init_worker() -> None:
    from engine.audio import warm_up

    warm_up()


def _describe_chunk(clips: list[Clip], seconds: float) -> list[tuple[dict[str, float], int, float, float]]:
    return [describe_clip(c, seconds) for c in clips]


def build(spec: CatalogSpec, out: Path, *, workers: int = 2, progress: bool = True) -> dict[str, Any]:
    """Write the catalog of ``spec`` to ``out`` (atomically) and return its cost report."""
    clips = plan(spec)
    t0, cpu0 = time.perf_counter(), time.process_time()
    chunks = [clips[i:i + 25] for i in range(0, len(clips), 25)]
    results: list[list[tuple[dict[str, float], int, float, float]]] = [[] for _ in chunks]
    if workers <= 1:
        _init_worker()
        for i, chunk in enumerate(chunks):
            results[i] = _describe_chunk(chunk, spec.seconds)
            if progress:
                print(f"\r{min((i + 1) * 25, len(clips))}/{len(clips)} clips", end="", file=sys.stderr, flush=True)
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
            futures = {pool.submit(_describe_chunk, chunk, spec.seconds): i for i, chunk in enumerate(chunks)}
            done = 0
            for fut in cf.as_completed(futures):
                results[futures[fut]] = fut.result()
                done += len(chunks[futures[fut]])
                if progress:
                    print(f"\r{done}/{len(clips)} clips", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    wall = time.perf_counter() - t0
    flat = [r for chunk in results for r in chunk]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["filename", "length", *GTZAN_FEATURES, "label", "artist"])
        for clip, (row, n, _, _) in zip(clips, flat, strict=True):
            writer.writerow([clip.filename, n, *(f"{row[f]:.9g}" for f in GTZAN_FEATURES), clip.label, clip.artist])
    synth = float(sum(r[2] for r in flat))
    extract = float(sum(r[3] for r in flat))
    report = {
        "spec": dataclasses.asdict(spec), "generator_version": GENERATOR_VERSION,
        "extractor_version": EXTRACTOR_VERSION, "tracks": len(clips), "genres": [g.name for g in GENRES[:spec.genres]],
        "artists": spec.genres * spec.artists_per_genre, "workers": workers, "wall_seconds": round(wall, 1),
        "synthesis_cpu_seconds": round(synth, 1), "extraction_cpu_seconds": round(extract, 1),
        "extraction_cpu_ms_per_clip": round(1000 * extract / len(clips), 1),
        "audio_seconds_per_extraction_cpu_second": round(spec.seconds * len(clips) / extract, 1) if extract else None,
        "parent_cpu_seconds": round(time.process_time() - cpu0, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}",
        "command": f".venv/bin/python benchmarks/catalogs.py {_flags(spec)}",
    }
    out.with_name(out.stem + ".catalog.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out)
    return report


def _flags(spec: CatalogSpec) -> str:
    default = CatalogSpec()
    parts = []
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if value != getattr(default, field.name):
            parts.append(f"--{field.name.replace('_', '-')} {value:g}")
    return " ".join(parts)


def catalog(spec: CatalogSpec | None = None, *, workers: int = 2, progress: bool = True, **overrides: Any) -> Path:
    """The cached CSV of ``spec`` (or ``CatalogSpec(**overrides)``), built on first use."""
    spec = spec or CatalogSpec(**overrides)
    path = CACHE_DIR / f"{spec.key()}.csv"
    if not path.is_file():
        build(spec, path, workers=workers, progress=progress)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = CatalogSpec()
    for field in dataclasses.fields(CatalogSpec):
        kind = type(getattr(default, field.name))
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=getattr(default, field.name))
    parser.add_argument("--workers", type=int, default=2, help="extraction processes (default 2)")
    parser.add_argument("--rebuild", action="store_true", help="build even when the cache has it")
    args = parser.parse_args(argv)
    spec = CatalogSpec(**{f.name: getattr(args, f.name) for f in dataclasses.fields(CatalogSpec)})
    path = CACHE_DIR / f"{spec.key()}.csv"
    if args.rebuild or not path.is_file():
        report = build(spec, path, workers=args.workers)
        print(json.dumps({k: v for k, v in report.items() if k != "spec"}, indent=2))
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
