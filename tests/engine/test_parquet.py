"""Parquet beside CSV: the same catalog and the same bundle from a CSV and its Parquet copy, the same
clear errors (file, row, column); and the CSV's typed read gives what the all-text read gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyarrow")

from engine import CatalogError, FeatureSchema, build_bundle, read_catalog, synthetic_catalog
from tests.conftest import FAST_CONFIG

SCHEMA = FeatureSchema()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parquet")
    synthetic_catalog(500, seed=5).to_csv(root / "catalog.csv", index=False)
    # as a user makes one: pandas' own typed reading of the CSV, written without the frame's index
    pd.read_csv(root / "catalog.csv").to_parquet(root / "catalog.parquet", index=False)
    return {"root": root, "csv": root / "catalog.csv", "parquet": root / "catalog.parquet"}


def assert_same_catalog(a, b) -> None:  # type: ignore[no-untyped-def]
    assert a.report.to_json() == b.report.to_json()
    assert np.array_equal(a.ids, b.ids) and a.genre_names == b.genre_names
    assert np.array_equal(a.features, b.features, equal_nan=True)
    assert np.array_equal(a.genre_indptr, b.genre_indptr) and np.array_equal(a.genre_codes, b.genre_codes)
    assert list(a.metadata) == list(b.metadata)
    for col in a.metadata:
        assert a.metadata[col].dtype == b.metadata[col].dtype, col
        assert np.array_equal(a.metadata[col], b.metadata[col], equal_nan=a.metadata[col].dtype.kind == "f"), col


def test_a_csv_and_its_parquet_copy_clean_to_the_same_catalog(files: dict[str, Path]) -> None:
    a, b = read_catalog(files["csv"], SCHEMA), read_catalog(files["parquet"], SCHEMA)
    assert a.report.exact_duplicates > 0 and a.report.dropped  # the generator's bad rows went through cleaning
    assert_same_catalog(a, b)


def test_a_csv_and_its_parquet_copy_build_the_same_bundle(files: dict[str, Path]) -> None:
    config = FAST_CONFIG.replace(genre={"enabled": False})
    build_bundle(files["csv"], files["root"] / "from-csv", config)
    build_bundle(files["parquet"], files["root"] / "from-parquet", config)
    for name in ("tracks.npz", "moods.npz", "preprocess.npz", "neighbours.npz"):
        x, y = (dict(np.load(files["root"] / d / name, allow_pickle=False)) for d in ("from-csv", "from-parquet"))
        assert sorted(x) == sorted(y), name
        for key in x:
            assert np.array_equal(x[key], y[key], equal_nan=x[key].dtype.kind == "f"), (name, key)


def test_the_typed_csv_read_equals_the_all_text_read(files: dict[str, Path], tmp_path: Path) -> None:
    # odd spellings of missing values fall back to the text read; both paths must give one catalog
    frame = pd.read_csv(files["csv"], dtype=str, keep_default_na=False)
    frame.loc[3, "energy"], frame.loc[7, "tempo"], frame.loc[9, "valence"] = "NULL", " nan", "0.50"
    frame.to_csv(tmp_path / "odd.csv", index=False)
    typed = read_catalog(tmp_path / "odd.csv", SCHEMA)
    from engine import clean_catalog
    from engine._readers import read_csv_frame

    as_text = clean_catalog(read_csv_frame(tmp_path / "odd.csv"), SCHEMA, source="odd.csv")
    assert_same_catalog(typed, as_text)


def test_a_bad_parquet_cell_names_the_file_row_and_column(files: dict[str, Path], tmp_path: Path) -> None:
    frame = pd.read_parquet(files["parquet"])
    frame["tempo"] = frame["tempo"].astype(str)
    frame.loc[41, "tempo"] = "fast"
    frame.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(CatalogError, match=r"bad\.parquet: column 'tempo' has 1 non-numeric value\(s\) "
                                           r"\(data row 42: 'fast'\)"):
        read_catalog(tmp_path / "bad.parquet", SCHEMA)
    (tmp_path / "cut.parquet").write_bytes(files["parquet"].read_bytes()[:300])
    with pytest.raises(CatalogError, match=r"cut\.parquet: not a readable Parquet file"):
        read_catalog(tmp_path / "cut.parquet", SCHEMA)
    frame.drop(columns=["valence"]).to_parquet(tmp_path / "short.parquet", index=False)
    with pytest.raises(CatalogError, match=r"short\.parquet: missing column\(s\) 'valence'"):
        read_catalog(tmp_path / "short.parquet", SCHEMA)
