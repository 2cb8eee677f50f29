"""llmclients.compat.g4f: gpt4free's calling conventions, against the emulators.

The usage examples of the five seed documents (``/work/shared/seeds/``, the
Russian write-ups of gpt4free's AutonomousAI, Aura and AllenAI providers) are
copied below as data, exactly as written (bar the trailing spaces of two
blank lines in seed 004). Each test rewrites only their
gpt4free import lines to ``from llmclients.compat.g4f import ...``, points the
classes at a started emulator (their ``base_url`` attribute), and runs the
script as ``python script.py`` would (``__name__ == "__main__"``). Seed 003 uses
a top-level ``async for``, valid only where top-level await is (``python -m
asyncio``, Jupyter, IPython): it is compiled with
``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT`` and the resulting coroutine run with
``asyncio.run``, as those environments do.

No pytest-asyncio: async tests drive their coroutine with ``asyncio.run``.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import collections.abc
import difflib
import inspect
import io
import re
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

import llmclients
from llmclients.aio import THREAD_NAME
from llmclients.compat import g4f
from llmclients.compat.g4f import AllenAI, Aura, AutonomousAI, Conversation, FinishReason
from llmclients.providers.allenai import AllenAI as AllenAIClient
from llmclients.providers.autonomous import AutonomousAI as AutonomousAIClient
from llmclients.testing import AllenAIEmulator, AuraEmulator, AutonomousAIEmulator, Reply
from llmclients.testing.allenai import UploadedFile

# --- the seed documents' usage examples, as written ------------------------------------------

SEED_000 = """\
from hypotez.src.endpoints.gpt4free.g4f.Provider.not_working.AutonomousAI import AutonomousAI

async def main():
    # Создание экземпляра провайдера
    provider = AutonomousAI()

    # Определение модели
    model = "llama"

    # Создание списка сообщений
    messages = [
        {"role": "user", "content": "Привет, как дела?"},
    ]

    # Запуск асинхронного генератора
    async for chunk in provider.create_async_generator(model=model, messages=messages):
        print(chunk)

if __name__ == "__main__":
    import asyncio
    asyncio.run(main())
"""

SEED_001 = """\
from src.endpoints.gpt4free.g4f.Provider.not_working.AutonomousAI import AutonomousAI
import asyncio

async def main():
    model = "llama"
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"}
    ]

    async for response in AutonomousAI.create_async_generator(model=model, messages=messages, stream=True):
        print(response, end="")

if __name__ == "__main__":
    asyncio.run(main())
"""

SEED_002 = """\
# Пример использования create_async_generator
import asyncio
from typing import List, Dict, AsyncGenerator

from src.endpoints.gpt4free.g4f.Provider.not_working.AutonomousAI import AutonomousAI

async def main():
    model = "llama"
    messages: List[Dict[str, str]] = [{"role": "user", "content": "Hello, how are you?"}]
    proxy = None
    stream = True

    generator: AsyncGenerator[str, None] = await AutonomousAI.create_async_generator(
        model=model, messages=messages, proxy=proxy, stream=stream
    )

    async for message in generator:
        print(message, end="")

if __name__ == "__main__":
    asyncio.run(main())
"""

SEED_003 = """\
from hypotez.src.endpoints.gpt4free.g4f.Provider.not_working.Aura import Aura
from hypotez.src.endpoints.gpt4free.g4f.typing import Messages

# Создание списка сообщений
messages: Messages = [
    {"role": "system", "content": "Ты —  помощник по написанию текстов."},
    {"role": "user", "content": "Напиши мне короткий текст о том, как важен свежий воздух."},
]

# Создание асинхронного генератора для получения ответа от модели
async_generator = Aura.create_async_generator(
    model="openchat_3.6",
    messages=messages,
)

# Получение ответа модели по частям
async for chunk in async_generator:
    print(chunk, end="")
"""

SEED_004 = """\
from src.endpoints.gpt4free.g4f.Provider.AllenAI import AllenAI, Conversation
from src.endpoints.gpt4free.g4f.typing import Messages
import asyncio

