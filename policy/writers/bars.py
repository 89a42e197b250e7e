"""The memory bar every human-facing format shows for a GPU."""

from __future__ import annotations

from ..facts import GpuSummary

FULL, GREEDY, CONTEXT, FREE = "█", "▓", "▒", "░"


def memory_bar(gpu: GpuSummary, width: int = 40) -> str:
    """`[█████▓▓▒░░░░]`: declared, greedy reservations, CUDA contexts, free; overflow shown as `!`."""
    capacity = gpu.capacity_gb or 0.0
    if capacity <= 0:
        return "[" + "?" * width + "]"
    scale = width / capacity

    def cells(gb: float) -> int:
        return int(round(gb * scale))

    declared, greedy, context = cells(gpu.declared_gb), cells(gpu.greedy_gb), cells(gpu.context_gb)
    used = declared + greedy + context
    if used > width:
        return "[" + FULL * width + "]" + "!" * min(used - width, 10)
    return "[" + FULL * declared + GREEDY * greedy + CONTEXT * context + FREE * (width - used) + "]"


def memory_line(gpu: GpuSummary) -> str:
    """`53.0 / 80.0 GiB committed (66 %)` with the parts that make it up."""
    capacity = gpu.capacity_gb
    if capacity is None:
        return f"{gpu.committed_gb:.1f} GiB committed, capacity unknown"
    pct = 100.0 * gpu.committed_gb / capacity if capacity else 0.0
    return f"{gpu.committed_gb:.1f} / {capacity:.1f} GiB committed ({pct:.0f} %)"


def parts_line(gpu: GpuSummary) -> str:
    """`51.0 GiB declared + 2.0 GiB CUDA contexts; by model: chat-llm 42.0, ...` (per model:
    its instances' memory with greedy reservations, without contexts)."""
    line = f"{gpu.declared_gb:.1f} GiB declared"
    if gpu.greedy_gb:
        line += f" + {gpu.greedy_gb:.1f} GiB greedy reservations"
    line += f" + {gpu.context_gb:.1f} GiB CUDA contexts"
    models = ", ".join(f"{name} {gb:.1f}" for name, gb in gpu.models) or "no models"
    return f"{line}; by model: {models}"
