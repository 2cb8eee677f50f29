"""Rich replies: the cost of typed events, reasoning and tool-call assembly,
each as a ratio to the plain text iterator measured in the same run.

    python benchmarks/bench_events.py            # 100k events (about half a minute)
    python benchmarks/bench_events.py --quick    # 10k, a smoke test

Targets (issue "Rich replies"): ``stream.events()`` over a 100k-event text
stream >= 0.8x the text iterator's rate; a 100k-event reasoning stream read
with ``events()`` >= 0.8x the text rate; 10k tool-call fragments assembled
>= 0.5x the text rate. (bench_core.py keeps the plain text figures against
the raw-socket floor.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_core import _serve_bulk, _start, rate

import llmclients


def _chunk(delta: Dict[str, Any], finish: Any = None) -> bytes:
    data = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def text_events(count: int) -> List[bytes]:
    return [_chunk({"content": f"tok{i} "}) for i in range(count)] + [_chunk({}, "stop"), b"data: [DONE]\n\n"]


def reasoning_events(count: int) -> List[bytes]:
    # DeepSeek's shape: both keys in every delta, one of them null.
    return [_chunk({"content": None, "reasoning_content": f"tok{i} "}) for i in range(count)] + [
        _chunk({}, "stop"),
        b"data: [DONE]\n\n",
    ]


def tool_call_events(count: int, calls: int = 10) -> List[bytes]:
    per_call = count // calls
    events = []
    for call in range(calls):
        first = {
            "index": call,
            "id": f"call_{call}",
            "type": "function",
            "function": {"name": "f", "arguments": ""},
        }
        events.append(_chunk({"tool_calls": [first]}))
        for i in range(per_call - 1):
            events.append(_chunk({"tool_calls": [{"index": call, "function": {"arguments": f'"a{i}",'}}]}))
    return events + [_chunk({}, "tool_calls"), b"data: [DONE]\n\n"]


def _client(port: int, framing: str) -> Any:
    return llmclients.OpenAICompatible(base_url=f"http://127.0.0.1:{port}/{framing}", model="bench")


def read_text(port: int, framing: str) -> int:
    with _client(port, framing) as client, client.stream("x") as stream:
        return sum(1 for _ in stream)


def read_events(port: int, framing: str) -> int:
    with _client(port, framing) as client, client.stream("x") as stream:
        return sum(1 for _ in stream.events())


def assemble_tool_calls(port: int, framing: str) -> int:
    with _client(port, framing) as client, client.stream("x") as stream:
        completion = stream.completion()
    assert len(completion.tool_calls) == 10 and completion.tool_calls[0].arguments.startswith('"a0",')
    return sum(len(call.arguments.split(",")) for call in completion.tool_calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    events = 10_000 if args.quick else 100_000
    fragments = 1_000 if args.quick else 10_000
    repeats = 2 if args.quick else 3
    servers = {
        "text": _start(_serve_bulk, text_events(events)),
        "reasoning": _start(_serve_bulk, reasoning_events(events)),
        "tools": _start(_serve_bulk, tool_call_events(fragments)),
    }
    runs: List[tuple[str, str, Callable[[int, str], int], float]] = [
        ("text, events()", "text", read_events, 0.8),
        ("reasoning, events()", "reasoning", read_events, 0.8),
        (f"{fragments:,} tool-call fragments", "tools", assemble_tool_calls, 0.5),
    ]
    print(f"Typed events against the text iterator ({events:,} text events; events/s, best of {repeats})")
    print(f"{'framing':<9}{'stream':<28}{'text iter':>11}{'this':>11}{'ratio':>8}{'target':>8}")
    try:
        for framing in ("chunked", "close"):
            base = rate(read_text, servers["text"][1], framing, repeats)
            for label, server, fn, target in runs:
                ours = rate(fn, servers[server][1], framing, repeats)
                verdict = "ok" if ours / base >= target else "MISSED"
                print(
                    f"{framing:<9}{label:<28}{base:>11,.0f}{ours:>11,.0f}{ours / base:>7.2f}x{target:>7.1f}x {verdict}"
                )
    finally:
        for process, _ in servers.values():
            process.terminate()


if __name__ == "__main__":
    main()
