"""Benchmark of :mod:`llmclients.batch` and ``llmclients batch``, against the OpenAI emulator.

::

    python benchmarks/bench_batch.py            # the issue's figures (about 4 minutes)
    python benchmarks/bench_batch.py --quick    # smaller numbers: a smoke test

Prints, in one run:

* **throughput**: ``--records`` records (1,000), each answered after 200 ms
  with 20 deltas 10 ms apart, at ``--concurrency`` 50: wall time against the
  ideal (records / concurrency × 0.4 s; target ≤ 1.15×) and client CPU per
  record, for :func:`llmclients.batch.run` (threads over one client) and, in
  the same run, :class:`llmclients.aio.AsyncClient` with a semaphore, and
  openai-python's ``AsyncOpenAI`` with a semaphore when installed (the bench
  extra);
* **rate limit**: ``--rpm 600`` for ``--seconds`` (30): requests sent against
  rpm × seconds / 60 (target ± 2 %), and the most sent in any one second;
* **resume**: ``llmclients batch`` killed with SIGKILL at about half-way, then
  run again with ``--compact``: records answered twice, lost, and success
  lines per id (targets: 0, 0, exactly one);
* **memory**: ``llmclients batch`` over ``--memory-records`` (100,000)
  records: its peak RSS (target ≤ 150 MB), beside a process that only
  imports llmclients.

The emulator runs in a child process, so that it does not take the client's GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Dict, List, Tuple

import llmclients
from llmclients import batch
from llmclients.aio import AsyncClient
from llmclients.testing import OpenAIEmulator, RecordedRequest, Reply

ROOT = Path(__file__).resolve().parent.parent


# --- the server, in its own process -----------------------------------------------------


class CountingEmulator(OpenAIEmulator):
    """Notes each chat request's arrival (CLOCK_MONOTONIC, system-wide) and last message."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log: List[Tuple[float, str]] = []

    def check(self, request: RecordedRequest) -> None:
        super().check(request)
        if request.method == "POST":
            self.log.append((time.monotonic(), request.json()["messages"][-1]["content"]))
        # The emulator keeps every request; a long run needs only the log.
        self.requests.clear()


def serve(conn: Connection) -> None:
    emulator = CountingEmulator().start()
    conn.send(emulator.base_url)
    while True:
        command, argument = conn.recv()
        if command == "reply":
            emulator.default_reply = argument
        elif command == "cpu":
            conn.send(time.process_time())
        elif command == "log":
            conn.send(emulator.log)
            emulator.log = []
        elif command == "stop":
            emulator.stop()
            conn.send(None)
            return


class Server:
    def __init__(self) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=serve, args=(child,), daemon=True)
        self.process.start()
        self.base_url: str = self.conn.recv()

    def reply(self, reply: Reply) -> None:
        self.conn.send(("reply", reply))

    def cpu(self) -> float:
        """The server process's CPU seconds so far."""
        self.conn.send(("cpu", None))
        seconds: float = self.conn.recv()
        return seconds

    def log(self) -> List[Tuple[float, str]]:
        self.conn.send(("log", None))
        log: List[Tuple[float, str]] = self.conn.recv()
        return log

    def stop(self) -> None:
        self.conn.send(("stop", None))
        self.conn.recv()
        self.process.join(5)


def paced_reply() -> Reply:
    return Reply(deltas=["word "] * 20, delay=0.01, head_delay=0.2)


def client_for(base_url: str, connections: int) -> llmclients.OpenAICompatible:
    return llmclients.OpenAICompatible(
        base_url=base_url, model="bench", pool_size=connections, retry=llmclients.Retry(total=0)
    )


def prompts(count: int, tag: str) -> List[Dict[str, Any]]:
    return [{"id": f"{tag}{n}", "prompt": f"{tag} {n}"} for n in range(count)]


# --- throughput ---------------------------------------------------------------------------


def timed(work: Any) -> Tuple[float, float]:
    wall, cpu = time.monotonic(), time.process_time()
    work()
    return time.monotonic() - wall, time.process_time() - cpu


