"""Capacity providers: the GPUs really there, to check a plan against.

One module per provider (`declared`, `nvml`, `nodes` with `cluster` for in-cluster
reads, `file` for inventory and Node files), all producing the `inventory` model;
`providers` picks one from `--capacity`, `match` pairs plan GPUs with devices, and
`inspect` is the `gpuadmit inspect` command. Nothing is imported here, so importing
the facts builder stays cheap.
"""
