"""`mppsim`: the app (GUI), or the same simulator headless (scenario runner, demo)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mppsim.app.org import OrgError, load_org
from mppsim import PACKAGE_DIR, __version__
from mppsim.app.scenario import RunResult, ScenarioError, load_scenario, run_file
from mppsim.app.simulator import SimulatorError

DEMO_ORG = PACKAGE_DIR / "examples" / "demo-org.yaml"
DEMO_SCENARIO = PACKAGE_DIR / "examples" / "demo-call.yaml"


def has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return False
    return gui_problem() is None


# Qt's xcb platform plugin loads these; Debian's package for each (../shared/DESIGN.md)
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1",
}


def x_display_reachable(display: str, timeout: float = 1.0) -> bool:
    """Whether an X server answers at `display` (":0", "localhost:10.0"): Qt aborts (exit 134,
    blaming libxcb-cursor0) when it cannot connect, so look first."""
    import socket
    host, _, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        for address in ("\0" + path, path):     # the abstract socket first, as libxcb does
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                try:
                    s.connect(address)
                    return True
                except OSError:
                    continue
        return False
    try:
        socket.create_connection((host, 6000 + int(number)), timeout).close()
        return True
    except OSError:
        return False


def gui_problem() -> str | None:
    """Why the GUI cannot open here (no display, an X server that does not answer, Qt's xcb
    libraries missing), or None. A QT_QPA_PLATFORM the user chose is taken as is."""
    if sys.platform in ("darwin", "win32") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY"):
        return None
    display = os.environ.get("DISPLAY")
    if not display:
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    if not x_display_reachable(display):
        return f"no X server answers at DISPLAY={display}"
    import ctypes
    missing = []
    for library, package in XCB_LIBRARIES.items():
        try:
            ctypes.CDLL(library)
        except OSError:
            missing.append(package)
    if missing:
        return (f"Qt's xcb plugin needs libraries that are missing: install them with "
                f"`sudo apt-get install {' '.join(missing)}` (or run scripts/setup)")
    return None


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
    if result.recording_failures:
        print(f"\n{len(result.recording_failures)} recording(s) could not be made:")
        for f in result.recording_failures:
            print(f"  {f['who']}: recorder {f['target']}: {f['reason']}")
    if not result.recordings:
        return
    print(f"\n{len(result.recordings)} recordings:")
    for r in result.recordings:
        who = " / ".join(f"{p['name']} ({p['channel']})" for p in r["participants"] or [])
        paused = ", ".join(f"{p['duration']:.1f} s at {p['start']:.1f} s" for p in r["paused_segments"] or []
                           if p.get("duration") is not None)
        packets = ", ".join(f"{s['channel']} {s['received']}" for s in r.get("streams") or [])
        print(f"  {r['owner']}: {who}; {r['talk_seconds']:.1f} s recorded, {r['state']}"
              + (f", paused {paused}" if paused else "")
              + (f"; RTP packets {packets}" if packets else "") + f"; {r['audio_path']}")
        if r.get("suspect"):
            print(f"    !! {'NO AUDIO' if r in result.without_audio else 'SUSPECT'}: {r['suspect_reason']}")


def print_siprec(result: RunResult) -> None:
    """With an external SRS the recordings are not in our store: the agents' own counters say
    what each recording session was sent (issue 21)."""
    external = [s for s in result.siprec if s.get("target") and not result.recordings]
    if not external:
        return
    print(f"\n{len(external)} recording sessions sent to an external SRS:")
    for s in external:
        sent = " / ".join(str(n) for n in s.get("sent") or []) or "no count"
        print(f"  {s['agent']} recording {s['recording']} of {s['call']} -> {s['target']}: {s['state']}"
              + (f" ({s['reason']})" if s.get("reason") else "") + f"; RTP packets sent {sent}")


def sigterm_as_interrupt() -> None:
    """SIGTERM (a CI job cancelled, `kill`, systemd) ends `run` and `load` as Ctrl-C does: the
    calls are ended and the report is still written."""
    import signal
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))


def run_folder_note(result: RunResult) -> str:
    if result.run_dir_removed:
        return f"run folder {result.run_dir} removed (passed; --keep keeps it)"
    return f"logs and captured audio: {result.run_dir}"


def cmd_run(args) -> int:
    sigterm_as_interrupt()
    try:
        result = run_file(args.file, report=args.report, run_dir=args.run_dir, speed=getattr(args, "speed", 1.0),
                          keep=getattr(args, "keep", False),
                          address=getattr(args, "address", None))
    except (ScenarioError, OrgError, SimulatorError) as exc:
        print(f"mppsim: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:     # the report's folder cannot be made or written
        print(f"mppsim: cannot write {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print_calls(result)
    print_recordings(result)
    print_siprec(result)
    report = f"; report: {Path(args.report).expanduser().resolve()}" if args.report else ""
    if result.interrupted:
        done = sum(s.status == "passed" for s in result.steps)
        print(f"\nINTERRUPTED after {done} of {len(result.steps)} steps{report}; {run_folder_note(result)}")
        return 130
    failed = result.failed_step
    if failed is not None:
        print(f"\nFAILED at step {failed.index} ({failed.step}): {failed.error}")
        print(f"{report[2:] + '; ' if report else ''}{run_folder_note(result)}")
        return 1
    silent = result.without_audio
    if silent:
        print(f"\nWARNING: {len(silent)} of {len(result.recordings)} recordings got no audio (see !! above)")
    print(f"\nall {len(result.steps)} steps passed in {result.seconds:.1f} s{report}; {run_folder_note(result)}")
    return 0


def cmd_demo(args) -> int:
    print("mppsim: no display, so running the demo headless: "
          f"{DEMO_SCENARIO.relative_to(PACKAGE_DIR)} with org {DEMO_ORG.relative_to(PACKAGE_DIR)}\n")
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


def gui_org(args) -> str:
    """The org the window runs: --org, else the scenario's own org, else the demo org."""
    if args.org is None and args.scenario:
        try:
            return str(load_scenario(args.scenario).org)
        except ScenarioError:
            pass            # the window shows why the scenario cannot be loaded
    return args.org or str(DEMO_ORG)


