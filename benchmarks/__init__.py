"""Side-by-side benchmarks of the library against its peers (`python -m benchmarks`)."""