def with_batch(base_url: str, records: int, concurrency: int) -> None:
    with client_for(base_url, concurrency) as client:
        results = list(batch.run(client, prompts(records, "t"), concurrency=concurrency, progress=False))
    assert len(results) == records and all(result.ok for result in results), "some records failed"


def with_async_client(base_url: str, records: int, concurrency: int) -> None:
    async def main() -> None:
        limit = asyncio.Semaphore(concurrency)
        aclient = AsyncClient(client_for(base_url, concurrency))

        async def one(prompt: str) -> None:
            async with limit:
                await aclient.complete(prompt)

        await asyncio.gather(*(one(record["prompt"]) for record in prompts(records, "a")))

    asyncio.run(main())


def with_async_openai(base_url: str, records: int, concurrency: int) -> None:
    import openai

    async def main() -> None:
        limit = asyncio.Semaphore(concurrency)
        client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)

        async def one(prompt: str) -> None:
            async with limit:
                stream = await client.chat.completions.create(
                    model="bench", messages=[{"role": "user", "content": prompt}], stream=True
                )
                async for _ in stream:
                    pass

        await asyncio.gather(*(one(record["prompt"]) for record in prompts(records, "o")))
        await client.close()

    asyncio.run(main())


def throughput(server: Server, records: int, concurrency: int) -> None:
    server.reply(paced_reply())
    ideal = records / concurrency * 0.4
    print(f"throughput: {records} records, 200 ms then 20 deltas 10 ms apart, concurrency {concurrency}")
    with client_for(server.base_url, 1) as client:
        client.complete("warm up")
        started = time.monotonic()
        for n in range(5):
            client.complete(f"alone {n}")
        alone = (time.monotonic() - started) / 5
    floor = records / concurrency * alone
    print(
        f"  ideal {ideal:.2f} s; one record alone takes {alone * 1000:.0f} ms here (the emulator's sleeps"
        f" overshoot), so {floor:.2f} s is the floor"
    )
    ways = [
        ("llmclients.batch.run (threads)", with_batch),
        ("llmclients.aio.AsyncClient + semaphore", with_async_client),
    ]
    try:
        import openai  # noqa: F401

        ways.append(("openai.AsyncOpenAI + semaphore", with_async_openai))
    except ImportError:
        print("  (openai-python not installed: pip install -e '.[bench]' to compare with AsyncOpenAI)")
    for name, way in ways:
        server_cpu = server.cpu()
        wall, cpu = timed(lambda way=way: way(server.base_url, records, concurrency))  # type: ignore[misc]
        server_cpu = server.cpu() - server_cpu
        server.log()
        print(
            f"  {name:<40} wall {wall:6.2f} s = {wall / ideal:.3f}x ideal, {wall / floor:.3f}x the floor,"
            f"  client CPU {cpu / records * 1000:.2f} ms/record  (the emulator's: {server_cpu / wall:.0%} of a core)"
        )


# --- rate limit -----------------------------------------------------------------------------


def rate_limit(server: Server, rpm: float, seconds: float) -> None:
    server.reply(Reply(deltas=["ok"], delay=0.01))
    expected = rpm * seconds / 60
    with client_for(server.base_url, 50) as client:
        job = batch.run(client, prompts(int(expected * 2), "r"), concurrency=50, rpm=rpm, progress=False)
        started = time.monotonic()
        threading.Timer(seconds, job.stop, kwargs={"grace": 0.0}).start()
        list(job)
    arrivals = sorted(arrival - started for arrival, _ in server.log())
    within = [arrival for arrival in arrivals if arrival < seconds]
    busiest = max(sum(1 for other in within if start <= other < start + 1.0) for start in within)
    print(f"rate limit: --rpm {rpm:g} for {seconds:g} s")
    print(
        f"  sent {len(within)} (expected {expected:.0f}: {(len(within) / expected - 1) * 100:+.1f} %),"
        f" at most {busiest} in any second (the bucket allows {rpm / 60:.0f}, plus the one it starts with)"
    )


