"""The toy service's emulator, and what its stream looks like on the wire."""

from __future__ import annotations

import json
from typing import Iterable, Iterator

from llmclients.testing import DeltaEvent, Emulator, RecordedRequest, Rejection, Reply, WireSample


class ToyEmulator(Emulator):
    provider = "toy"
    content_type = "application/x-ndjson"
    wire = WireSample(
        text_event=b'{"text": "%s"}\n',
        epilogue=b'{"done": true}\n',
        garbage=b"{not json\n",
        keepalive=b"\n",
        cut=300,
        content_types=(None, "text/plain"),
    )

    def check(self, request: RecordedRequest) -> None:
        if (request.method, request.path) != ("POST", "/chat"):
            raise Rejection(404, {"error": f"no route {request.method} {request.path}"})
        try:
            body = request.json()
        except ValueError:
            raise Rejection(400, {"error": "the body is not JSON"}) from None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise Rejection(400, {"error": "messages is required"})

    def make_default_reply(self, request: RecordedRequest) -> Reply:
        said = request.json()["messages"][-1]["content"]
        return Reply(text=f"Hello from the toy emulator. You said: {said}", delay=0.01)

    def events(self, reply: Reply, request: RecordedRequest) -> Iterable[bytes]:
        return self._lines(reply)

    def _lines(self, reply: Reply) -> Iterator[bytes]:
        for piece in reply.pieces():
            yield DeltaEvent(json.dumps({"text": piece}).encode() + b"\n")
        if reply.finish_reason:
            yield b'{"done": true}\n'
