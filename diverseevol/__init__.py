"""diverseevol: self-evolving, diversity-based data selection for instruction tuning.

The public API is loaded lazily so that ``import diverseevol`` needs numpy only and costs little.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__

_LAZY: dict[str, str] = {
    "kcenter_select": "diverseevol.kernels.kcenter",
    "vendi_score": "diverseevol.diversity",
    "Sampler": "diverseevol.samplers.base",
    "SelectionContext": "diverseevol.samplers.base",
    "register_sampler": "diverseevol.samplers.registry",
    "get_sampler": "diverseevol.samplers.registry",
    "list_samplers": "diverseevol.samplers.registry",
    "check_k": "diverseevol.samplers",
    "EvolutionLoop": "diverseevol.run.loop",
    "EvolutionResult": "diverseevol.run.result",
    "InstructionRecord": "diverseevol.data",
    "load_instructions": "diverseevol.data",
    "format_prompt": "diverseevol.data",
    "select_subset": "diverseevol.selection",
}

_SUBMODULES = {"samplers", "errors", "testing", "kernels", "data", "diversity", "loop", "run", "judge", "report", "hf",
               "demo", "cli", "selection", "assemble"}

__all__ = [
    "EvolutionLoop",
    "EvolutionResult",
    "InstructionRecord",
    "Sampler",
    "SelectionContext",
    "__version__",
    "check_k",
    "errors",
    "format_prompt",
    "get_sampler",
    "kcenter_select",
    "list_samplers",
    "load_instructions",
    "register_sampler",
    "select_subset",
    "samplers",
    "vendi_score",
]

if TYPE_CHECKING:  # pragma: no cover
    from . import errors, samplers
    from .data import InstructionRecord, format_prompt, load_instructions
    from .diversity import vendi_score
    from .kernels.kcenter import kcenter_select
    from .run.loop import EvolutionLoop
    from .run.result import EvolutionResult
    from .samplers import check_k
    from .samplers.base import Sampler, SelectionContext
    from .samplers.registry import get_sampler, list_samplers, register_sampler


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, _SUBMODULES)
