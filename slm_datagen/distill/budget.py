"""Dollars: the cap on the dataset's total teacher spend (`distill.max_cost_usd`), shared by every worker.

The budget starts from what the ledger already records as paid (earlier runs, all teachers) and is checked before
every new request, counting what the requests in flight are expected to cost. A request that does not fit only
because of requests in flight waits for them to settle (they usually cost less than reserved); it is left unsent
only when the money already spent leaves less than its expected cost.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Budget:
    """Dollars: a cap on the dataset's total spend, what earlier runs and this run paid, what is in flight."""

    max_usd: float | None
    spent_before_usd: float = 0.0  # paid before this run, as the ledger records it
    spent_usd: float = 0.0  # paid in this run
    reserved_usd: float = 0.0  # expected cost of the requests in flight
    stopped: bool = False  # some request was left unsent because the budget could not cover it
    _waiters: list[asyncio.Future] = field(default_factory=list, repr=False)

    # Reservations are sums of floats: below this, nothing is in flight (a waiter must never wait on rounding dust).
    _EPSILON = 1e-9

    @property
    def total_usd(self) -> float:
        return self.spent_before_usd + self.spent_usd

    def _fits(self, expected_usd: float) -> bool:
        assert self.max_usd is not None
        return self.total_usd + self.reserved_usd + expected_usd <= self.max_usd + self._EPSILON

    def try_reserve(self, expected_usd: float) -> bool:
        """Reserve now or refuse (batch mode, where everything reserved is in flight together)."""
        if self.max_usd is None or self._fits(expected_usd):
            self.reserved_usd += expected_usd
            return True
        self.stopped = True
        return False

    async def reserve(self, expected_usd: float) -> bool:
        """Reserve, waiting while requests in flight hold the room; False when the spent money leaves too little."""
        while True:
            if self.max_usd is None or self._fits(expected_usd):
                self.reserved_usd += expected_usd
                return True
            if self.reserved_usd <= self._EPSILON or self.total_usd + expected_usd > self.max_usd + self._EPSILON:
                self.stopped = True
                return False
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def settle(self, expected_usd: float, actual_usd: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - expected_usd)
        if self.reserved_usd <= self._EPSILON:
            self.reserved_usd = 0.0
        self.spent_usd += actual_usd
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
