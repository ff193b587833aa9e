"""meterlake: smart-meter analytics and reporting platform (core package)."""

__version__ = "0.1.0"
