"""What model calls cost, in USD, from a small table of well-known prices.

Prices change and endpoints differ (Azure deployments have their own names, local
Llama or Qwen servers cost nothing per token), so a model that is not in the table is
*unpriced*: its calls cost 0 and say so, and a ModelSpec may give its own prices.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Price(NamedTuple):
    """USD per million tokens."""

    input: float
    output: float


# OpenAI list prices, standard tier, checked 2025-08 (and unchanged in listings seen
# early 2026). Cached-input discounts are ignored, so cached prompts are overestimated.
# Reasoning tokens are billed as output and already counted in completion tokens.
PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-2024-05-13": Price(5.00, 15.00),  # the first gpt-4o snapshot was dearer
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
}

# Dated snapshots ("gpt-4o-mini-2024-07-18") cost what their family costs unless listed.
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def price_for(model: str, override: Price | None = None) -> Price | None:
    """The price of `model`, or None when it is unknown (a local or custom model)."""
    if override is not None:
        return override
    name = model.strip().lower()
    return PRICES.get(name) or PRICES.get(_SNAPSHOT.sub("", name))


def cost(model: str, input_tokens: int, output_tokens: int, override: Price | None = None) -> float:
    """USD for one call; 0.0 for an unpriced model (check `price_for` to tell the two apart)."""
    price = price_for(model, override)
    if price is None:
        return 0.0
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000