async def main():
    # Пример использования AllenAI для генерации ответа на сообщение
    messages: Messages = [{"role": "user", "content": "Translate to french: Hello, how are you?"}]
    model = "tulu3-405b"

    # Создаем объект Conversation для хранения истории разговора (опционально)
    conversation = Conversation(model)

    async for response in AllenAI.create_async_generator(
        model=model,
        messages=messages,
        conversation=conversation,  # Передаем объект Conversation
        return_conversation=True  # Возвращаем объект Conversation в конце
    ):
        if isinstance(response, str):
            print(f"Response chunk: {response}")
        elif isinstance(response, Conversation):
            print(f"Conversation history: {response.messages}")
        else:
            print(f"Finish reason: {response}")

if __name__ == "__main__":
    asyncio.run(main())
"""

SEEDS = {"000": SEED_000, "001": SEED_001, "002": SEED_002, "003": SEED_003, "004": SEED_004}

#: A gpt4free import line: a provider module's (``...g4f.Provider....``) or ``...g4f.typing``'s.
G4F_IMPORT = re.compile(r"^from [\w.]*\bg4f\.(?:Provider\.[\w.]+|typing) import (.+)$", re.MULTILINE)


def port(source: str) -> str:
    """``source`` with its gpt4free import lines pointed at llmclients.compat.g4f."""
    ported, count = G4F_IMPORT.subn(r"from llmclients.compat.g4f import \1", source)
    assert count, "no gpt4free import line in the example"
    return ported


def run_script(source: str) -> None:
    """Run ``source`` as a script (``__name__ == "__main__"``); top-level ``await``
    / ``async for`` run as under ``python -m asyncio``."""
    code = compile(source, "<seed example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, {"__name__": "__main__"})
    if inspect.iscoroutine(result):  # the source awaits at top level
        asyncio.run(result)


# --- fixtures ---------------------------------------------------------------------------------


def aio_threads() -> int:
    return sum(thread.name.startswith(THREAD_NAME) for thread in threading.enumerate())


def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    yield
    assert eventually(lambda: aio_threads() == 0), "a reading thread outlived its test"


@pytest.fixture
def autonomous(
    autonomous_emulator: AutonomousAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> AutonomousAIEmulator:
    monkeypatch.setattr(AutonomousAI, "base_url", autonomous_emulator.base_url)
    return autonomous_emulator


@pytest.fixture
def aura(aura_emulator: AuraEmulator, monkeypatch: pytest.MonkeyPatch) -> AuraEmulator:
    monkeypatch.setattr(Aura, "base_url", aura_emulator.base_url)
    return aura_emulator


@pytest.fixture
def allenai(allenai_emulator: AllenAIEmulator, monkeypatch: pytest.MonkeyPatch) -> AllenAIEmulator:
    monkeypatch.setattr(AllenAI, "base_url", allenai_emulator.base_url)
    return allenai_emulator


def collect(agen: Any) -> List[Any]:
    async def main() -> List[Any]:
        return [chunk async for chunk in agen]

    return asyncio.run(main())


def text_of(chunks: List[Any]) -> str:
    return "".join(chunk for chunk in chunks if isinstance(chunk, str))


# --- the seed examples, with only their import lines changed -----------------------------------


def test_porting_changes_only_the_import_lines() -> None:
    for name, source in SEEDS.items():
        diff = list(difflib.ndiff(source.splitlines(), port(source).splitlines()))
        removed = [line[2:] for line in diff if line.startswith("- ")]
        added = [line[2:] for line in diff if line.startswith("+ ")]
        assert removed and len(removed) == len(added), name
        assert all(G4F_IMPORT.fullmatch(line) for line in removed), (name, removed)
        assert all(line.startswith("from llmclients.compat.g4f import ") for line in added), (name, added)


def test_seed_000_prints_each_chunk(
    autonomous: AutonomousAIEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    reply = Reply(text="Привет! У меня всё хорошо, спасибо.", delay=0.01)
    autonomous.enqueue(reply)
    run_script(port(SEED_000))
    # print(chunk) per chunk; the FinishReason prints as an empty line.
    assert capsys.readouterr().out == "".join(f"{piece}\n" for piece in reply.pieces()) + "\n"
    request = autonomous.last_request
    assert request.path == "/api/v1/ai/chat"
    assert request.json()["aiAgent"] == "llama" and request.json()["stream"] is True
    assert autonomous.messages_of(request) == [{"role": "user", "content": "Привет, как дела?"}]


def test_seed_001_streams_with_a_system_message(
    autonomous: AutonomousAIEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    autonomous.enqueue(Reply(text="The capital of France is Paris.", delay=0.01))
    run_script(port(SEED_001))
    assert capsys.readouterr().out == "The capital of France is Paris."
    assert autonomous.messages_of(autonomous.last_request) == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]


def test_seed_002_awaiting_the_generator_fails_with_the_right_form(
    autonomous: AutonomousAIEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(TypeError) as caught:
        run_script(port(SEED_002))
    message = str(caught.value)
    assert "is an async generator, not a coroutine: do not await it" in message
    assert "async for chunk in AutonomousAI.create_async_generator(model=..., messages=...):" in message
    assert autonomous.requests == []  # nothing was sent
    assert capsys.readouterr().out == ""
    # Without the `await`, the same example works.
    fixed = port(SEED_002).replace("= await AutonomousAI", "= AutonomousAI")
    autonomous.enqueue(Reply(text="I am fine, thank you.", delay=0.01))
    run_script(fixed)
    assert capsys.readouterr().out == "I am fine, thank you."


def test_seed_003_top_level_async_for(aura: AuraEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    text = "Свежий воздух насыщает кровь кислородом, бодрит и проясняет мысли."
    aura.enqueue(Reply(text=text, delay=0.01))
    run_script(port(SEED_003))
    assert capsys.readouterr().out == text
    body = aura.last_request.json()
    assert body["model"]["id"] == "openchat_3.6"
    assert body["prompt"] == "Ты —  помощник по написанию текстов."  # the system message
    assert body["messages"] == [
        {"role": "user", "content": "Напиши мне короткий текст о том, как важен свежий воздух."}
    ]


def test_seed_004_conversation_is_returned(
    allenai: AllenAIEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    reply = Reply(text="Bonjour, comment allez-vous ?", delay=0.01)
    allenai.enqueue(reply)
    run_script(port(SEED_004))
    lines = capsys.readouterr().out.splitlines()
    history = [
        {"role": "user", "content": "Translate to french: Hello, how are you?"},
        {"role": "assistant", "content": "Bonjour, comment allez-vous ?"},
    ]
    assert lines == [f"Response chunk: {piece}" for piece in reply.pieces()] + [
        f"Conversation history: {history}",
        "Finish reason: ",  # str(FinishReason) is ""
    ]
    form = allenai.form(allenai.last_request)
    assert form["model"] == "tulu3-405b" and form["host"] == "inferd" and "parent" not in form
    assert form["content"] == "Translate to french: Hello, how are you?"


# --- get_model and the class attributes ---------------------------------------------------------


def test_get_model_follows_gpt4free_rules() -> None:
    assert AutonomousAI.get_model("") == "llama"
    assert AutonomousAI.get_model("llama-3.3-70b") == "llama"
    assert AutonomousAI.get_model("hermes-3") == "hermes"
    assert AutonomousAI.get_model("summary") == "summary"
    assert AllenAI.get_model("") == "tulu3-405b"
    assert AllenAI.get_model("llama-3.1-8b") == "tulu-3-1-8b"
    assert AllenAI.get_model("tulu-3-1-8b") == "tulu-3-1-8b"  # both an alias and an id
    assert Aura.get_model("openchat-3.5") == "openchat_v3.2_mistral"
    with pytest.raises(llmclients.ModelNotFoundError) as caught:
        AutonomousAI.get_model("gpt-4o")
    assert str(caught.value) == (
        "Model is not supported: gpt-4o in: AutonomousAI "
        "Valid models: ['llama', 'qwen_coder', 'hermes', 'vision', 'summary']"
    )
    assert isinstance(caught.value, ValueError)
    assert caught.value.valid_models == AutonomousAI.models and caught.value.model == "gpt-4o"


def test_unknown_model_raises_at_the_call_before_any_request(autonomous: AutonomousAIEmulator) -> None:
    with pytest.raises(llmclients.ModelNotFoundError, match="Valid models"):
        AutonomousAI.create_async_generator("gpt-4o", [{"role": "user", "content": "Hi"}])
    with pytest.raises(llmclients.ModelNotFoundError):
        AllenAI.create_completion("gpt-4o", [{"role": "user", "content": "Hi"}])
    with pytest.raises(llmclients.InvalidMessagesError):
        Aura.create_completion("", [{"role": "robot", "content": "Hi"}])
    assert autonomous.requests == []


def test_class_attributes_tell_the_truth() -> None:
    for compat in (AutonomousAI, Aura, AllenAI):
        core = compat.core
        # All three services are gone, and their providers' status says so.
        assert compat.working is False, compat
        assert compat.status == core.status and core.status.startswith(("not working", "retired"))
        assert compat.supports_stream is True
        assert compat.supports_system_message is core.supports_system_message
        assert compat.supports_message_history is True
        assert compat.models == list(core.models) and compat.default_model == core.default_model
        assert compat.model_aliases == {**core.model_aliases, **compat._gpt4free_aliases}
        assert compat.base_url is None
        assert all(compat.get_model(alias) in compat.models for alias in compat.model_aliases)
    assert AutonomousAI.url == "https://www.autonomous.ai/anon/"
    assert AutonomousAI.api_endpoints == {
        "llama": "https://chatgpt.autonomous.ai/api/v1/ai/chat",
        "qwen_coder": "https://chatgpt.autonomous.ai/api/v1/ai/chat",
        "hermes": "https://chatgpt.autonomous.ai/api/v1/ai/chat-hermes",
        "vision": "https://chatgpt.autonomous.ai/api/v1/ai/chat-vision",
        "summary": "https://chatgpt.autonomous.ai/api/v1/ai/summary",
    }
    assert AllenAI.supports_system_message is False
    assert AllenAI.api_endpoint == "https://olmo-api.allen.ai/v4/message/stream"
    assert AllenAI.url == "https://playground.allenai.org" and Aura.url == "https://openchat.team"
    assert set(AllenAI.model_hosts) == set(AllenAI.models)


def test_finish_reason_and_conversation_print_as_nothing() -> None:
    finish = FinishReason("length")
    assert str(finish) == "" and finish.reason == "length" and repr(finish) == "FinishReason('length')"
    assert finish == FinishReason("length") != FinishReason("stop")
    assert finish.get_dict() == {"reason": "length"}
    conversation = Conversation("tulu3-405b")
    assert str(conversation) == "" and conversation.parent is None and conversation.messages == []
    assert re.fullmatch(r"[0-9a-f-]{36}", conversation.x_anonymous_user_id)
    assert Conversation("tulu3-405b").x_anonymous_user_id != conversation.x_anonymous_user_id


# --- create_async_generator -----------------------------------------------------------------------


def test_async_generator_protocol_and_the_await_mistake(autonomous: AutonomousAIEmulator) -> None:
    agen = AutonomousAI.create_async_generator("llama", "Hi")
    assert isinstance(agen, collections.abc.AsyncGenerator)
    assert not inspect.iscoroutine(agen)

    async def awaiting() -> None:
        await AutonomousAI.create_async_generator("llama", "Hi")

    with pytest.raises(TypeError, match=r"async for chunk in AutonomousAI\.create_async_generator\("):
        asyncio.run(awaiting())

    async def stepping() -> List[Any]:
        first = await agen.__anext__()
        second = await agen.asend(None)
        await agen.aclose()
        return [first, second]

    assert text_of(asyncio.run(stepping())) == "Hello from "
    assert len(autonomous.requests) == 1
    assert autonomous.wait_idle()


def test_yields_text_then_the_finish_reason(autonomous: AutonomousAIEmulator) -> None:
    autonomous.enqueue(Reply(text="One two three.", delay=0.01, finish_reason="length"))
    chunks = collect(AutonomousAI.create_async_generator("", [{"role": "user", "content": "Count"}]))
    assert chunks == ["One ", "two ", "three.", FinishReason("length")]


def test_stream_false_asks_for_one_answer(autonomous: AutonomousAIEmulator) -> None:
    autonomous.enqueue(Reply(text="All at once."))
    chunks = collect(AutonomousAI.create_async_generator("hermes-3", "Hi", stream=False))
    assert chunks == ["All at once.", FinishReason("stop")]
    assert autonomous.last_request.path == "/api/v1/ai/chat-hermes"
    assert autonomous.last_request.json()["stream"] is False


def test_the_event_loop_is_never_blocked(autonomous: AutonomousAIEmulator) -> None:
    autonomous.enqueue(Reply(text="Slow to start.", head_delay=2.0, delay=0.05))

    async def main() -> float:
        gaps: List[float] = []
        stop = asyncio.Event()

        async def tick() -> None:
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        chunks = [chunk async for chunk in AutonomousAI.create_async_generator("llama", "Hi")]
        stop.set()
        await ticker
        assert text_of(chunks) == "Slow to start."
        return max(gaps)

    # The 2 s wait for the headers happened in a thread (a loaded machine may hold a tick back a while).
    assert asyncio.run(main()) < 1.0


def test_leaving_the_loop_early_closes_the_connection(autonomous: AutonomousAIEmulator) -> None:
    autonomous.enqueue(Reply(text="a b c d e f g h i j k l m n o p", delay=0.05))

    async def main() -> str:
        async for chunk in AutonomousAI.create_async_generator("llama", "Hi"):
            return str(chunk)  # abandons the generator; asyncio.run closes it
        return ""

    assert asyncio.run(main()) == "a "
    assert autonomous.wait_idle()
    assert autonomous.last_request.outcome == "client closed"


# --- create_completion ------------------------------------------------------------------------------


def test_create_completion_is_a_blocking_generator(
    autonomous: AutonomousAIEmulator, aura: AuraEmulator
) -> None:
    autonomous.enqueue(Reply(text="Blocking works."))
    result = AutonomousAI.create_completion("llama", [{"role": "user", "content": "Hi"}])
    assert isinstance(result, collections.abc.Iterator) and autonomous.requests == []  # sent when iterated
    assert list(result) == ["Blocking ", "works.", FinishReason("stop")]
    assert aio_threads() == 0  # no thread, no event loop

    # It needs no event loop of its own, so it works inside a running one (Jupyter).
    async def inside_a_loop() -> List[Any]:
        return list(Aura.create_completion("openchat_3.6", "Hi"))

    chunks = asyncio.run(inside_a_loop())
    assert text_of(chunks) == "Hello from the Aura (OpenChat) emulator. You said: Hi"
    assert chunks[-1] == FinishReason("stop")


# --- AllenAI conversations ------------------------------------------------------------------------


def test_allenai_conversation_round_trip(allenai: AllenAIEmulator) -> None:
    allenai.enqueue(Reply(text="Paris.", delay=0.01), Reply(text="About 2.1 million.", delay=0.01))
    first = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Capital of France?"},
    ]
    chunks = collect(AllenAI.create_async_generator("tulu-3-70b", first, temperature=0.5, top_p=0.9))
    conversation = chunks[-2]
    assert isinstance(conversation, Conversation) and chunks[-1] == FinishReason("stop")
    assert text_of(chunks) == "Paris."
    form = allenai.form(allenai.requests[0])
    assert form["model"] == "Llama-3-1-Tulu-3-70B" and form["host"] == "modal"
    assert form["content"] == "System: Answer briefly.\nUser: Capital of France?\nAssistant:"
    assert (form["temperature"], form["top_p"], form["private"]) == ("0.5", "0.9", "true")
    assert conversation.parent is not None and conversation.parent in allenai.messages
    assert allenai.messages[conversation.parent]["role"] == "assistant"

    # Turn two: the whole history as gpt4free callers pass it, plus the conversation.
    second = first + [{"role": "assistant", "content": "Paris."}, {"role": "user", "content": "Population?"}]
    previous_parent = conversation.parent
    chunks = collect(
        AllenAI.create_async_generator(
            "tulu-3-70b", second, conversation=conversation, return_conversation=False
        )
    )
    assert chunks == ["About ", "2.1 ", "million.", FinishReason("stop")]  # no conversation yielded
    request = allenai.requests[1]
    form = allenai.form(request)
    assert form["content"] == "Population?" and form["parent"] == previous_parent  # only the new turn
    assert request.headers["X-Anonymous-User-ID"] == conversation.x_anonymous_user_id
    assert (
        conversation.parent != previous_parent
        and allenai.messages[conversation.parent]["role"] == "assistant"
    )
    assert [message["content"] for message in conversation.messages] == [
        "System: Answer briefly.\nUser: Capital of France?\nAssistant:",
        "Paris.",
        "Population?",
        "About 2.1 million.",
    ]

    # The state continues natively in llmclients, and comes back.
    client = AllenAIClient(base_url=allenai.base_url)
    native = client.conversation(state=conversation.to_dict())
    allenai.enqueue(Reply(text="Yes."))
    assert native.send("Sure?").text == "Yes."
    assert allenai.form(allenai.requests[2])["parent"] == conversation.parent
    back = Conversation.from_dict(native.to_dict())
    assert back.x_anonymous_user_id == conversation.x_anonymous_user_id and len(back.messages) == 6
    client.close()


def test_allenai_blocking_conversation(allenai: AllenAIEmulator) -> None:
    conversation = Conversation("olmo-2-13b")
    chunks = list(AllenAI.create_completion("olmo-2-13b", "Hi", conversation=conversation, private=False))
    assert chunks[-2:] == [conversation, FinishReason("stop")] and conversation.parent
    assert allenai.form(allenai.last_request)["private"] == "false"


def test_allenai_host_and_media(allenai: AllenAIEmulator) -> None:
    assert text_of(list(AllenAI.create_completion("tulu3-405b", "Hi", host="inferd")))
    with pytest.raises(llmclients.InvalidRequestError, match="from host 'inferd', not 'modal'"):
        AllenAI.create_completion("tulu3-405b", "Hi", host="modal")
    with pytest.raises(llmclients.InvalidRequestError, match="needs the vision model"):
        AllenAI.create_completion("tulu3-405b", "Hi", media=[(PNG, "a.png")])
    with pytest.raises(llmclients.InvalidRequestError, match="Conversation"):
        AllenAI.create_completion("tulu3-405b", "Hi", conversation={"parent": "msg_x"})
    assert len(allenai.requests) == 1


# --- AllenAI media: gpt4free's (data, filename) pairs ------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
VISION = "mm-olmo-uber-model-v4-synthetic"


@pytest.mark.parametrize("form", ["bytes", "path", "file", "data url"])
def test_allenai_media_goes_as_an_image(allenai: AllenAIEmulator, tmp_path: Path, form: str) -> None:
    (tmp_path / "cat.png").write_bytes(PNG)
    data = {
        "bytes": PNG,
        "path": tmp_path / "cat.png",
        "file": io.BytesIO(PNG),
        "data url": "data:image/png;base64," + base64.b64encode(PNG).decode(),
    }[form]

    chunks = list(AllenAI.create_completion("olmo-4-synthetic", "What is this?", media=[(data, "cat.png")]))

    assert chunks[-1] == FinishReason("stop") and text_of(chunks)
    request = allenai.last_request
    assert allenai.files(request) == [UploadedFile("files", "image-1.png", "image/png", PNG)]
    assert allenai.form(request)["content"] == "What is this?" and allenai.form(request)["model"] == VISION


def test_allenai_media_starts_a_new_thread(allenai: AllenAIEmulator) -> None:
    allenai.enqueue(Reply(text="A cat."), Reply(text="Grey."), Reply(text="A dog."))
    conversation = Conversation(VISION)
    history: List[Any] = [{"role": "user", "content": "What is this?"}]
    list(AllenAI.create_completion(VISION, history, conversation=conversation, media=[(PNG, None)]))
    history += [{"role": "assistant", "content": "A cat."}, {"role": "user", "content": "What colour?"}]
    list(AllenAI.create_completion(VISION, history, conversation=conversation))
    follow_up_parent = allenai.form(allenai.requests[1])["parent"]
    history += [{"role": "assistant", "content": "Grey."}, {"role": "user", "content": "And this?"}]
    list(AllenAI.create_completion(VISION, history, conversation=conversation, media=[(PNG, "dog.png")]))

    new = allenai.form(allenai.requests[2])
    assert "parent" not in new and follow_up_parent
    assert new["content"] == (
        "User: What is this?\nAssistant: A cat.\nUser: What colour?\nAssistant: Grey.\nUser: And this?\nAssistant:"
    )
    assert len(allenai.files(allenai.requests[2])) == 1
    assert (
        conversation.parent != follow_up_parent
        and allenai.messages[conversation.parent]["content"] == "A dog."
    )
    assert conversation.messages[-2]["content"] == new["content"]  # what was sent, as for a first turn


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        ([("cat.png", "cat.png")], r"pathlib.Path\('cat.png'\)"),
        ([(b"not an image", "notes.txt")], "not a JPEG, PNG, GIF or WebP image"),
        ([PNG], r"list of \(data, filename\) pairs"),
        ([(12, "x.png")], "is a int"),
    ],
)
def test_allenai_media_it_cannot_send_fails_at_the_call(
    allenai: AllenAIEmulator, media: List[Any], expected: str
) -> None:
    with pytest.raises(llmclients.InvalidRequestError, match=expected):
        AllenAI.create_completion(VISION, "What is this?", media=media)
    assert allenai.requests == []


# Two bytes FF D8 are not a JPEG (it starts FF D8 FF): compat.g4f once took them
# for one, while image_part did not; both now read the one table in llmclients._core.images.
NOT_QUITE_JPEG = b"\xff\xd8\x00\x00" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)


def test_media_and_image_part_agree_on_what_a_jpeg_is(allenai: AllenAIEmulator) -> None:
    with pytest.raises(llmclients.InvalidRequestError, match="not a JPEG, PNG, GIF or WebP image"):
        AllenAI.create_completion(VISION, "What is this?", media=[(NOT_QUITE_JPEG, None)])
    with pytest.raises(llmclients.InvalidMessagesError, match="cannot tell the image's type"):
        llmclients.image_part(NOT_QUITE_JPEG)
    assert allenai.requests == []

    list(AllenAI.create_completion(VISION, "What is this?", media=[(JPEG, None)]))
    assert allenai.files(allenai.last_request) == [UploadedFile("files", "image-1.jpg", "image/jpeg", JPEG)]
    assert llmclients.image_part(JPEG)["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_allenai_media_by_web_url_is_refused_before_any_request(allenai: AllenAIEmulator) -> None:
    chunks = AllenAI.create_completion(VISION, "What is this?", media=[("https://example.com/cat.png", None)])
    with pytest.raises(llmclients.InvalidRequestError, match="cannot send an image by URL"):
        list(chunks)
    assert allenai.requests == []


# --- keyword arguments -------------------------------------------------------------------------------


def test_unknown_keywords_are_ignored_with_a_warning(
    autonomous: AutonomousAIEmulator, aura: AuraEmulator
) -> None:
    with pytest.warns(g4f.IgnoredArgumentWarning, match=r"AutonomousAI ignores temperature=") as caught:
        chunks = list(AutonomousAI.create_completion("llama", "Hi", temperature=0.2, web_search=False))
    assert len(caught) == 1 and caught[0].filename == __file__  # points at the caller's line
    assert chunks[-1] == FinishReason("stop")
    assert set(autonomous.last_request.json()) == {"messages", "threadId", "stream", "aiAgent"}

    with pytest.warns(g4f.IgnoredArgumentWarning, match="webdriver"):
        chunks = list(Aura.create_completion("", "Hi", webdriver=object(), temperature=0.8, max_tokens=4096))
    assert aura.upstream[-1]["temperature"] == 0.8
    assert aura.last_request.json()["model"]["tokenLimit"] == 4096

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # None and False pass silently, as do known keywords
        list(Aura.create_completion("", "Hi", stream=False, api_key=None, timeout=5))


def test_proxy_is_used(autonomous: AutonomousAIEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(AutonomousAI, "base_url", "http://autonomous.invalid/api/v1/ai")
    # The emulator plays the proxy: it receives the absolute URL and, not knowing it, answers 404.
    with pytest.raises(llmclients.NotFoundError):
        list(AutonomousAI.create_completion("llama", "Hi", proxy=autonomous.url))
    assert autonomous.last_request.path == "http://autonomous.invalid/api/v1/ai/chat"


# --- errors are llmclients' ------------------------------------------------------------------------


def test_errors_are_llmclients_typed_exceptions(
    autonomous: AutonomousAIEmulator, allenai: AllenAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 401 -> AuthenticationError (gpt4free: MissingAuthError)
    autonomous.enqueue(Reply(status=401, body={"error": {"message": "who are you"}}))
    with pytest.raises(llmclients.AuthenticationError) as auth:
        collect(AutonomousAI.create_async_generator("llama", "Hi"))
    assert auth.value.status_code == 401

    # An error inside the stream -> ProviderError, with the text received so far.
    allenai.enqueue(Reply(text="Half an", finish_reason="aborted"))
    received: List[Any] = []

    async def main() -> None:
        async for chunk in AllenAI.create_async_generator("", "Hi"):
            received.append(chunk)

    with pytest.raises(llmclients.ProviderError) as provider_error:
        asyncio.run(main())
    assert provider_error.value.reason == "aborted" and provider_error.value.partial_text == "Half an"
    assert received == ["Half ", "an"]

    # The retired endpoint -> NotFoundError, which says why (gpt4free: ResponseStatusError).
    with AllenAIEmulator(retired=True) as retired:
        monkeypatch.setattr(AllenAI, "base_url", retired.base_url)
        with pytest.raises(llmclients.NotFoundError, match="no longer exists"):
            list(AllenAI.create_completion("", "Hi"))


def test_live_service_is_the_default_target() -> None:
    # No request is made: only where it would go.
    call = AutonomousAI._checked("vision", "Hi", None, True, {})
    client = call._client()
    assert client.base_url == AutonomousAIClient.default_base_url
    client.close()
    call = AllenAI._checked("", "Hi", "http://proxy.example:3128", True, {})
    assert call.client_options == {
        "base_url": "https://olmo-api.allen.ai",
        "proxy": "http://proxy.example:3128",
    }


def test_subclass_points_elsewhere(autonomous_emulator: AutonomousAIEmulator) -> None:
    class LocalAI(AutonomousAI):
        base_url = autonomous_emulator.base_url

    assert text_of(list(LocalAI.create_completion("llama", "Hi"))).endswith("You said: Hi")


def test_allenai_aliases_are_gpt4frees_own_table() -> None:
    # gpt4free's AllenAI.model_aliases (f96ea67f) listed "tulu-3-1-8b" as its own alias.
    assert AllenAI.model_aliases["tulu-3-1-8b"] == "tulu-3-1-8b"
    assert AllenAI.get_model("tulu-3-1-8b") == "tulu-3-1-8b"
    assert AllenAI.model_aliases["llama-3.1-8b"] == "tulu-3-1-8b"


def test_aura_default_model_is_the_one_the_published_server_serves() -> None:
    assert Aura.default_model == "openchat_v3.2_mistral" and Aura.get_model("") == "openchat_v3.2_mistral"
    assert Aura.supports_system_message is True and Aura.supports_message_history is True
