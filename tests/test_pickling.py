"""Errors cross process boundaries whole; clients and conversations refuse to."""

import concurrent.futures
import inspect
import multiprocessing
import pickle

import pytest

import llmclients
from llmclients import errors
from llmclients.testing import OpenAIEmulator, Reply

#: A value for each constructor parameter an error class may take. A new
#: class with a parameter not listed here fails test_every_error_class_is_sampled.
SAMPLES = {
    "message": "the service said no",
    "status_code": 429,
    "body_excerpt": "slow down",
    "partial_text": "Hello, wor",
    "code": "rate_limit_exceeded",
    "type": "requests",
    "param": "messages",
    "request_id": "req-123",
    "feature": "tools",
    "model": "gpt-x",
    "provider": "OpenAI",
    "valid_models": ["gpt-a", "gpt-b"],
    "reason": "overloaded",
    "text": '{"half": ',
    "location": "http://127.0.0.1:9/v1/chat/completions",
    "function": "get_weather",
    "parameter": "city",
    "problems": ["$.population: expected integer, got string 'many'"],
    "failures": [
        ("first", errors.ConnectError("refused")),
        ("second", errors.ServerError("down", status_code=503)),
    ],
    "reply": llmclients.Completion("", "length", None, "gpt-x", "openai"),
    "conversation": None,  # a conversation holds its client: a pickled error leaves it out
}

#: Attributes set after construction, where a class has them.
AFTERWARDS = {"retry_after": 7.0, "prompt_tokens": 5000, "context_tokens": 4096}


def error_classes():
    return sorted(
        (
            cls
            for cls in vars(errors).values()
            if isinstance(cls, type) and issubclass(cls, errors.LLMClientError)
        ),
        key=lambda cls: cls.__name__,
    )


