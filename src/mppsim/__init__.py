"""mppsim: a simulator of Cisco MPP desk phones and the Webex App for Webex Calling call recording.

One installed package; its rooms by who uses them (docs/decisions.md, "One package"):
app (orchestrator, Simulator, CLI, HTTP APIs), ui (Qt only), phone (the pjsua2 agent process),
sip (SIP/SDP toolkit, no I/O), rules (recording settings and per-call policy), siprec (what an
SRC and an SRS share), recorder (the SRS), with assets/ and examples/ shipped inside.
"""
import os
from pathlib import Path

__version__ = "0.2.0"

# The installed package's folder: assets/ and examples/ live here, and its parent is what a
# child process (an agent, the recorder) needs on sys.path to run `python -m mppsim....`.
PACKAGE_DIR = Path(__file__).resolve().parent
IMPORT_ROOT = PACKAGE_DIR.parent


def child_env() -> dict[str, str]:
    """This process's environment with IMPORT_ROOT first on PYTHONPATH: what a child started as
    `python -m mppsim....` needs to import this very package (a checkout or an install)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), env.get("PYTHONPATH")]))
    return env
