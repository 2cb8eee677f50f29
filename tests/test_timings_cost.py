"""Timings on every stream (``stream.timings``, ``Completion.timings``) and a
reply's cost: reported by the service, or computed from the client's ``prices``."""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

import llmclients
from llmclients import Timings, errors
from llmclients.aio import AsyncClient
from llmclients.batch import run
from llmclients.testing import EMULATORS, OpenAIEmulator, Reply, emulator_for, wire_sample
from llmclients.testing.openai import text_chunks, usage_chunk


def client_for(provider: str, base_url: str, **kwargs: Any) -> llmclients.Provider:
    model = wire_sample(provider).model  # a provider without a default model (OpenAI-compatible)
    if model:
        kwargs["model"] = model
    return llmclients.get_client(provider, base_url=base_url, **kwargs)


def assert_ordered(timings: Timings, deltas: int) -> None:
    assert timings.headers is not None and timings.first_delta is not None and timings.total is not None
    assert 0 < timings.headers <= timings.first_delta <= timings.total
    assert timings.deltas >= deltas
    assert timings.deltas_per_second is not None and timings.deltas_per_second > 0


@pytest.mark.parametrize("provider", list(EMULATORS))
def test_every_provider_times_its_stream(provider: str) -> None:
    with emulator_for(provider) as emulator:
        emulator.enqueue(Reply(deltas=["one ", "two ", "three"], delay=0.02, head_delay=0.02))
        with client_for(provider, emulator.base_url) as client:
            stream = client.stream("Hi")
            opened = stream.timings
            assert opened.headers is not None and opened.first_delta is None and opened.total is None
            completion = stream.completion()
    assert_ordered(stream.timings, 3)
    assert stream.timings.headers >= 0.02  # type: ignore[operator]
    assert completion.timings == stream.timings
    assert completion.to_dict()["timings"] == stream.timings.to_dict()
    assert Timings.from_dict(json.loads(json.dumps(completion.to_dict()["timings"]))) == stream.timings
    assert pickle.loads(pickle.dumps(completion)).timings == stream.timings


def test_timings_of_a_stream_closed_early_and_of_an_error(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.enqueue(Reply(deltas=["a", "b", "c"], delay=0.02))
    openai_emulator.enqueue(Reply(status=400, body={"error": {"message": "no"}}))
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m", max_retries=0)
    with client.stream("Hi") as stream:
        next(stream)
    assert stream.timings.first_delta is not None and stream.timings.total is not None
    assert stream.timings.deltas == 1 and stream.timings.deltas_per_second is None
    observed = []

    class Ends(llmclients.Observer):
        def on_end(self, event: Any) -> None:
            observed.append(event.reply.timings)

    client.observers.append(Ends())
    with pytest.raises(errors.HTTPStatusError):
        client.stream("Hi")
    (failed,) = observed
    assert failed.headers is None and failed.first_delta is None and failed.total is not None


def test_a_completion_pickled_before_timings_loads_without_them() -> None:
    completion = llmclients.Completion("hi", "stop", None, "m", "openai")
    state = completion.__reduce_ex__(4)[2]
    fields, slots = state if isinstance(state, tuple) else (None, state)
    del slots["timings"]
    old = llmclients.Completion.__new__(llmclients.Completion)
    old.__setstate__((fields, slots))
    assert old.timings is None and old == completion and old.to_dict()["timings"] is None


def test_asyncio_and_fallback_streams_have_timings(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.enqueue(Reply(deltas=["a", "b"], delay=0.01))
    openai_emulator.enqueue(Reply(status=503))
    openai_emulator.enqueue(Reply(deltas=["c", "d"], delay=0.01))

    async def main() -> Timings:
        async with AsyncClient(llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m")) as client:
            stream = client.stream("Hi")
            completion = await stream.completion()
            assert completion.timings == stream.timings
            return stream.timings

    assert_ordered(asyncio.run(main()), 2)
    broken = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m", max_retries=0)
    working = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m")
    with llmclients.Fallback([broken, working]).stream("Hi") as stream:
        assert "".join(stream) == "cd"
    assert_ordered(stream.timings, 2)


def test_batch_lines_carry_timings(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    for _ in range(2):
        openai_emulator.enqueue(Reply(deltas=["a", "b"], delay=0.01))
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m")
    output = tmp_path / "out.jsonl"
    list(run(client, ["one", "two"], concurrency=2, output=str(output)))
    for line in output.read_text().splitlines():
        assert_ordered(Timings.from_dict(json.loads(line)["timings"]), 2)


# --- cost -----------------------------------------------------------------------------------------


def usage_reply(prompt: int, completion: int, **details: Any) -> Reply:
    return Reply(events=text_chunks(["ok"]) + [usage_chunk(prompt, completion, **details)])


def test_a_reported_cost_is_kept_even_with_a_price_table(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.enqueue(usage_reply(10, 5, cost=0.00012))
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m", prices={"m": (1, 1)})
    assert client.complete("Hi").usage.cost == 0.00012  # type: ignore[union-attr]


def test_the_price_table_fills_in_the_cost_cached_tokens_at_their_price(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.enqueue(usage_reply(10, 5, cached=4))
    openai_emulator.enqueue(usage_reply(10, 5, cached=4))
    openai_emulator.enqueue(usage_reply(10, 5))
    prices = {"m": (1.0, 2.0, 0.5), "two": (3, 4)}
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m", prices=prices)
    usage = client.complete("Hi").usage
    assert usage is not None and usage.cost == pytest.approx((6 * 1.0 + 4 * 0.5 + 5 * 2.0) / 1e6)
    assert pickle.loads(pickle.dumps(usage)).cost == usage.cost and usage.to_dict()["cost"] == usage.cost
    # Without a cached price, cached tokens cost the input price.
    assert client.complete("Hi", model="two").usage.cost == pytest.approx((10 * 3 + 5 * 4) / 1e6)  # type: ignore[union-attr]
    # A model the table does not have gets no cost.
    assert client.complete("Hi", model="elsewhere").usage.cost is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "prices",
    [["m", 1], {"m": (1,)}, {"m": (1, 2, 3, 4)}, {"m": (-1, 2)}, {"m": ("1", 2)}, {"m": (True, 2)}, {1: (1, 2)}],
)
def test_a_bad_price_table_is_refused_when_the_client_is_made(prices: Any) -> None:
    with pytest.raises(errors.InvalidRequestError, match="prices"):
        llmclients.OpenAICompatible(base_url="http://127.0.0.1:9/v1", prices=prices)


def test_the_batch_summary_totals_tokens_and_cost(openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.enqueue(usage_reply(10, 5))
    openai_emulator.enqueue(usage_reply(20, 5))
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m", prices={"m": (100, 200)})
    job = run(client, ["one", "two"], concurrency=1)
    list(job)
    assert job.stats.tokens == 40 and job.stats.cost == pytest.approx((30 * 100 + 10 * 200) / 1e6)
    assert "40 tokens" in job.stats.summary() and "cost 0.005" in job.stats.summary()
