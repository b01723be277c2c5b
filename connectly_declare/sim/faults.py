"""Fault injection and the per-key rate limit of the simulator."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class FaultConfig:
    """What can go wrong, and how often (each rate is a probability per request, 0..1).

    - `latency_ms` + a uniform `jitter_ms` on top: added before every vendor request.
    - `error_500_rate`: answer 500 without looking at the request (nothing recorded).
    - `error_429_rate`: answer 429 with `Retry-After` as if rate limited (nothing recorded).
    - `timeout_after_accept_rate`: record the accepted entries, then hold the response for
      `hang_seconds` (or until the client hangs up): the client's timeout fires while the
      server has accepted, which is the ambiguous case.
    - `drop_after_accept_rate`: record the accepted entries, then drop the connection
      without a complete response.
    - `seed`: makes the sequence of faults (and of generated ids) reproducible.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_500_rate: float = 0.0
    error_429_rate: float = 0.0
    timeout_after_accept_rate: float = 0.0
    drop_after_accept_rate: float = 0.0
    hang_seconds: float = 30.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_rate") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be between 0 and 1, not {value}")
            if f.name in ("latency_ms", "jitter_ms", "hang_seconds") and value < 0:
                raise ValueError(f"{f.name} must not be negative, not {value}")

    @property
    def any(self) -> bool:
        """True when at least one fault or delay is configured."""
        return any(
            getattr(self, f.name) for f in fields(self) if f.name not in ("seed", "hang_seconds")
        )


@dataclass(frozen=True)
class Draw:
    """The faults chosen for one request."""

    delay_s: float = 0.0
    error_500: bool = False
    error_429: bool = False
    timeout_after_accept: bool = False
    drop_after_accept: bool = False


NO_FAULT = Draw()


class FaultDice:
    """Draws each request's faults from one seeded generator, in a fixed order, so a run
    with the same seed and the same order of requests sees the same faults."""

    def __init__(self, config: FaultConfig, seed: int | None) -> None:
        self.config = config
        self._rng = random.Random(seed)

    def roll(self) -> Draw:
        c = self.config
        if not c.any:
            return NO_FAULT
        rng = self._rng
        delay = c.latency_ms + (rng.uniform(0.0, c.jitter_ms) if c.jitter_ms else 0.0)
        return Draw(
            delay_s=delay / 1000.0,
            error_500=bool(c.error_500_rate) and rng.random() < c.error_500_rate,
            error_429=bool(c.error_429_rate) and rng.random() < c.error_429_rate,
            timeout_after_accept=bool(c.timeout_after_accept_rate)
            and rng.random() < c.timeout_after_accept_rate,
            drop_after_accept=bool(c.drop_after_accept_rate)
            and rng.random() < c.drop_after_accept_rate,
        )


class TokenBuckets:
    """One token bucket per API key: `rate` tokens a second, holding at most `burst`.

    `take(key)` returns 0.0 when the request may go ahead, else the seconds until a token
    is available (the `Retry-After`)."""

    def __init__(self, rate: float, burst: int | None, clock: Callable[[], float]) -> None:
        if rate <= 0:
            raise ValueError(f"the rate limit must be positive, not {rate}")
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1, round(rate)))
        if self.burst < 1:
            raise ValueError(f"the burst must be at least 1, not {burst}")
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        now = self._clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def reset(self) -> None:
        self._buckets.clear()
