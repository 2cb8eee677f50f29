"""The keyword arguments every client takes (:class:`ClientOptions`), and the
signature a provider that adds its own shows (:func:`merged_signature`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Optional, Sequence, TypedDict, Union

import requests

from .._http.config import ClassDefault, Retry, TimeoutLike
from ..observers import Observer

if TYPE_CHECKING:
    import inspect

__all__ = ["ClientOptions", "merged_signature"]


class ClientOptions(TypedDict, total=False):
    """The keyword arguments every client takes (:class:`Provider`'s), for a
    provider that adds its own without repeating them::

        def __init__(self, *, organization: Optional[str] = None, **options: Unpack[ClientOptions]) -> None:
            super().__init__(**options)

    (``Unpack`` from ``typing_extensions``, imported under ``TYPE_CHECKING``.)
    The subclass's signature, as ``help()`` and ``inspect.signature`` show it,
    lists every argument: its own and these (:meth:`Provider.__init_subclass__`).
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


def merged_signature(cls: type, init: Callable[..., None]) -> inspect.Signature:
    """``init``'s signature with its ``**options`` replaced by the keyword
    arguments of the ``__init__`` it extends (those it does not declare itself)."""
    import inspect  # here, not at the top: it costs a tenth of ``import llmclients``
    own = inspect.signature(init)
    if not any(p.kind is p.VAR_KEYWORD for p in own.parameters.values()):
        return own  # it spells out every argument itself
    mine = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
    names = {p.name for p in mine}
    extended = next(base.__dict__["__init__"] for base in cls.__mro__[1:] if "__init__" in base.__dict__)
    shared = [
        p
        for name, p in inspect.signature(extended).parameters.items()
        if name != "self" and name not in names and p.kind is p.KEYWORD_ONLY
    ]
    if not getattr(cls, "default_base_url", None):
        shared = [p.replace(default=p.empty, annotation="str") if p.name == "base_url" else p for p in shared]
    # self first, then the shared arguments in their order, then the class's own.
    return own.replace(parameters=[mine[0], *shared, *mine[1:]])
