"""What describing and checking a tool costs, in microseconds a call.

    python benchmarks/bench_schemas.py

A tool loop, at each step, describes its tools (``function_tool``, cached per
function) and checks and converts each call's arguments (``schema_problems``,
``convert_arguments``). Measured here on a function of eight parameters (a
Literal, an Enum, an Optional dataclass list, a tuple, ...):

* ``function_tool`` cached (the loop's every step) and uncached (a function
  met the first time: a fresh copy of it each call);
* ``schema_problems`` of fitting arguments, and of arguments with three problems;
* ``convert_arguments`` of the fitting ones;
* the baseline, ``json.loads`` of the arguments' text: what a step does anyway.

The cases are measured in turn, round after round (seven), and each prints its
median with its ratio to the baseline, and the step's overhead (two cached
tools, one check and one conversion) as a share of a 200 ms reply.
Takes a few seconds.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import statistics
import sys
import timeit
import types
from typing import Any, Callable, Dict, List, Literal, Optional, Tuple

from llmclients._core.schemas import convert_arguments, function_tool, schema_problems

ROUNDS = 7
REPLY_SECONDS = 0.2


class Unit(enum.Enum):
    C = "C"
    F = "F"


@dataclasses.dataclass
class Stop:
    city: str
    nights: int = 1


def plan_trip(
    origin: str,
    stops: Optional[List[Stop]] = None,
    unit: Unit = Unit.C,
    budget: float = 1000.0,
    pace: Literal["slow", "fast"] = "slow",
    dates: Tuple[str, str] = ("", ""),
    tags: Optional[Dict[str, str]] = None,
    rail_only: bool = False,
) -> str:
    """Plan a trip through several cities.

    Args:
        origin: Where the trip starts.
        stops: The cities on the way, in order.
        unit: Temperatures in Celsius or Fahrenheit.
        budget: The most to spend, in euros.
    """
    return origin


ARGUMENTS = {
    "origin": "Paris",
    "stops": [{"city": "Lyon", "nights": 2}, {"city": "Turin"}],
    "unit": "F",
    "pace": "fast",
    "dates": ["2026-05-01", "2026-05-09"],
}
BAD = {"origin": 3, "stops": [{"nights": 2}], "pace": "medium"}
TEXT = json.dumps(ARGUMENTS)


def fresh(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of ``fn`` that no cache has seen."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__doc__, copy.__annotations__, copy.__module__ = fn.__doc__, fn.__annotations__, fn.__module__
    return copy


def per_call(run: Callable[[], Any], number: int) -> float:
    """Microseconds a call of ``run``, over ``number`` calls."""
    return timeit.timeit(run, number=number) / number * 1e6


def main() -> None:
    parameters = function_tool(plan_trip)["function"]["parameters"]
    assert schema_problems(parameters, ARGUMENTS) == [] and len(schema_problems(parameters, BAD)) == 3
    copies = [fresh(plan_trip) for _ in range(ROUNDS * 200)]
    uncached = iter(copies)
    cases: Dict[str, Tuple[Callable[[], Any], int]] = {
        "json.loads (baseline)": (lambda: json.loads(TEXT), 20000),
        "function_tool, cached": (lambda: function_tool(plan_trip), 5000),
        "function_tool, uncached": (lambda: function_tool(next(uncached)), 200),
        "schema_problems, fits": (lambda: schema_problems(parameters, ARGUMENTS), 5000),
        "schema_problems, 3 problems": (lambda: schema_problems(parameters, BAD), 5000),
        "convert_arguments": (lambda: convert_arguments(plan_trip, ARGUMENTS), 5000),
    }
    timings: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, (run, number) in cases.items():
            timings[name].append(per_call(run, number))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    baseline = medians["json.loads (baseline)"]
    print(f"{'case':<30} {'us/call':>10} {'x baseline':>11}")
    for name, median in medians.items():
        print(f"{name:<30} {median:>10.1f} {median / baseline:>11.1f}")
    step = 2 * medians["function_tool, cached"] + medians["schema_problems, fits"] + medians["convert_arguments"]
    share = step / (REPLY_SECONDS * 1e6) * 100
    print(f"a step (2 tools cached, 1 check, 1 conversion): {step:.1f} us = {share:.3f}% of a {REPLY_SECONDS * 1000:.0f} ms reply")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
