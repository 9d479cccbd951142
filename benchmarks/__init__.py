"""Performance benchmarks: the naive reference, our pipeline, and side-by-side comparisons."""
