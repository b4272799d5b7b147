"""Counting what each filter and reader dropped, and why. The counts go into the manifest."""

from __future__ import annotations

from collections import Counter


class DropCounts:
    """A counter of dropped items by reason, e.g. `"object: smaller than min_object_size"`.

    Reasons name the item kind first (`image:`, `object:`, `attribute:`, `relationship:`) so a
    summary can group them.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def add(self, reason: str, n: int = 1) -> None:
        if n:
            self._counts[reason] += n

    def update(self, other: DropCounts | dict[str, int]) -> None:
        items = other.as_dict() if isinstance(other, DropCounts) else other
        for reason, n in items.items():
            self.add(reason, n)

    def __getitem__(self, reason: str) -> int:
        return self._counts[reason]

    def total(self, prefix: str = "") -> int:
        return sum(n for r, n in self._counts.items() if r.startswith(prefix))

    def as_dict(self) -> dict[str, int]:
        """Sorted by reason, so the manifest is byte-identical across runs."""
        return dict(sorted(self._counts.items()))