def sample(cls):
    """An instance of ``cls`` with every attribute it can take set to a non-default value."""
    params = [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    args = [SAMPLES[p.name] for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    kwargs = {p.name: SAMPLES[p.name] for p in params if p.kind is p.KEYWORD_ONLY}
    if cls is errors.RedirectError:  # its other keyword arguments go on to HTTPStatusError's
        kwargs.update(status_code=307, body_excerpt="moved", request_id="req-9")
    error = cls(*args, **kwargs)
    error.partial_text = SAMPLES["partial_text"]
    for name, value in AFTERWARDS.items():
        if hasattr(error, name):
            setattr(error, name, value)
    return error


def assert_same(a, b):
    assert type(a) is type(b)
    assert a.args == b.args
    assert str(a) == str(b) and repr(a) == repr(b)
    assert vars(a).keys() == vars(b).keys()
    for name, value in vars(a).items():
        if name == "errors":
            assert [n for n, _ in value] == [n for n, _ in vars(b)[name]]
            for (_, inner_a), (_, inner_b) in zip(value, vars(b)[name]):
                assert_same(inner_a, inner_b)
        else:
            assert vars(b)[name] == value, name


def test_every_error_class_is_sampled():
    assert len(error_classes()) >= 25
    for cls in error_classes():
        sample(cls)  # a KeyError names a constructor parameter SAMPLES lacks


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_every_error_round_trips_through_pickle(cls, protocol):
    error = sample(cls)
    copy = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert_same(error, copy)
    assert copy.partial_text == "Hello, wor"
    assert isinstance(copy, errors.LLMClientError)


def test_attributes_that_matter_survive():
    error = sample(errors.RateLimitError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.status_code, copy.retry_after, copy.request_id) == (429, 7.0, "req-123")
    copy = pickle.loads(pickle.dumps(sample(errors.ModelNotFoundError)))
    assert copy.valid_models == ["gpt-a", "gpt-b"]
    copy = pickle.loads(pickle.dumps(sample(errors.FallbackError)))
    assert [type(e) for _, e in copy.errors] == [errors.ConnectError, errors.ServerError]
    assert copy.errors[1][1].status_code == 503


def test_an_error_raised_by_a_call_pickles(openai_emulator):
    openai_emulator.enqueue(Reply(text="Hello there, my good old friend, how are you " * 5, drop_after=1500))
    client = llmclients.OpenAICompatible(base_url=openai_emulator.base_url, model="m", max_retries=0)
    stream = client.stream("Hi")
    with pytest.raises(errors.StreamInterruptedError) as caught:
        for _ in stream:
            pass
    assert caught.value.partial_text
    assert_same(caught.value, pickle.loads(pickle.dumps(caught.value)))


# --- across processes ----------------------------------------------------------------


def rate_limited_call(base_url):
    """Runs in a worker process: one call that meets a 429."""
    with llmclients.OpenAICompatible(base_url=base_url, model="m", max_retries=0, timeout=10) as client:
        return client.complete("Hi").text


@pytest.fixture
def rate_limiting_emulator():
    with OpenAIEmulator() as emulator:
        emulator.default_reply = Reply(
            status=429,
            body={"error": {"message": "slow down", "type": "requests"}},
            headers={"Retry-After": "7"},
        )
        yield emulator


def assert_rate_limited(error):
    assert isinstance(error, errors.RateLimitError)
    assert error.status_code == 429
    assert error.retry_after == 7.0
    assert "slow down" in str(error)


#: spawn: workers start clean (no copy of the emulator's threads), as on macOS
#: and Windows; fork: Linux's default before Python 3.14.
START_METHODS = [m for m in ("spawn", "fork") if m in multiprocessing.get_all_start_methods()]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("method", START_METHODS)
def test_a_pool_worker_that_meets_a_429_gives_the_parent_a_rate_limit_error(rate_limiting_emulator, method):
    with multiprocessing.get_context(method).Pool(1) as pool:
        result = pool.apply_async(rate_limited_call, (rate_limiting_emulator.base_url,))
        with pytest.raises(errors.RateLimitError) as caught:
            result.get(timeout=60)
        # the pool survives the error: its worker takes the next task
        again = pool.apply_async(rate_limited_call, (rate_limiting_emulator.base_url,))
        with pytest.raises(errors.RateLimitError):
            again.get(timeout=60)
    assert_rate_limited(caught.value)
    assert len(rate_limiting_emulator.requests) == 2


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("method", START_METHODS)
def test_a_process_pool_executor_gives_back_a_rate_limit_error(rate_limiting_emulator, method):
    with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context(method)
    ) as executor:
        future = executor.submit(rate_limited_call, rate_limiting_emulator.base_url)
        error = future.exception(timeout=60)
        # not BrokenProcessPool: the executor still works
        assert executor.submit(pow, 2, 5).result(timeout=60) == 32
    assert_rate_limited(error)
    assert len(rate_limiting_emulator.requests) == 1


# --- clients and conversations ----------------------------------------------------------


def test_a_client_refuses_to_pickle_and_points_at_to_dict():
    client = llmclients.OpenAICompatible(
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-very-secret",
        model="m",
        proxy="http://u:proxy-pass@127.0.0.1:8",
    )
    with pytest.raises(TypeError, match=r"to_dict\(\)") as caught:
        pickle.dumps(client)
    assert "sk-very-secret" not in str(caught.value) and "proxy-pass" not in str(caught.value)


def test_a_conversation_refuses_to_pickle_and_its_state_pickles_without_secrets():
    client = llmclients.OpenAICompatible(
        base_url="http://127.0.0.1:9/v1", api_key="sk-very-secret", model="m"
    )
    conversation = client.conversation("Hi", system="Be brief")
    with pytest.raises(TypeError, match=r"conversation\.to_dict\(\)"):
        pickle.dumps(conversation)
    state = pickle.dumps(conversation.to_dict())
    assert b"sk-very-secret" not in state
    resumed = client.conversation(state=pickle.loads(state))
    assert resumed.messages == conversation.messages


def test_a_fallback_of_clients_refuses_to_pickle_too():
    client = llmclients.OpenAICompatible(
        base_url="http://127.0.0.1:9/v1", api_key="sk-very-secret", model="m"
    )
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(llmclients.Fallback([client, client]))
