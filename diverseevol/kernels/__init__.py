"""Numeric kernels, importable with numpy alone."""
