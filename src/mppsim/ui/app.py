"""Starts the GUI: the simulator (agent processes) first, then the main window."""
from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QMessageBox

from mppsim.app.org import OrgError
from mppsim.app.orchestrator import AgentError
from mppsim.app.ports import port_free
from mppsim.app.simulator import Simulator, SimulatorError

from .main_window import MainWindow


def run_gui(org_path: str, front_door_port: int = 5060, scenario: str | None = None,
            api_port: int | None = 0, api_token: str | None = None, address: str | None = None) -> int:
    """api_port None: no HTTP APIs; 0: any free port (shown in the status bar)."""
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("mppsim")
    if front_door_port and not port_free(front_door_port):
        print(f"mppsim: port {front_door_port} is taken; the front door uses a free port instead")
        front_door_port = 0
    try:
        sim = Simulator(org_path, front_door_port=front_door_port, address=address).start()
    except (OrgError, AgentError, SimulatorError) as exc:
        QMessageBox.critical(None, "mppsim cannot start", str(exc))
        print(f"mppsim: {exc}", file=sys.stderr)
        return 2
    server = None
    if api_port is not None:
        from mppsim.app.http_server import ApiServer
        try:
            server = ApiServer(sim, port=api_port, token=api_token).start()
            print(f"listening on {server.url}/v1\ntoken: {server.token}", flush=True)
        except OSError as exc:
            print(f"mppsim: HTTP APIs off: cannot listen on port {api_port}: {exc.strerror or exc}", file=sys.stderr)
    window = MainWindow(sim, api_url=server.url if server else None)
    window.show()
    if scenario:
        window.player.load(scenario)
    try:
        return app.exec()
    finally:
        if server is not None:
            server.stop()
        sim.stop()
