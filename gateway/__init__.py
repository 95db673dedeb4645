"""RecogHub: a live gateway for image-recognition challenges."""

__version__ = "0.1.0"
