"""Wire limits that light clients (``musicrec query``) check without loading the engine."""

MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # gRPC requests and responses; a 1,000-result response is ~150 KB
MAX_AUDIO_BYTES = 3 * 1024 * 1024  # one audio clip: under the 4 MiB message limit, with room for the rest
# The engine's bounds on a request (engine.MAX_K, MAX_DEPTH, MAX_PLAYLIST), checked by musicrec query so the error names
# the flag. Copied, not imported: a query never loads the engine (its import takes seconds: xgboost, faiss,
# sklearn); tests/server/test_query_cli.py holds these copies equal to the engine's.
MAX_K = 1000
MAX_DEPTH = 2000  # offset + k: the deepest page of a ranking
MAX_PLAYLIST = 500
