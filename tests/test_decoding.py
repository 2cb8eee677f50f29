"""The decoders, fed byte streams split at every possible place."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sseclient import SSEClient

from llmclients._core.framing import (
    MAX_EVENT_SIZE,
    NDJSONDecoder,
    SSEDecoder,
    SSEEvent,
    TextDecoder,
    WholeDecoder,
    iter_ndjson,
    iter_sse,
    iter_text,
    iter_whole,
)
from llmclients._core.sse import _UNUSUAL, _parse_event, _simple_event
from llmclients.errors import DecodingError, LLMClientError, OversizedEventError


def splits(data: bytes, cuts):
    """``data`` cut at the given offsets."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:]) if b > a]


def every_two_way_split(data: bytes):
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]


SSE_BODY = (
    'data: {"t": "Привет"}\n\n'
    ": a comment\n\n"
    'data: {"t": "日本 🎉"}\n\n'
    "event: message\ndata: first line\ndata: second line\n\n"
    "data:no-space\n\n"
    "data: [DONE]\n\n"
    "data: after the end\n\n"
).encode()
SSE_EXPECTED = [
    '{"t": "Привет"}',
    '{"t": "日本 🎉"}',
    "first line\nsecond line",
    "no-space",
    "[DONE]",  # the provider's marker: the decoder reads on
    "after the end",
]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_sse_accepts_every_line_ending_at_every_split(newline):
    body = SSE_BODY.replace(b"\n", newline)
    for chunks in every_two_way_split(body):
        assert list(iter_sse(chunks)) == SSE_EXPECTED


def test_sse_yields_each_event_as_soon_as_its_blank_line_arrives():
    def source():
        yield b"data: a\n\ndata: [DONE]\n\n"
        raise AssertionError("read past [DONE]")

    events = iter_sse(source())
    assert [next(events), next(events)] == ["a", "[DONE]"]


def test_sse_drops_one_leading_bom_at_any_split():
    body = b"\xef\xbb\xbfdata: a\n\ndata: \xef\xbb\xbfb\n\n"
    for chunks in every_two_way_split(body):
        assert list(iter_sse(chunks)) == ["a", "\ufeffb"]
    for size in (1, 2):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert list(iter_sse(chunks)) == ["a", "\ufeffb"]


def test_sse_hands_on_named_events_and_llamacpp_error_lines():
    body = (
        b'event: error\ndata: {"message": "overloaded"}\n\n'
        b"event: ping\ndata: 1\n\n"
        b'error: {"code": 500, "message": "boom"}\n\n'
        b"data: [DONE]\n\n"
    )
    assert list(iter_sse([body])) == [
        SSEEvent("error", '{"message": "overloaded"}'),
        SSEEvent("ping", "1"),
        SSEEvent("error", '{"code": 500, "message": "boom"}'),
        "[DONE]",
    ]


def test_sse_drops_an_event_cut_off_by_the_end_of_the_body():
    assert list(iter_sse([b'data: a\n\ndata: {"trunc'])) == ["a"]


def test_sse_accepts_done_without_its_blank_line():
    assert list(iter_sse([b"data: a\n\ndata: [DONE]"])) == ["a", "[DONE]"]


def test_sse_keepalive_comments_yield_nothing():
    assert list(iter_sse([b": ping\n\n: ping\n\n", b"data: x\n\n"])) == ["x"]


def test_sse_invalid_utf8_raises_decoding_error():
    with pytest.raises(DecodingError, match="not valid UTF-8"):
        list(iter_sse([b"data: ok\n\ndata: \xff\xfe\n\n"]))


def test_sse_oversized_event_raises():
    with pytest.raises(OversizedEventError):
        list(iter_sse([b"data: " + b"x" * 2000], max_size=1000))


def sseclient_reference(body: bytes):
    """What sseclient-py alone makes of a whole body, less the events with
    empty data, which carry nothing for a client (iter_sse skips them)."""
    out = []
    for event in SSEClient([body]).events():
        if event.data:
            out.append(event.data if event.event == "message" else SSEEvent(event.event, event.data))
    return out


sse_line = st.one_of(
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12).map(
        lambda t: "data: " + t
    ),
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=8).map(
        lambda t: "data:" + t
    ),
    st.just(": keep-alive"),
    st.just("event: update"),
    st.just("id: 7"),
)
sse_events = st.lists(st.lists(sse_line, min_size=1, max_size=3), max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    events=sse_events, newline=st.sampled_from(["\n", "\r\n", "\r"]), cuts=st.lists(st.integers(0, 10_000))
)
def test_sse_any_split_gives_what_sseclient_gives_for_the_whole(events, newline, cuts):
    body = "".join(newline.join(lines) + newline * 2 for lines in events).encode()
    expected = sseclient_reference(body)
    assert list(iter_sse(splits(body, cuts))) == expected


