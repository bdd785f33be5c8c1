"""otrace: an object-shell debugger for live Python servers."""

__version__ = "0.40.0"
