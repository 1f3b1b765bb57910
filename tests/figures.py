"""Figures measured by the tests (timings, counts), printed at the end of the run.

They are reported, never asserted: this machine is shared and noisy. The benchmark session
measures what needs a baseline.
"""

FIGURES: list[str] = []


def report(name: str, value: float, unit: str, note: str = "") -> None:
    """Record a figure for the end-of-run summary."""
    FIGURES.append(f"{name}: {value:.2f} {unit}" + (f" ({note})" if note else ""))