NDJSON_BODY = '{"a": "Ж"}\n\n{"b": "🎉"}\r\n{"c": 1}\r{"d": " "}'.encode()


def test_ndjson_lines_at_every_split():
    for chunks in every_two_way_split(NDJSON_BODY):
        assert [json.loads(line) for line in iter_ndjson(chunks)] == [
            {"a": "Ж"},
            {"b": "🎉"},
            {"c": 1},
            {"d": " "},
        ]


def test_ndjson_oversized_line_raises():
    with pytest.raises(OversizedEventError):
        list(iter_ndjson([b"{" + b"1" * 100], max_size=50))


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=8), max_size=3), max_size=8),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(0, 10_000)),
)
def test_ndjson_any_split_gives_the_same_lines(lines, newline, cuts):
    body = "".join(json.dumps(line, ensure_ascii=False) + newline for line in lines).encode()
    assert [json.loads(x) for x in iter_ndjson(splits(body, cuts))] == lines


TEXT = "Hello, Привет, 日本語, 🎉🎉 — done."


def test_text_joins_characters_split_at_every_byte():
    body = TEXT.encode()
    for chunks in every_two_way_split(body):
        assert "".join(iter_text(chunks)) == TEXT
    assert "".join(iter_text([bytes([b]) for b in body])) == TEXT


def test_text_invalid_utf8_raises_with_the_offset():
    with pytest.raises(DecodingError, match="offset 3"):
        list(iter_text([b"abc", b"\xffdef"]))


def test_text_truncated_character_at_the_end_raises():
    with pytest.raises(DecodingError):
        list(iter_text(["日".encode()[:2]]))


@settings(max_examples=150, deadline=None)
@given(text=st.text(), cuts=st.lists(st.integers(0, 10_000)))
def test_text_any_split_gives_the_same_text(text, cuts):
    assert "".join(iter_text(splits(text.encode(), cuts))) == text


def test_whole_yields_the_body_once():
    assert list(iter_whole([b'{"a":', b' "\xc3', b'\xa9"}'])) == ['{"a": "é"}']


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400)))
def test_random_bytes_raise_only_typed_errors(data, cuts):
    for decoder in (iter_sse, iter_ndjson, iter_text, iter_whole):
        try:
            for item in decoder(splits(data, cuts), max_size=200):
                # iter_sse yields an SSEEvent for a named event, which random bytes can spell.
                assert isinstance(item, (str, SSEEvent))
        except LLMClientError:
            pass


VALID_BODIES = [
    b"".join(b'data: {"choices": [{"delta": {"content": "t%d \\u00e9"}}]}\n\n' % i for i in range(6))
    + b"data: [DONE]\n\n",
    b"".join(b'{"message": "msg_1", "content": "\xc3\xa9t%d"}\n' % i for i in range(6)),
    "Привет, 日本語 🎉 and more text".encode(),
]


@settings(max_examples=300, deadline=None)
@given(
    body=st.sampled_from(VALID_BODIES),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.booleans()), max_size=6),
    cuts=st.lists(st.integers(0, 10_000)),
)
def test_mutated_streams_raise_only_typed_errors(body, edits, cuts):
    """Valid bodies with bytes changed or dropped: every decoder ends, with
    text or with one of our errors, never anything else."""
    data = bytearray(body)
    for position, value, drop in edits:
        if not data:
            break
        index = position % len(data)
        if drop:
            del data[index]
        else:
            data[index] = value
    for decoder in (iter_sse, iter_ndjson, iter_text, iter_whole):
        try:
            for item in decoder(splits(bytes(data), cuts), max_size=200):
                assert isinstance(item, str)
        except LLMClientError:
            pass


