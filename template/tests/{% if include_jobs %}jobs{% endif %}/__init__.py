"""Tests of background jobs: enqueueing in-process, workers as real processes."""
