"""Core figures: delivery delay, throughput and import cost, each against a
baseline measured in the same run. Servers run in a child process so that
they do not share the client's GIL.

    python benchmarks/bench_core.py            # full run (about a minute)
    python benchmarks/bench_core.py --quick    # fewer events, for a smoke test
    python benchmarks/bench_core.py --imports  # only the import cost (--rounds N)

Targets (issue "Core SDK"): delivery within 1 ms median and 5 ms max of the
server's write in both framings; throughput >= 0.6 x the floor in both
framings and >= 12 x openai-python's sync client; import <= 1.2 x requests
(issue "Observability": <= 1.1 x, requests counted in; the figure with a
first client made is printed beside it, since a program that calls pays it).
(Issue "Reliability": with deadlines, retries and a fallback on, throughput
within 5% of the plain client's.)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Tuple

import requests

import llmclients
from llmclients.testing import OpenAIEmulator, RecordedRequest, Reply

FRAMINGS = ("chunked", "close")


# --- servers (child processes) ------------------------------------------------------


def _rendered_events(count: int) -> List[bytes]:
    """The bytes of a real OpenAI-style stream of ``count`` small deltas."""
    body = json.dumps(
        {"model": "bench", "messages": [{"role": "user", "content": "x"}], "stream": True}
    ).encode()
    request = RecordedRequest("POST", "/v1/chat/completions", None, body)  # type: ignore[arg-type]
    reply = Reply(deltas=[f"tok{i} " for i in range(count)])
    return list(OpenAIEmulator().events(reply, request))


def _serve_bulk(port_pipe, events: List[bytes]) -> None:
    """Serve ``events`` as fast as the socket takes them: one HTTP chunk per event."""
    bodies = {
        "chunked": b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n",
        "close": b"".join(events),
    }
    listener = socket.create_server(("127.0.0.1", 0))
    port_pipe.send(listener.getsockname()[1])
    while True:
        conn, _ = listener.accept()
        # Both must be closed for the FIN to go out: the reader holds the socket too.
        with conn, conn.makefile("rb") as reader:
            request_line = reader.readline()
            length = 0
            while True:
                line = reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
            framing = "close" if b"close" in request_line else "chunked"
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            head += (
                b"Transfer-Encoding: chunked\r\n\r\n"
                if framing == "chunked"
                else b"Connection: close\r\n\r\n"
            )
            conn.sendall(head)
            view = memoryview(bodies[framing])
            for start in range(0, len(view), 65536):
                conn.sendall(view[start : start + 65536])


class _StampingEmulator(OpenAIEmulator):
    """Writes ``time.monotonic()`` (system-wide on Linux) into each delta as it sends it.

    The request body's ``bench_framing`` and ``bench_count`` script the reply.
    """

    def make_default_reply(self, request):  # type: ignore[no-untyped-def]
        body = request.json()
        return Reply(deltas=["STAMP"] * body["bench_count"], delay=0.02, framing=body["bench_framing"])

    def _emit(self, handler, reply, event, *args):  # type: ignore[no-untyped-def]
        super()._emit(handler, reply, event.replace(b"STAMP", b"%.7f" % time.monotonic()), *args)


def _serve_paced(port_pipe) -> None:
    with _StampingEmulator() as emulator:
        port_pipe.send(emulator.port)
        while True:
            time.sleep(3600)


def _start(target, *args) -> Tuple[multiprocessing.Process, int]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=target, args=(child, *args), daemon=True)
    process.start()
    return process, parent.recv()


# --- throughput ------------------------------------------------------------------------


def floor(port: int, framing: str) -> int:
    """Raw socket, split on blank lines, json.loads: the least any SSE client must do."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST /{framing} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    buf, count = b"", 0
    with sock:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            parts = (buf + data).split(b"\n\n")
            buf = parts.pop()
            for part in parts:
                start = part.find(b"data: {")
                if start >= 0:
                    json.loads(part[start + 6 :])
                    count += 1
            if framing == "chunked" and buf.endswith(b"0\r\n\r\n"):
                break
    return count


