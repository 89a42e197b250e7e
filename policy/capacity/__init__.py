"""Capacity providers: real GPU inventory (NVML, node labels, inventory files)."""
