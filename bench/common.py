"""Shared by the benchmark scripts (run as `python bench/<script>.py`, so this folder is on sys.path)."""


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]