def llmclients_stream(port: int, framing: str) -> int:
    client = llmclients.OpenAICompatible(base_url=f"http://127.0.0.1:{port}/{framing}", model="bench")
    with client, client.stream("x") as stream:
        count = sum(1 for _ in stream)
    return count + 2  # the role chunk and the finish chunk carry no text


def guarded_stream(port: int, framing: str) -> int:
    """The same stream with every reliability feature on: idle and total
    deadlines, a Retry with a budget, behind a Fallback."""
    client = llmclients.OpenAICompatible(
        base_url=f"http://127.0.0.1:{port}/{framing}",
        model="bench",
        timeout=llmclients.Timeout(connect=5, read=30, idle=20, total=120),
        retry=llmclients.Retry(total=3, backoff_factor=0.5, budget=30),
    )
    spare = llmclients.OpenAICompatible(base_url=f"http://127.0.0.1:{port}/{framing}", model="bench")
    with llmclients.Fallback([client, spare]) as chain, chain.stream("x") as stream:
        count = sum(1 for _ in stream)
    return count + 2


def openai_sync(port: int, framing: str) -> int:
    import openai  # imported (and timed) once, before the measured runs, by throughput()

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/{framing}", api_key="x", max_retries=0)
    stream = client.chat.completions.create(
        model="bench", messages=[{"role": "user", "content": "x"}], stream=True
    )
    return sum(1 for _ in stream)


