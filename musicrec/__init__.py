"""musicrec: the one ``musicrec`` command. The indexer's subcommands (index, synth, extract, report, publish,
add) and the server's (serve, query, bench, health) side by side, and ``demo``, the main job, which uses both:
it builds a bundle with the indexer and asks it one question of each kind over the server's gRPC.

The only package that imports both the indexer and the server (``server -> engine <- indexer``)."""
