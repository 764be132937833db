"""Runs that advance over time, and the demo data; see ``sellerbench.server``."""
