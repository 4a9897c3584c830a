"""Music that sounds like music: MIDI pieces rendered by fluidsynth with the General MIDI soundfont
(real instrument samples, Debian packages fluidsynth and fluid-soundfont-gm, which .ci/run installs),
each with a planted tempo and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.audio import analyse
from engine.audio._synth import midi_piece, render_midi, soundfont
from tests.audio.conftest import PARAMS
from tests.audio.test_analysis import near_tempo

pytestmark = pytest.mark.skipif(soundfont() is None, reason="fluidsynth or a General MIDI soundfont is missing "
                                "(Debian: apt-get install fluidsynth fluid-soundfont-gm)")

PIECES = [  # GM program, bpm, pitch class, minor
    (0, 96.0, 2, False),  # acoustic grand piano, D major
    (48, 120.0, 9, True),  # string ensemble, A minor
    (80, 140.0, 7, False),  # square lead, G major
]


@pytest.mark.parametrize(("program", "bpm", "root", "minor"), PIECES)
def test_rendered_piece_tempo_and_key(tmp_path: Path, program: int, bpm: float, root: int, minor: bool) -> None:
    path = render_midi(midi_piece(bpm=bpm, root=root, minor=minor, bars=4, program=program), tmp_path / "p.wav")
    row = analyse(path.read_bytes(), PARAMS).rows[0]
    assert near_tempo(row["tempo"], bpm), row["tempo"]
    assert (int(row["key"]), int(row["mode"])) == (root, 0 if minor else 1)
