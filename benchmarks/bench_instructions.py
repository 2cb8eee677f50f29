"""Instructions per delta, counted by valgrind's callgrind: a figure that
repeats to the instruction where the clock swings by a quarter.

    python benchmarks/bench_instructions.py                     # the built-in cases (a few minutes)
    python benchmarks/bench_instructions.py --provider anthropic --provider responses
    python benchmarks/bench_instructions.py --case openai --pythonpath /path/to/another/checkout

A client streams N1 and then N2 text deltas from a local server (a child
process outside valgrind, one HTTP chunk per event, chunked framing); each run
is a fresh interpreter under ``valgrind --tool=callgrind`` with
``PYTHONHASHSEED=0``, and a delta costs (Ir(N2) - Ir(N1)) / (N2 - N1)
instructions: start-up, imports and the request cancel out. The server's
whole body waits in the kernel's send buffer, so the client's reads do not
depend on when the server runs: rounds agree to a few instructions a delta.

The cases:

* ``floor-sse``, ``floor-ndjson``: the raw-socket floor of the framing: recv,
  split at the events' ends, ``json.loads`` (measured on the bytes of the
  OpenAI-compatible case, or of the provider that needs it);
* ``openai``: ``llmclients.OpenAICompatible.stream`` on chat completion
  chunks, as OpenAI's emulator writes them;
* ``named-anthropic``: named SSE events read as Anthropic's text deltas
  (``event: content_block_delta`` + ``data: {..."text_delta"...}``), by a small
  provider defined here;
* ``named-responses``: the same for the Responses API's
  ``response.output_text.delta``;
* ``--provider NAME``: a registered provider's own class, on a body made of its
  emulator's wire sample (``llmclients.testing.wire_sample(NAME)``), with the
  floor of its event format.

``--pythonpath`` runs the clients on another checkout (the server and its bytes
stay this one's); the ``floor-*``, ``openai`` and ``--provider`` cases need
nothing newer than ``llmclients.OpenAICompatible`` and ``get_client``.

Targets (issue "Native protocols", Speed): a named-event delta costs at most
1.1 x the instructions of an OpenAI-compatible delta; the OpenAI-compatible
count does not grow: compare with ``--pythonpath`` on an earlier checkout
(DESIGN.md's 53,936 a delta was counted on another body and client script, so
it is not this benchmark's figure; at bf228c6 this one counts about 39,200).

Needs valgrind (``apt-get install valgrind``); not run in CI.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET_NAMED = 1.1


# --- the bodies (built in the driver, from this checkout) ---------------------------


def _openai_events(count: int) -> List[bytes]:
    """Chat completion chunks as OpenAI's emulator writes them (a fixed ``created``)."""
    head = '{"id": "chatcmpl-emulator", "object": "chat.completion.chunk", "created": 1796611251, "model": "bench", '

    def chunk(delta: str, finish: str) -> bytes:
        choice = f'{{"index": 0, "delta": {delta}, "logprobs": null, "finish_reason": {finish}}}'
        return f'data: {head}"choices": [{choice}]}}\n\n'.encode()

    events = [chunk('{"role": "assistant", "content": ""}', "null")]
    events += [chunk(json.dumps({"content": f"tok{i} "}), "null") for i in range(count)]
    return [*events, chunk("{}", '"stop"'), b"data: [DONE]\n\n"]


def _sse(event: str, data: Dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _anthropic_events(count: int) -> List[bytes]:
    """A Messages API text stream, its events as Anthropic writes them."""
    message = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "bench", "content": []}
    events = [
        _sse("message_start", {"type": "message_start", "message": message}),
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    events += [
        _sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"tok{i} "}},
        )
        for i in range(count)
    ]
    return [
        *events,
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": count},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]


def _responses_events(count: int) -> List[bytes]:
    """A Responses API text stream, its events as OpenAI writes them."""
    response = {
        "id": "resp_bench",
        "object": "response",
        "status": "in_progress",
        "model": "bench",
        "output": [],
    }
    events = [
        _sse("response.created", {"type": "response.created", "sequence_number": 0, "response": response})
    ]
    events += [
        _sse(
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": i + 1,
                "item_id": "msg_bench",
                "output_index": 0,
                "content_index": 0,
                "delta": f"tok{i} ",
                "logprobs": [],
            },
        )
        for i in range(count)
    ]
    done = dict(response, status="completed")
    return [
        *events,
        _sse(
            "response.completed",
            {"type": "response.completed", "sequence_number": count + 1, "response": done},
        ),
    ]


def _provider_events(name: str, count: int) -> List[bytes]:
    """A registered provider's stream, from its emulator's wire sample."""
    from llmclients.testing import wire_sample

    wire = wire_sample(name)
    events = [wire.text(f"tok{i} ".encode()) for i in range(count)]
    return [part for part in (wire.prologue, *events, wire.epilogue) if part]


