"""The keyword arguments every client takes (:class:`ClientOptions`), and the
signature a provider that adds its own shows (:class:`ClassSignature`)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Mapping, Optional, Sequence, TypedDict, Union

import requests

from .._http.config import ClassDefault, Retry, TimeoutLike
from ..observers import Observer

if TYPE_CHECKING:
    import inspect

__all__ = ["ClassSignature", "ClientOptions", "class_signature", "init_signature"]

#: Each class's signature, built once (a class's arguments do not change).
_signatures: weakref.WeakKeyDictionary[type, inspect.Signature] = weakref.WeakKeyDictionary()


class ClientOptions(TypedDict, total=False):
    """The keyword arguments every client takes (:class:`Provider`'s), for a
    provider that adds its own without repeating them::

        def __init__(self, *, organization: Optional[str] = None, **options: Unpack[ClientOptions]) -> None:
            super().__init__(**options)

    (``Unpack`` from ``typing_extensions``, imported under ``TYPE_CHECKING``.)
    The subclass's signature, as ``help()`` and ``inspect.signature`` show it,
    lists every argument: its own and these (:func:`class_signature`).
    """

    base_url: Optional[str]
    api_key: Optional[str]
    model: Optional[str]
    timeout: Union[TimeoutLike, ClassDefault]
    retry: Optional[Retry]
    proxy: Optional[str]
    headers: Optional[Mapping[str, str]]
    max_retries: int
    session: Optional[requests.Session]
    pool_size: Optional[int]
    verify: Union[bool, str]
    max_reply_size: Optional[int]
    observers: Sequence[Observer]
    prices: Optional[Mapping[str, Sequence[float]]]


class ClassSignature:
    """A provider class's ``__signature__``: :func:`class_signature`, built
    when ``inspect.signature()`` or ``help()`` asks rather than when the class
    is defined, since it needs :mod:`inspect`, which takes longer to import
    than the rest of a first call."""

    def __get__(self, client: object, cls: type) -> inspect.Signature:
        if client is not None:
            raise AttributeError("__signature__")  # a client is not called
        return class_signature(cls)


def class_signature(cls: type) -> inspect.Signature:
    """What calling ``cls`` takes, as ``inspect.signature(cls)`` and ``help()``
    show it: every argument, the shared ones first (see :func:`init_signature`)."""
    cached = _signatures.get(cls)
    if cached is None:
        init = init_signature(cls)
        cached = _signatures[cls] = init.replace(parameters=list(init.parameters.values())[1:])  # no self
    return cached


def init_signature(cls: type) -> inspect.Signature:
    """The signature of the ``__init__`` that ``cls`` runs, its ``**options``
    replaced by the keyword arguments of the ``__init__`` it extends (those it
    does not declare itself), through every class that extends another so;
    ``base_url`` is required where ``cls`` has no ``default_base_url``."""
    import inspect  # here, not at the top: it costs more than a provider class

    mro = cls.__mro__
    at = next(index for index, base in enumerate(mro) if "__init__" in base.__dict__)
    own = inspect.signature(mro[at].__dict__["__init__"])
    if not any(p.kind is p.VAR_KEYWORD for p in own.parameters.values()) or at + 1 == len(mro):
        return own  # it spells out every argument itself
    mine = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
    names = {p.name for p in mine}
    shared = [
        p
        for name, p in init_signature(mro[at + 1]).parameters.items()
        if name != "self" and name not in names and p.kind is p.KEYWORD_ONLY
    ]
    if not getattr(cls, "default_base_url", None):
        shared = [p.replace(default=p.empty, annotation="str") if p.name == "base_url" else p for p in shared]
    # self first, then the shared arguments in their order, then the class's own.
    return own.replace(parameters=[mine[0], *shared, *mine[1:]])
