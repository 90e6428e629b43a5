"""docs/protocol.md shows every SIPREC message of both dialects as the code sends it (issue 11):
the examples there must equal what src/mppsim/siprec/examples.py makes with the sending code."""
from __future__ import annotations

import re
from pathlib import Path

from mppsim.siprec.examples import STEPS, examples
from mppsim.sip import message as sip_message

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def documented() -> dict[tuple[str, str], str]:
    text = DOC.read_text()
    return {(m.group(1), m.group(2)): m.group(3)
            for m in re.finditer(r"<!-- siprec-example (\S+) (\S+) -->\n```\n(.*?)```\n", text, re.S)}


def test_docs_show_each_message_of_each_dialect_as_the_code_sends_it():
    made = examples()
    docs = documented()
    assert set(made) == {(d, s) for d in ("webex", "rfc7866") for s in STEPS}
    assert set(docs) == set(made), "regenerate with: python -m mppsim.siprec.examples"
    for key, text in made.items():
        assert docs[key] == text.replace("\r", ""), f"{key} differs from the code: regenerate the docs"


def test_examples_are_well_formed_sip():
    for (dialect, step), text in examples().items():
        msg = sip_message.read(text)
        start, headers, body = msg.start_line, msg.by_name(), msg.text
        assert int(headers["content-length"][0]) == len(body.encode()), (dialect, step)
        assert start.split()[0] == {"end": "BYE", "transfer": "UPDATE"}.get(step, "INVITE")
