"""Where statistics are computed and summed."""

from emkit.executors.memory import InMemory, PassResult, auto_chunk_size

__all__ = ["InMemory", "PassResult", "auto_chunk_size"]
