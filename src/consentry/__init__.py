"""consentry: permission-first customer messaging."""

__version__ = "0.1.0"
