"""Jitter buffer for one stream: puts packets back in sequence order, drops duplicates and packets
that come too late, and declares a frame lost once `depth` later frames have arrived or it is
overdue, so the output timeline never stalls and never skips. Sequence numbers here are the
unwrapped ones (the receiver extends the packets' 16 bits), so plain integer order applies."""

import time
from dataclasses import dataclass, field

from streamcodec.bitstream.speech import MAX_GAP, SpeechPacket

FRAME_SECONDS = 1.024


@dataclass
class JitterStats:
    received: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0


@dataclass
class JitterBuffer:
    depth: int = 2  # later frames that may arrive before a missing one is given up
    max_gap: int = MAX_GAP  # a longer jump of sequence numbers restarts the timeline instead of concealing
    clock: object = time.monotonic
    stats: JitterStats = field(default_factory=JitterStats)
    _pending: dict = field(default_factory=dict)
    _next: int | None = None
    _last_release: float = 0.0
    _ended: bool = False
    _released: set = field(default_factory=set)

    def insert(self, packet: SpeechPacket, sequence: int) -> bool:
        """Add a packet whose unwrapped sequence number is `sequence`; False if it was dropped
        (a duplicate, or too late)."""
        self.stats.received += 1
        if self._next is not None and sequence - self._next > self.max_gap:
            self.stats.lost += len(self._pending)
            self._pending.clear()
            self._released.clear()
            self._next = None
            self._ended = False
        if self._next is not None and sequence < self._next:
            if sequence in self._released:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return False
        if sequence in self._pending:
            self.stats.duplicates += 1
            return False
        self._pending[sequence] = packet
        return True

    def pop_ready(self, final: bool = False) -> list[tuple[int, SpeechPacket | None]]:
        """(sequence, packet) of the frames now due, in order; packet None stands for a lost frame
        to conceal. `final` releases everything (the stream ended or timed out)."""
        out: list[tuple[int, SpeechPacket | None]] = []
        if self._next is None:
            if not self._pending:
                return out
            first = min(self._pending)
            starts = any(p.first for p in self._pending.values()) or len(self._pending) > self.depth
            if not (starts or final):
                return out  # wait briefly for earlier frames that may arrive out of order
            self._next = first
            self._last_release = self.clock()
        while self._pending and not self._ended:
            packet = self._pending.pop(self._next, None)
            if packet is None:
                overdue = self.clock() - self._last_release > (self.depth + 1) * FRAME_SECONDS
                if not (final or len(self._pending) > self.depth or overdue):
                    break
                self.stats.lost += 1
            else:
                self._released.add(self._next)
                self._released.discard(self._next - 64)  # remember the last 64 for duplicate counting
            out.append((self._next, packet))
            self._next += 1
            self._last_release = self.clock()
            if packet is not None and packet.last:
                self._ended = True
        return out

    @property
    def ended(self) -> bool:
        """The LAST frame has been released."""
        return self._ended
