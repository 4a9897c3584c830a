"""Planted-style audio, synthesized with numpy: test fixtures and the benchmark corpus.

Each style plants facts a descriptor should find: a tempo range, a key and mode, a timbre (which
partials, how they decay), percussion (kick/snare/hat patterns) and a loudness. Each artist adds
its own tweak (brightness, detune, swing), so an artist-grouped split is harder than a random one,
as with real catalogs. Nothing is downloaded; every file is generated from a seed.

    from engine.audio._synth import write_corpus
    write_corpus("corpus/", songs_per_artist=5, artists_per_style=4, seconds=30)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SR = 22_050
A4 = 440.0
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)


def midi_hz(note: float) -> float:
    return A4 * 2 ** ((note - 69) / 12)


def tone(freq: float, seconds: float, sr: int = SR, *, partials: Sequence[float] = (1.0,),
         decay: float = 0.0, detune: float = 0.0) -> np.ndarray:
    """A note: harmonic partials (amplitudes by harmonic number), each decaying ``decay`` x sqrt(h)
    per second; ``detune`` adds a second voice that many cents sharp. Shape (seconds * sr,)."""
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros_like(t)
    for h, amp in enumerate(partials, start=1):
        if amp == 0 or freq * h >= sr / 2:
            continue
        env = np.exp(-decay * np.sqrt(h) * t) if decay else 1.0
        out += amp * env * np.sin(2 * np.pi * freq * h * t)
        if detune:
            out += amp * env * np.sin(2 * np.pi * freq * h * 2 ** (detune / 1200) * t)
    attack = min(len(t), int(0.005 * sr))
    out[:attack] *= np.linspace(0, 1, attack)
    release = min(len(t), int(0.01 * sr))
    out[len(t) - release:] *= np.linspace(1, 0, release)
    return out


def kick(sr: int = SR) -> np.ndarray:
    t = np.arange(int(0.25 * sr)) / sr
    freq = 50 + 90 * np.exp(-t / 0.03)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.09)


def snare(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    t = np.arange(int(0.18 * sr)) / sr
    return (0.7 * rng.standard_normal(len(t)) + 0.5 * np.sin(2 * np.pi * 185 * t)) * np.exp(-t / 0.045)


def hat(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    noise = np.diff(rng.standard_normal(int(0.05 * sr) + 1))  # differenced noise: high frequencies
    return 0.5 * noise * np.exp(-np.arange(len(noise)) / (0.012 * sr))


def click_track(bpm: float, seconds: float, sr: int = SR, *, seed: int = 0) -> np.ndarray:
    """Kick on every beat, hats between: a pulse whose tempo is exactly ``bpm``."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr))
    period = 60.0 / bpm
    for i, start in enumerate(np.arange(0, seconds, period / 2)):
        _add(y, kick(sr) if i % 2 == 0 else 0.4 * hat(rng, sr), int(start * sr))
    return y


def chord_pad(root_midi: int, minor: bool, seconds: float, sr: int = SR) -> np.ndarray:
    """A sustained triad of soft harmonic tones: its key is ``root`` major or minor."""
    third = 3 if minor else 4
    notes = (root_midi, root_midi + third, root_midi + 7, root_midi + 12)
    return sum(tone(midi_hz(n), seconds, sr, partials=(1.0, 0.4, 0.2)) for n in notes) / 4  # type: ignore[return-value]


def _add(y: np.ndarray, sound: np.ndarray, at: int) -> None:
    if at >= len(y):
        return
    end = min(len(y), at + len(sound))
    y[at:end] += sound[:end - at]


@dataclasses.dataclass(frozen=True)
class Style:
    name: str
    bpm: tuple[float, float]
    minor: bool
    roots: tuple[int, ...]  # pitch classes the songs are in
    partials: tuple[float, ...]  # the lead/chord instrument's harmonic amplitudes
    decay: float  # per second: plucked (high) or sustained (0)
    kick_every: int  # in eighth notes (0: no kick)
    snare_on: tuple[int, ...]  # eighth-note positions in the bar (0..7)
    hats: int  # hats per beat (0, 1, 2, 4)
    notes_per_beat: int  # melody/arpeggio density
    level_db: float  # RMS target in dBFS
    noise: float  # background noise share


