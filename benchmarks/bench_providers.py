"""The core's delivery and throughput figures for every registered provider
but the OpenAI-compatible one (``bench_core.py``): the seed providers'
framings, AutonomousAI (SSE), AllenAI (NDJSON) and Aura (raw text), and the
native protocols, Anthropic and Responses (named SSE events) and Ollama
(NDJSON); and Anthropic's tool calls, fragment by fragment.

    python benchmarks/bench_providers.py [--quick] [--provider NAME ...] [--rounds N]

Each provider's stream is the bytes its own emulator writes, captured once and
then served from a child process as fast as the socket takes them (one HTTP
chunk per event), or paced 20 ms apart with the server's write time in each
delta. The floor, measured in the same run, reads the same bytes from a raw
socket and does the least the framing needs (split + ``json.loads`` for SSE
and NDJSON; for raw text the chunk framing, if any, and an incremental UTF-8
decode).

Targets (issue "The seed providers"): the core's — delivery within 1 ms median
and 5 ms max, throughput at least 0.6 x the floor, in both framings. (Issue
"Native protocols": each new provider's text stream at least 1.0 x the floor
of its framing; an Anthropic tool call of 10,000 ``input_json_delta``
fragments read at least 0.5 x as fast as the same number of text deltas.)
"""

from __future__ import annotations

import argparse
import codecs
import json
import statistics
import time
from typing import Dict, List

from bench_core import FRAMINGS, _serve_bulk, _start, rate

import llmclients
from llmclients.providers import get_provider_class
from llmclients.testing import EMULATORS, Reply, emulator_for, wire_sample

#: bench_core.py measures the OpenAI-compatible provider.
MEASURED_ELSEWHERE = {"openai"}
#: Every registered provider with an emulator -> its event format.
PROVIDERS = {
    name: get_provider_class(name).event_format for name in EMULATORS if name not in MEASURED_ELSEWHERE
}
#: Raw text has no framing of its own, so a captured stream repeated is still a
#: faithful one; it needs to be long to outweigh the fixed cost of one request.
REPEAT = {"sse": 1, "ndjson": 1, "text": 40}


def capture_events(provider: str, count: int) -> List[bytes]:
    """The event writes of the provider's emulator for a reply of ``count`` deltas."""
    with emulator_for(provider) as emulator:
        written: List[bytes] = []
        emit = emulator._emit

        def record(handler, reply, event, *args):  # type: ignore[no-untyped-def]
            written.append(event)
            emit(handler, reply, event, *args)

        emulator._emit = record  # type: ignore[method-assign]
        emulator.enqueue(Reply(deltas=[f"tok{i} " for i in range(count)]))
        client_of(provider, emulator.base_url).complete("x")
    return written


def client_of(provider: str, base_url: str, **kwargs: object) -> llmclients.Provider:
    """A client of ``provider``, asking for its wire sample's model if it has no default."""
    model = wire_sample(provider).model
    if model:
        kwargs["model"] = model
    return llmclients.get_client(provider, base_url=base_url, **kwargs)


def floor_for(kind: str):  # type: ignore[no-untyped-def]
    def floor(port: int, framing: str) -> int:
        import socket

        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"POST /{framing} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        buf, count = b"", 0
        decoder = codecs.getincrementaldecoder("utf-8")()
        with sock:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                if kind == "text":
                    buf += data
                    if not count and b"HTTP/1.1" in buf[:8]:  # the head, once
                        if b"\r\n\r\n" not in buf:
                            continue
                        buf = buf.split(b"\r\n\r\n", 1)[1]
                        count = 1
                    if framing == "chunked":  # the least a chunked body needs: its framing parsed
                        text, buf, done = _dechunk(buf)
                        count += len(decoder.decode(text))
                        if done:
                            break
                    else:
                        count += len(decoder.decode(buf))
                        buf = b""
                    continue
                parts = (buf + data).split(b"\n\n" if kind == "sse" else b"\n")
                buf = parts.pop()
                for part in parts:
                    start = part.find(b"{")
                    if start >= 0:
                        json.loads(part[start:].split(b"\r\n")[0])
                        count += 1
                if framing == "chunked" and buf.endswith(b"0\r\n\r\n"):
                    break
        return count

    return floor


def _dechunk(buf: bytes):  # type: ignore[no-untyped-def]
    """The data of the complete chunks in ``buf``, the rest, and whether the last chunk came."""
    out, pos = [], 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return b"".join(out), buf[pos:], False
        size = int(buf[pos:eol], 16)
        if size == 0:
            return b"".join(out), b"", True
        end = eol + 2 + size
        if end + 2 > len(buf):
            return b"".join(out), buf[pos:], False
        out.append(buf[eol + 2 : end])
        pos = end + 2


def client_for(provider: str, kind: str):  # type: ignore[no-untyped-def]
    def read(port: int, framing: str) -> int:
        # No max_reply_size: the full run's raw text (100,000 deltas, x40) is
        # past the 12 MiB default, which is about memory, not throughput.
        client = client_of(provider, f"http://127.0.0.1:{port}/{framing}", max_reply_size=None)
        with client, client.stream("x") as stream:
            texts = list(stream)
        return len("".join(texts)) if kind == "text" else len(texts)

    return read


