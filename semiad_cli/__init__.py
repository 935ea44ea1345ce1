"""semiad: semi-supervised anomaly detection experiment runner."""

__version__ = "0.1.0"