def cmd_gui(args) -> int:
    problem = gui_problem()
    if problem is not None:
        print(f"mppsim gui: {problem}.\n"
              "  Headless instead: `mppsim run FILE` runs a scenario, `mppsim api` serves the HTTP APIs, "
              "`mppsim demo` runs the demo.\n"
              "  On a virtual display: `xvfb-run -a mppsim gui` (Debian: sudo apt-get install xvfb); "
              "or QT_QPA_PLATFORM=offscreen to draw nowhere.", file=sys.stderr)
        return 2
    from mppsim.ui.app import run_gui  # Qt is imported only for the GUI
    return run_gui(gui_org(args), front_door_port=args.front_door_port, scenario=args.scenario,
                   api_port=None if args.no_api else args.api_port, api_token=args.api_token,
                   address=args.address)


def cmd_api(args) -> int:
    """The simulator headless with the HTTP APIs (Webex /v1 and mppsim's /mppsim/v1), until
    Ctrl-C or SIGTERM."""
    import signal
    import threading

    from mppsim.app.http_server import ApiServer
    from mppsim.app.orchestrator import AgentError
    from mppsim.app.simulator import Simulator
    try:
        org = load_org(args.org)
    except OrgError as exc:
        print(f"mppsim: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    previous = {s: signal.signal(s, lambda *_: done.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        sim = Simulator(org, run_dir=args.run_dir, front_door_port=args.front_door_port, address=args.address)
    except SimulatorError as exc:
        print(f"mppsim: {exc}", file=sys.stderr)
        return 2
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
        door = f"sip:<extension>@{sim.address}:{sim.front_door.port}" if sim.front_door else "off"
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
        # a clean stop removes the temp run folder; an agent that went down keeps it to read
        if sim.owns_run_dir and sim.run_dir.exists():
            if not args.keep and all(state != "down" for state in sim.agent_status.values()) \
                    and sim.remove_run_dir():
                print(f"mppsim: run folder {sim.run_dir} removed (--keep or --run-dir keeps it)", flush=True)
            else:
                print(f"mppsim: run folder kept: {sim.run_dir}", flush=True)


def cmd_screenshots(args) -> int:
    from mppsim.ui.screenshots import save_screenshots
    for path in save_screenshots(args.org, args.dir):
        print(f"saved {path}")
    return 0


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} not allowed; allowed: a number above 0, up to 100")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mppsim",
        description="Simulated Cisco MPP phones and Webex App for Webex Calling call recording. "
                    "With no command: the GUI, or the demo scenario headless when there is no display.")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("gui", help="open the app window")
    p.add_argument("--org", default=None, help="org file (default: the scenario's org, else the demo org)")
    p.add_argument("--scenario", help="open this scenario file in the player (Run starts it)")
    p.add_argument("--front-door-port", type=int, default=5060,
                   help="SIP port where external softphones call users by extension (0 = any free port)")
    p.add_argument("--api-port", type=int, default=0, help="port of the HTTP APIs (default: any free port)")
    p.add_argument("--api-token", help="Bearer token the HTTP APIs require (default: random)")
    p.add_argument("--no-api", action="store_true", help="do not start the HTTP APIs")
    p.add_argument("--address", help="IPv4 address of this host that agents, front door and recorder bind and "
                                     "write into SIP/SDP (default: the org's network.address, else 127.0.0.1)")
    p = sub.add_parser("api", help="run the simulator headless with the HTTP APIs (Webex /v1, /mppsim/v1)")
    p.add_argument("--org", default=str(DEMO_ORG), help="org file (default: the demo org)")
    p.add_argument("--port", type=int, default=0, help="HTTP port (default 0: any free port, printed)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--token", help="Bearer token every request needs (default: random, printed)")
    p.add_argument("--front-door-port", type=int, default=0,
                   help="SIP port of the front door (default 0: any free port)")
    p.add_argument("--run-dir", help="keep logs, captured audio and recordings here (default: a temp dir)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temp run folder after a clean stop (one with an agent down is kept)")
    p.add_argument("--address", help="IPv4 address of this host that agents, front door and recorder bind and "
                                     "write into SIP/SDP (default: the org's network.address, else 127.0.0.1)")
    p = sub.add_parser("run", help="run a scenario file headless")
    p.add_argument("file")
    p.add_argument("--report", help="write a JSON report here")
    p.add_argument("--run-dir", help="keep logs and captured audio here (default: a temp dir)")
    p.add_argument("--speed", type=positive_float, default=1.0,
                   help="divide every wait step by this (e.g. 4 to run a presenter's tour fast)")
    p.add_argument("--keep", action="store_true",
                   help="keep the run folder of a passed run (a failed run's is always kept)")
    p.add_argument("--address", help="IPv4 address of this host that agents, front door and recorder bind and "
                                     "write into SIP/SDP (default: the org's network.address, else 127.0.0.1)")
    p = sub.add_parser("demo", help="run the demo scenario headless")
    p.add_argument("--report")
    p.add_argument("--run-dir")
    p.add_argument("--keep", action="store_true", help="keep the run folder (logs, captured audio)")
    p = sub.add_parser("screenshots", help="save a PNG of every window (headless)")
    p.add_argument("dir")
    p.add_argument("--org", default=str(DEMO_ORG))
    p = sub.add_parser("load", help="many recorded calls at once, with a live table (like SIPp)",
                       description="Places calls between simulated users and PSTN parties at RATE new "
                                   "calls per second, at most CALLS at once, for DURATION seconds; each "
                                   "is held HOLD seconds and recorded as the org says. Ctrl-C ends the "
                                   "calls cleanly and still writes the report.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--org", help="org file (PSTN parties are added as needed)")
    src.add_argument("--users", type=int, help="a generated org of N users, all recorded Always "
                                               "(default: as many as --calls)")
    p.add_argument("--calls", type=int, required=True, help="calls at once, at most")
    p.add_argument("--rate", type=float, required=True, help="new calls per second")
    p.add_argument("--duration", type=float, required=True, help="seconds during which calls are offered")
    p.add_argument("--hold", type=float, help="seconds each call lasts (default: calls / rate)")
    p.add_argument("--recorder", help="external SRS, e.g. 'sip:127.0.0.1:5080;transport=tcp' "
                                      "(default: the embedded recorder)")
    p.add_argument("--dialect", choices=("webex", "rfc7866"), help="SIPREC dialect (default: webex)")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--run-dir", help="keep logs, captures and recordings here (default: a temp dir)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temp run folder of a run without failures (one with failures is kept)")
    p.add_argument("--address", help="IPv4 address of this host that agents, front door and recorder bind and "
                                     "write into SIP/SDP (default: the org's network.address, else 127.0.0.1)")
    p.add_argument("--cluster", metavar="ADDRESS", help="a Ray cluster's address (HOST:6379): agents run "
                                                        "on its hosts (docs/scaling.md); needs --hosts, "
                                                        "--control-address and --recorder")
    p.add_argument("--hosts", metavar="FILE", help="the agent hosts: 'name address capacity' per line")
    p.add_argument("--control-address", metavar="IP", help="this machine's address the hosts reach "
                                                           "(the agents connect back to it)")
    p = sub.add_parser("check-org", help="validate an org file")
    p.add_argument("file")
    p = sub.add_parser("examples", help="copy the example org and scenarios into DIR",
                       description="Copies the example org file and scenarios that ship inside the "
                                   "package into DIR (made if missing), so the README's commands "
                                   "work from an installed wheel: `mppsim examples . && mppsim run "
                                   "examples/demo-call.yaml`. Existing files are kept unless --force.")
    p.add_argument("dir", help="where to put the examples/ folder (e.g. '.')")
    p.add_argument("--force", action="store_true", help="overwrite example files already there")
    parser.add_argument("--version", action="version", version=f"mppsim {__version__}")
    parser.add_argument("--screenshots", metavar="DIR", help="save a PNG of every window (headless) and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.command is None and args.screenshots:
        args = parser.parse_args(["screenshots", args.screenshots])
    if args.command is None:
        if has_display():
            args = parser.parse_args(["gui"])
        else:
            args = parser.parse_args(["demo"])
    return {"gui": cmd_gui, "api": cmd_api, "run": cmd_run, "demo": cmd_demo, "check-org": cmd_check_org,
            "screenshots": cmd_screenshots, "load": cmd_load, "examples": cmd_examples}[args.command](args)


def cmd_examples(args) -> int:
    """Copy the packaged examples into DIR/examples, and the speech they play into DIR/assets/speech,
    so their relative paths (``../assets/speech/hello-en.wav``) resolve as they do in a checkout."""
    import shutil
    base = Path(args.dir).expanduser().resolve()
    pairs = [(src, base / "examples" / src.name) for src in sorted((PACKAGE_DIR / "examples").glob("*.yaml"))]
    pairs += [(src, base / "assets" / "speech" / src.name)
              for src in sorted((PACKAGE_DIR / "assets" / "speech").glob("*.wav"))]
    copied, kept = [], []
    try:
        for src, dst in pairs:
            if dst.exists() and not args.force:
                kept.append(str(dst.relative_to(base)))
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            copied.append(dst)
    except OSError as exc:
        print(f"mppsim examples: cannot write {exc.filename or base}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"mppsim examples: {len(copied)} file(s) copied to {base / 'examples'} and {base / 'assets' / 'speech'}"
          + (f"; kept {len(kept)} already there (--force overwrites)" if kept else ""))
    return 0


def cmd_load(args) -> int:
    from mppsim.app.load import LoadConfig, LoadError, live_view, run_load, summary
    sigterm_as_interrupt()
    try:
        cfg = LoadConfig(calls=args.calls, rate=args.rate, duration=args.duration, hold=args.hold,
                         recorder=args.recorder, dialect=args.dialect)
        report = run_load(cfg, org_file=args.org, users=args.users, report_path=args.report,
                          run_dir=args.run_dir, show=live_view(), keep=args.keep,
                          address=args.address, cluster=args.cluster,
                          hosts_file=args.hosts, control_address=args.control_address)
    except (LoadError, OrgError, SimulatorError) as exc:
        print(f"mppsim: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mppsim load: interrupted while starting", file=sys.stderr)
        return 130
    print(summary(report))
    if args.report:
        print(f"  report: {Path(args.report).expanduser().resolve()}")
    print(f"  run folder {report['run_dir']} removed (no failure; --keep keeps it)" if report.get("run_dir_removed")
          else f"  run folder: {report['run_dir']}")
    if report["agents_down"]:
        return 1
    return 130 if report["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