def rate(fn: Callable[[int, str], int], port: int, framing: str, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        count = fn(port, framing)
        best = max(best, count / (time.perf_counter() - started))
    return best


def throughput(events: int, repeats: int) -> Dict[str, float]:
    process, port = _start(_serve_bulk, _rendered_events(events))
    small_process, small_port = _start(_serve_bulk, _rendered_events(max(2000, events // 10)))
    figures: Dict[str, float] = {}
    try:
        print(f"\nThroughput: {events:,} SSE events, one HTTP chunk each (events/s, best of {repeats})")
        print(
            f"{'framing':<9}{'floor':>10}{'llmclients':>12}{'x floor':>9}{'openai sync':>13}{'x openai':>10}"
        )
        for framing in FRAMINGS:
            base = rate(floor, port, framing, repeats)
            ours = rate(llmclients_stream, port, framing, repeats)
            try:
                import openai  # noqa: F401  (its import time stays out of the figure)

                peer = rate(openai_sync, small_port, framing, 1)
                peer_text = f"{peer:>13,.0f}{ours / peer:>9.1f}x"
            except ImportError:
                peer, peer_text = float("nan"), "   (pip install '.[bench]')"
            print(f"{framing:<9}{base:>10,.0f}{ours:>12,.0f}{ours / base:>8.2f}x{peer_text}")
            figures[f"{framing} x floor"] = ours / base
            figures[f"{framing} x openai"] = ours / peer
        print("\nThe cost of Timeout(idle, total) + Retry(budget) + Fallback on the happy path")
        print(f"{'framing':<9}{'plain':>12}{'guarded':>12}{'ratio':>8}")
        for framing in FRAMINGS:
            plain, guarded = 0.0, 0.0
            for _ in range(repeats + 2):  # interleaved, best of each, so drift hits both alike
                plain = max(plain, rate(llmclients_stream, port, framing, 1))
                guarded = max(guarded, rate(guarded_stream, port, framing, 1))
            print(f"{framing:<9}{plain:>12,.0f}{guarded:>12,.0f}{guarded / plain:>7.2f}x")
            figures[f"{framing} guarded x plain"] = guarded / plain
    finally:
        process.terminate()
        small_process.terminate()
    return figures


# --- delivery ---------------------------------------------------------------------------


def _delays(lines: List[str], received: List[float]) -> List[float]:
    return [(got - float(sent)) * 1000 for sent, got in zip(lines, received)]


def delivery_llmclients(base_url: str, framing: str, count: int) -> List[float]:
    client = llmclients.OpenAICompatible(base_url=base_url, model="bench")
    stamps, received = [], []
    with client, client.stream("x", extra_body={"bench_framing": framing, "bench_count": count}) as stream:
        for text in stream:
            received.append(time.monotonic())
            stamps.append(text)
    return _delays(stamps, received)


def delivery_requests(base_url: str, framing: str, count: int, how: str) -> List[float]:
    body = {
        "model": "bench",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "bench_framing": framing,
        "bench_count": count,
    }
    response = requests.post(base_url + "/chat/completions", json=body, stream=True)
    lines = response.iter_lines() if how == "iter_lines()" else _lines(response.iter_content(512))
    stamps, received = [], []
    for line in lines:
        if line.startswith(b"data: {"):
            content = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if content:
                received.append(time.monotonic())
                stamps.append(content)
    response.close()
    return _delays(stamps, received)


def _lines(chunks):
    buf = b""
    for chunk in chunks:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        yield from lines


def delivery(count: int) -> Dict[str, float]:
    process, port = _start(_serve_paced)
    figures: Dict[str, float] = {}
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        print(
            f"\nDelivery: {count} deltas written 20 ms apart; delay from the server's write to the caller (ms)"
        )
        print(f"{'reader':<28}{'framing':<9}{'median':>8}{'max':>8}{'late > 5 ms':>13}")
        for framing in FRAMINGS:
            for name in ("llmclients", "requests iter_lines()", "requests iter_content(512)"):
                if name == "llmclients":
                    delays = delivery_llmclients(base_url, framing, count)
                else:
                    delays = delivery_requests(base_url, framing, count, name)
                late = sum(d > 5 for d in delays)
                print(
                    f"{name:<28}{framing:<9}{statistics.median(delays):>8.2f}{max(delays):>8.2f}{late:>9}/{len(delays)}"
                )
                if name == "llmclients":
                    figures[f"{framing} median ms"] = statistics.median(delays)
                    figures[f"{framing} max ms"] = max(delays)
    finally:
        process.terminate()
    return figures


# --- import cost --------------------------------------------------------------------------


#: Two fresh interpreters a round, with a clock reading after each step
#: (start-up and exit, the interpreter's, are the same for every package and
#: only add noise). In the first, requests, then llmclients on top of it (the
#: figure for a program that imports requests anyway, and the one the target
#: is checked on: it counts requests in), then a first client, which loads
#: the machinery that makes calls, requests with it. In the second,
#: ``import llmclients`` alone, which does not import requests.
STEPS = (
    "import requests",
    "import llmclients",
    "llmclients.OpenAICompatible(base_url='http://127.0.0.1:9/v1')",
)
ALONE = ("import llmclients",)
NAMES = ("import requests", "import llmclients", "... and make a client", "import llmclients alone")
SUMMARY = (None, "import x requests", "import + client x requests", "import alone x requests")


def _readings(steps: Tuple[str, ...]) -> List[float]:
    code = "import time; started = time.perf_counter()\n" + "".join(
        f"{step}; print(time.perf_counter() - started)\n" for step in steps
    )
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return [float(line) * 1000 for line in result.stdout.split()]


def import_cost(rounds: int) -> Dict[str, float]:
    """Each reading over the same round's requests; each figure is the
    median of the rounds' ratios."""
    # pip compiles an installed package's bytecode; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would otherwise recompile llmclients at every start.
    package = os.path.dirname(llmclients.__file__)
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)
    rows = [_readings(STEPS) + _readings(ALONE) for _ in range(rounds)]
    print(f"\nImport cost (medians of {rounds} rounds of fresh interpreters)")
    figures = {}
    for index, (name, key) in enumerate(zip(NAMES, SUMMARY)):
        ratio = statistics.median(row[index] / row[0] for row in rows)
        print(f"{name:24s} {statistics.median(row[index] for row in rows):7.1f} ms   = {ratio:.3f} x requests")
        if key:
            figures[key] = ratio
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--imports", action="store_true", help="only the import cost")
    parser.add_argument("--rounds", type=int, help="rounds of the import cost (default 30; 5 with --quick)")
    args = parser.parse_args()
    events, repeats, paced = (10_000, 1, 30) if args.quick else (100_000, 3, 150)
    figures = {}
    if not args.imports:
        figures.update(delivery(paced))
        figures.update(throughput(events, repeats))
    figures.update(import_cost(args.rounds or (5 if args.quick else 30)))
    print("\nSummary:", ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
