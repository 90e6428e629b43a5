"""Rule IDs (R-PRV-7 ...) in a message lead somewhere: the rules live in docs/recording-rules.md.

Errors cite the rule that refused a change; a newcomer reading `(R-PRV-7)` needs to know where
the rule is written. Every error type that can carry an ID passes its text through ``cite``.
"""
from __future__ import annotations

import re

RULES_DOC = "docs/recording-rules.md"
RULE_ID = re.compile(r"\bR-[A-Z]{2,4}-\d+\b")


def cite(text: str, separator: str = " ") -> str:
    """``text`` with "(rules: docs/recording-rules.md)" added when it cites a rule ID and does
    not name the document yet."""
    if RULE_ID.search(text) and RULES_DOC not in text:
        return f"{text}{separator}(rules: {RULES_DOC})"
    return text
