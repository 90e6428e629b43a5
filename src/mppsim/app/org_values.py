"""Values the org file model and its contact-centre features (app/features.py) both check
against. Their own module so that features.py need not import org.py, which imports it (no
import cycles: tests/test_packaging.py)."""
from __future__ import annotations

import re

LANGUAGES = ("en_us", "en_gb", "pl_pl", "pt_br", "pt_pt", "bg_bg", "de_de", "fr_fr", "es_es")
DEFAULT_LANGUAGE = "en_us"
E164_RE = re.compile(r"\+[1-9][0-9]{7,14}")
