"""Figures measured by the tests (timings, counts), printed at the end of the run.

They are reported, never asserted: this machine is shared and noisy. The benchmark session
measures what needs a baseline. A test's figures travel with its report (`user_properties`),
so those measured in a pytest-xdist worker reach the summary too.
"""

FIGURES: list[str] = []  # the run's, in the process that prints the summary
MEASURED: list[str] = []  # the running test's, until its report carries them


def report(name: str, value: float, unit: str, note: str = "") -> None:
    """Record a figure for the end-of-run summary."""
    MEASURED.append(f"{name}: {value:.2f} {unit}" + (f" ({note})" if note else ""))
