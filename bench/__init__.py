"""zapgate's benchmarks: `make bench` runs them all (bench/run.py); each one also runs alone
as `python -m bench.<name> [--quick]`. Figures go to bench/results/."""
