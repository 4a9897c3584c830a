from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import Catalog, CatalogError, ConfigError, FeatureSchema, clean_catalog, read_catalog, synthetic_catalog
from engine._arrays import load_npz, save_npz

FEATURES = ("danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
            "instrumentalness", "liveness", "valence", "tempo", "time_signature", "duration_ms")


def row(track_id: str, genre: str, **overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "": 0, "track_id": track_id, "artists": "A;B", "album_name": "Al", "track_name": "T",
        "popularity": 10, "explicit": "False", "danceability": 0.5, "energy": 0.5, "key": 5, "loudness": -7,
        "mode": 1, "speechiness": 0.05, "acousticness": 0.3, "instrumentalness": 0.0, "liveness": 0.1,
        "valence": 0.5, "tempo": 120.0, "time_signature": 4, "duration_ms": 200000, "track_genre": genre,
    }
    base.update(overrides)
    return base


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    out = pd.DataFrame(rows).astype(str)
    out[""] = [str(i) for i in range(len(out))]  # pandas' index column differs on every row
    return out


def write(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "c.csv"
    frame(rows).to_csv(path, index=False)
    return path


def test_same_id_under_several_genres_is_one_multi_label_track() -> None:
    cat = clean_catalog(frame([row("a", "rock"), row("a", "pop"), row("b", "jazz"), row("a", "rock")]),
                        FeatureSchema())
    assert list(cat.ids) == ["a", "b"]
    assert cat.genres_of(0) == ("rock", "pop")  # first-seen order, repeated genre once
    # the last row equals the first in everything but the index column: an exact duplicate
    assert cat.report.exact_duplicates == 1
    assert cat.report.id_duplicates_merged == 1
    assert cat.report.multi_genre_tracks == 1


def test_exact_duplicates_collapse_ignoring_the_index_column() -> None:
    rows = [row("a", "rock"), row("a", "rock"), row("a", "rock")]
    rows[2]["popularity"] = 11  # not an exact duplicate: merged by id instead
    cat = clean_catalog(frame(rows), FeatureSchema())
    assert cat.report.exact_duplicates == 1
    assert cat.report.id_duplicates_merged == 1
    assert len(cat) == 1


def test_bad_rows_are_dropped_or_imputed_and_every_row_is_counted() -> None:
    rows = [
        row("ok", "rock"),
        row("t0", "rock", tempo=0),  # impossible: dropped
        row("nan", "rock", energy=""),  # missing: dropped (default policy)
        row("inf", "rock", valence="inf"),  # non-finite: dropped
        row("ts1", "rock", time_signature=1),  # unknown meter: imputed
        row("", "rock"),  # no id
        row("ok", "pop"),  # merged
    ]
    cat = clean_catalog(frame(rows), FeatureSchema())
    rep = cat.report
    assert rep.dropped == {"missing track_id": 1, "missing or non-finite energy": 1,
                           "missing or non-finite valence": 1, "tempo not > 0": 1}
    # the data rows (1-based, the header not counted) of each, so a reader can find them in the file
    assert rep.dropped_rows == {"missing track_id": [6], "missing or non-finite energy": [3],
                                "missing or non-finite valence": [4], "tempo not > 0": [2]}
    assert rep.imputed == {"time_signature not >= 3 and <= 7": 1}
    assert rep.rows_read == 7
    assert rep.rows_read == rep.exact_duplicates + sum(rep.dropped.values()) + rep.id_duplicates_merged + rep.tracks
    ts = cat.features[list(cat.ids).index("ts1"), FEATURES.index("time_signature")]
    assert ts == 4  # the median of the valid values


def test_impute_policy_keeps_rows_with_missing_values() -> None:
    rows = [row("a", "rock", energy=0.2), row("b", "rock", energy=""), row("c", "rock", energy=0.4)]
    cat = clean_catalog(frame(rows), FeatureSchema(missing="impute"))
    assert len(cat) == 3
    assert cat.features[1, FEATURES.index("energy")] == pytest.approx(0.3)
    assert cat.report.imputed == {"missing or non-finite energy": 1}


def test_non_numeric_feature_names_row_and_column() -> None:
    rows = [row("a", "rock"), row("b", "rock", tempo="fast")]
    with pytest.raises(CatalogError, match=r"column 'tempo'.*data row 2: 'fast'"):
        clean_catalog(frame(rows), FeatureSchema())


def test_every_row_bad_is_an_error() -> None:
    with pytest.raises(CatalogError, match="every one of the 2 rows is bad"):
        clean_catalog(frame([row("a", "rock", tempo=0), row("b", "rock", energy="")]), FeatureSchema())


def test_missing_column_names_it_and_suggests(tmp_path: Path) -> None:
    rows = [row("a", "rock")]
    rows[0]["valance"] = rows[0].pop("valence")
    with pytest.raises(CatalogError, match=r"missing column\(s\) 'valence' \(did you mean 'valance'\?\)"):
        read_catalog(write(tmp_path, rows), FeatureSchema())
    rows[0]["valence"] = rows[0].pop("valance")
    rows[0]["genre"] = rows[0].pop("track_genre")  # difflib alone offered 'track_name'
    with pytest.raises(CatalogError, match=r"'track_genre' \(did you mean 'genre'\?\)"):
        read_catalog(write(tmp_path, rows), FeatureSchema())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"track_id,energy\n", "has a header but no track rows"),
        (b"track_id,energy,energy\nx,1,2\n", r"\['energy'\] appear more than once"),
        (b"track_id,energy\n\xff\xfe,1\n", "not UTF-8"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    schema = FeatureSchema.generic(id_column="track_id", feature_columns=("energy",))
    with pytest.raises(CatalogError, match=message):
        read_catalog(path, schema)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_file_separated_by_something_else_is_named_as_such(tmp_path: Path, sep: str) -> None:
    # pandas said "Expected 1 fields in line 3, saw 2" of a semicolon file exported by a spreadsheet
    path = tmp_path / "t.csv"
    path.write_text(sep.join(["track_id", "energy", "track_genre"]) + "\n" + sep.join(["a", "0,5", "rock"]) + "\n")
    with pytest.raises(CatalogError, match=f"separated by {re.escape(repr(sep))}.*re-save it with commas"):
        read_catalog(path, FeatureSchema.generic(id_column="track_id", feature_columns=("energy",)))


@pytest.mark.parametrize(("extra", "hint"), [("", " (a comma at the end of the row?)"), ("7", "")])
def test_a_field_too_many_on_the_first_row_is_named_not_blamed_on_another_column(tmp_path: Path, extra: str,
                                                                                  hint: str) -> None:
    """pandas took the first column of such a file for the row index, so every column shifted by one and the error
    named a column with nothing wrong in it ('time_signature' has non-numeric values)."""
    path = tmp_path / "t.csv"
    path.write_text("track_id,energy,track_genre\n" + f"a,0.5,rock,{extra}\n" + "b,0.6,jazz\n")
    schema = FeatureSchema.generic(id_column="track_id", feature_columns=("energy",), label_column="track_genre")
    with pytest.raises(CatalogError) as err:
        read_catalog(path, schema)
    assert str(err.value) == (f"{path}: malformed CSV: data row 1 has 4 fields, the header 3{hint}; every row needs "
                              "one field per column")
    path.write_text("track_id,energy,track_genre\n\na,0.5,rock\nb,0.6,jazz\n")  # a blank line is no row
    assert list(read_catalog(path, schema).ids) == ["a", "b"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such file"):
        read_catalog(tmp_path / "nope.csv", FeatureSchema())


def test_the_unnamed_index_column_can_never_be_a_feature() -> None:
    with pytest.raises(ConfigError, match="unnamed index column"):
        FeatureSchema(feature_columns=("Unnamed: 0", "energy"))
    with pytest.raises(ConfigError, match="cannot be both features"):
        FeatureSchema(feature_columns=("popularity", "energy"))


def test_the_id_column_cannot_be_the_label_column() -> None:
    """--id-column track_genre built a bundle of 12 tracks with exit 0 (an audit, 2026-12-07)."""
    with pytest.raises(ConfigError, match=r"schema\.id_column and schema\.label_column are both 'track_genre'"):
        FeatureSchema(id_column="track_genre")


def test_librosa_style_schema_by_naming_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cols = ["mfcc1_mean", "chroma_stft_mean", "spectral_centroid_mean", "tempo"]
    data = pd.DataFrame(rng.random((20, 4)) + 0.1, columns=cols)
    data.insert(0, "filename", [f"f{i}.wav" for i in range(20)])
    data["label"] = ["blues", "rock"] * 10
    path = tmp_path / "features_30_sec.csv"
    data.to_csv(path, index=False)
    schema = FeatureSchema(id_column="filename", label_column="label", feature_columns=tuple(cols),
                           name_column="", artists_column="", metadata_columns=())
    cat = read_catalog(path, schema)
    assert len(cat) == 20 and cat.genre_names == ("blues", "rock")
    assert schema.rules == {"tempo": FeatureSchema().rules["tempo"]}  # Spotify rules only for present features
    assert cat.feature_names == tuple(cols)


def test_optional_display_columns_may_be_absent(tmp_path: Path) -> None:
    rows = [row("a", "rock")]
    for col in ("album_name", "popularity", "explicit"):
        rows[0].pop(col)
    cat = read_catalog(write(tmp_path, rows), FeatureSchema())
    assert cat.report.skipped_columns == ("album_name", "popularity", "explicit")
    assert "explicit" not in cat.metadata


def test_synthetic_catalog_counts_are_known() -> None:
    data = synthetic_catalog(500, seed=3, multi_genre_share=0.1, exact_duplicates=4, bad_rows=4)
    cat = clean_catalog(data.astype(str), FeatureSchema())
    rep = cat.report
    assert (rep.tracks, rep.exact_duplicates, rep.id_duplicates_merged) == (500, 4, 50)
    assert sum(rep.dropped.values()) == 4
    assert rep.multi_genre_tracks == 50


def test_tracks_whose_every_row_has_a_blank_genre_are_counted() -> None:
    rows = [row("a", "rock"), row("a", ""), row("b", " "), row("c", ""), row("c", ""), row("d", "jazz")]
    cat = clean_catalog(frame(rows), FeatureSchema())
    assert cat.report.unlabelled == 2 and cat.genres_of(1) == () and cat.genres_of(0) == ("rock",)
    assert cat.report.to_json()["unlabelled"] == 2
    assert clean_catalog(frame(rows), FeatureSchema(label_column="")).report.unlabelled == 0  # no labels asked for


def test_metadata_types_are_parsed_for_filters() -> None:
    cat = clean_catalog(frame([row("a", "rock", explicit="True"), row("b", "rock")]), FeatureSchema())
    assert cat.metadata["explicit"].dtype == np.int8 and list(cat.metadata["explicit"]) == [1, 0]
    assert cat.report.flag_blanks == {"explicit": 0}
    assert cat.metadata["popularity"].dtype == np.float64
    assert list(cat.primary_artists()) == ["A", "A"]
    # the first artist named: ";B" was no artist at all, and its tracks went to folds one by one (an audit)
    cat = clean_catalog(frame([row("a", "rock", artists=";B"), row("b", "rock", artists=" ; ;C;D"),
                               row("c", "rock", artists=";")]), FeatureSchema())
    assert list(cat.primary_artists()) == ["B", "C", "\0track:c"]


def test_a_blank_flag_is_unknown_and_counted_never_demoting_the_column(tmp_path: Path) -> None:
    rows = [row("a", "rock", explicit="True"), row("b", "rock", explicit=""), row("c", "rock"),
            row("d", "jazz", explicit="true"), row("e", "jazz", explicit=" FALSE ")]
    cat = read_catalog(write(tmp_path, rows), FeatureSchema())
    flags = cat.metadata["explicit"]
    assert flags.dtype == np.int8 and flags.tolist() == [1, -1, 0, 1, 0]
    assert cat.report.flag_blanks == {"explicit": 1}
    assert cat.report.to_json()["flag_blanks"] == {"explicit": 1}


@pytest.mark.parametrize(("cells", "expected"), [
    (["1", "0", "", "1"], [1, 0, -1, 1]),           # 0/1 flags
    (["TRUE", "null", "False", "NaN"], [1, -1, 0, -1]),  # missing-value tokens are unknown too
])
def test_flag_spellings(cells: list[str], expected: list[int]) -> None:
    rows = [row(f"t{i}", "rock", explicit=c) for i, c in enumerate(cells)]
    cat = clean_catalog(frame(rows), FeatureSchema())
    assert cat.metadata["explicit"].dtype == np.int8 and cat.metadata["explicit"].tolist() == expected
    assert cat.report.flag_blanks == {"explicit": expected.count(-1)}


def test_not_flags_stay_numbers_or_text() -> None:
    cat = clean_catalog(frame([row("a", "rock", explicit="yes"), row("b", "rock", explicit="")]), FeatureSchema())
    assert cat.metadata["explicit"].dtype == object and cat.report.flag_blanks == {}
    cat = clean_catalog(frame([row("a", "rock", popularity="2"), row("b", "rock", popularity="")]), FeatureSchema())
    assert cat.metadata["popularity"].dtype == np.float64 and np.isnan(cat.metadata["popularity"][1])
    assert cat.metadata["explicit"].dtype == np.int8  # every cell "False"
    blank = clean_catalog(frame([row("a", "rock", explicit="")]), FeatureSchema())
    assert blank.metadata["explicit"].dtype == object  # no value at all says nothing about the column


@pytest.mark.parametrize(("column", "bad", "expected"), [
    ("explicit", "maybe", "c.csv: metadata column 'explicit' holds flags (true/false, 1/0) but has 1 other value(s) "
                          "(data row 13: 'maybe'); write each as a flag or leave it blank (unknown), or leave the "
                          "column out of the metadata columns"),
    ("popularity", "abc", "c.csv: metadata column 'popularity' holds numbers but has 1 other value(s) (data row 13: "
                          "'abc'); write each as a number or leave it blank (unknown), or leave the column out of "
                          "the metadata columns"),
])
def test_one_bad_cell_of_a_flag_or_number_column_is_an_error_naming_it(tmp_path: Path, column: str, bad: str,
                                                                        expected: str) -> None:
    """Before: one such cell turned the whole column into text, and its filters went away unsaid."""
    rows = [row(f"t{i}", "rock", explicit=("True", "False")[i % 2], popularity=i) for i in range(20)]
    rows[2]["track_id"] = ""  # a dropped row and a merged one before it: the row named is the file's
    rows[5]["track_id"] = "t4"
    rows[12][column] = bad
    with pytest.raises(CatalogError) as error:
        read_catalog(write(tmp_path, rows), FeatureSchema())
    assert str(error.value) == f"{tmp_path / 'c.csv'}: {expected.removeprefix('c.csv: ')}"


def test_missing_value_tokens_leave_a_number_column_typed() -> None:
    cells = ["3", "n/a", "null", "", "7"]
    cat = clean_catalog(frame([row(f"t{i}", "rock", popularity=c) for i, c in enumerate(cells)]), FeatureSchema())
    assert cat.metadata["popularity"].dtype == np.float64
    assert np.isnan(cat.metadata["popularity"][1:4]).all() and cat.metadata["popularity"][4] == 7


def test_a_mostly_text_column_stays_text() -> None:
    names = ["Blue", "1999", "Kind of Blue", "4", "Abbey Road"]
    cat = clean_catalog(frame([row(f"t{i}", "rock", album_name=n) for i, n in enumerate(names)]), FeatureSchema())
    assert cat.metadata["album_name"].dtype == object and list(cat.metadata["album_name"]) == names


def test_flags_round_trip_through_npz_without_pickle(tmp_path: Path) -> None:
    cat = clean_catalog(frame([row("a", "rock", explicit="True"), row("b", "rock", explicit=""), row("c", "rock")]),
                        FeatureSchema())
    save_npz(tmp_path / "tracks.npz", cat.to_arrays())
    back = Catalog.from_arrays(load_npz(tmp_path / "tracks.npz"), cat.report)
    assert back.metadata["explicit"].dtype == np.int8 and back.metadata["explicit"].tolist() == [1, -1, 0]
    # a bundle written when flags were bool still loads, as 1/0
    arrays = cat.to_arrays()
    i = list(arrays["metadata_columns"]).index("explicit")
    arrays[f"meta{i}"] = np.array([True, False, False])
    old = Catalog.from_arrays(arrays, cat.report)
    assert old.metadata["explicit"].dtype == np.int8 and old.metadata["explicit"].tolist() == [1, 0, 0]


def test_the_report_warns_of_a_column_that_drops_or_fills_many_rows_and_names_constant_ones(tmp_path: Path) -> None:
    from engine import BuildConfig, GenreConfig, MoodConfig, build_bundle, format_report

    data = synthetic_catalog(1_500, seed=5, bad_rows=0)
    data["liveness"] = data["liveness"].astype(object)
    data.loc[data.index[::3], "liveness"] = ""  # a third of the rows blank in one column
    data["mode"] = 1  # the same on every track
    data.to_csv(tmp_path / "c.csv", index=False)
    config = BuildConfig(moods=MoodConfig(stability_subsample=0), genre=GenreConfig(enabled=False))
    report = format_report(build_bundle(tmp_path / "c.csv", tmp_path / "b", config))
    assert re.search(r"warning: [\d,]+ of the [\d,]+ rows \(33%\) were dropped for one reason, missing or non-finite "
                     r"liveness: --missing impute keeps them", report)
    assert "constant in this catalog, so of no weight: mode" in report
    filled = build_bundle(tmp_path / "c.csv", tmp_path / "i", config.replace(schema={"missing": "impute"}))
    assert "(33%) had missing or non-finite liveness, set to the column's median" in format_report(filled)


def test_genres_that_differ_only_in_case_are_named() -> None:
    from engine._catalog import case_only_genres

    assert case_only_genres(("ROCK", "jazz", "pop", "rock", "Rock")) == [("ROCK", "rock", "Rock")]
    assert case_only_genres(("jazz", "pop")) == []


def test_a_feature_value_beyond_float32_is_treated_as_non_finite() -> None:
    # finite in float64 but not in float32, which the index, the classifier and the bundle hold: dropped (or imputed)
    # and counted under the same reason as inf, so musicrec index and musicrec add never see it
    rows = [row("ok", "rock"), row("ok2", "rock", loudness=-5), row("huge", "rock", loudness="-1e200"),
            row("max", "rock", loudness="-1e308"), row("dur", "rock", duration_ms="1e300"),
            row("edge", "rock", loudness="3.4e38")]  # within float32: kept
    cat = clean_catalog(frame(rows), FeatureSchema())
    assert cat.report.dropped == {"missing or non-finite loudness": 2, "missing or non-finite duration_ms": 1}
    assert cat.report.dropped_rows == {"missing or non-finite loudness": [3, 4], "missing or non-finite duration_ms": [5]}
    assert sorted(cat.ids) == ["edge", "ok", "ok2"]
    imputed = clean_catalog(frame(rows), FeatureSchema(missing="impute"))
    assert imputed.report.imputed == {"missing or non-finite loudness": 2, "missing or non-finite duration_ms": 1}
    loudness = imputed.features[:, FEATURES.index("loudness")]
    assert np.abs(loudness).max() <= np.finfo(np.float32).max
    assert loudness[2] == loudness[3] == np.median([-7, -5, -7, 3.4e38])  # of the usable values only


def test_dropped_rows_are_named_up_to_five_per_reason_counting_past_exact_duplicates() -> None:
    """Row numbers are the file's, not the cleaned frame's: an exact duplicate before a dropped row still counts."""
    rows = [row("a", "rock"), row("a", "rock")] + [row(f"z{i}", "rock", tempo=0) for i in range(7)] + [row("", "rock")]
    rep = clean_catalog(frame(rows), FeatureSchema()).report
    assert rep.exact_duplicates == 1
    assert rep.dropped_rows == {"tempo not > 0": [3, 4, 5, 6, 7], "missing track_id": [10]}
    from engine import rows_named

    assert rows_named(rep.dropped_rows["tempo not > 0"], rep.dropped["tempo not > 0"]) == "data rows 3, 4, 5, 6, 7, ..."
    assert rows_named([10], 1) == "data row 10" and rows_named([], 0) == ""


def test_a_rules_two_checks_agree() -> None:
    """``breaks`` (one value, plain Python: a feature query's) and ``broken_by`` (arrays: the indexer's) are two
    writings of one rule: they must not drift apart."""
    from engine._schema import SPOTIFY_RULES, ValueRule

    values = np.array([-1e300, -1.0, -0.0, 0.0, 1e-9, 0.5, 1.0, 1.0000001, 3.0, 7.0, 7.5, 11.0, 12.0, 1e300, np.nan])
    for rule in [*SPOTIFY_RULES.values(), ValueRule(), ValueRule(max=2.0), ValueRule(min=-1.0, exclusive_min=True)]:
        assert rule.broken_by(values).tolist() == [rule.breaks(float(v)) for v in values], rule
