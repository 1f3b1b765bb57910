"""Traces, metrics and the trace context of log lines; everything here is off by default."""
