"""The one llmclients client this process shares between its request threads.

It is created on first use, so in the process that serves requests: a server
that forks its workers after loading the app (``gunicorn --preload``) must not
hand them a client whose pooled sockets the parent already opened.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

import llmclients
from llmclients.testing import Emulator, emulator_for

_lock = threading.Lock()
_client: Optional[llmclients.Provider] = None
_emulator: Optional[Emulator] = None


def get_client() -> llmclients.Provider:
    global _client, _emulator
    with _lock:
        if _client is None:
            config = settings.LLMCLIENTS
            provider, base_url, model = config["provider"], config["base_url"], config["model"]
            if not base_url:  # a demo: the provider's emulator, on 127.0.0.1
                _emulator = emulator_for(provider).start()
                base_url = _emulator.base_url
                model = model or llmclients.get_provider_class(provider).default_model or "emulator-1"
            _client = llmclients.get_client(
                provider, base_url=base_url, model=model, api_key=config["api_key"], timeout=config["timeout"]
            )
        return _client


def reset() -> None:
    """Close the client (and stop the emulator); the next request makes a new one."""
    global _client, _emulator
    with _lock:
        if _client is not None:
            _client.close()
        if _emulator is not None:
            _emulator.stop()
        _client = _emulator = None


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting == "LLMCLIENTS":  # tests point the app at their own emulator
        reset()
