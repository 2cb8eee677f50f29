"""Peak memory under a gzip bomb: each provider, each framing, blocking and asyncio.

    python benchmarks/bench_bomb.py            # 10 GiB bombs (a few minutes)
    python benchmarks/bench_bomb.py --quick    # 1 GiB bombs, blocking only

Three bombs, each a valid ``Content-Encoding: gzip`` body that inflates to
10 GiB from 10-30 MB on the wire:

* ``zeros``: NUL bytes, no line end anywhere;
* ``text``: the provider's own text events (1000 characters each), valid to
  the end;
* ``tiny``: the same with two characters each, a flood of small deltas (for
  Aura's raw text, the same as ``text``);
* ``emoji``: the same with 250 emoji each (4 bytes a character in a ``str``);
* ``big``: the same with events just under the 8 MiB event limit.

Each case runs in a fresh interpreter that prints its own peak RSS
(``ru_maxrss``) and the error that stopped the stream; the baseline is the
same interpreter once it has imported llmclients and made a client. Target
(issue 13): every case stops with a typed error under 100 MB peak RSS, with
the client's default limits.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from typing import Dict, List, Tuple

from llmclients._core.framing import MAX_EVENT_SIZE

PROVIDERS = ("openai", "autonomous", "allenai", "aura")
FRAMINGS = ("chunked", "close", "length")
KINDS = ("zeros", "text", "tiny", "emoji", "big")
TARGET_MB = 100
BLOCK = 1024 * 1024

TEXT_EVENT = {
    "openai": b'data: {"choices": [{"index": 0, "delta": {"content": "%s"}}]}\n\n',
    "autonomous": b'data: {"choices": [{"index": 0, "delta": {"content": "%s"}}]}\n\n',
    "allenai": b'{"message": "msg_A1B2C3D4E5", "content": "%s", "logprobs": []}\n',
    "aura": b"%s",
}
FIRST = {
    "allenai": b'{"id": "msg_A1", "role": "user", "children": [{"id": "msg_B2", "role": "assistant"}]}\n'
}
CONTENT_TYPE = {
    "openai": "text/event-stream; charset=utf-8",
    "autonomous": "text/event-stream; charset=utf-8",
    "allenai": "application/jsonl",
    "aura": "",
}


# --- the bombs -----------------------------------------------------------------------------


def _block(kind: str, provider: str) -> bytes:
    """About 1 MiB of the bomb's content (8 MiB for ``big``), repeated to make the whole."""
    if kind == "zeros":
        return bytes(BLOCK)
    if kind == "big":
        return TEXT_EVENT[provider] % (b"a" * (MAX_EVENT_SIZE - 100))
    content = {"tiny": b"ab", "emoji": "🎉".encode() * 250}.get(kind, b"a" * 1000)
    event = TEXT_EVENT[provider] % content
    return event * (BLOCK // len(event))


def gzip_bomb(head: bytes, block: bytes, repeat: int) -> bytes:
    """``head + block * repeat``, gzipped, built in a few seconds however big.

    Each part is deflated with a full flush, which resets the compressor, so
    the compressed block is the same bytes every time and is repeated rather
    than computed again; only the CRC is computed over the whole.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)] if head else []
    packed = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH) == packed
    end = deflate.flush()
    crc = zlib.crc32(head)
    for _ in range(repeat):
        crc = zlib.crc32(block, crc)
    size = len(head) + len(block) * repeat
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + b"".join(parts) + packed * repeat + end + struct.pack("<II", crc, size & 0xFFFFFFFF)


# --- the server (a child process) ------------------------------------------------------------


def _serve(port_pipe, gib: int) -> None:
    bombs: Dict[Tuple[str, str], bytes] = {}
    for kind in KINDS:
        for provider in PROVIDERS:
            head = FIRST.get(provider, b"") if kind != "zeros" else b""
            block = _block(kind, provider)
            bombs[kind, provider] = gzip_bomb(head, block, gib * 2**30 // len(block))
    listener = socket.create_server(("127.0.0.1", 0))
    port_pipe.send((listener.getsockname()[1], {k: len(v) for k, v in bombs.items()}))
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_answer, args=(conn, bombs), daemon=True).start()


def _answer(conn: socket.socket, bombs: Dict[Tuple[str, str], bytes]) -> None:
    with conn, conn.makefile("rb") as reader:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = reader.readline()
            if not line:
                return
            head += line
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        reader.read(length)
        _, kind, provider, framing = head.split(b" ")[1].decode().split("/")[:4]
        body = bombs[kind, provider]
        headers = ["HTTP/1.1 200 OK", "Content-Encoding: gzip"]
        if CONTENT_TYPE[provider]:
            headers.append(f"Content-Type: {CONTENT_TYPE[provider]}")
        headers.append(
            {
                "chunked": "Transfer-Encoding: chunked",
                "close": "Connection: close",
                "length": f"Content-Length: {len(body)}",
            }[framing]
        )
        try:
            conn.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
            step = 65536
            for start in range(0, len(body), step):
                piece = body[start : start + step]
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if framing == "chunked" else piece)
            if framing == "chunked":
                conn.sendall(b"0\r\n\r\n")
        except OSError:  # the client stopped reading: what it should do
            pass


# --- one case (a fresh interpreter) -----------------------------------------------------------


def _client(provider: str, base_url: str):
    import llmclients

    model = {"model": "m"} if provider == "openai" else {}
    return llmclients.get_client(provider, base_url=base_url, max_retries=0, **model)


def run_case(port: int, kind: str, provider: str, framing: str, mode: str) -> None:
    base_url = f"http://127.0.0.1:{port}/{kind}/{provider}/{framing}"
    client = _client(provider, base_url)
    started = time.perf_counter()
    if mode == "baseline":
        outcome, text = "none", 0
    elif mode == "blocking":
        outcome, text = _blocking(client)
    else:
        import asyncio

        outcome, text = asyncio.run(_asyncio(client))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"peak_mb": peak_mb, "error": outcome, "text": text, "s": time.perf_counter() - started})
    )


def _blocking(client) -> Tuple[str, int]:
    given = 0
    try:
        for piece in client.stream("Hi"):
            given += len(piece)
    except Exception as exc:
        return type(exc).__name__, len(getattr(exc, "partial_text", ""))
    return "no error", given


async def _asyncio(client) -> Tuple[str, int]:
    from llmclients.aio import AsyncClient

    given = 0
    try:
        async with AsyncClient(client) as aclient, aclient.stream("Hi") as stream:
            async for piece in stream:
                given += len(piece)
    except Exception as exc:
        return type(exc).__name__, len(getattr(exc, "partial_text", ""))
    return "no error", given


def measure(port: int, kind: str, provider: str, framing: str, mode: str) -> Dict[str, object]:
    command = [sys.executable, __file__, "--case", str(port), kind, provider, framing, mode]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    if done.returncode != 0:
        return {"peak_mb": float("nan"), "error": f"crashed: {done.stderr.strip().splitlines()[-1:]}"}
    result: Dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--case", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        port, *rest = args.case
        run_case(int(port), *rest)
        return
    gib = 1 if args.quick else 10
    modes: List[str] = ["blocking"] if args.quick else ["blocking", "asyncio"]
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child, gib), daemon=True)
    server.start()
    port, wire = parent.recv()
    worst = 0.0
    try:
        baseline = measure(port, "zeros", "openai", "chunked", "baseline")["peak_mb"]
        print(
            f"gzip bombs of {gib} GiB; peak RSS in MB (target {TARGET_MB}); "
            f"baseline (idle interpreter, llmclients imported, a client made): {baseline:.1f} MB\n"
        )
        print(
            f"{'bomb':<6}{'provider':<11}{'framing':<9}{'mode':<9}{'wire MB':>8}{'peak MB':>9}"
            f"{'text Mi ch':>11}{'s':>6}  stopped by"
        )
        for kind in KINDS:
            for provider in PROVIDERS:
                for framing in FRAMINGS:
                    for mode in modes:
                        result = measure(port, kind, provider, framing, mode)
                        peak = float(result["peak_mb"])  # type: ignore[arg-type]
                        worst = max(worst, peak)
                        text = int(result.get("text", 0)) / 2**20  # type: ignore[call-overload]
                        print(
                            f"{kind:<6}{provider:<11}{framing:<9}{mode:<9}{wire[kind, provider] / 1e6:>8.1f}"
                            f"{peak:>9.1f}{text:>11.1f}{float(result.get('s', 0)):>6.1f}  {result['error']}",  # type: ignore[arg-type]
                            flush=True,
                        )
    finally:
        server.terminate()
    verdict = "meets" if worst < TARGET_MB else "MISSES"
    print(
        f"\nSummary: worst peak {worst:.1f} MB ({worst / TARGET_MB:.2f} x the {TARGET_MB} MB target: {verdict}), "
        f"baseline {baseline:.1f} MB"
    )


if __name__ == "__main__":
    main()
