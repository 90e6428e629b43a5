"""docs/recording-rules.md holds every rule an ID cites (issue 24, item 6), and an error that
cites a rule names that document."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from mppsim.app.http_server import HttpError
from mppsim.app.org import OrgError, parse_org
from mppsim.rules.citations import RULES_DOC, cite
from mppsim.rules.settings import SettingsError

ROOT = Path(__file__).resolve().parents[1]
RULE = re.compile(r"\bR-[A-Z]{2,4}-\d+\b")


def defined_rules() -> list[str]:
    return re.findall(r"^- (R-[A-Z]{2,4}-\d+) ", (ROOT / RULES_DOC).read_text(), re.M)


def test_each_rule_is_written_once_with_its_id():
    rules = defined_rules()
    assert len(rules) >= 45 and len(rules) == len(set(rules))


def test_every_id_cited_in_code_docs_and_tests_is_a_rule_of_the_document():
    known = set(defined_rules())
    cited: dict[str, str] = {}
    for folder, pattern in (("src/mppsim", "*.py"), ("docs", "*.md"), ("tests", "*.py"), (".", "README.md")):
        for path in (ROOT / folder).rglob(pattern) if folder != "." else [ROOT / pattern]:
            for rule in RULE.findall(path.read_text(errors="replace")):
                cited.setdefault(rule, str(path.relative_to(ROOT)))
    unknown = {r: where for r, where in cited.items() if r not in known and r != "R-XXX-0"}
    assert unknown == {}


def test_a_message_citing_a_rule_names_the_document_once():
    assert cite("choose a provider first (R-VL-2)") == f"choose a provider first (R-VL-2) (rules: {RULES_DOC})"
    assert cite(cite("x (R-VL-2)")) == cite("x (R-VL-2)")
    assert cite("no rule here") == "no rule here"
    assert HttpError(409, "terms not accepted (R-PRV-7)").message.endswith(f"(rules: {RULES_DOC})")
    assert str(SettingsError(["provider: Imagicle (R-PRV-7)"])).endswith(f"(rules: {RULES_DOC})")


def test_an_org_file_error_citing_a_rule_names_the_document():
    with pytest.raises(OrgError) as err:
        parse_org({"organisation": {"name": "X", "recording": {"provider": "Imagicle", "termsAccepted": []}},
                   "locations": [{"id": "a", "name": "A"}],
                   "users": [{"id": "u", "name": "U", "extension": "1001", "location": "a",
                              "devices": [{"type": "webex-app"}]}]})
    text = str(err.value)
    assert RULE.search(text), text
    assert text.rstrip().endswith(f"(rules: {RULES_DOC})")
