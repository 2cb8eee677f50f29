"""The testing kit keeps a broken test from passing: strict emulators (the
fixtures' default), faults cut in a reply's own units on every protocol,
requests whose body never came whole, over loopback."""

from __future__ import annotations

import socket
import textwrap

import pytest

import llmclients
from llmclients import errors
from llmclients.testing import EMULATORS, OpenAIEmulator, Reply, wire_sample

PROVIDERS = list(EMULATORS)
WORDS = "one two three four"
#: The protocols whose first event is already a text delta (the others open with a role, a message, ...).
FIRST_EVENT_IS_TEXT = {"aura", "ollama", "toy"}
#: The emulators whose reply_with() streams reasoning and tool calls.
RICH = {"openai", "anthropic", "ollama", "responses"}

pytest_plugins = ["pytester"]


def client_for(provider, emulator, **kwargs):
    model = wire_sample(provider).model  # a provider without a default model
    if model:
        kwargs["model"] = model
    kwargs.setdefault("max_retries", 0)
    return llmclients.get_client(provider, base_url=emulator.base_url, **kwargs)


# --- strict ------------------------------------------------------------------------------------


def test_a_retried_fault_meets_a_500_not_the_echo():
    """The issue's case: a cut before the first delta is retried, and the retry
    used to get the echo; a strict emulator answers it 500, saying why."""
    with OpenAIEmulator(strict=True) as emulator:
        emulator.enqueue(Reply(text=WORDS, drop_after_deltas=0))
        client = llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", max_retries=1)
        with pytest.raises(errors.ServerError, match="no scripted reply left") as caught:
            client.complete("Hi")
    assert caught.value.status_code == 500
    assert [request.wait() for request in emulator.requests] == ["dropped", "unscripted"]


def test_strict_answers_from_the_script_only_once_there_is_one():
    with OpenAIEmulator(strict=True) as emulator:
        client = llmclients.OpenAICompatible(base_url=emulator.base_url, model="m")
        assert "You said: first" in client.complete("first").text  # nothing scripted: the echo
        emulator.enqueue(Reply(text="Scripted."))
        assert client.complete("second").text == "Scripted."
        with pytest.raises(errors.ServerError, match="set strict=False"):
            client.complete("third")
        emulator.default_reply = Reply(text="Default.")  # a default reply is scripted too
        assert client.complete("fourth").text == "Default."
    assert [request.wait() for request in emulator.requests] == [
        "complete",
        "complete",
        "unscripted",
        "complete",
    ]


def test_a_refused_request_leaves_the_script_alone():
    with OpenAIEmulator(strict=True, api_key="right") as emulator:
        emulator.enqueue(Reply(text="For the right key."))
        wrong = llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", api_key="wrong")
        with pytest.raises(errors.AuthenticationError):
            wrong.complete("Hi")
        assert len(emulator.unused_replies) == 1
        right = llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", api_key="right")
        assert right.complete("Hi").text == "For the right key."
        emulator.assert_all_replies_used()


def test_assert_all_replies_used_names_what_was_left():
    with OpenAIEmulator() as emulator:
        emulator.enqueue(Reply(text="used"), Reply(text="never asked for", drop_after_deltas=1))
        llmclients.OpenAICompatible(base_url=emulator.base_url, model="m").complete("Hi")
        with pytest.raises(
            AssertionError, match=r"1 of the 2 replies .* never asked for: Reply\(text='never"
        ):
            emulator.assert_all_replies_used()