def _event_format(case: str) -> str:
    if case.startswith("floor-"):
        return case[len("floor-") :]
    if case.startswith("provider:"):
        from llmclients.providers import get_provider_class

        return get_provider_class(case.split(":", 1)[1]).event_format
    return "sse"


def _events_of(case: str, count: int, floor_of: Dict[str, str]) -> List[bytes]:
    if case.startswith("floor-"):
        case = floor_of[_event_format(case)]
    if case == "openai":
        return _openai_events(count)
    if case == "named-anthropic":
        return _anthropic_events(count)
    if case == "named-responses":
        return _responses_events(count)
    if case.startswith("provider:"):
        return _provider_events(case.split(":", 1)[1], count)
    raise SystemExit(f"unknown case {case!r}")


# --- the server (a child process, outside valgrind) ---------------------------------


def _serve(pipe: Any, bodies: Dict[str, bytes]) -> None:
    """Serve ``bodies`` by path, chunked, one HTTP chunk an event, as fast as the socket takes them."""
    listener = socket.create_server(("127.0.0.1", 0))
    pipe.send(listener.getsockname()[1])
    while True:
        conn, _ = listener.accept()
        # The whole body waits in the kernel, which hands it on as the client
        # reads: the reads then do not depend on when this process runs.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        with conn, conn.makefile("rb") as reader:
            path = reader.readline().split()[1].decode()
            length = 0
            while True:
                line = reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
            # /CASE/KIND/COUNT, and whatever the client puts after it
            _, case, kind, count = path.split("/")[:4]
            head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % _TYPES[kind]
            conn.sendall(head + bodies[f"/{case}/{kind}/{count}"])


_TYPES = {
    "sse": b"text/event-stream",
    "ndjson": b"application/x-ndjson",
    "text": b"text/plain; charset=utf-8",
}


