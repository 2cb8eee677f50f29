"""Benchmark of the reply log (:mod:`llmclients.replylog`): what it costs a batch.

::

    python benchmarks/bench_replylog.py             # 1,000 records, 3 rounds (about a minute)
    python benchmarks/bench_replylog.py --quick     # 200 records, 2 rounds: a smoke test

Runs :func:`llmclients.batch.run` over ``--records`` records at
``--concurrency`` 50 against the OpenAI emulator (in a child process, so that
it does not take the client's GIL), each answered after 50 ms with 10 deltas
5 ms apart, once with a :class:`~llmclients.replylog.ReplyLog` attached and
once without, alternated, ``--rounds`` times. Prints each run's wall time, the
median ratio of logged to unlogged (target ≤ 1.05), and what ``on_end``
costs the calling thread per call (building the row and handing it to the
writer thread), in microseconds. Each logged run's time includes writing
every row (``close()``), and its row count is checked.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_batch import Server, client_for, prompts

from llmclients import batch, observers
from llmclients.observers import EndEvent, Observer
from llmclients.replylog import ReplyLog
from llmclients.testing import Reply


def one_run(base_url: str, records: int, concurrency: int, log: Any) -> float:
    started = time.monotonic()
    if log is not None:
        observers.attach(log)
    try:
        with client_for(base_url, concurrency) as client:
            results = list(batch.run(client, prompts(records, "r"), concurrency=concurrency, progress=False))
        if log is not None:
            log.close()  # every row written: part of the time
    finally:
        if log is not None:
            observers.detach(log)
    assert len(results) == records and all(result.ok for result in results), "some records failed"
    return time.monotonic() - started


def per_call_cost(base_url: str, folder: str) -> float:
    """Microseconds ``ReplyLog.on_end`` takes the calling thread, on a real call's end."""

    class Keep(Observer):
        event: Any = None

        def on_end(self, event: EndEvent) -> None:
            self.event = event

    keep = Keep()
    with client_for(base_url, 1) as client:
        client.observers.append(keep)
        client.complete("What does a row cost?")
    log = ReplyLog(os.path.join(folder, "cost.db"))
    count = 2000
    started = time.perf_counter()
    for _ in range(count):
        log.on_end(keep.event)
    spent = time.perf_counter() - started
    log.close()
    assert len(log.rows()) == count
    return spent / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.records, args.rounds = 200, 2
    server = Server()
    try:
        server.reply(Reply(deltas=["word "] * 10, delay=0.005, head_delay=0.05))
        with tempfile.TemporaryDirectory() as folder:
            one_run(server.base_url, 100, args.concurrency, None)  # warm up
            print(f"{args.records} records, concurrency {args.concurrency}, 50 ms then 10 deltas 5 ms apart")
            ratios: List[float] = []
            for round_ in range(args.rounds):
                path = os.path.join(folder, f"round{round_}.db")
                # Alternate which goes first, so that neither always meets a warmer machine.
                order = ["off", "on"] if round_ % 2 == 0 else ["on", "off"]
                walls = {}
                for which in order:
                    log = ReplyLog(path) if which == "on" else None
                    walls[which] = one_run(server.base_url, args.records, args.concurrency, log)
                    if log is not None:
                        assert len(log.rows()) == args.records, "a row was lost"
                ratios.append(walls["on"] / walls["off"])
                print(f"  round {round_ + 1}: log off {walls['off']:.2f} s, on {walls['on']:.2f} s, "
                      f"ratio {ratios[-1]:.3f}")
            print(f"logged / unlogged wall: median {statistics.median(ratios):.3f} (target <= 1.05)")
            print(f"on_end in the calling thread: {per_call_cost(server.base_url, folder):.0f} us a call")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
