"""The tool loop's own cost per step: ``conv.run()`` against the same loop
written by hand (``send``, ``add_tool_results``, ``send``), on the same
replies from the OpenAI emulator on loopback, alternated and repeated; and
the pieces a step adds (the tools' schemas, cached; checking a call's
arguments against its schema and converting them).

    python benchmarks/bench_tool_loop.py           # a few seconds
    python benchmarks/bench_tool_loop.py --quick   # a smoke test

Target (issue "Tools that run themselves"): the loop's cost per step under
1% of a 200 ms reply. The replies here come at once, so that the difference
is the loop's and not the network's; the fraction is of 200 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable, Dict, List, Literal

import llmclients
from llmclients.testing import OpenAIEmulator, Reply
from llmclients.testing.openai import text_chunks, tool_call_chunks

REPLY_MS = 200.0
ARGUMENTS = '{"city": "Paris", "unit": "C", "days": 3}'
SPEC = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["C", "F"]},
                "days": {"type": "integer"},
            },
            "required": ["city"],
        },
    },
}


def make_tool() -> Callable[..., str]:
    """A new function object each call (a new key for the schema cache)."""

    def get_weather(city: str, unit: Literal["C", "F"] = "C", days: int = 1) -> str:
        """The weather in a city.

        Args:
            city: The city's name.
            unit: Celsius or Fahrenheit.
            days: How many days ahead.
        """
        return f"18 {unit} in {city} for {days} days"

    return get_weather


TOOL = make_tool()


def script(emulator: OpenAIEmulator, steps: int) -> None:
    calls = [Reply(events=tool_call_chunks([(f"c{n}", "get_weather", ARGUMENTS)])) for n in range(steps - 1)]
    emulator.enqueue(*calls, Reply(events=text_chunks(["Sunny", " all week."])))


def by_hand(client: Any) -> str:
    conv = client.conversation(tools=[SPEC])
    reply = conv.send("Weather?")
    while reply.tool_calls:
        conv.add_tool_results({call.id: TOOL(**call.parsed()) for call in reply.tool_calls})
        reply = conv.send()
    return str(reply.text)


def with_run(client: Any) -> str:
    return str(client.conversation(tools=[TOOL]).run("Weather?", max_steps=100).text)


def loops(emulator: OpenAIEmulator, client: Any, runs: int, steps: int) -> Dict[str, List[float]]:
    """Seconds per loop of each way, alternated (a slow moment of the machine hits both)."""
    times: Dict[str, List[float]] = {"by hand": [], "run()": []}
    for _ in range(runs):
        for name, loop in (("by hand", by_hand), ("run()", with_run)):
            script(emulator, steps)
            started = time.perf_counter()
            assert loop(client) == "Sunny all week."
            times[name].append(time.perf_counter() - started)
    return times


def per_call(work: Callable[[], Any], count: int) -> float:
    """Microseconds per call of ``work``: the best of five rounds of ``count``."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            work()
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


def pieces(count: int) -> Dict[str, float]:
    from llmclients.conversation import Conversation

    client = llmclients.OpenAICompatible(base_url="http://127.0.0.1:9/v1", model="m")
    conv = client.conversation(tools=[TOOL])
    call = llmclients.ToolCall("c1", "get_weather", ARGUMENTS)
    return {
        "the tools of a conversation, schemas made anew": per_call(
            lambda: Conversation(client, options={"tools": [make_tool()]}), max(count // 10, 10)
        ),
        "the tools of a conversation, schemas cached": per_call(
            lambda: Conversation(client, options={"tools": [TOOL]}), count
        ),
        "checking and converting one call's arguments": per_call(lambda: conv.toolbox.prepare(call), count),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few runs: a smoke test")
    args = parser.parse_args()
    runs, steps, count = (5, 3, 200) if args.quick else (40, 6, 5000)

    with OpenAIEmulator() as emulator, llmclients.OpenAICompatible(
        base_url=emulator.base_url, model="m", max_retries=0
    ) as client:
        loops(emulator, client, 2, steps)  # warm up: connections, caches
        times = loops(emulator, client, runs, steps)
    hand, run = (statistics.median(times[name]) for name in ("by hand", "run()"))
    overhead = (run - hand) / steps * 1e6
    print(f"a tool loop of {steps} replies ({steps - 1} with a call), {runs} runs each, alternated;")
    print("OpenAI emulator on loopback, every reply at once (medians):")
    print(f"  by hand (send, add_tool_results)   {hand * 1e3:8.2f} ms a loop")
    print(f"  conv.run()                         {run * 1e3:8.2f} ms a loop")
    print(f"  the loop's own cost                {overhead:8.1f} us a step")
    print(f"  against a {REPLY_MS:.0f} ms reply            {overhead / (REPLY_MS * 1e3):8.3%} a step (target < 1%)")
    print("the pieces (the first two once a conversation, the last once a call):")
    for name, micros in pieces(count).items():
        print(f"  {name:48s} {micros:8.1f} us")


if __name__ == "__main__":
    main()
