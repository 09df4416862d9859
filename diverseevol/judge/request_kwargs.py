"""The pairwise judge's ``request_kwargs``, checked when the judge is configured, not at its first request.

``PairwiseJudge(request_kwargs=...)`` passes them to every ``client.chat.completions.create`` call
and hashes them into each judgment's cache key, so a misspelt argument, one the judge sets itself,
or a value that is not JSON would otherwise fail only after round 0 has trained.
:func:`check_request_kwargs` runs in ``PairwiseJudge.__init__`` and when a configuration file is
read (``judge.params.request_kwargs``). Imports the standard library and :mod:`diverseevol.errors`
(``openai`` only when installed, to read the arguments of ``create``).
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import json
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError

__all__ = ["check_request_kwargs"]

#: Arguments of ``create`` that the judge sets itself (its model, its prompt) or cannot handle (a stream).
_RESERVED = {
    "model": "the judge model is PairwiseJudge(model=...) (judge.params.model)",
    "messages": "the judge builds the messages from its template",
    "stream": "the judge reads whole replies; a streamed reply cannot be parsed",
}


def _create_arguments() -> list[str] | None:
    """The keyword arguments of ``openai``'s ``chat.completions.create``, or None without openai."""
    try:
        if importlib.util.find_spec("openai") is None:
            return None
        from openai.resources.chat.completions import Completions
    except Exception:  # an old or broken openai: the request itself will say
        return None
    return [p for p in inspect.signature(Completions.create).parameters if p != "self"]


def check_request_kwargs(value: Any, *, where: str = "request_kwargs", known_client: bool = True) -> dict[str, Any]:
    """``value`` as a dict of extra ``chat.completions.create`` arguments, or a ValidationError.

    Parameters
    ----------
    value : mapping or None
        The extra arguments (None: none).
    where : str
        How messages name the setting (``"judge.params.request_kwargs"``).
    known_client : bool, default True
        The requests go through ``openai``'s client: argument names are checked against its
        ``create`` when openai is installed. False for a custom ``client``.

    Returns
    -------
    dict

    Raises
    ------
    ValidationError
        When ``value`` is not a mapping of string keys; a key is ``model``, ``messages`` or
        ``stream``; a key is not an argument of ``create`` (with a close match); a value is not
        JSON (numbers, strings, booleans, null, lists, mappings); or ``extra_headers`` is not a
        mapping of strings to strings.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{where} must be a mapping of extra chat.completions.create arguments, e.g. {{'seed': 0}}; got "
            f"a {type(value).__name__}."
        )
    out = dict(value)
    accepted = _create_arguments() if known_client else None
    for key, item in out.items():
        if not isinstance(key, str):
            raise ValidationError(f"{where} has the key {key!r}; argument names are strings.")
        if key in _RESERVED:
            raise ValidationError(f"{where}.{key}: not accepted here: {_RESERVED[key]}. Remove it.")
        if accepted is not None and key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else " Arbitrary fields go in extra_body: {...}."
            raise ValidationError(
                f"{where}.{key}: not an argument of the OpenAI client's chat.completions.create.{hint}"
            )
        try:
            json.dumps(item, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"{where}.{key} = {type(item).__name__} cannot be sent or cached ({exc}); use JSON values "
                f"(numbers, strings, booleans, null, lists, mappings)."
            ) from None
    headers = out.get("extra_headers")
    if headers is not None and not (
        isinstance(headers, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        got = (
            {str(k): type(v).__name__ for k, v in headers.items()} if isinstance(headers, Mapping) else type(headers).__name__
        )  # types only: a header's value may be a credential
        raise ValidationError(
            f"{where}.extra_headers must map header names to string values, e.g. {{'X-Team': 'nlp'}}; got {got}."
        )
    return out
