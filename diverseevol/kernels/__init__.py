"""Numeric kernels, importable with numpy alone.

- :func:`kcenter_select`: exact greedy K-Center (numpy, faiss, torch backends).
- :func:`kcenter_select_approximate`: cell-limited K-Center for very large Z (approximate).
- :func:`kcenter_select_distributed`: exact K-Center over embeddings sharded across
  ``torch.distributed`` ranks.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "kcenter_select": "diverseevol.kernels.kcenter",
    "kcenter_select_approximate": "diverseevol.kernels.approximate",
    "kcenter_select_distributed": "diverseevol.kernels.distributed",
    "available_backends": "diverseevol.kernels.backends",
}

__all__ = ["available_backends", "kcenter_select", "kcenter_select_approximate", "kcenter_select_distributed"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