@pytest.mark.parametrize(
    "decoder, reads, events",
    [
        (SSEDecoder, [b'data: {"a": 1}\n\ndata: [DO', b"NE]\n\n"], [['{"a": 1}'], ["[DONE]"]]),
        (NDJSONDecoder, [b'{"a": 1}\n{"b"', b": 2}\n"], [['{"a": 1}'], ['{"b": 2}']]),
        (TextDecoder, ["hé".encode()[:2], "hé".encode()[2:] + b"llo"], [["h"], ["éllo"]]),
    ],
)
def test_each_read_returns_the_events_it_completes_and_an_empty_read_none(decoder, reads, events):
    """Pushed reads: each event comes back from the feed that completes it; an
    empty read (a driver's non-blocking read that found nothing) is no event."""
    decode = decoder()
    for data, expected in zip(reads, events):
        assert decode.feed(b"") == []
        assert decode.feed(data) == expected
    assert decode.end() == [] and decode.error is None


def test_whole_returns_nothing_until_the_end():
    decode = WholeDecoder()
    assert decode.feed(b'{"a":') == [] and decode.feed(b" 1}") == []
    assert decode.end() == ['{"a": 1}']


@pytest.mark.parametrize("decoder", [SSEDecoder, NDJSONDecoder])
def test_bytes_that_are_not_utf8_lose_none_of_the_events_before_them(decoder):
    decode = decoder()
    body = b'data: {"a": 1}\n\ndata: \xff\n\n' if decoder is SSEDecoder else b'{"a": 1}\n\xff\n'
    good = b'data: {"a": 1}' if decoder is SSEDecoder else b'{"a": 1}'
    assert decode.feed(body) == [good.decode().removeprefix("data: ")]
    assert isinstance(decode.error, DecodingError)
    with pytest.raises(DecodingError):
        list(iter_sse([body]) if decoder is SSEDecoder else iter_ndjson([body]))


def test_sse_skips_events_with_empty_data():
    assert list(iter_sse([b"data: \n\ndata:\n\ndata: [DONE]\n\n"])) == ["[DONE]"]


# --- named events take the fast path, and give what sseclient-py gives ---------------

event_name = st.one_of(
    st.sampled_from(["message", "", "content_block_delta", "response.output_text.delta", "error", "ping"]),
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=6),
)
event_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=10)
space = st.sampled_from([" ", ""])


@st.composite
def named_event(draw):
    """The lines of one event: one ``data`` line with an ``event`` line before
    or after it, ``id`` lines anywhere, the space after the colon or not; now
    and then a line that only the general parser reads."""
    lines = [f"data:{draw(space)}{draw(event_text)}"]
    lines.insert(draw(st.integers(0, 1)), f"event:{draw(space)}{draw(event_name)}")
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), f"id:{draw(space)}{draw(st.integers(0, 99))}")
    unusual = draw(
        st.sampled_from([None] * 6 + [": a comment", "data: more", "retry: 10", "id", "event: again", " "])
    )
    if unusual:
        lines.insert(draw(st.integers(0, len(lines))), unusual)
    return lines


