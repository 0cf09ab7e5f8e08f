"""tailtag: attribute taggers for long-tailed e-commerce catalogs."""

__version__ = "0.1.0"
