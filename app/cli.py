"""`mppsim`: the app (GUI), or the same simulator headless (scenario runner, demo)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .org import OrgError, load_org
from .orchestrator import REPO_ROOT
from .scenario import RunResult, ScenarioError, run_file

DEMO_ORG = REPO_ROOT / "examples" / "demo-org.yaml"
DEMO_SCENARIO = REPO_ROOT / "examples" / "demo-call.yaml"


def has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def print_calls(result: RunResult) -> None:
    print(f"\n{len(result.calls)} calls:")
    for c in result.calls:
        heard = ", ".join(
            f"{agent} heard {leg['heard']['freq_hz']:.0f} Hz" if leg.get("heard") and leg["heard"].get("freq_hz")
            else f"{agent} heard silence"
            for agent, leg in c["legs"].items())
        talk = f"{c['talk_time']:.1f} s" if c["talk_time"] is not None else "-"
        print(f"  {c['type']:<9} {c['from']['name']} ({c['from']['number']}) -> "
              f"{c['to']['name']} ({c['to']['number']}): "
              f"{'answered' if c['answered'] else 'not answered'}, talk {talk}, "
              f"ended: {c['reason']}; {heard}")


def print_recordings(result: RunResult) -> None:
    if not result.recordings:
        return
    print(f"\n{len(result.recordings)} recordings:")
    for r in result.recordings:
        who = " / ".join(f"{p['name']} ({p['channel']})" for p in r["participants"] or [])
        paused = ", ".join(f"{p['duration']:.1f} s at {p['start']:.1f} s" for p in r["paused_segments"] or []
                           if p.get("duration") is not None)
        print(f"  {r['owner']}: {who}; {r['talk_seconds']:.1f} s recorded, {r['state']}"
              + (f", paused {paused}" if paused else "") + f"; {r['audio_path']}")


def cmd_run(args) -> int:
    try:
        result = run_file(args.file, report=args.report, run_dir=args.run_dir)
    except (ScenarioError, OrgError) as exc:
        print(f"mppsim: {exc}", file=sys.stderr)
        return 2
    print_calls(result)
    print_recordings(result)
    failed = result.failed_step
    if failed is not None:
        print(f"\nFAILED at step {failed.index} ({failed.step}): {failed.error}")
        return 1
    print(f"\nall {len(result.steps)} steps passed in {result.seconds:.1f} s"
          + (f"; report: {args.report}" if args.report else "")
          + f"; logs and captured audio: {result.run_dir}")
    return 0


def cmd_demo(args) -> int:
    print("mppsim: no display, so running the demo headless: "
          f"{DEMO_SCENARIO.relative_to(REPO_ROOT)} with org {DEMO_ORG.relative_to(REPO_ROOT)}\n")
    args.file = str(DEMO_SCENARIO)
    return cmd_run(args)


def cmd_check_org(args) -> int:
    try:
        org = load_org(args.file)
    except OrgError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{args.file}: ok: {len(org.locations)} locations, {len(org.users)} users, "
          f"{len(org.virtual_lines)} virtual lines, {len(org.pstn)} PSTN parties")
    return 0


def cmd_gui(args) -> int:
    from ui.app import run_gui  # Qt is imported only for the GUI
    return run_gui(args.org, front_door_port=args.front_door_port,
                   api_port=None if args.no_api else args.api_port, api_token=args.api_token)


def cmd_api(args) -> int:
    """The simulator headless with the HTTP APIs (Webex /v1 and mppsim's /mppsim/v1), until
    Ctrl-C or SIGTERM."""
    import signal
    import threading

    from .http_server import ApiServer
    from .orchestrator import AgentError
    from .simulator import Simulator
    try:
        org = load_org(args.org)
    except OrgError as exc:
        print(f"mppsim: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    previous = {s: signal.signal(s, lambda *_: done.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    sim = Simulator(org, run_dir=args.run_dir, front_door_port=args.front_door_port)
    server = ApiServer(sim, host=args.host, port=args.port, token=args.token)
    try:
        try:
            server.start()     # bind first: a taken port fails before any agent starts
        except OSError as exc:
            print(f"mppsim: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        try:
            sim.start()
        except AgentError as exc:
            print(f"mppsim: {exc}", file=sys.stderr)
            return 2
        door = f"sip:<extension>@127.0.0.1:{sim.front_door.port}" if sim.front_door else "off"
        print(f"listening on {server.url}/v1", flush=True)
        print(f"token: {server.token}", flush=True)
        print(f"mppsim control API: {server.url}/mppsim/v1 (docs: {server.url}/mppsim/v1/openapi.yaml); "
              f"front door: {door}; logs: {sim.run_dir}", flush=True)
        done.wait()
        print("mppsim: stopping", flush=True)
        return 0
    finally:
        server.stop()
        sim.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)


def cmd_screenshots(args) -> int:
    from ui.screenshots import save_screenshots
    for path in save_screenshots(args.org, args.dir):
        print(f"saved {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mppsim",
        description="Simulated Cisco MPP phones and Webex App for Webex Calling call recording. "
                    "With no command: the GUI, or the demo scenario headless when there is no display.")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("gui", help="open the app window")
    p.add_argument("--org", default=str(DEMO_ORG), help="org file (default: the demo org)")
    p.add_argument("--front-door-port", type=int, default=5060,
                   help="SIP port where external softphones call users by extension (0 = any free port)")
    p.add_argument("--api-port", type=int, default=0, help="port of the HTTP APIs (default: any free port)")
    p.add_argument("--api-token", help="Bearer token the HTTP APIs require (default: random)")
    p.add_argument("--no-api", action="store_true", help="do not start the HTTP APIs")
    p = sub.add_parser("api", help="run the simulator headless with the HTTP APIs (Webex /v1, /mppsim/v1)")
    p.add_argument("--org", default=str(DEMO_ORG), help="org file (default: the demo org)")
    p.add_argument("--port", type=int, default=0, help="HTTP port (default 0: any free port, printed)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--token", help="Bearer token every request needs (default: random, printed)")
    p.add_argument("--front-door-port", type=int, default=0,
                   help="SIP port of the front door (default 0: any free port)")
    p.add_argument("--run-dir", help="keep logs, captured audio and recordings here (default: a temp dir)")
    p = sub.add_parser("run", help="run a scenario file headless")
    p.add_argument("file")
    p.add_argument("--report", help="write a JSON report here")
    p.add_argument("--run-dir", help="keep logs and captured audio here (default: a temp dir)")
    p = sub.add_parser("demo", help="run the demo scenario headless")
    p.add_argument("--report")
    p.add_argument("--run-dir")
    p = sub.add_parser("screenshots", help="save a PNG of every window (headless)")
    p.add_argument("dir")
    p.add_argument("--org", default=str(DEMO_ORG))
    p = sub.add_parser("check-org", help="validate an org file")
    p.add_argument("file")
    parser.add_argument("--screenshots", metavar="DIR", help="save a PNG of every window (headless) and exit")
    args = parser.parse_args(argv)

    if args.command is None and args.screenshots:
        args = parser.parse_args(["screenshots", args.screenshots])
    if args.command is None:
        if has_display():
            args = parser.parse_args(["gui"])
        else:
            args = parser.parse_args(["demo"])
    return {"gui": cmd_gui, "api": cmd_api, "run": cmd_run, "demo": cmd_demo, "check-org": cmd_check_org,
            "screenshots": cmd_screenshots}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
