"""src/mppsim/siprec/xmltext.py writes the same text as ET.tostring(elem, encoding="unicode"): random
trees with text that needs escaping, and the metadata documents both dialects send."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from mppsim.siprec import metadata as M
from mppsim.siprec.webex import new_recording
from mppsim.siprec.xmltext import to_text
from test_metadata import metadata, sample

_names = st.sampled_from(["a", "dataMode", "start-time", "broadWorksRecordingMetadata", "x_1"])
_texts = st.one_of(st.none(), st.just(""), st.text(alphabet="ab <>&\"'\r\n\t\u00e9\u4e2d", max_size=12))
_attrs = st.dictionaries(st.sampled_from(["id", "xmlns", "session", "version", "a-b"]),
                         st.text(alphabet="ab <>&\"'\r\n\t\u00e9", max_size=8), max_size=3)


@st.composite
def trees(draw, depth: int = 0) -> ET.Element:
    el = ET.Element(draw(_names), draw(_attrs))
    el.text = draw(_texts)
    el.tail = draw(_texts) if depth else None
    if depth < 3:
        for _ in range(draw(st.integers(0, 3))):
            el.append(draw(trees(depth + 1)))
    return el


@hsettings(max_examples=300, deadline=None)
@given(trees())
def test_the_same_text_as_elementtree_for_random_trees(tree):
    assert to_text(tree) == ET.tostring(tree, encoding="unicode")


@hsettings(max_examples=100, deadline=None)
@given(metadata())
def test_the_same_text_as_elementtree_for_metadata_documents(md):
    root = M._build_rfc7866(md) if md.dialect == "rfc7866" else M._build_webex(md)
    assert to_text(root) == ET.tostring(root, encoding="unicode")


@pytest.mark.parametrize("dialect", ["rfc7866", "webex"])
def test_pretty_documents_keep_their_indentation(dialect):
    _ctype, text = M.build(sample(dialect), pretty=True)
    root = M._build_rfc7866(sample(dialect)) if dialect == "rfc7866" else M._build_webex(sample(dialect))
    assert "\n  <" in text and M.parse(text).dialect == dialect
    ET.indent(root, space="  ")
    assert to_text(root) == ET.tostring(root, encoding="unicode")


def test_a_broadworks_document_is_the_same_text_and_reads_back(monkeypatch):
    from mppsim.siprec import webex as siprec_webex
    compared = []

    def both(root):
        compared.append(ET.tostring(root, encoding="unicode"))
        return to_text(root)

    monkeypatch.setattr(siprec_webex, "to_text", both)
    rec = new_recording(user_aor="sip:1001@127.0.0.1", other_aors=["sip:1002@127.0.0.1"], call_id="c1@h",
                        platform=("SP", "G&Co", "u@x"), outgoing=True, calling="sip:1001@h;user=phone",
                        called="sip:1002@h;user=phone", mode="Always", dialed="sip:1002@h")
    text = siprec_webex.build(rec)
    assert text == '<?xml version="1.0" encoding="UTF-8"?>\n' + compared[0] + "\n"
    assert M.parse(text).broadworks["callType"] == "origCall"


def test_a_namespaced_tag_is_refused_with_what_is_allowed():
    with pytest.raises(ValueError, match="tag.*allowed: a plain name"):
        to_text(ET.Element("{urn:x}a"))
