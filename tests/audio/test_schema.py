"""The audio schema preset: our extractor's tables and published GTZAN-layout tables index alike."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from engine import ConfigError
from engine._schema import audio_schema, detect_preset
from engine.audio import DESCRIPTORS, GTZAN_FEATURES, csv_columns
from musicrec.cli import main

GTZAN_HEADER = ["filename", "length", *GTZAN_FEATURES, "label"]


def test_preset_for_the_extractor_output() -> None:
    schema = audio_schema(list(csv_columns()))
    assert schema.feature_columns == DESCRIPTORS and "length" not in schema.feature_columns
    assert (schema.id_column, schema.label_column, schema.name_column, schema.artists_column, schema.song_column) \
        == ("filename", "label", "title", "artist", "song")
    assert schema.transforms["key"] == "cyclic:12" and schema.transforms["mfcc3_var"] == "log1p"
    assert "length" in schema.metadata and "sha256" not in schema.metadata


def test_preset_for_a_published_gtzan_table() -> None:
    schema = audio_schema(GTZAN_HEADER)
    assert schema.feature_columns == GTZAN_FEATURES and len(GTZAN_FEATURES) == 57
    assert schema.name_column is None and schema.artists_column is None and schema.song_column is None
    assert detect_preset(GTZAN_HEADER) == "audio" and detect_preset(list(csv_columns())) == "audio"
    assert detect_preset(["track_id", "danceability"]) is None
    with pytest.raises(ConfigError, match="filename"):
        audio_schema(["id", "x"])


def test_a_gtzan_table_indexes_with_no_column_list(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "features_30_sec.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(GTZAN_HEADER)
        for i in range(120):
            genre = ("blues", "jazz", "metal")[i % 3]
            values = rng.normal(i % 3, 1.0, len(GTZAN_FEATURES)).round(5)
            values[GTZAN_FEATURES.index("tempo")] = 80 + 20 * (i % 3) + i % 7
            w.writerow([f"{genre}.{i:05d}.wav", 661794, *np.abs(values), genre])
    out = tmp_path / "bundle"
    assert main(["index", str(path), "--out", str(out), "--quiet", "--pca-components", "4", "--no-genre"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema"]["feature_columns"] == list(GTZAN_FEATURES)
    assert "audio" not in manifest  # numbers from elsewhere: no extractor to repeat for audio queries


def test_extracted_audio_indexes_and_records_its_extractor(audio_bundle: Path) -> None:
    manifest = json.loads((audio_bundle / "manifest.json").read_text())
    assert manifest["audio"]["extractor"]["name"] == "musicrec-librosa"
    assert manifest["audio"]["extractor"]["params"]["sample_rate"] == 22_050
    assert manifest["schema"]["feature_columns"] == list(DESCRIPTORS)
    assert manifest["counts"]["tracks"] == 60 and manifest["counts"]["genres"] == 5
    assert manifest["metrics"]["genre"]["top1"] > 0.6  # planted styles, held-out artists


def test_the_cli_detects_the_audio_header(extracted: tuple[list, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _, features = extracted
    out = tmp_path / "b"
    assert main(["index", str(features), "--out", str(out), "--pca-components", "4", "--no-genre"]) == 0
    assert "schema: audio preset (detected from the header)" in capsys.readouterr().err
    assert "audio" in json.loads((out / "manifest.json").read_text())
    assert main(["index", str(features), "--out", str(tmp_path / "c"), "--schema", "spotify", "--quiet"]) == 2


def test_extracted_features_without_their_report_say_the_bundle_takes_no_audio(
        extracted: tuple[list, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a copy of extract's CSV without its .extraction.json built a bundle that refused every audio query, unsaid
    _, features = extracted
    copy = tmp_path / "plain.csv"
    copy.write_bytes(features.read_bytes())
    assert main(["index", str(copy), "--out", str(tmp_path / "b"), "--pca-components", "4", "--no-genre"]) == 0
    assert ("note: no extraction report from musicrec extract beside " + str(copy) + " (plain.extraction.json), "
            "so this bundle will refuse audio queries") in capsys.readouterr().err
    assert "audio" not in json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert main(["index", str(features), "--out", str(tmp_path / "c"), "--pca-components", "4", "--no-genre"]) == 0
    assert "no extraction report" not in capsys.readouterr().err


def _gtzan_table(path: Path, rows: int = 120) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(GTZAN_HEADER)
        for i in range(rows):
            genre = ("blues", "jazz", "metal")[i % 3]
            values = np.abs(rng.normal(i % 3, 1.0, len(GTZAN_FEATURES)).round(5))
            values[GTZAN_FEATURES.index("tempo")] = 80 + 20 * (i % 3) + i % 7
            w.writerow([f"{genre}.{i:05d}.wav", 661794, *values, genre])
    return path


def _built_with(table: Path, out: Path, config: Path, text: str | bytes) -> dict:
    """The manifest of ``musicrec index`` on ``table`` (genre stage off) with ``config`` holding ``text``."""
    config.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    assert main(["index", str(table), "--out", str(out), "--quiet", "--no-genre", "--config", str(config)]) == 0
    return json.loads((out / "manifest.json").read_text())


def test_a_config_file_without_a_schema_keeps_the_detected_preset(tmp_path: Path) -> None:
    # a config file tuning only the moods used to drop the preset: the build then looked for Spotify's
    # columns and failed naming track_id; its own [preprocess] still wins over the preset's
    table = _gtzan_table(tmp_path / "t.csv")
    manifest = _built_with(table, tmp_path / "a", tmp_path / "moods.toml", "[moods]\nmin_cluster_size = 10\n")
    assert manifest["schema"]["feature_columns"] == list(GTZAN_FEATURES)
    assert manifest["config"]["preprocess"]["whiten"] == "auto" and manifest["config"]["moods"]["min_cluster_size"] == 10
    # a [preprocess] that says nothing of whitening keeps the preset's
    manifest = _built_with(table, tmp_path / "p", tmp_path / "partial.toml", "[preprocess]\npca_components = 20\n")
    assert manifest["config"]["preprocess"]["whiten"] == "auto" and manifest["metrics"]["pca"]["components"] == 20
    with_bom = b"\xef\xbb\xbf" + json.dumps({"preprocess": {"whiten": False}}).encode()
    manifest = _built_with(table, tmp_path / "b", tmp_path / "own.json", with_bom)
    assert manifest["schema"]["feature_columns"] == list(GTZAN_FEATURES)
    assert manifest["config"]["preprocess"]["whiten"] is False


def test_a_schema_section_that_only_says_how_to_read_rows_keeps_the_detected_preset(tmp_path: Path) -> None:
    # `[schema] missing = "impute"` alone turned detection off (the build then asked for Spotify's track_id), where
    # the --missing flag kept it; the key now applies to the preset, and column keys still turn it off
    table = _gtzan_table(tmp_path / "t.csv")
    manifest = _built_with(table, tmp_path / "a", tmp_path / "impute.toml", '[schema]\nmissing = "impute"\n')
    assert manifest["schema"]["feature_columns"] == list(GTZAN_FEATURES) and manifest["schema"]["missing"] == "impute"
    columns = ('[schema]\nid_column = "filename"\nfeature_columns = ["tempo", "rms_mean"]\n'
               'label_column = "label"\nname_column = ""\nartists_column = ""\nmetadata_columns = []\n')
    manifest = _built_with(table, tmp_path / "b", tmp_path / "columns.toml", columns)
    assert manifest["schema"]["feature_columns"] == ["tempo", "rms_mean"]


def test_the_demo_corpus_gets_usable_vectors_and_says_it_is_small(extracted: tuple[list, Path],
                                                                  tmp_path: Path) -> None:
    # 60 clips of 108 descriptors, as the README's walkthrough builds them (the CLI's defaults): fully
    # whitened, every pair of tracks sat at cosine -1/59 and the report's audio-only precision was
    # 0.185 against 0.782 standardized, with no word of warning
    from engine import format_report

    _, features = extracted
    assert main(["index", str(features), "--out", str(tmp_path / "b"), "--quiet", "--no-genre"]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["config"]["preprocess"]["whiten"] == "auto"
    assert manifest["metrics"]["pca"]["whiten_shrinkage"] == 1.0
    arrays = np.load(tmp_path / "b" / "tracks.npz")
    vectors = arrays["vectors"].astype(np.float64)
    cos = vectors @ vectors.T
    assert cos[~np.eye(len(vectors), dtype=bool)].std() > 0.1  # not one cosine for every pair
    np.fill_diagonal(cos, -np.inf)
    style = arrays["genre_codes"]  # one style per clip (one label each)
    assert len(style) == len(vectors)
    same = (style[np.argsort(-cos, axis=1)[:, :10]] == style[:, None]).mean()
    assert same > 0.5  # five planted styles: chance is 0.2, fully whitened vectors gave about that
    report = format_report(manifest)
    assert "not whitened in effect (109 dimensions for 60 tracks fitted: too few tracks" in report
    assert "warning: 60 tracks are too few for moods" in report
    # `musicrec add` raises the track count but refits nothing: the line keeps the fitted count
    manifest["counts"]["tracks"] = 1_060
    assert "(109 dimensions for 60 tracks fitted:" in format_report(manifest)
