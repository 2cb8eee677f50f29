"""gpt4free's calling conventions over llmclients' providers.

Code written for gpt4free's ``AutonomousAI``, ``Aura`` and ``AllenAI``
providers runs with its import line changed::

    # before
    from g4f.Provider.not_working.AutonomousAI import AutonomousAI
    # after
    from llmclients.compat.g4f import AutonomousAI

    async for chunk in AutonomousAI.create_async_generator(model="llama", messages=messages):
        print(chunk, end="")

What works as in gpt4free
-------------------------
* The classes are used without instantiation (an instance works too).
  ``create_async_generator(model, messages, proxy=None, stream=True, **kwargs)``
  is an async generator of ``str`` deltas ending with a :class:`FinishReason`;
  AllenAI yields its :class:`Conversation` just before it (unless
  ``return_conversation=False``). ``str()`` of both is ``""``, so a
  ``print(chunk, end="")`` loop prints only the text.
* ``create_completion(model, messages, stream=True, **kwargs)`` is the same as
  a plain generator, for scripts without asyncio. It runs no event loop at all,
  so it also works inside a running one (Jupyter), where gpt4free's needed
  ``nest_asyncio``.
* ``get_model(name)``: ``""`` gives ``default_model``, an alias its model id,
  an unknown name raises :class:`~llmclients.errors.ModelNotFoundError` with
  gpt4free's message ("Model is not supported: ... Valid models: [...]").
* The class attributes ``url``, ``working``, ``supports_stream``,
  ``supports_system_message``, ``supports_message_history``,
  ``default_model``, ``models``, ``model_aliases`` (and AutonomousAI's
  ``api_endpoints``, AllenAI's ``api_endpoint`` and ``model_hosts``).
  ``working`` tells the truth about the live service: it is False for all three.

What differs
------------
* **Never await** ``create_async_generator(...)``: it is an async generator,
  not a coroutine (in gpt4free too). ``await`` on it raises a ``TypeError``
  that shows the ``async for`` form.
* Arguments are checked when the method is called (a bad model or message
  list raises there); the request is sent when iteration begins.
* Errors are llmclients' typed exceptions (:mod:`llmclients.errors`), not
  gpt4free's: ``MissingAuthError`` -> ``AuthenticationError``,
  ``RateLimitError`` -> ``RateLimitError``, ``ResponseStatusError`` ->
  ``HTTPStatusError``, ``ModelNotSupportedError`` -> ``ModelNotFoundError``...
* gpt4free's Aura ignored ``model``; here it picks one of ``Aura.models``
  (``""`` for the default) and an unknown name raises, as for the others.
  AllenAI's :class:`Conversation` keeps each whole reply (gpt4free kept the
  reply's last chunk), and a message list given with a conversation that has
  no reply yet is sent whole (gpt4free sent only its last user message).

Keyword arguments each class uses:

- all: ``proxy``; ``timeout`` (seconds) becomes the client's timeout;
- AutonomousAI: ``stream`` (default True here: gpt4free's default False
  asked for one JSON answer, which its parser then dropped, yielding nothing);
- Aura: ``temperature``, ``max_tokens`` (the context budget, sent as
  ``tokenLimit``); ``stream`` changes nothing (the reply always streams);
- AllenAI: ``temperature``, ``top_p``, ``private``, ``max_tokens`` (which
  gpt4free dropped), ``conversation``, ``return_conversation`` (default
  True); ``host`` may only name the model's own host (olmo-api refuses any
  other); ``media``, gpt4free's list of ``(data, filename)`` pairs, where
  ``data`` is ``bytes``, a ``pathlib.Path`` (any ``os.PathLike``), an open
  binary file or a ``data:`` URL, as gpt4free's ``to_bytes`` took them (not
  a path as a plain ``str``, nor a PIL image): the images go with the last
  user message as ``image_url`` parts, for the vision model only
  (``olmo-4-synthetic``), and start a new thread, as in gpt4free.

Any other keyword (``temperature`` for AutonomousAI, Aura's ``webdriver``,
``api_key``...) is ignored, as gpt4free ignored it, but with an
:class:`IgnoredArgumentWarning` pointing at the call; ``None`` and ``False``
values pass silently.

Where requests go
-----------------
To the live service by default (each class's provider's ``default_base_url``).
gpt4free has no parameter for this; here each class has a ``base_url``
attribute, ``None`` by default, to point it elsewhere — an emulator in tests::

    monkeypatch.setattr(g4f.AutonomousAI, "base_url", autonomous_emulator.base_url)

or for good, in a subclass: ``class LocalAI(AutonomousAI): base_url = "http://..."``.

Threads
-------
``create_async_generator`` never blocks the event loop: the blocking client
opens each stream in a thread of :mod:`llmclients.aio`'s pool, and the event
loop reads it on once its first delta has arrived (a thread reads it only
where the loop cannot watch its socket).

The code is in the private modules of this package (``_results``: what the
generators yield; ``_call``: one call and its media; ``_providers``: the
classes); every public name is imported from here.
"""

from __future__ import annotations

from ..._core.values import Messages
from ..._public import expose
from ._providers import AllenAI, Aura, AutonomousAI, CompatProvider
from ._results import AsyncResult, Conversation, FinishReason, IgnoredArgumentWarning
from ._results import Chunk as Chunk

__all__ = [
    "AllenAI",
    "AsyncResult",
    "Aura",
    "AutonomousAI",
    "CompatProvider",
    "Conversation",
    "FinishReason",
    "IgnoredArgumentWarning",
    "Messages",
]

expose(globals(), __name__, __all__)
