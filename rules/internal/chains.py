"""Chaining the facts that satisfied a pattern's steps, in time order, within its window, and
finding them on days in a row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def best_chain(
    chain: tuple[int, ...],
    by_step: Mapping[int, set[int]],
    times: Sequence[float],
    window_seconds: float,
    new: int,
) -> tuple[int, ...] | None:
    """Positions p1 < … < pk (facts sorted by time) where p_j satisfies step ``chain[j]``, the
    last within ``window_seconds`` of the first, and one of them is ``new``.

    Of several such chains, the one with the most recent facts (compared from the last
    position back). The search runs from the newest facts back, so the first chain found is
    that one; it stops early as soon as a chain can no longer fit the window or take ``new``.
    """
    if new < 0 or not any(new in by_step.get(step, ()) for step in chain):
        return None
    candidates = {step: sorted(by_step.get(step, ()), reverse=True) for step in set(chain)}
    picked = [0] * len(chain)
    # A function of the module, not a closure: a nested function that calls itself refers to
    # itself, and every call left a cycle for the collector.
    found = _search(len(chain) - 1, len(times), False, (chain, candidates, picked, times, window_seconds, new))
    return tuple(picked) if found else None


def _search(j: int, below: int, has_new: bool, search: tuple) -> bool:
    chain, candidates, picked, times, window_seconds, new = search
    if j < 0:
        return has_new and times[picked[-1]] - times[picked[0]] <= window_seconds
    for position in candidates[chain[j]]:
        if position >= below:
            continue
        if j < len(chain) - 1 and times[picked[-1]] - times[position] > window_seconds:
            break  # older facts are only further away
        if not has_new and position < new:
            break  # from here on every position is older than the new fact
        picked[j] = position
        if _search(j - 1, position, has_new or position == new, search):
            return True
    return False


def days_in_a_row(days_needed: int, positions: set[int], days: Sequence[int], new: int) -> tuple[int, ...] | None:
    """Positions (facts sorted by time) of facts that satisfied the pattern's step, one on each of
    ``days_needed`` days in a row ending on the day of ``new`` (``days``: each position's local
    calendar day as an ordinal), oldest first: ``new`` for its own day, the latest fact of each
    earlier day. None when a day has none, or ``new`` itself does not satisfy the step."""
    if new not in positions:
        return None
    last = days[new]
    latest: dict[int, int] = {}
    for position in positions:
        day = days[position]
        if position < new and last - days_needed < day < last:
            latest[day] = max(latest.get(day, position), position)
    latest[last] = new
    wanted = range(last - days_needed + 1, last + 1)
    if not all(day in latest for day in wanted):
        return None
    return tuple(latest[day] for day in wanted)
