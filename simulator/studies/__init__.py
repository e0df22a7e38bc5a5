"""Design evaluations that the studies and their commands share (``benchmarks/`` runs them)."""
