"""Function vectors (Todd et al. 2024): relation trials, CIE/AIE head sweeps, function vectors, 0-shot injection."""