def throughput(provider: str, kind: str, count: int, repeats: int) -> Dict[str, float]:
    """The provider's rate against the floor's, alternated: each round reads the
    stream once each way, and the figure is the median of the rounds' ratios
    (the range shows this machine's noise)."""
    events = capture_events(provider, count) * REPEAT[kind]
    process, port = _start(_serve_bulk, events)
    figures = {}
    try:
        for framing in FRAMINGS:
            pairs = [
                (rate(floor_for(kind), port, framing, 1), rate(client_for(provider, kind), port, framing, 1))
                for _ in range(repeats)
            ]
            ratios = sorted(ours / base for base, ours in pairs)
            base, ours = (statistics.median(side) for side in zip(*pairs))
            unit = "chars/s" if kind == "text" else "events/s"
            print(
                f"{provider:<11}{kind:<7}{framing:<9}{base:>14,.0f}{ours:>14,.0f} {unit:<9}"
                f"{statistics.median(ratios):>6.2f}x  ({ratios[0]:.2f}-{ratios[-1]:.2f})"
            )
            figures[f"{provider} {framing} x floor"] = statistics.median(ratios)
    finally:
        process.terminate()
    return figures


def anthropic_fragments(count: int, repeats: int) -> Dict[str, float]:
    """Anthropic's tool-call fragments against its text deltas, ``count`` of each,
    read through ``events()`` (a fragment is a ``ToolCallDelta``)."""
    from llmclients.testing.anthropic import (
        message_delta,
        message_start,
        message_stop,
        serialize,
        text_block,
        tool_use_block,
    )

    pieces = ["tok "] * count
    fragments = ['{"text": "'] + ["tok "] * (count - 2) + ['"}']
    bodies = {
        "text": [message_start(), *text_block(0, pieces), message_delta("end_turn"), message_stop()],
        "tool fragments": [
            message_start(),
            *tool_use_block(0, "toolu_1", "save", fragments),
            message_delta("tool_use"),
            message_stop(),
        ],
    }

    def read(port: int, framing: str) -> int:
        client = client_of("anthropic", f"http://127.0.0.1:{port}/{framing}", max_reply_size=None)
        with client, client.stream("x") as stream:
            return sum(1 for _ in stream.events())

    rates = {}
    for name, events in bodies.items():
        process, port = _start(_serve_bulk, [serialize(event) for event in events])
        try:
            rates[name] = rate(read, port, "chunked", repeats)
        finally:
            process.terminate()
        print(f"anthropic  {name:<16}{rates[name]:>14,.0f} deltas/s")
    ratio = rates["tool fragments"] / rates["text"]
    print(f"anthropic  tool fragments / text: {ratio:.2f}x (target >= 0.5x)")
    return {"anthropic tool fragments x text": ratio}


def _serve_paced(pipe, provider: str) -> None:  # type: ignore[no-untyped-def]
    emulator = emulator_for(provider)
    emit = emulator._emit

    def stamp(handler, reply, event, *args):  # type: ignore[no-untyped-def]
        emit(handler, reply, event.replace(b"STAMP", b"%.7f " % time.monotonic()), *args)

    emulator._emit = stamp  # type: ignore[method-assign]
    with emulator:
        pipe.send(emulator.base_url)
        while True:
            framing, count = pipe.recv()
            emulator.enqueue(Reply(deltas=["STAMP"] * count, delay=0.02, framing=framing))
            pipe.send("queued")


def delivery(provider: str, count: int) -> Dict[str, float]:
    import multiprocessing

    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve_paced, args=(child, provider), daemon=True)
    process.start()
    base_url = parent.recv()
    figures = {}
    try:
        client = client_of(provider, base_url)
        for framing in FRAMINGS:
            parent.send((framing, count))
            parent.recv()
            delays = []
            with client.stream("x") as stream:
                for text in stream:
                    now = time.monotonic()
                    delays.extend((now - float(stamp)) * 1000 for stamp in text.split())
            late = sum(d > 5 for d in delays)
            if late:
                print(
                    "   late deltas (index, ms):", [(i, round(d, 1)) for i, d in enumerate(delays) if d > 5]
                )
            median, worst = statistics.median(delays), max(delays)
            print(f"{provider:<11}{framing:<9}{median:>8.2f}{worst:>8.2f}{late:>9}/{len(delays)}")
            figures[f"{provider} {framing} median ms"] = median
            figures[f"{provider} {framing} max ms"] = worst
        client.close()
    finally:
        process.terminate()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--provider", action="append", choices=sorted(PROVIDERS), help="measure only these (repeatable)"
    )
    parser.add_argument("--rounds", type=int, help="alternated rounds of the throughput figures (default 5)")
    args = parser.parse_args()
    count, repeats, paced = (5_000, 1, 30) if args.quick else (50_000, 5, 150)
    repeats = args.rounds or repeats
    chosen = {name: kind for name, kind in PROVIDERS.items() if not args.provider or name in args.provider}
    figures: Dict[str, float] = {}
    print(f"Delivery: {paced} deltas written 20 ms apart; delay from the server's write to the caller (ms)")
    print(f"{'provider':<11}{'framing':<9}{'median':>8}{'max':>8}{'late > 5 ms':>13}")
    for provider in chosen:
        figures.update(delivery(provider, paced))
    print(
        f"\nThroughput: {count:,} deltas (raw text: repeated x{REPEAT['text']}), one HTTP chunk each;"
        f" {repeats} rounds alternated, medians (the ratio's range)"
    )
    print(f"{'provider':<11}{'kind':<7}{'framing':<9}{'floor':>14}{'llmclients':>14}{'':<10}{'x floor':>7}")
    for provider, kind in chosen.items():
        figures.update(throughput(provider, kind, count, repeats))
    if "anthropic" in chosen:
        print(f"\nAnthropic's tool calls: {count // 5:,} input_json_delta fragments against as many text deltas, chunked")
        figures.update(anthropic_fragments(count // 5, repeats))
    print("\nSummary:", ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
