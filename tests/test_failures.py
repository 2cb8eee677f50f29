"""The error table is complete (as httpx's test_httpcore_all_exceptions_mapped):
every exception class requests and urllib3 define is translated to an
llmclients error, or named in failures.NOT_MAPPED with the reason it is not."""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any, List, Type

import pytest
import requests
import urllib3

from llmclients import errors
from llmclients._http.config import Timeout
from llmclients._http.deadline import Deadline
from llmclients._http.error_table import NOT_MAPPED, translate


def exception_classes(module: ModuleType) -> List[Type[BaseException]]:
    """Every exception class reachable as an attribute of ``module`` (urllib3's
    and json's among requests', as requests re-exports them)."""
    found = {
        kind for _, kind in inspect.getmembers(module, inspect.isclass) if issubclass(kind, BaseException)
    }
    return sorted(found, key=lambda kind: (kind.__module__, kind.__qualname__))


class Anything:
    """A stand-in for the pool, connection or response some constructors take."""

    length_remaining = 0

    def tell(self) -> int:
        return 0

    def __str__(self) -> str:
        return "anything"


def instance(kind: Type[BaseException]) -> BaseException:
    """``kind`` raised as its library would, with whichever arguments its constructor takes."""
    attempts: List[Any] = [
        ("boom",),
        (Anything(), "boom"),
        (Anything(), b"zz"),
        (Anything(), "http://x", "boom"),
        ("boom", "doc", 0),
        (0, 1),
        (),
    ]
    for args in attempts:
        try:
            exc = kind(*args)
            str(exc)  # a message that cannot be shown is no instance to test
        except Exception:
            continue
        return exc
    raise AssertionError(f"cannot make a {kind.__qualname__} to test")


def deliberately_not_mapped(kind: Type[BaseException]) -> bool:
    return any(issubclass(kind, left_out) for left_out in NOT_MAPPED)


CLASSES = exception_classes(requests.exceptions) + [
    kind
    for kind in exception_classes(urllib3.exceptions)
    if kind not in exception_classes(requests.exceptions)
]


@pytest.mark.parametrize("kind", CLASSES, ids=lambda kind: f"{kind.__module__}.{kind.__qualname__}")
def test_every_requests_and_urllib3_exception_is_mapped(kind: Type[BaseException]) -> None:
    translated = translate(instance(kind), Deadline(Timeout()), "http://127.0.0.1:9/v1")
    if deliberately_not_mapped(kind):
        assert translated is None, f"{kind.__qualname__} is mapped and listed in NOT_MAPPED"
    else:
        assert isinstance(translated, errors.LLMClientError), f"{kind.__qualname__} is not mapped"


def test_the_classes_left_out_are_warnings_with_a_reason() -> None:
    assert NOT_MAPPED
    for kind, why in NOT_MAPPED.items():
        assert issubclass(kind, Warning), kind
        assert kind in CLASSES and why.strip()


def test_the_enumeration_covers_what_the_table_claims_to_handle() -> None:
    claimed = {
        requests.exceptions.RequestException,
        requests.exceptions.ConnectTimeout,
        requests.exceptions.ProxyError,
        urllib3.exceptions.HTTPError,
        urllib3.exceptions.ReadTimeoutError,
        urllib3.exceptions.DecodeError,
        urllib3.exceptions.ProtocolError,
    }
    assert claimed <= set(CLASSES)
    assert len(CLASSES) > 40  # requests' own and urllib3's, not an empty parametrisation
