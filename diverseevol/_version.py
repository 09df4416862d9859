"""The library's version, in a base module so that any layer can read it without importing the package root."""

__version__ = "0.1.0"
