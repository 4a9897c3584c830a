"""musicrec indexer: the command line over the engine (``musicrec index``, ``synth``, ``demo``)."""
