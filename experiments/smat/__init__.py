"""Entry points and reporting for the SMaT paper (Fernandes, Treviso et al., 2022)."""
