"""Xing et al. 2023's study of generators (fidelity, variety, utility, efficiency) on labelled images."""
