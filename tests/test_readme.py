"""Every Python block in README.rst runs, against the emulators, so none can rot.

The convention, for whoever edits the README: a ``.. code-block:: python``
runs, in document order, in one namespace (a block may use what an earlier
one defined, as a reader would). A block that is only an illustration (an
excerpt, a fragment, another library's code) is preceded by an RST comment,
invisible on the rendered page, that says why::

    .. illustration: an excerpt of examples/django_chat/chat/views.py

    .. code-block:: python

The servers the README names (``http://localhost:11434/v1``,
``http://localhost:8000/v1``) are swapped for an OpenAI emulator's URL, an
Ollama server's root (``http://localhost:11434``) for an Ollama emulator's,
``http://localhost:8080/v1`` (a Responses API server) for a Responses emulator's,
``llmclients.Anthropic``'s default (``https://api.anthropic.com``) for an
Anthropic emulator's, and gpt4free-style classes are pointed at their emulators. ``run_tool``,
``save`` and ``retry_later`` stand for the reader's own code. Functions named
``test_*`` that a block defines are called, as pytest would.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple

import pytest

import llmclients
from llmclients.compat import g4f
from llmclients.testing import (
    AnthropicEmulator,
    OllamaEmulator,
    OpenAIEmulator,
    Reply,
    ResponsesEmulator,
    emulator_for,
)
from llmclients.testing.openai import tool_call_chunks

README = Path(__file__).resolve().parent.parent / "README.rst"
SERVERS = ("http://localhost:11434/v1", "http://localhost:8000/v1")
RESPONSES_SERVER = "http://localhost:8080/v1"
OLLAMA_SERVER = "http://localhost:11434"  # swapped after SERVERS, whose first it starts
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000000000200019ef1a8c40000000049454e44ae426082"
)


class Block(NamedTuple):
    line: int  # where the code starts in README.rst
    code: str
    illustration: bool


def readme_blocks(text: str) -> List[Block]:
    """The ``.. code-block:: python`` blocks of an RST text, dedented."""
    lines = text.split("\n")
    blocks = []
    for number, line in enumerate(lines):
        directive = re.match(r"^(\s*)\.\. code-block:: python\s*$", line)
        if not directive:
            continue
        previous = [earlier.strip() for earlier in lines[:number] if earlier.strip()]
        illustration = bool(previous) and previous[-1].startswith(".. illustration:")
        indent = len(directive.group(1))
        body: List[str] = []
        for following in lines[number + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        code_lines = list(body)
        while code_lines and not code_lines[-1].strip():
            code_lines.pop()
        start = next(i for i, item in enumerate(code_lines) if item.strip())
        code_lines = code_lines[start:]
        margin = min(len(item) - len(item.lstrip()) for item in code_lines if item.strip())
        code = "\n".join(item[margin:] for item in code_lines) + "\n"
        blocks.append(Block(number + 1 + 1 + start, code, illustration))
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


# Replies scripted for the blocks that need more than the emulator's default
# echo: keyed by a line that only that block has.
def _scripts() -> Dict[str, List[Reply]]:
    weather = ("call_1", "weather", '{"city": "Paris"}')
    rome = ("call_2", "weather", '{"city": "Rome", "unit": "C"}')
    return {
        'reply = conv.run("What is the weather in Paris?"': [
            Reply(events=tool_call_chunks([weather])),
            Reply(text="It is sunny in Paris."),
        ],
        'conv.run_stream("And in Rome?"': [
            Reply(events=tool_call_chunks([rome])),
            Reply(text="Sunny in Rome too."),
        ],
        'response_format={"type": "json_object"}': [Reply(text='{"answer": "Rayleigh scattering"}')],
        "response_format=City)": [Reply(text='{"name": "Paris", "population": 2102650}')],
    }


@contextlib.contextmanager
def compat_emulators() -> Iterator[None]:
    """gpt4free's classes pointed at their emulators for the block's run."""
    with contextlib.ExitStack() as stack:
        for cls, provider in ((g4f.AutonomousAI, "autonomous"), (g4f.AllenAI, "allenai"), (g4f.Aura, "aura")):
            emulator = stack.enter_context(emulator_for(provider))
            previous = cls.__dict__.get("base_url")
            cls.base_url = emulator.base_url  # type: ignore[misc]
            stack.callback(setattr, cls, "base_url", previous)
        yield


def the_readers_own_code() -> Dict[str, Callable[..., Any]]:
    return {
        "run_tool": lambda name, **arguments: f"sunny in {arguments.get('city', '?')}",
        "save": lambda text: None,
        "retry_later": lambda seconds: None,
    }


def test_the_readme_has_runnable_blocks_and_marks_the_rest():
    runnable = [block for block in BLOCKS if not block.illustration]
    assert len(runnable) >= 12
    assert 1 <= len(BLOCKS) - len(runnable) <= 7  # the 7th: Celery, which needs a broker and workers


def test_illustrations_are_left_out_and_the_rest_kept():
    text = (
        "Intro\n\n.. illustration: not ours\n\n.. code-block:: python\n\n    import g4f\n\n"
        "Text\n\n.. code-block:: python\n\n    x = 1\n    if x:\n        y = 2\n\nAfter\n"
    )
    blocks = readme_blocks(text)
    assert [(b.illustration, b.code) for b in blocks] == [
        (True, "import g4f\n"),
        (False, "x = 1\nif x:\n    y = 2\n"),
    ]
    assert text.split("\n")[blocks[1].line - 1] == "    x = 1"


def test_every_python_block_in_the_readme_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cat.png").write_bytes(PNG)
    for name in ("LLMCLIENTS_BASE_URL", "LLMCLIENTS_MODEL", "LLMCLIENTS_PROVIDER", "LLMCLIENTS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # The blocks run as a module's code does (a dataclass looks its module up in sys.modules).
    module = types.ModuleType("readme")
    monkeypatch.setitem(sys.modules, "readme", module)
    namespace: Dict[str, Any] = vars(module)
    namespace.update(the_readers_own_code())
    scripts = _scripts()
    ran = 0
    with OpenAIEmulator() as emulator, ResponsesEmulator() as responses, OllamaEmulator() as ollama, compat_emulators(), AnthropicEmulator() as claude:
        monkeypatch.setattr(llmclients.Anthropic, "default_base_url", claude.base_url)
        for block in BLOCKS:
            if block.illustration:
                continue
            code = block.code
            for server in SERVERS:
                code = code.replace(server, emulator.base_url)
            code = code.replace(RESPONSES_SERVER, responses.base_url)
            code = code.replace(OLLAMA_SERVER, ollama.base_url)
            for marker, replies in scripts.items():
                if marker in code:
                    emulator.enqueue(*replies)
            before = set(namespace)
            output = io.StringIO()
            try:
                with contextlib.redirect_stdout(output):
                    exec(compile(code, f"README.rst, line {block.line}", "exec"), namespace)
                    for name in sorted(set(namespace) - before):
                        if name.startswith("test_") and callable(namespace[name]):
                            namespace[name]()
            except Exception as exc:
                pytest.fail(f"README.rst, the block at line {block.line} fails: {type(exc).__name__}: {exc}")
            ran += 1
        assert not emulator._queue, "a scripted reply was not asked for"
        assert responses.requests, "the Responses example did not reach its emulator"
        assert ollama.requests, "the Ollama example did not reach its emulator"
    assert ran == len([block for block in BLOCKS if not block.illustration])
    # The tour streamed the emulator's answer; the tool loop answered the tool.
    requests_seen = [request.json() for request in emulator.requests]
    assert any(m.get("role") == "tool" for body in requests_seen for m in body["messages"])


def test_the_readme_renders_without_a_warning():
    docutils_core = pytest.importorskip("docutils.core")
    warnings = io.StringIO()
    docutils_core.publish_doctree(
        README.read_text(encoding="utf-8"),
        settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": warnings},
    )
    assert warnings.getvalue() == ""
