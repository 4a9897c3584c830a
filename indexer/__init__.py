"""musicrec indexer: building over the engine (``musicrec index``, ``synth``, ``extract``, ``report``, ``publish``,
``add``). It never imports the server: the ``musicrec`` package puts these commands beside the server's."""
