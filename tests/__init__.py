"""The template's own tests: render it, check the output, run what it generates."""
