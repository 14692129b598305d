"""Performance benchmarks of latent-transforms; results land in ``benchmarks/results/``."""
