"""What a reply cost, from a price table the user gives (``prices=``): :func:`check_prices`
reads the table, :func:`priced` fills in ``Usage.cost`` from it.

llmclients keeps no price list of its own: prices change, and a stale list
would report wrong costs without a word. A cost the service reports itself
(OpenRouter's ``usage.cost``) is always kept as it is.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from .. import errors
from .values import Usage

__all__ = ["PriceTable", "check_prices", "priced"]

#: Per model: US dollars (or any currency) per million input, output and cached input tokens.
PriceTable = Dict[str, Tuple[float, float, float]]


def check_prices(prices: Optional[Mapping[str, Sequence[float]]]) -> PriceTable:
    """The table ``prices`` gives, each model's cached-input price filled in
    (the input price when it has none); :class:`~llmclients.errors.InvalidRequestError`
    for a table that is not ``{model: (input, output[, cached_input])}`` of
    numbers of at least 0."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise errors.InvalidRequestError(f"prices must be a dict of model: (input, output), not {prices!r}")
    table: PriceTable = {}
    for model, entry in prices.items():
        if not isinstance(model, str) or not _is_prices(entry):
            raise errors.InvalidRequestError(
                f"prices[{model!r}] must be (input, output) or (input, output, cached_input): "
                f"numbers per million tokens, at least 0; not {entry!r}"
            )
        numbers = [float(number) for number in entry]
        table[model] = (numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else numbers[0])
    return table


def _is_prices(entry: Any) -> bool:
    return (
        isinstance(entry, (tuple, list))
        and len(entry) in (2, 3)
        and all(isinstance(n, (int, float)) and not isinstance(n, bool) and n >= 0 for n in entry)
    )


def priced(
    usage: Optional[Usage], models: Sequence[Optional[str]], table: Optional[PriceTable]
) -> Optional[Usage]:
    """``usage`` with its ``cost`` from ``table``, for the first of ``models``
    (the model asked for, then the one the reply names) that the table has.
    Unchanged when the service reported a cost, when no model is in the table,
    or when the prompt or completion count is unknown."""
    if usage is None or usage.cost is not None or not table:
        return usage
    entry = next((table[model] for model in models if model in table), None)
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    if entry is None or prompt is None or completion is None:
        return usage
    input_price, output_price, cached_price = entry
    cached = min(usage.cached_tokens or 0, prompt)
    cost = ((prompt - cached) * input_price + cached * cached_price + completion * output_price) / 1_000_000
    return Usage(prompt, completion, usage.total_tokens, usage.cached_tokens, usage.reasoning_tokens, cost, usage.raw)
