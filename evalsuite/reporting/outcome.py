"""Kept for imports written before the outcome type moved to the gate (it is the gate's product)."""

from evalsuite.gate.outcome import CheckOutcome

__all__ = ["CheckOutcome"]