def _chunked(events: List[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


# --- the clients (each in its own interpreter, under valgrind) ----------------------


def _floor(url: str, kind: str) -> int:
    """The least a client does: recv, split at the events' ends, ``json.loads`` each."""
    host, port, path = re.match(r"http://([^:/]+):(\d+)(/.*)", url).groups()  # type: ignore[union-attr]
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    end = b"\n\n" if kind == "sse" else b"\n"
    buf, count = b"", 0
    with sock:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            parts = (buf + data).split(end)
            buf = parts.pop()
            for part in parts:
                start = part.find(b"{")
                if start >= 0:
                    json.loads(part[start:].split(b"\r\n")[0])
                    count += 1
            if buf.endswith(b"0\r\n\r\n"):
                break
    return count


def _named_provider(delta_event: str) -> Any:
    """A provider that reads named events as Anthropic or the Responses API
    name their text deltas, the way a native provider's parse_event would."""
    from llmclients.providers.kit import Provider, Request, SSEEvent, load_json

    class Named(Provider):
        name = "bench-named"
        default_model = "bench"

        def build_request(self, messages: Any, model: str, options: Any, thread: Any) -> Any:
            return Request("POST", self.base_url, json={"model": model, "messages": messages, "stream": True})

        def parse_event(self, data: Any, state: Any) -> Optional[str]:
            if data.__class__ is not SSEEvent:
                return None
            event = data.event
            if event == delta_event:
                payload = load_json(data.data)
                if delta_event == "content_block_delta":
                    delta = payload["delta"]
                    return str(delta["text"]) if delta["type"] == "text_delta" else None
                return str(payload["delta"])
            if event in ("message_stop", "response.completed"):
                state.done, state.finish_reason = True, "stop"
            return None

    return Named


def _client(case: str, url: str) -> int:
    if case.startswith("floor-"):
        return _floor(url, case[len("floor-") :])
    import llmclients

    if case == "openai":
        client = llmclients.OpenAICompatible(base_url=url, model="bench")
    elif case.startswith("named-"):
        delta = "content_block_delta" if case == "named-anthropic" else "response.output_text.delta"
        client = _named_provider(delta)(base_url=url)
    else:
        from llmclients.testing import wire_sample

        name = case.split(":", 1)[1]
        model = wire_sample(name).model
        client = llmclients.get_client(name, base_url=url, **({"model": model} if model else {}))
    with client, client.stream("x") as stream:
        return sum(1 for _ in stream)


# --- the driver ---------------------------------------------------------------------


def _instructions(case: str, url: str, pythonpath: str, workdir: str) -> int:
    """Ir of one client run under callgrind (its profile kept in ``workdir``)."""
    out = os.path.join(workdir, "callgrind.out." + url.split("/", 3)[3].replace("/", ".").replace(":", "-"))
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1")
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        os.path.abspath(__file__),
        "--client",
        case,
        url,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{case}: the client failed under valgrind:\n{done.stderr[-3000:]}")
    with open(out) as file:
        for line in file:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"{case}: no totals in {out}")


def _measure(
    cases: List[str],
    counts: Tuple[int, int],
    pythonpath: str,
    rounds: int,
    floor_of: Dict[str, str],
    keep: Optional[str],
) -> Dict[str, List[float]]:
    bodies = {}
    for case in cases:
        kind = _event_format(case)
        for count in counts:
            bodies[f"/{case}/{kind}/{count}"] = _chunked(_events_of(case, count, floor_of))
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child, bodies), daemon=True)
    server.start()
    port = parent.recv()
    per_delta: Dict[str, List[float]] = {case: [] for case in cases}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            workdir = keep or scratch
            for round_ in range(rounds):
                for case in cases:  # alternated: each round runs every case
                    kind = _event_format(case)
                    low, high = (
                        _instructions(case, f"http://127.0.0.1:{port}/{case}/{kind}/{n}", pythonpath, workdir)
                        for n in counts
                    )
                    figure = (high - low) / (counts[1] - counts[0])
                    per_delta[case].append(figure)
                    print(f"  round {round_ + 1} {case:<22}{low:>15,}{high:>15,}{figure:>12,.0f}", flush=True)
    finally:
        server.terminate()
    return per_delta


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--client", nargs=2, metavar=("CASE", "URL"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--case",
        action="append",
        choices=("floor-sse", "floor-ndjson", "openai", "named-anthropic", "named-responses"),
        help="a built-in case (repeatable; default: all but floor-ndjson)",
    )
    parser.add_argument("--provider", action="append", default=[], help="a registered provider (repeatable)")
    parser.add_argument(
        "--pythonpath", help="the checkout whose llmclients the clients run (default: this one)"
    )
    parser.add_argument("--counts", nargs=2, type=int, default=(500, 2500), metavar=("N1", "N2"))
    parser.add_argument("--rounds", type=int, default=1, help="runs of every case, alternated")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the last round's profiles in DIR (callgrind.out.CASE.KIND.N), for callgrind_annotate",
    )
    args = parser.parse_args()
    if args.client:
        count = _client(*args.client)
        if not count:
            raise SystemExit("no deltas")
        return
    if not shutil.which("valgrind"):
        raise SystemExit("needs valgrind: apt-get install valgrind")
    pythonpath = args.pythonpath or os.path.dirname(HERE)
    cases: List[str] = list(args.case or [])
    if not args.case and not args.provider:
        cases = ["floor-sse", "openai", "named-anthropic", "named-responses"]
    if args.provider and "openai" not in cases:
        cases.append("openai")
    cases += [f"provider:{name}" for name in args.provider]
    # The floor of a framing reads the bytes of a case in that framing: the
    # OpenAI-compatible one for SSE, the first provider's for NDJSON.
    floor_of = {"sse": "openai"}
    for case in cases:
        floor_of.setdefault(_event_format(case), case)
    for kind in sorted(set(floor_of) - {"text"}):
        if f"floor-{kind}" not in cases:
            cases.insert(0, f"floor-{kind}")
    if floor_of.get("ndjson") == "floor-ndjson":
        raise SystemExit("floor-ndjson needs a --provider whose event format is ndjson")
    n1, n2 = args.counts
    print(f"Instructions per delta: (Ir({n2:,}) - Ir({n1:,})) / {n2 - n1:,}, llmclients from {pythonpath}")
    print(f"  {'':<8}{'case':<22}{'Ir(N1)':>15}{'Ir(N2)':>15}{'per delta':>12}")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    figures = _measure(cases, (n1, n2), pythonpath, args.rounds, floor_of, args.keep)
    median: Callable[[List[float]], float] = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    openai = median(figures["openai"]) if "openai" in figures else None
    print(f"\n{'case':<24}{'instr/delta':>12}{'x openai':>10}{'x floor':>9}")
    for case, values in figures.items():
        kind = _event_format(case)
        floor = median(figures[f"floor-{kind}"]) if f"floor-{kind}" in figures else None
        value = median(values)
        print(
            f"{case:<24}{value:>12,.0f}"
            + (f"{value / openai:>10.2f}" if openai else f"{'':>10}")
            + (f"{value / floor:>9.2f}" if floor else "")
        )
    print(
        f"\nTargets: a named-event delta <= {TARGET_NAMED} x an OpenAI-compatible delta; the OpenAI-compatible"
        " count does not grow (run with --pythonpath on an earlier checkout to compare)."
    )
    if openai:
        for case, values in figures.items():  # the target is for named SSE events
            if case.startswith(("named-", "provider:")) and _event_format(case) == "sse":
                ratio = median(values) / openai
                verdict = "met" if ratio <= TARGET_NAMED else "MISSED"
                print(f"  {case}: {ratio:.2f} x openai ({verdict})")


if __name__ == "__main__":
    main()
