"""Per-source request rate limit of the recorder (docs/protocol.md, "Recorder limits")."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

RATE_PER_SOURCE = 200.0     # requests/s sustained per source IP ...
BURST_PER_SOURCE = 400.0    # ... with this burst


@dataclass
class Bucket:
    tokens: float = BURST_PER_SOURCE
    at: float = field(default_factory=time.monotonic)

    def take(self, rate: float, burst: float) -> bool:
        now = time.monotonic()
        self.tokens = min(burst, self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