def test_the_fixtures_fail_a_test_whose_script_went_wrong(pytester):
    pytester.makepyfile(
        textwrap.dedent(
            """
            import pytest
            import llmclients
            from llmclients import errors
            from llmclients.testing import Reply

            def client(emulator):
                return llmclients.OpenAICompatible(base_url=emulator.base_url, model="m", max_retries=0)

            def test_one_request_too_many(openai_emulator):
                openai_emulator.enqueue(Reply(text="Only one."))
                assert client(openai_emulator).complete("a").text == "Only one."
                with pytest.raises(errors.ServerError, match="no scripted reply left"):
                    client(openai_emulator).complete("b")

            def test_a_reply_never_asked_for(llm_emulator):
                emulator = llm_emulator("openai")
                emulator.enqueue(Reply(text="asked"), Reply(text="forgotten"))
                client(emulator).complete("a")

            def test_nothing_scripted_is_a_smoke_test(openai_emulator):
                assert "You said: hi" in client(openai_emulator).complete("hi").text

            def test_opting_out_gives_the_echo_after_the_script(openai_emulator):
                openai_emulator.strict = False
                openai_emulator.enqueue(Reply(text="Scripted."))
                assert client(openai_emulator).complete("a").text == "Scripted."
                assert "You said: b" in client(openai_emulator).complete("b").text

            def test_a_cut_past_the_end_is_a_bad_script(openai_emulator):
                openai_emulator.enqueue(Reply(text="one two", drop_after_deltas=5))
                with pytest.raises(errors.ServerError, match="cuts a reply of 2 text deltas"):
                    client(openai_emulator).complete("a")
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=5, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_one_request_too_many*",
            "*openai emulator: request 2 (POST /v1/chat/completions) was unscripted*",
            "*ERROR at teardown of test_a_reply_never_asked_for*",
            "*1 of the 2 replies scripted for the openai emulator was never asked for: Reply(text='forgotten')*",
            "*ERROR at teardown of test_a_cut_past_the_end_is_a_bad_script*",
        ]
    )


# --- faults in the reply's own units, on every protocol -----------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "length"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_cut_after_two_deltas_gives_exactly_two(llm_emulator, provider, framing):
    emulator = llm_emulator(provider)
    emulator.enqueue(Reply(text=WORDS, framing=framing, drop_after_deltas=2))
    with pytest.raises(errors.StreamInterruptedError) as caught:
        client_for(provider, emulator).complete("Hi")
    assert caught.value.partial_text == "one two "
    assert emulator.last_request.wait() == "dropped"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_cut_mid_event_after_two_deltas(llm_emulator, provider):
    emulator = llm_emulator(provider)
    emulator.enqueue(Reply(text=WORDS, drop_after_deltas=2, drop_mid_event=True, reset=True))
    with pytest.raises(errors.StreamInterruptedError) as caught:
        client_for(provider, emulator).complete("Hi")
    # Half an event of a raw text stream (aura: half of "three ") is text; of any other, nothing to read.
    expected = "one two thr" if wire_sample(provider).garbage is None else "one two "
    assert caught.value.partial_text == expected


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_cut_before_the_first_delta_is_retried_and_the_retry_scripted(llm_emulator, provider):
    emulator = llm_emulator(provider)
    emulator.enqueue(Reply(text=WORDS, drop_after_deltas=0), Reply(text="Second try."))
    assert client_for(provider, emulator, max_retries=1).complete("Hi").text == "Second try."
    assert [request.wait() for request in emulator.requests] == ["dropped", "complete"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_cut_after_the_first_event(llm_emulator, provider):
    emulator = llm_emulator(provider)
    emulator.enqueue(Reply(text=WORDS, drop_after_events=1))
    with pytest.raises(errors.StreamInterruptedError) as caught:
        client_for(provider, emulator).complete("Hi")
    assert caught.value.partial_text == ("one " if provider in FIRST_EVENT_IS_TEXT else "")


def test_a_cut_in_units_goes_with_no_other_cut():
    with pytest.raises(ValueError, match="cut in one place"):
        Reply(text=WORDS, drop_after=30, drop_after_deltas=1)
    with pytest.raises(ValueError, match="drop_mid_event goes with"):
        Reply(text=WORDS, drop_mid_event=True)
    with pytest.raises(ValueError, match="0 or more"):
        Reply(text=WORDS, drop_after_events=-1)


def test_a_gzipped_cut_still_gives_the_deltas_before_it(openai_emulator):
    openai_emulator.enqueue(Reply(text=WORDS, gzip=True, drop_after_deltas=3))
    with pytest.raises(errors.StreamInterruptedError) as caught:
        client_for("openai", openai_emulator).complete("Hi")
    assert caught.value.partial_text == "one two three "


# --- a body that never came whole ---------------------------------------------------------------


@pytest.mark.parametrize("sent", [b"", b'{"model": "m", "mess'])
def test_a_short_body_is_recorded_as_incomplete_and_not_answered(sent):
    with OpenAIEmulator(strict=True) as emulator:
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n" + sent
            )
            sock.shutdown(socket.SHUT_WR)  # the client dies between the head and the end of its body
            assert sock.recv(1024) == b""  # closed without an answer
        assert emulator.wait_idle()
    (request,) = emulator.requests
    assert request.wait() == "incomplete"
    assert request.body == sent
    with pytest.raises(ValueError, match=f"the body is incomplete, {len(sent)} of 400 bytes arrived"):
        request.json()
    assert emulator.unused_replies == []  # nothing was taken from a script


# --- a reply with reasoning and tool calls, as each protocol streams them ------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_reply_with_reasoning_text_and_a_tool_call(llm_emulator, provider):
    emulator = llm_emulator(provider)
    call = ("call_1", "weather", '{"city": "Paris"}')
    if provider not in RICH:  # the base class's answer, for protocols without reasoning or tool calls
        with pytest.raises(ValueError, match=f"the {provider} emulator cannot script reasoning or tool calls"):
            emulator.reply_with(reasoning="Think first.", tool_calls=[call])
        return
    emulator.enqueue(emulator.reply_with(reasoning="Think first.", text="Let me look.", tool_calls=[call]))
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    got = client_for(provider, emulator).complete("Weather in Paris?", tools=tools)
    assert (got.reasoning, got.text) == ("Think first.", "Let me look.")
    assert [(c.name, c.parsed()) for c in got.tool_calls] == [("weather", {"city": "Paris"})]
    assert got.finish_reason == "tool_calls"
