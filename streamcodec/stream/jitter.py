"""Jitter buffer for one stream: puts packets back in sequence order, drops duplicates and packets
that come too late, and declares a frame lost once `depth` later frames have arrived or it is
overdue, so the output timeline never stalls and never skips."""

import time
from dataclasses import dataclass, field

from streamcodec.bitstream import Packet

_WRAP = 1 << 32
FRAME_SECONDS = 1.024
MAX_GAP = 600  # frames (10 min); a bigger jump restarts the timeline instead of concealing it all


def _ahead(seq: int, ref: int) -> int:
    """How far `seq` is after `ref` in wrapping u32 sequence space (negative: before)."""
    d = (seq - ref) % _WRAP
    return d - _WRAP if d >= _WRAP // 2 else d


@dataclass
class JitterStats:
    received: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0


@dataclass
class JitterBuffer:
    depth: int = 2  # later frames that may arrive before a missing one is given up
    clock: object = time.monotonic
    stats: JitterStats = field(default_factory=JitterStats)
    _pending: dict = field(default_factory=dict)
    _next: int | None = None
    _last_release: float = 0.0
    _ended: bool = False

    def insert(self, packet: Packet) -> None:
        self.stats.received += 1
        if self._next is not None and _ahead(packet.sequence, self._next) > MAX_GAP:
            self._pending.clear()
            self._next = None
            self._ended = False
        if self._next is not None and _ahead(packet.sequence, self._next) < 0:
            self.stats.late += 1
            return
        if packet.sequence in self._pending:
            self.stats.duplicates += 1
            return
        self._pending[packet.sequence] = packet

    def pop_ready(self, final: bool = False) -> list[Packet | None]:
        """Frames now due, in order; None stands for a lost frame to conceal. `final` releases
        everything (the stream ended or timed out)."""
        out: list[Packet | None] = []
        if self._next is None:
            if not self._pending:
                return out
            first = min(self._pending, key=lambda s: _ahead(s, next(iter(self._pending))))
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
            out.append(packet)
            self._next = (self._next + 1) % _WRAP
            self._last_release = self.clock()
            if packet is not None and packet.last:
                self._ended = True
        return out

    @property
    def ended(self) -> bool:
        """The LAST frame has been released."""
        return self._ended