STYLES: tuple[Style, ...] = (
    Style("ambient", (62, 76), False, (0, 5, 7), (1.0, 0.3, 0.1), 0.0, 0, (), 0, 1, -26.0, 0.01),
    Style("rock", (112, 132), True, (4, 9, 2), (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4), 0.3, 4, (2, 6), 2, 2,
          -14.0, 0.02),
    Style("electronic", (122, 130), True, (9, 2, 5), (1.0, 0.0, 0.33, 0.0, 0.2, 0.0, 0.14), 0.0, 2, (4,), 2, 4,
          -12.0, 0.0),
    Style("folk", (88, 104), False, (7, 2, 0), (1.0, 0.6, 0.35, 0.2, 0.1), 3.0, 0, (), 1, 3, -20.0, 0.005),
    Style("hiphop", (82, 96), True, (1, 6, 10), (1.0, 0.5, 0.2), 1.0, 8, (2, 6), 4, 1, -16.0, 0.01),
)  # fmt: skip


def song(style: Style, *, bpm: float, root: int, seconds: float, sr: int = SR, seed: int = 0,
         brightness: float = 1.0, detune: float = 0.0, swing: float = 0.0, drums: Style | None = None,
         timbre: Style | None = None) -> np.ndarray:
    """One song of ``style``: chords and a melody in ``root`` (pitch class) major or minor, over
    the style's drum pattern at exactly ``bpm``, scaled to the style's loudness. ``drums`` and
    ``timbre`` borrow another style's drum pattern or instrument (a song that crosses styles)."""
    rng = np.random.default_rng(seed)
    kit, voice = drums or style, timbre or style
    n = int(seconds * sr)
    y = np.zeros(n)
    beat = 60.0 / bpm
    scale = MINOR if style.minor else MAJOR
    partials = tuple(a * brightness ** i for i, a in enumerate(voice.partials))
    progression = (0, 5, 3, 4) if not style.minor else (0, 5, 6, 4)  # scale degrees of each bar's chord
    notes: dict[tuple[int, float], np.ndarray] = {}  # a song repeats its notes: synthesize each once
    pads: dict[int, np.ndarray] = {}
    bars = int(seconds / (4 * beat)) + 1
    base = 48 + root
    for bar in range(bars):
        degree = progression[bar % len(progression)]
        chord_root = base + scale[degree % 7]
        start = int(bar * 4 * beat * sr)
        if chord_root not in pads:
            pads[chord_root] = 0.35 * chord_pad(chord_root, style.minor, 4 * beat, sr)
        _add(y, pads[chord_root], start)
        steps = 4 * style.notes_per_beat
        for i in range(steps):
            pitch = base + 12 + scale[(degree + (0, 2, 4, 7)[i % 4] + rng.integers(0, 2)) % 7]
            at = bar * 4 * beat + i * beat / style.notes_per_beat
            if i % 2 == 1:
                at += swing * beat / style.notes_per_beat
            length = beat / style.notes_per_beat * (1.0 if style.decay else 0.95)
            if (pitch, length) not in notes:
                notes[pitch, length] = 0.3 * tone(midi_hz(pitch), length, sr, partials=partials, decay=voice.decay,
                                                  detune=detune)
            _add(y, notes[pitch, length], int(at * sr))
    beats = np.zeros(n)
    eighth = beat / 2
    for i in range(int(seconds / eighth) + 1):
        at = int(i * eighth * sr)
        if kit.kick_every and i % kit.kick_every == 0:
            _add(beats, kick(sr), at)
        if i % 8 in kit.snare_on:
            _add(beats, 0.6 * snare(rng, sr), at)
    if kit.hats:
        for i in range(int(seconds / beat * kit.hats) + 1):
            _add(beats, 0.25 * hat(rng, sr), int(i * beat / kit.hats * sr))
    y = y + beats + style.noise * rng.standard_normal(n)
    rms = float(np.sqrt(np.mean(y**2))) or 1.0
    y *= 10 ** (style.level_db / 20) / rms
    return np.clip(y, -1.0, 1.0).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class CorpusTrack:
    path: Path
    style: str
    artist: str
    title: str
    bpm: float
    key: int
    minor: bool


