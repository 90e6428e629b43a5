"""Who a hunt group or call queue rings, and in what order; what an auto attendant key does.

Pure Python (no pjsua2): phone/contact_centre.py asks it, tests check it directly. The five
routing policies, as Control Hub describes them (Calling > Features > Hunt group > Call
routing):

    regular       top-down: always from the first member, in list order
    circular      from the member after the one who was offered the previous call, wrapping
    simultaneous  every member at once; the first to answer takes the call
    uniform       the member idle longest first (the one who took a call least recently)
    weighted      one member drawn by the weights (percent of calls); then the others by weight

A plan is a list of waves: each wave is the extensions rung together for `advance_after`
seconds (one each, except simultaneous), then the next wave. Members busy on a call refuse
(486) and the plan moves on at once.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class RoutingState:
    """What a feature remembers between calls: for circular and uniform."""
    last_offered: str | None = None                               # circular
    last_answered: dict[str, float] = field(default_factory=dict)  # uniform: extension -> time
    rng: random.Random = field(default_factory=lambda: random.Random(25))   # weighted: repeatable

    def answered(self, extension: str, now: float) -> None:
        self.last_answered[extension] = now


def plan(policy: str, members: list[dict], state: RoutingState) -> list[list[str]]:
    """The waves of extensions to ring for one call (module docstring)."""
    exts = [m["extension"] for m in members]
    if not exts:
        return []
    if policy == "simultaneous":
        return [exts]
    if policy == "circular":
        start = (exts.index(state.last_offered) + 1) % len(exts) if state.last_offered in exts else 0
        order = exts[start:] + exts[:start]
    elif policy == "uniform":
        # never answered = idle longest; ties keep the list order
        order = sorted(exts, key=lambda e: (state.last_answered.get(e, float("-inf")), exts.index(e)))
    elif policy == "weighted":
        weights = [max(0, int(m.get("weight", 0))) for m in members]
        first = state.rng.choices(exts, weights=weights)[0] if sum(weights) else exts[0]
        rest = sorted((e for e in exts if e != first), key=lambda e: -weights[exts.index(e)])
        order = [first, *rest]
    else:   # regular
        order = exts
    return [[e] for e in order]


def offered(policy: str, wave: list[str], state: RoutingState) -> None:
    """A wave starts ringing: circular goes on from its member next time."""
    if policy == "circular" and wave:
        state.last_offered = wave[-1]


@dataclass(frozen=True)
class MenuStep:
    """What one key press makes the auto attendant do."""
    do: str                      # transfer | repeat | exit | invalid | collect | none
    target: str | None = None    # transfer: the extension or number
    prompts: tuple[str, ...] = ()


class MenuSession:
    """One caller in an auto attendant's menu: digits in, steps out."""

    def __init__(self, menu: dict[str, dict]):
        self.menu = menu
        self.collecting: str | None = None      # digits of an extension dial, until '#'

    def keys(self) -> list[str]:
        return list(self.menu)

    def digit(self, d: str) -> MenuStep:
        if self.collecting is not None:
            if d == "#":
                ext, self.collecting = self.collecting, None
                return MenuStep("transfer", ext, ("transferring",)) if ext else MenuStep("invalid", None, ("aa_invalid",))
            self.collecting += d
            return MenuStep("none")
        item = self.menu.get(d)
        if item is None:
            return MenuStep("invalid", None, ("aa_invalid",))
        action = item["action"]
        if action in ("transfer", "operator"):
            return MenuStep("transfer", item["target"], ("transferring",))
        if action == "extension_dial":
            self.collecting = ""
            return MenuStep("collect", None, ("aa_extension",))
        if action == "exit":
            return MenuStep("exit", None, ("goodbye",))
        return MenuStep("repeat")
