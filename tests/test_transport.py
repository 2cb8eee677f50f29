"""The chunked-body reader, fed bodies cut at every kind of place."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmclients._http.body.dechunk import Dechunker
from llmclients.errors import MalformedStreamError, StreamInterruptedError


class _Socket:
    """A socket file that hands out the body in the given pieces."""

    def __init__(self, pieces):
        self.pieces = list(pieces)

    def read1(self, size):
        return self.pieces.pop(0) if self.pieces else b""

    def close(self):
        pass


class _Raw:
    """As much of urllib3's response as the de-chunker touches."""

    def __init__(self, pieces):
        self._fp = type("Original", (), {"fp": _Socket(pieces), "close": lambda self: None})()
        self.headers = {}
        self.released = False

    def release_conn(self):
        self.released = True


def cut(data, points):
    edges = [0, *sorted({p % (len(data) + 1) for p in points}), len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:]) if b > a]


def chunked(chunks, extension=b""):
    return b"".join(b"%x%s\r\n%s\r\n" % (len(c), extension, c) for c in chunks) + b"0\r\n\r\n"


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=40), max_size=8),
    extension=st.sampled_from([b"", b";name=value"]),
    points=st.lists(st.integers(0, 10_000), max_size=8),
)
def test_any_cut_of_a_chunked_body_gives_its_data(chunks, extension, points):
    raw = _Raw(cut(chunked(chunks, extension), points))
    assert b"".join(Dechunker(raw).chunks()) == b"".join(chunks)
    assert raw.released  # read to its end: the connection goes back to the pool


def test_a_body_cut_before_its_last_chunk_raises_interrupted():
    with pytest.raises(StreamInterruptedError):
        list(Dechunker(_Raw([b"5\r\nhello\r\n3\r\nab"])).chunks())


@pytest.mark.parametrize("body", [b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n", b"9" * 2000])
def test_broken_framing_raises_malformed(body):
    with pytest.raises(MalformedStreamError):
        list(Dechunker(_Raw([body])).chunks())


# Servers write one event a chunk, of a few sizes, so most reads are runs of
# chunks whose size lines were seen before: those are taken in one split.
SAME_SIZES = [b"data: a\n\n", b"data: bb\n\n", b"data: cc\n\n", b"x\r\ny", b"\r\n", b"\r\n\r\n"]


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.sampled_from(SAME_SIZES), max_size=60),
    points=st.lists(st.integers(0, 10_000), max_size=6),
)
def test_runs_of_chunks_of_sizes_seen_before_give_their_data(chunks, points):
    raw = _Raw(cut(chunked(chunks), points))
    assert b"".join(Dechunker(raw).chunks()) == b"".join(chunks)
    assert raw.released


@pytest.mark.parametrize("bad", [b"5\r\nhelloXX\r\n", b"5\r\nhell\r\n", b"5\r\nhello\n\r\n"])
def test_a_bad_chunk_in_a_run_of_sizes_seen_before_raises_malformed(bad):
    seen = b"5\r\nhello\r\n" * 3
    with pytest.raises(MalformedStreamError):
        list(Dechunker(_Raw([seen, seen + bad + seen + b"0\r\n\r\n"])).chunks())