# --- resume ------------------------------------------------------------------------------------


def cli(*args: str) -> List[str]:
    return [sys.executable, "-m", "llmclients", "batch", *args]


def environment() -> Dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("LLMCLIENTS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def write_records(path: Path, records: List[Dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")


def resume(server: Server, records: int, workdir: Path) -> None:
    server.reply(Reply(deltas=["an ", "answer"], delay=0.05))
    source, output = workdir / "resume.jsonl", workdir / "resume-out.jsonl"
    write_records(source, prompts(records, "k"))
    args = cli(
        str(source), "-o", str(output), "--base-url", server.base_url, "-m", "bench", "--concurrency", "10"
    )
    proc = subprocess.Popen(args, env=environment(), stderr=subprocess.DEVNULL)
    while not (output.exists() and output.read_text().count("\n") >= records // 2):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    answered_before = {json.loads(line)["id"] for line in output.read_text().splitlines()}
    subprocess.run(args + ["--compact"], env=environment(), stderr=subprocess.DEVNULL, check=True)
    sent = collections.Counter(prompt for _, prompt in server.log())
    twice = sum(1 for n in range(records) if f"k{n}" in answered_before and sent[f"k {n}"] > 1)
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    per_id = collections.Counter(line["id"] for line in lines if line["error"] is None)
    lost = sum(1 for n in range(records) if per_id[f"k{n}"] == 0)
    print(
        f"resume: {records} records, SIGKILL after {len(answered_before)} lines, then a rerun with --compact"
    )
    print(
        f"  answered twice {twice}, lost {lost}, ids with exactly one success line "
        f"{sum(1 for count in per_id.values() if count == 1)}/{records}, lines {len(lines)};"
        f" requests {sum(sent.values())} (the ones in flight at the kill are sent again)"
    )


# --- memory ---------------------------------------------------------------------------------------


def memory(server: Server, records: int, workdir: Path) -> None:
    server.reply(Reply(deltas=["ok"]))
    source, output = workdir / "memory.jsonl", workdir / "memory-out.jsonl"
    write_records(source, prompts(records, "m"))
    args = cli(
        str(source), "-o", str(output), "--base-url", server.base_url, "-m", "bench", "--concurrency", "50"
    )
    started = time.monotonic()
    peak = _peak_rss(args)
    wall = time.monotonic() - started
    baseline = _peak_rss(
        [sys.executable, "-c", "import time, llmclients.batch, llmclients.cli; time.sleep(0.5)"]
    )
    server.log()
    print(f"memory: {records:,} records through llmclients batch ({wall:.0f} s)")
    print(f"  peak RSS {peak:.1f} MB (a process that only imports llmclients: {baseline:.1f} MB)")


def _peak_rss(args: List[str]) -> float:
    """Peak RSS of a child, in MB: its VmHWM, read until it exits. (Not wait4's
    ru_maxrss: Linux carries the parent's high-water mark across fork and exec.)"""
    proc = subprocess.Popen(args, env=environment(), stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except (OSError, ValueError):
            pass  # it just exited
        time.sleep(0.05)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}"
    return peak / 1024  # kB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rpm", type=float, default=600)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--resume-records", type=int, default=400)
    parser.add_argument("--memory-records", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke test")
    parser.add_argument("--only", choices=("throughput", "rate", "resume", "memory"), action="append")
    args = parser.parse_args()
    if args.quick:
        args.records, args.seconds, args.resume_records, args.memory_records = 200, 5, 100, 5000
    only = set(args.only or ("throughput", "rate", "resume", "memory"))
    server = Server()
    try:
        with tempfile.TemporaryDirectory() as directory:
            workdir = Path(directory)
            if "throughput" in only:
                throughput(server, args.records, args.concurrency)
            if "rate" in only:
                rate_limit(server, args.rpm, args.seconds)
            if "resume" in only:
                resume(server, args.resume_records, workdir)
            if "memory" in only:
                memory(server, args.memory_records, workdir)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
