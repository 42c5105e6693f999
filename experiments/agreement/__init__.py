"""Reproduction of Neely et al. (2022), "A Song of (Dis)agreement": explanation agreement study."""
