"""`make bench`: the platform's benchmarks, with the baselines they are judged against measured in
the same run (docs/PERFORMANCE.md)."""
