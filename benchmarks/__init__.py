"""Speed and memory benchmarks. Each ``bench_*.py`` prints its numbers and ratios against a
reference measured in the same run; ``python -m benchmarks`` runs them all."""