FORMATS = (("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"),
           ("mp3", "MP3", "MPEG_LAYER_III"))  # fmt: skip


def write_corpus(out: str | Path, *, styles: Sequence[Style] = STYLES, artists_per_style: int = 4,
                 songs_per_artist: int = 5, seconds: float = 30.0, seed: int = 0,
                 formats: Sequence[str] = ("wav", "flac", "ogg", "mp3"), tags: bool = True,
                 confusion: float = 0.0) -> list[CorpusTrack]:
    """Write ``<out>/<style>/<artist> - <title>.<ext>`` files with title/artist/album tags and
    return what was planted. Formats, sample rates (22,050 / 44,100 / 16,000 Hz) and channel counts
    rotate, so decoding is exercised too. ``confusion``: the chance that a song borrows another
    style's drums, and (independently) another style's instrument, so styles overlap."""
    import soundfile as sf

    out = Path(out)
    fmts = [f for f in FORMATS if f[0] in formats]
    tracks: list[CorpusTrack] = []
    rng = np.random.default_rng(seed)
    for s_i, style in enumerate(styles):
        (out / style.name).mkdir(parents=True, exist_ok=True)
        for a in range(artists_per_style):
            artist = f"{style.name.title()} Artist {a + 1}"
            brightness, detune, swing = rng.uniform(0.7, 1.2), rng.uniform(0, 12), rng.uniform(0, 0.15)
            for k in range(songs_per_artist):
                i = len(tracks)
                bpm = float(rng.uniform(*style.bpm))
                root = int(style.roots[(a + k) % len(style.roots)])
                others = [o for o in styles if o is not style]
                drums = others[rng.integers(len(others))] if confusion and rng.random() < confusion else None
                timbre = others[rng.integers(len(others))] if confusion and rng.random() < confusion else None
                y = song(style, bpm=bpm, root=root, seconds=seconds, seed=seed * 100_003 + i, brightness=brightness,
                         detune=detune, swing=swing, drums=drums, timbre=timbre)
                ext, fmt, subtype = fmts[i % len(fmts)]
                rate = (22_050, 44_100, 16_000)[i % 3]
                data = y if rate == SR else _resample(y, SR, rate)
                if i % 2:
                    data = np.stack([data, 0.9 * data], axis=1)  # stereo, slightly unbalanced
                title = f"Song {s_i + 1}.{a + 1}.{k + 1}"
                path = out / style.name / f"{artist} - {title}.{ext}"
                sf.write(path, data, rate, format=fmt, subtype=subtype)
                if tags:
                    write_tags(path, title=title, artist=artist, album=f"{artist} Album", genre=style.name)
                tracks.append(CorpusTrack(path, style.name, artist, title, bpm, root, style.minor))
    return tracks


def write_tags(path: Path, **tags: str) -> None:
    """Title/artist/album/genre tags in the file's own tag format (mutagen)."""
    import mutagen
    from mutagen.easyid3 import EasyID3
    from mutagen.id3 import ID3NoHeaderError

    if path.suffix.lower() in (".mp3", ".wav"):
        if path.suffix.lower() == ".wav":
            from mutagen.wave import WAVE

            wave = WAVE(path)
            if wave.tags is None:
                wave.add_tags()
            frames = wave.tags
            from mutagen.id3 import TALB, TCON, TIT2, TPE1

            for key, frame in (("title", TIT2), ("artist", TPE1), ("album", TALB), ("genre", TCON)):
                if key in tags:
                    frames.add(frame(encoding=3, text=[tags[key]]))
            wave.save()
            return
        try:
            easy = EasyID3(path)
        except ID3NoHeaderError:
            easy = EasyID3()
        for key, value in tags.items():
            easy[key] = value
        easy.save(path)
        return
    f = mutagen.File(path, easy=True)
    for key, value in tags.items():
        f[key] = value
    f.save()


