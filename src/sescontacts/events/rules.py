"""What a bounce or complaint does to the contacts of each list: the rules, stored per list, with safe defaults.

Defaults (no row): a permanent bounce or a complaint unsubscribes the contact from all topics
(``unsubscribe``); transient bounces are only counted. A list's rules may instead ``mark`` (record and show,
change nothing) or ``delete`` the contact, and may act on transient (or undetermined) bounces once
``transient_limit`` of them fall within ``transient_window_days``. The reason and time of an action are the
event row and the address's mark (log.py): nothing else needs keeping.

Rules with ``list_name`` '' are the defaults for every list without rules of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final, cast

from ..db import Database
from ..errors import BadRequest
from .model import BOUNCE, COMPLAINT, DeliveryEvent

UNSUBSCRIBE: Final = "unsubscribe"
MARK: Final = "mark"
DELETE: Final = "delete"
ACTIONS: Final = (UNSUBSCRIBE, MARK, DELETE)
ALL_LISTS: Final = ""


@dataclass(frozen=True)
class Rules:
    on_permanent_bounce: str = UNSUBSCRIBE
    on_complaint: str = UNSUBSCRIBE
    on_transient: str | None = None
    transient_limit: int | None = None
    transient_window_days: float | None = None

    def action_for(self, event: DeliveryEvent) -> str | None:
        """The action ``event`` calls for by itself; a transient bounce's also needs its count (see
        :meth:`transient_acts`)."""
        if event.kind == COMPLAINT:
            return self.on_complaint
        if event.kind == BOUNCE:
            return self.on_permanent_bounce if event.is_permanent_bounce else self.on_transient
        return None

    def transient_acts(self, count: int) -> bool:
        return self.on_transient is not None and self.transient_limit is not None and count >= self.transient_limit

    def describe(self) -> str:
        transient = (
            f"{self.on_transient} after {self.transient_limit} within {self.transient_window_days:g} days"
            if self.on_transient and self.transient_limit and self.transient_window_days
            else "counted only"
        )
        return (
            f"permanent bounce: {self.on_permanent_bounce}; complaint: {self.on_complaint}; "
            f"transient bounces: {transient}"
        )


DEFAULT_RULES: Final = Rules()


def check_rules(rules: Rules) -> Rules:
    for name, action in (
        ("on-permanent-bounce", rules.on_permanent_bounce),
        ("on-complaint", rules.on_complaint),
        ("on-transient", rules.on_transient),
    ):
        if action is not None and action not in ACTIONS:
            raise BadRequest(f"{name}: {action!r} is not one of {', '.join(ACTIONS)}", field=name)
    if rules.on_transient is not None:
        if rules.transient_limit is None or rules.transient_limit < 1:
            raise BadRequest("on-transient needs a transient-limit of 1 or more", field="transient-limit")
        if rules.transient_window_days is None or rules.transient_window_days <= 0:
            raise BadRequest("on-transient needs a transient-window-days above 0", field="transient-window-days")
    return rules


class RuleBook:
    """The stored rules (table ``event_rules``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def own(self, list_name: str) -> Rules | None:
        """The rules stored for ``list_name`` (ALL_LISTS: the defaults), or None."""
        row = (
            self.db.reader()
            .execute(
                "SELECT on_permanent_bounce, on_complaint, on_transient, transient_limit, transient_window_days "
                "FROM event_rules WHERE list_name = ?",
                (list_name,),
            )
            .fetchone()
        )
        return None if row is None else Rules(*row)

    def for_list(self, list_name: str) -> Rules:
        """The rules that apply to ``list_name``: its own, else the stored defaults, else :data:`DEFAULT_RULES`."""
        return self.own(list_name) or self.own(ALL_LISTS) or DEFAULT_RULES

    def all(self) -> dict[str, Rules]:
        rows = self.db.reader().execute(
            "SELECT list_name, on_permanent_bounce, on_complaint, on_transient, transient_limit, "
            "transient_window_days FROM event_rules ORDER BY list_name"
        )
        return {row[0]: Rules(*row[1:]) for row in rows}

    def update(self, list_name: str, **changes: object) -> Rules:
        """Change the given fields of ``list_name``'s rules (starting from the rules that apply to it now), and
        store them. ``on_transient=None`` with ``transient_limit=None`` turns transient actions off."""
        rules = check_rules(replace(self.for_list(list_name), **cast("dict[str, Any]", changes)))
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO event_rules (list_name, on_permanent_bounce, on_complaint, on_transient, "
                "transient_limit, transient_window_days) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    list_name,
                    rules.on_permanent_bounce,
                    rules.on_complaint,
                    rules.on_transient,
                    rules.transient_limit,
                    rules.transient_window_days,
                ),
            )
        return rules
