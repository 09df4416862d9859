"""The sampler registry: names -> sampler classes, built-ins plus entry-point plugins.

Built-in samplers register themselves with :func:`register_sampler` when their module is
imported. Third-party packages add samplers in two ways:

* call ``@register_sampler("name")`` on their class (the module must be imported first), or
* declare an entry point in the group ``diverseevol.samplers``; it is loaded lazily, the first
  time :func:`list_samplers` runs or :func:`get_sampler` meets a name it does not know::

      [project.entry-points."diverseevol.samplers"]
      my_sampler = "my_package.samplers:MySampler"

A plugin that fails to import issues a :class:`~diverseevol.errors.PluginLoadWarning` naming
the plugin and the error, and the other samplers stay usable.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import logging
import re
import threading
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar, overload

from ..errors import (
    PluginLoadWarning,
    SamplerRegistrationError,
    UnknownSamplerError,
    ValidationError,
)
from .base import Requirements, Sampler, _warn_old_requires

__all__ = [
    "ENTRY_POINT_GROUP",
    "get_sampler",
    "get_sampler_class",
    "list_samplers",
    "register_sampler",
    "reload_plugins",
    "unregister_sampler",
]

logger = logging.getLogger(__name__)

#: The entry-point group scanned for third-party samplers.
ENTRY_POINT_GROUP = "diverseevol.samplers"

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_BUILTIN_MODULES = (
    "diverseevol.samplers.random",
    "diverseevol.samplers.kcenter",
    "diverseevol.samplers.uncertainty",
    "diverseevol.samplers.kmeans",
    "diverseevol.samplers.facility_location",
    "diverseevol.samplers.novelsum_greedy",
    "diverseevol.samplers.balanced_random",
    "diverseevol.samplers.kmeans_random",
    "diverseevol.samplers.kmq",
    "diverseevol.samplers.longest",
    "diverseevol.samplers.length_matched",
    "diverseevol.samplers.length_debiased",
)

_registry: dict[str, type] = {}
_plugin_names: set[str] = set()
_plugins_loaded = False
_builtins_loaded = False
_lock = threading.RLock()

S = TypeVar("S", bound=type)


# --------------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------------
def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise SamplerRegistrationError(
            f"A sampler name must be a string; got {name!r} of type {type(name).__name__}. "
            f'Use e.g. @register_sampler("my_sampler").'
        )
    if not _NAME_RE.match(name):
        hint = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
        if hint and not hint[0].isalpha():
            hint = f"s_{hint}"
        suggestion = f" such as {hint!r}" if hint else ""
        raise SamplerRegistrationError(
            f"A sampler name must be a non-empty lowercase identifier (letters a-z, digits and "
            f"underscores, starting with a letter); got {name!r}. Use a name{suggestion}."
        )
    return name


def _check_requirements(cls: type) -> Requirements | frozenset[str]:
    """Return the class's ``requires`` as it should be stored: a Requirements unchanged, the old
    string form normalised to a frozenset (with its once-per-class DeprecationWarning)."""
    requires = getattr(cls, "requires", None)
    if requires is None:
        raise SamplerRegistrationError(
            f"{cls.__qualname__} has no `requires` class attribute; declare the signals it needs, "
            f"e.g. requires = Requirements(embeddings=True), or Requirements() for none "
            f"(from diverseevol.samplers import Requirements)."
        )
    try:
        parsed = Requirements.parse(requires)
    except ValidationError as exc:
        raise SamplerRegistrationError(f"{cls.__qualname__}: {exc}") from None
    if isinstance(requires, Requirements):
        return requires
    _warn_old_requires(cls, requires, parsed, stacklevel=3)
    return parsed.to_strings()


def _check_sampler_class(obj: Any) -> type:
    if not inspect.isclass(obj):
        kind = "an instance" if callable(getattr(obj, "select", None)) else f"a {type(obj).__name__}"
        raise SamplerRegistrationError(
            f"register_sampler expects a sampler class; got {kind} ({obj!r}). Decorate the class "
            f"itself; parameters are passed later through get_sampler(name, **params)."
        )
    if not callable(getattr(obj, "select", None)):
        raise SamplerRegistrationError(
            f"{obj.__qualname__} is not a sampler: it has no select(self, ctx, k) method. "
            f"See diverseevol.samplers.Sampler for the protocol."
        )
    return obj


@overload
def register_sampler(name: str, sampler: None = None, *, overwrite: bool = False) -> Callable[[S], S]: ...
@overload
def register_sampler(name: str, sampler: S, *, overwrite: bool = False) -> S: ...


def register_sampler(name: str, sampler: Any = None, *, overwrite: bool = False) -> Any:
    """Register a sampler class under ``name`` (as a decorator, or called with the class).

    Parameters
    ----------
    name : str
        Registry name: a lowercase identifier (``[a-z][a-z0-9_]*``). It is set as the class's
        ``name`` attribute.
    sampler : type, optional
        The sampler class. When omitted, a decorator is returned.
    overwrite : bool, default False
        Replace a sampler already registered under ``name``. Without it, a name clash raises.

    Returns
    -------
    type or callable
        The class itself (unchanged apart from ``name``), or a decorator returning it.

    Raises
    ------
    SamplerRegistrationError
        If the name is malformed or taken, or the object is not a sampler class (a class with a
        ``select(ctx, k)`` method and a ``requires`` :class:`~diverseevol.samplers.Requirements`;
        the deprecated string form, a frozenset of ``"embeddings"`` / ``"scores:<signal>"``, is
        accepted with a DeprecationWarning and stored as a frozenset).

    Examples
    --------
    >>> import numpy as np
    >>> from diverseevol import register_sampler
    >>> from diverseevol.samplers import Requirements
    >>> @register_sampler("every_other", overwrite=True)
    ... class EveryOther:
    ...     requires = Requirements()
    ...     def select(self, ctx, k):
    ...         return np.sort(ctx.candidate_idx)[:k]
    >>> EveryOther.name
    'every_other'
    """
    name = _check_name(name)

    def decorate(cls: S) -> S:
        cls = _check_sampler_class(cls)
        requires = _check_requirements(cls)
        with _lock:
            existing = _registry.get(name)
            if existing is not None and existing is not cls and not overwrite:
                same_origin = "<locals>" not in cls.__qualname__ and (
                    (existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__)
                )
                if not same_origin:
                    raise SamplerRegistrationError(
                        f"A sampler named {name!r} is already registered "
                        f"({existing.__module__}.{existing.__qualname__}); refusing to replace it "
                        f"with {cls.__module__}.{cls.__qualname__}. Choose another name, or pass "
                        f"overwrite=True to replace it on purpose."
                    )
                logger.debug("re-registering %r after its module was reloaded", name)
            cls.name = name
            cls.requires = requires
            _registry[name] = cls
            _plugin_names.discard(name)
        return cls

    if sampler is not None:
        return decorate(sampler)
    return decorate


def unregister_sampler(name: str) -> type:
    """Remove ``name`` from the registry and return its class (mainly for tests and notebooks).

    Raises
    ------
    UnknownSamplerError
        If nothing is registered under ``name``.
    """
    with _lock:
        try:
            cls = _registry.pop(name)
        except KeyError:
            raise _unknown(name) from None
        _plugin_names.discard(name)
        return cls


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def _ensure_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _lock:
        if _builtins_loaded:
            return
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _builtins_loaded = True


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    # Two distributions claiming one name: the alphabetically first distribution wins, so the
    # outcome does not depend on directory listing order.
    for ep in sorted(eps, key=lambda e: (_dist_name(e), e.name, e.value)):
        first = seen.get(ep.name)
        if first is None:
            seen[ep.name] = ep
        elif first.value != ep.value:  # the same value twice is one distribution seen twice
            warnings.warn(
                f"Skipping {_plugin_label(ep)}: {_plugin_label(first)} already claims the name "
                f"{ep.name!r}. Uninstall one of the two packages.",
                PluginLoadWarning,
                stacklevel=4,
            )
    return [seen[name] for name in sorted(seen)]


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(getattr(dist, "name", "") or "") if dist is not None else ""


def _plugin_label(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    source = f" from distribution {dist.name!r}" if dist is not None and getattr(dist, "name", None) else ""
    return f"sampler plugin {ep.name!r} ({ep.value}){source}"


def _load_one(ep: importlib.metadata.EntryPoint) -> None:
    label = _plugin_label(ep)
    try:
        obj = ep.load()
    except Exception as exc:  # noqa: BLE001 - any failure of third-party code must not break us
        warnings.warn(
            f"Skipping {label}: importing it failed with {type(exc).__name__}: {exc}. "
            f"Fix or uninstall the plugin package; the other samplers are unaffected.",
            PluginLoadWarning,
            stacklevel=4,
        )
        return
    with _lock:
        if isinstance(obj, ModuleType):
            # Importing the module ran its @register_sampler decorators.
            if ep.name not in _registry:
                warnings.warn(
                    f"Skipping {label}: it points to module {obj.__name__!r}, which registered no "
                    f"sampler named {ep.name!r}. Point the entry point at the class, "
                    f'e.g. {ep.name} = "{obj.__name__}:MySampler".',
                    PluginLoadWarning,
                    stacklevel=4,
                )
            return
        existing = _registry.get(ep.name)
        if existing is obj:
            _plugin_names.add(ep.name)
            return
        if existing is not None:
            warnings.warn(
                f"Skipping {label}: the name {ep.name!r} is already taken by "
                f"{existing.__module__}.{existing.__qualname__}. Rename the entry point.",
                PluginLoadWarning,
                stacklevel=4,
            )
            return
        registered_as = [n for n, c in _registry.items() if c is obj]
        if registered_as:
            warnings.warn(
                f"Skipping {label}: the class is registered as {registered_as[0]!r} by its "
                f"@register_sampler decorator; rename the entry point to {registered_as[0]!r}.",
                PluginLoadWarning,
                stacklevel=4,
            )
            return
        try:
            register_sampler(ep.name, obj)
        except SamplerRegistrationError as exc:
            warnings.warn(f"Skipping {label}: {exc}", PluginLoadWarning, stacklevel=4)
            return
        _plugin_names.add(ep.name)
    logger.debug("loaded %s", label)


def _ensure_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    with _lock:
        if _plugins_loaded:
            return
        _plugins_loaded = True  # set first: a plugin that calls list_samplers() must not recurse
        try:
            eps = list(_entry_points())
        except Exception as exc:  # noqa: BLE001 - a corrupt site-packages must not break us
            warnings.warn(
                f"Could not read the {ENTRY_POINT_GROUP!r} entry points ({type(exc).__name__}: {exc}); "
                f"only built-in and decorator-registered samplers are available.",
                PluginLoadWarning,
                stacklevel=3,
            )
            return
        for ep in eps:
            if ep.name in _registry and ep.name not in _plugin_names:
                existing = _registry[ep.name]
                # Already registered by the plugin's own decorator (module imported before).
                if f"{existing.__module__}:{existing.__qualname__}" == ep.value:
                    _plugin_names.add(ep.name)
                    continue
            _load_one(ep)


def reload_plugins() -> list[str]:
    """Forget the samplers loaded from entry points and scan the entry points again.

    Useful after installing a plugin into a running interpreter, and in tests.

    Returns
    -------
    list of str
        The sorted names of every registered sampler after the reload.
    """
    _forget_plugins()
    return list_samplers()


def _forget_plugins() -> None:
    """Drop entry-point samplers and mark the entry points as not yet scanned."""
    global _plugins_loaded
    with _lock:
        for name in list(_plugin_names):
            _registry.pop(name, None)
        _plugin_names.clear()
        _plugins_loaded = False


# --------------------------------------------------------------------------------------------
# lookup
# --------------------------------------------------------------------------------------------
def _unknown(name: Any) -> UnknownSamplerError:
    available = sorted(_registry)
    msg = f"No sampler is registered under {name!r}. Available samplers: {', '.join(available) or '(none)'}."
    if isinstance(name, str):
        close = difflib.get_close_matches(name.lower(), available, n=1, cutoff=0.6)
        if close:
            msg += f" Did you mean {close[0]!r}?"
    msg += (
        f" Third-party samplers become available once their package is installed (entry-point "
        f"group {ENTRY_POINT_GROUP!r}) or their module is imported."
    )
    return UnknownSamplerError(msg)


def list_samplers() -> list[str]:
    """Return the sorted names of every available sampler: built-ins, then plugins, merged.

    The first call loads the ``diverseevol.samplers`` entry points; a plugin that fails to
    load is skipped with a :class:`~diverseevol.errors.PluginLoadWarning`.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from diverseevol import list_samplers
    >>> {"entropy", "kcenter", "least_confidence", "margin", "random"} <= set(list_samplers())
    True
    """
    _ensure_builtins()
    _ensure_plugins()
    with _lock:
        return sorted(_registry)


def get_sampler_class(name: str) -> type:
    """Return the class registered under ``name`` without instantiating it.

    Raises
    ------
    UnknownSamplerError
        If no sampler has that name; the message lists the available ones and a close match.
    """
    _ensure_builtins()
    with _lock:
        cls = _registry.get(name) if isinstance(name, str) else None
    if cls is None:
        _ensure_plugins()
        with _lock:
            cls = _registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _unknown(name)
    return cls


def get_sampler(name: str | Sampler, **params: Any) -> Sampler:
    """Build the sampler registered under ``name`` with hyperparameters ``params``.

    Parameters
    ----------
    name : str or Sampler
        A registry name (see :func:`list_samplers`). A sampler instance is returned unchanged,
        so code can accept either.
    **params
        Keyword arguments of the sampler's constructor, e.g. ``metric="cosine"`` for
        ``"kcenter"``.

    Returns
    -------
    Sampler

    Raises
    ------
    UnknownSamplerError
        If no sampler has that name; the message lists the available ones and a close match.
    ValidationError
        If ``params`` are not accepted by the sampler's constructor, or are given together with
        an instance.

    Examples
    --------
    >>> from diverseevol import get_sampler
    >>> get_sampler("kcenter", metric="cosine")
    KCenterSampler(metric='cosine', backend='auto', prune='auto', block_rows=None, backend_options=None)
    """
    if not isinstance(name, str):
        if inspect.isclass(name) or not callable(getattr(name, "select", None)):
            raise ValidationError(
                f"get_sampler expects a registered name (one of {list_samplers()}) or a sampler "
                f"instance; got {name!r}. Instantiate a class yourself, or register it with "
                f"@register_sampler and pass its name."
            )
        if params:
            raise ValidationError(
                f"Parameters {sorted(params)} were given together with an already built sampler "
                f"{name!r}; pass a name to build a new one, or drop the parameters."
            )
        return name  # type: ignore[return-value]
    cls = get_sampler_class(name)
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        signature = None
    if signature is not None:
        try:
            signature.bind(**params)
        except TypeError as exc:
            accepted = [
                p.name
                for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            unknown = [key for key in params if key not in accepted]
            close = difflib.get_close_matches(unknown[0], accepted, n=1, cutoff=0.6) if unknown else []
            hint = f" Did you mean {close[0]!r} (not {unknown[0]!r})?" if close else ""
            raise ValidationError(
                f"Sampler {name!r} ({cls.__qualname__}) does not accept the parameters "
                f"{sorted(params)}: {exc}.{hint} Its parameters are: {', '.join(accepted) or '(none)'}."
            ) from exc
    return cls(**params)