def _resample(y: np.ndarray, sr: int, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(y, sr, rate).astype(np.float32)


# -- MIDI rendered with real instrument samples (Debian: fluidsynth, fluid-soundfont-gm) -------------------

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
TICKS = 480  # per quarter note


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append((n & 0x7F) | 0x80)
    return bytes(reversed(out))


def midi_file(notes: Sequence[tuple[float, float, int, int, int]], *, bpm: float,
              programs: dict[int, int]) -> bytes:
    """A type-0 Standard MIDI File: ``notes`` are (start beat, length in beats, channel, pitch,
    velocity); ``programs`` the General MIDI instrument of each channel (channel 9 is drums)."""
    events: list[tuple[int, bytes]] = []
    for channel, program in programs.items():
        events.append((0, bytes([0xC0 | channel, program])))
    for start, length, channel, pitch, velocity in notes:
        on = round(start * TICKS)
        events.append((on, bytes([0x90 | channel, pitch, velocity])))
        events.append((on + max(1, round(length * TICKS)), bytes([0x80 | channel, pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90))  # offs before ons at the same tick
    tempo = round(60_000_000 / bpm)
    track = b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big")
    now = 0
    for tick, data in events:
        track += _vlq(tick - now) + data
        now = tick
    track += b"\x00\xff\x2f\x00"
    return (b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
            + TICKS.to_bytes(2, "big") + b"MTrk" + len(track).to_bytes(4, "big") + track)


def soundfont() -> str | None:
    """A General MIDI soundfont and the fluidsynth program, or None when either is missing."""
    import shutil

    if shutil.which("fluidsynth") is None:
        return None
    return next((f for f in SOUNDFONTS if Path(f).is_file()), None)


def render_midi(midi: bytes, out: Path, *, sr: int = SR) -> Path:
    """Render ``midi`` to a WAV file with fluidsynth and the General MIDI soundfont."""
    import subprocess
    import tempfile

    sf2 = soundfont()
    if sf2 is None:
        raise RuntimeError("fluidsynth and a General MIDI soundfont are needed (Debian: fluidsynth, "
                           "fluid-soundfont-gm)")
    with tempfile.NamedTemporaryFile(suffix=".mid") as fh:
        fh.write(midi)
        fh.flush()
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(sr), "-F", str(out), sf2, fh.name],
                       check=True, capture_output=True, timeout=120)
    return out


def midi_piece(*, bpm: float, root: int, minor: bool, bars: int = 4, program: int = 0,
               drums: bool = True) -> bytes:
    """Block chords I-IV-V-I (i-iv-v-i) in ``root`` on GM ``program``, an arpeggio above them, and
    kick/snare/hats on channel 9 at exactly ``bpm``: a tempo and a key to find in real samples."""
    scale = MINOR if minor else MAJOR
    base = 48 + root
    notes: list[tuple[float, float, int, int, int]] = []
    for bar in range(bars):
        degree = (0, 3, 4, 0)[bar % 4]
        triad = [base + scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        for pitch in triad:
            notes.append((bar * 4.0, 3.9, 0, pitch, 70))
        for i in range(8):
            notes.append((bar * 4.0 + i * 0.5, 0.45, 0, triad[i % 3] + 12, 60))
        if drums:
            for beat in range(4):
                at = bar * 4.0 + beat
                notes.append((at, 0.2, 9, 36, 110))  # kick
                notes.append((at + 0.5, 0.1, 9, 42, 70))  # closed hat
                if beat in (1, 3):
                    notes.append((at, 0.2, 9, 38, 100))  # snare
    return midi_file(notes, bpm=bpm, programs={0: program})


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.audio._synth OUT``: write a corpus of planted styles to try extraction on."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m engine.audio._synth", description=main.__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--artists", type=int, default=4, help="artists per style (default 4)")
    parser.add_argument("--songs", type=int, default=3, help="songs per artist (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    parser.add_argument("--confusion", type=float, default=0.0, help="chance a song borrows another style's parts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tracks = write_corpus(args.out, artists_per_style=args.artists, songs_per_artist=args.songs,
                          seconds=args.seconds, confusion=args.confusion, seed=args.seed)
    print(f"wrote {len(tracks)} clips of {args.seconds:g} s in {len(STYLES)} styles under {args.out}/<style>/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
