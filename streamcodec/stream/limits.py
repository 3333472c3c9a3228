"""The bounds a receiver keeps (its own module so that the command line can show the defaults
without importing the decoder)."""

from dataclasses import dataclass


@dataclass
class Limits:
    """What one receiver holds at most; beyond it, new streams are refused and counted."""

    max_streams: int = 64  # open at once, all nodes (each holds a decoder and two open files)
    max_streams_per_node: int = 2  # a node's new stream may start while its previous one drains
    new_streams_per_second: float = 10.0  # sustained; bursts of up to `new_stream_burst`
    new_stream_burst: int = 32  # a fleet that starts at once
    node_new_streams_per_second: float = 1.0  # one node's new streams (checked first, so a node that
    node_new_stream_burst: int = 5  # churns through stream ids cannot use up everyone's allowance)
    max_nodes: int = 4096  # meta messages remembered (least recently seen forgotten first)
    refine_delay: float = 0.25  # seconds a frame may wait before it is decoded without phase refinement
    max_delay: float = 2.0  # live: seconds a frame may wait for the decoder before it is dropped
    max_gap: int = 32  # frames: a longer jump in sequence numbers is a new timeline, not loss to conceal
    pending_per_node: int = 32  # packets that arrived before their node's meta message, kept 10 s
    max_clock_skew: float = 10.0  # seconds a stream's first packet may be ahead of its start time + sequence
    max_ahead: float = 3.0  # seconds a later packet may be ahead of that (network jitter) and leave a gap
    waiting_streams: int = 4096  # new streams held while the new-stream allowance is spent (a flood;
    # 8 packets each at most, some 13 MB in all): a real stream's first packet outlasts 3,000 new streams a second
    max_unproven_files: int = 256  # files for streams that ended with fewer than 3 decoded frames; then
    # such streams are not recorded
