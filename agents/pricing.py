"""What model calls cost, in USD, from a small table of well-known prices.

Prices change and endpoints differ (Azure deployments have their own names, local
Llama or Qwen servers cost nothing per token), so a model that is not in the table is
*unpriced*: its calls cost 0 and say so, and a ModelSpec may give its own prices.
"""

from __future__ import annotations

import re
from typing import NamedTuple, TypeVar

T = TypeVar("T")


class Price(NamedTuple):
    """USD per million tokens. `cached_input` is what input read from the prompt cache costs
    (None: no discount, it costs `input`)."""

    input: float
    output: float
    cached_input: float | None = None


# OpenAI list prices, standard tier, checked 2025-08 (and unchanged in listings seen
# early 2026). Cached input is half price on gpt-4o and o3-mini, a quarter on gpt-4.1,
# o3 and o4-mini, a tenth on gpt-5. Reasoning tokens are billed as output and already
# counted in completion tokens.
PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-2024-05-13": Price(5.00, 15.00),  # the first gpt-4o snapshot was dearer, and never cached
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "o3": Price(2.00, 8.00, 0.50),
    "o3-mini": Price(1.10, 4.40, 0.55),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "gpt-5": Price(1.25, 10.00, 0.125),
    "gpt-5-mini": Price(0.25, 2.00, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
}

# Dated snapshots ("gpt-4o-mini-2024-07-18") cost what their family costs unless listed.
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def lookup(table: dict[str, T], model: str) -> T | None:
    """`model`'s entry in a table of OpenAI models, by its name or else its family's."""
    name = model.strip().lower()
    return table.get(name) or table.get(_SNAPSHOT.sub("", name))


def price_for(model: str, override: Price | None = None) -> Price | None:
    """The price of `model`, or None when it is unknown (a local or custom model)."""
    if override is not None:
        return override
    return lookup(PRICES, model)


def cost(
    model: str, input_tokens: int, output_tokens: int, override: Price | None = None, cached_input_tokens: int = 0
) -> float:
    """USD for one call; 0.0 for an unpriced model (check `price_for` to tell the two apart).

    `cached_input_tokens` are part of `input_tokens` (as OpenAI and vLLM count them), priced at the cached rate.
    """
    price = price_for(model, override)
    if price is None:
        return 0.0
    cached = min(cached_input_tokens, input_tokens)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    return ((input_tokens - cached) * price.input + cached * cached_rate + output_tokens * price.output) / 1_000_000
