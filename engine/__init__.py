"""musicrec engine: the library behind the indexer and the server (no gRPC here).

Build a bundle from a catalog CSV, load it back verified, and use its parts::

    from engine import BuildConfig, build_bundle, load_bundle
    manifest = build_bundle("tracks.csv", "bundles/v1", BuildConfig())
    bundle = load_bundle("bundles/v1")
"""

from . import _openmp  # noqa: F401  (first: sets OpenMP's wait policy before XGBoost or FAISS loads it)
from ._build import build_bundle
from ._bundle import (
    FORMAT_VERSION,
    READABLE_VERSIONS,
    check_current_link,
    check_new_bundle_dir,
    parent_problem,
    publish,
    read_verified_manifest,
)
from ._candidates import (
    BatchSource,
    CandidateSource,
    CheckedSource,
    IndexSource,
    ScoredSource,
    use_one_search_thread,
)
from ._catalog import Catalog, IngestReport
from ._classify import Classification
from ._compiled import activate as use_compiled_kernels
from ._compiled import status as compiled_kernels_status
from ._config import BuildConfig, GenreConfig, IndexConfig, PreprocessConfig, SimilarConfig, read_config_file
from ._errors import (
    BackendUnavailable,
    BundleError,
    BundleIntegrityError,
    BundleNotFound,
    BundleVersionError,
    CatalogError,
    ConfigError,
    DeadlineExceeded,
    EngineError,
    InvalidQuery,
    NotFittedError,
    TrackNotFound,
    install_hint,
    shown,
)
from ._files import output_file_problem, write_output
from ._genre import GenreClassifier
from ._htmlreport import bundle_report_html, figure_html, html_document, plain_figure_text
from ._index import Neighbors, build_index, search
from ._ingest import clean_catalog, read_catalog, rows_named
from ._loaded import Bundle, load_bundle
from ._moodconfig import MOOD_WEIGHTS, MoodConfig
from ._moodmap import MoodMap
from ._moodnames import mood_name
from ._moods import MoodModel
from ._playlist import MAX_PLAYLIST, PlaylistEntry
from ._preprocess import Preprocessor, whiten_shrinkage
from ._preset import with_audio_preset
from ._progress import Tick, duration
from ._ranking import Deadline, deadline_passed
from ._recommender import Recommender
from ._report import format_report
from ._schema import AUDIO_MOOD_WEIGHTS, AUDIO_PREPROCESS, FeatureSchema, ValueRule, audio_schema, detect_preset
from ._similar_query import MAX_BATCH, MAX_DEPTH, MAX_K, Seed, SimilarQuery, SimilarResult, TrackFilter
from ._synthetic import synthetic_catalog
from ._update import add_tracks
from ._update_input import read_remove_ids, refused_text

__all__ = [
    "AUDIO_MOOD_WEIGHTS",
    "AUDIO_PREPROCESS",
    "FORMAT_VERSION",
    "MAX_BATCH",
    "MAX_DEPTH",
    "MAX_K",
    "MAX_PLAYLIST",
    "MOOD_WEIGHTS",
    "READABLE_VERSIONS",
    "BackendUnavailable",
    "BatchSource",
    "BuildConfig",
    "Bundle",
    "BundleError",
    "BundleIntegrityError",
    "BundleNotFound",
    "BundleVersionError",
    "CandidateSource",
    "Catalog",
    "CatalogError",
    "CheckedSource",
    "Classification",
    "ConfigError",
    "Deadline",
    "DeadlineExceeded",
    "EngineError",
    "FeatureSchema",
    "GenreClassifier",
    "GenreConfig",
    "IndexConfig",
    "IndexSource",
    "IngestReport",
    "InvalidQuery",
    "MoodConfig",
    "MoodMap",
    "MoodModel",
    "Neighbors",
    "NotFittedError",
    "PlaylistEntry",
    "PreprocessConfig",
    "Preprocessor",
    "Recommender",
    "ScoredSource",
    "Seed",
    "SimilarConfig",
    "SimilarQuery",
    "SimilarResult",
    "Tick",
    "TrackFilter",
    "TrackNotFound",
    "ValueRule",
    "add_tracks",
    "audio_schema",
    "build_bundle",
    "build_index",
    "bundle_report_html",
    "check_current_link",
    "check_new_bundle_dir",
    "clean_catalog",
    "compiled_kernels_status",
    "deadline_passed",
    "detect_preset",
    "duration",
    "figure_html",
    "format_report",
    "html_document",
    "install_hint",
    "load_bundle",
    "mood_name",
    "output_file_problem",
    "parent_problem",
    "plain_figure_text",
    "publish",
    "read_catalog",
    "read_config_file",
    "read_remove_ids",
    "read_verified_manifest",
    "refused_text",
    "rows_named",
    "search",
    "shown",
    "synthetic_catalog",
    "use_compiled_kernels",
    "use_one_search_thread",
    "whiten_shrinkage",
    "with_audio_preset",
    "write_output",
]
