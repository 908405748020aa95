"""``sspi-harness bench``: the harness measured against its performance targets, as ratios
taken in one run (the machines are shared and noisy; absolute times mean little)."""
