"""Wire limits that light clients (``musicrec query``) check without loading the engine."""

MAX_AUDIO_BYTES = 3 * 1024 * 1024  # one audio clip: under the 4 MiB message limit, with room for the rest
