"""Where statistics are computed and summed: data in memory, or a stream of chunks."""

from emkit.executors._chunked import ChunkResult, PassResult
from emkit.executors.memory import InMemory, auto_chunk_size
from emkit.executors.stream import Stream

__all__ = ["ChunkResult", "InMemory", "PassResult", "Stream", "auto_chunk_size"]
