"""evalsuite: a pytest-native quality gate for compressed Mixture-of-Experts language models."""

__version__ = "0.1.0"
