"""How the hub's figures are printed, one format for the organizer's CLI, the team CLI
and the dashboard: a fraction (top-1, top-5, coverage, µAP) as a percent with one
decimal, rounded half up from the float's exact value.

`Decimal(x * 100)` is the exact binary value of the product, so rounding it half up
gives what the dashboard's JavaScript `(x * 100).toFixed(1)` gives (the spec of
`Number.prototype.toFixed` picks the larger of two equally near results); Python's
`f"{x * 100:.1f}"` rounds half to even and would print 0.9625 as 96.2% where the
dashboard shows 96.3%.
"""

import math
from decimal import ROUND_HALF_UP, Decimal

_TENTH = Decimal("0.1")


def percent(value: float | None, *, missing: str = "-") -> str:
    """`value` (a fraction) as a percent with one decimal, e.g. 0.9625 -> "96.3%";
    `missing` for None or a value that is not finite."""
    if value is None or not math.isfinite(value):
        return missing
    return f"{Decimal(value * 100).quantize(_TENTH, rounding=ROUND_HALF_UP)}%"