@settings(max_examples=60, deadline=None)
@given(events=st.lists(named_event(), min_size=1, max_size=4), newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_sse_named_events_at_every_split_give_what_sseclient_gives(events, newline):
    body = "".join(newline.join(lines) + newline * 2 for lines in events).encode()
    expected = sseclient_reference(body)
    for chunks in every_two_way_split(body):
        assert list(iter_sse(chunks)) == expected
    assert list(iter_sse(splits(body, range(0, len(body), 3)))) == expected


@settings(max_examples=300, deadline=None)
@given(lines=named_event(), newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_sse_each_fast_path_gives_what_the_general_parser_gives(lines, newline):
    """Block by block: what the inline shapes and the simple reader make of an
    event is what the general parser (sseclient-py) makes of it."""
    block = newline.join(lines)
    general = _parse_event(block.encode()) or None
    assert SSEDecoder().feed(block.encode() + newline.encode() * 2) == ([general] if general else [])
    simple = _simple_event(block)
    assert simple is _UNUSUAL or simple == general


def test_sse_named_event_shapes():
    body = (
        b'event: content_block_delta\ndata: {"t": 1}\n\n'  # Anthropic's
        b"data:2\r\nevent:response.output_text.delta\r\nid: 9\r\n\r\n"  # data first, an id, CRLF
        b"event: message\ndata: 3\n\n"  # the default type: its data alone
        b"event:\ndata: 4\n\n"  # an empty type is the default
        b"event: ping\ndata: \n\n"  # no data: nothing
        b"event: a\ndata: x\ndata: y\n\n"  # two data lines: the general parser
        b"event: a\n: note\ndata: z\n\n"  # a comment inside: the general parser
    )
    assert list(iter_sse([body])) == [
        SSEEvent("content_block_delta", '{"t": 1}'),
        SSEEvent("response.output_text.delta", "2"),
        "3",
        "4",
        SSEEvent("a", "x\ny"),
        SSEEvent("a", "z"),
    ]


def test_sse_common_shapes_never_reach_the_general_parser(monkeypatch):
    from llmclients._core import sse as framing

    def general(block):
        raise AssertionError(f"the general parser read {block!r}")

    monkeypatch.setattr(framing, "_parse_event", general)
    body = (
        b'data: {"a": 1}\n\n'
        b'event: content_block_delta\ndata: {"b": 2}\n\n'
        b'event:response.output_text.delta\r\ndata:{"c": 3}\r\n\r\n'
        b"id: 4\rdata: d\revent: e\r\r"
        b"event: ping\ndata: \n\n"
    )
    for chunks in every_two_way_split(body):
        assert list(iter_sse(chunks)) == [
            '{"a": 1}',
            SSEEvent("content_block_delta", '{"b": 2}'),
            SSEEvent("response.output_text.delta", '{"c": 3}'),
            SSEEvent("e", "d"),
        ]


# --- the event limit holds for complete events too -----------------------------------

MIB = 1024 * 1024


def pieces(data: bytes, size: int = MIB):
    """``data`` in reads of ``size`` bytes, as the inflater hands a gzip body over."""
    return [data[i : i + size] for i in range(0, len(data), size)]


SSE_OF = {
    "data": lambda payload, nl: b"data: " + payload + nl * 2,
    "named": lambda payload, nl: b"event: content_block_delta" + nl + b"data: " + payload + nl * 2,
}


@pytest.mark.parametrize("shape", sorted(SSE_OF))
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_sse_complete_event_over_the_limit_raises(shape, newline):
    big = SSE_OF[shape](b"x" * (9 * MIB), newline)
    with pytest.raises(OversizedEventError, match="an SSE event exceeds 8388608 bytes"):
        list(iter_sse(pieces(b"data: a\n\n" + big + b"data: [DONE]\n\n")))
    with pytest.raises(OversizedEventError):
        list(iter_sse([big]))  # whole, in one read


@pytest.mark.parametrize("shape", sorted(SSE_OF))
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_sse_event_at_the_limit_passes(shape, newline):
    overhead = len(SSE_OF[shape](b"", newline)) - 2 * len(newline)
    event = SSE_OF[shape](b"x" * (MAX_EVENT_SIZE - overhead), newline)
    events = list(iter_sse(pieces(event + b"data: [DONE]\n\n")))
    assert [len(e.data if isinstance(e, SSEEvent) else e) for e in events] == [MAX_EVENT_SIZE - overhead, 6]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_ndjson_complete_line_over_the_limit_raises(newline):
    big = b'{"t": "' + b"x" * (9 * MIB) + b'"}' + newline
    with pytest.raises(OversizedEventError, match="an NDJSON line exceeds"):
        list(iter_ndjson(pieces(b'{"a": 1}' + newline + big + b'{"done": true}' + newline)))
    with pytest.raises(OversizedEventError):
        list(iter_ndjson([big]))


def test_ndjson_line_at_the_limit_passes():
    line = b'{"t": "' + b"x" * (MAX_EVENT_SIZE - 9) + b'"}'
    assert [len(x) for x in iter_ndjson(pieces(line + b"\n" + b"{}\n"))] == [MAX_EVENT_SIZE, 2]


def test_a_cut_event_over_the_limit_raises_at_the_end():
    """What is left at the end, its start in one read and the rest held in
    others, is measured whole: neither part alone is over the limit."""
    start = b"x" * 5 * MIB
    with pytest.raises(OversizedEventError):
        list(iter_ndjson([b"{}\n" + start, b"\n" + start, start]))  # a line, then a cut one
    with pytest.raises(OversizedEventError):
        list(iter_sse([b"data: a\n\ndata: " + start + b"\n", start]))  # a line end, then none


def test_text_streams_any_length_and_whole_counts_the_body():
    """Raw text holds nothing back but a split character, so it has no event to
    limit; a whole body is one document, refused past the limit."""
    body = "é".encode() * (9 * MIB // 2)
    assert sum(len(t) for t in iter_text(pieces(body, MIB + 1))) == 9 * MIB // 2
    with pytest.raises(OversizedEventError, match="the body exceeds"):
        list(iter_whole(pieces(b"x" * 9 * MIB)))
    assert len(next(iter_whole(pieces(b"x" * MAX_EVENT_SIZE)))) == MAX_EVENT_SIZE
