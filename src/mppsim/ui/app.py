"""Starts the GUI: the simulator (agent processes) first, then the main window.

Ctrl-C (SIGINT) and SIGTERM end it as closing the window does: the window closes (its layout is
saved, the scenario player and computer audio stop), then the HTTP APIs and the simulator (agents,
recorder) stop, and `mppsim gui` exits 0. Python runs a signal handler only between bytecodes, and
Qt's event loop is C++: a terminal's Ctrl-C did nothing until an event woke Python (issue 23). The
handler's wake-up byte goes through a socket pair that Qt watches, so the loop hears it at once.
"""
from __future__ import annotations

import signal
import socket
import sys

from PySide6.QtCore import QSocketNotifier
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
    stop_signals = StopSignals(app)      # from here: a signal during start-up ends the GUI once it runs
    if front_door_port and not port_free(front_door_port):
        print(f"mppsim: port {front_door_port} is taken; the front door uses a free port instead")
        front_door_port = 0
    try:
        sim = Simulator(org_path, front_door_port=front_door_port, address=address).start()
    except (OrgError, AgentError, SimulatorError) as exc:
        QMessageBox.critical(None, "mppsim cannot start", str(exc))
        print(f"mppsim: {exc}", file=sys.stderr)
        stop_signals.restore()
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
    stop_signals.window = window
    if scenario:
        window.player.load(scenario)
    try:
        code = app.exec()
        return 0 if stop_signals.received else code
    finally:
        if server is not None:
            server.stop()
        sim.stop()
        # a session's recordings are the user's to keep: say where they are rather than delete
        print(f"mppsim: run folder kept: {sim.run_dir} (recordings, captured audio, logs)", flush=True)
        stop_signals.restore()
        if stop_signals.received:
            print(f"mppsim: {signal.Signals(stop_signals.received).name}: stopped", file=sys.stderr, flush=True)


class StopSignals:
    """SIGINT and SIGTERM close the window and quit the event loop (see the module docstring)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, app: QApplication):
        self.app = app
        self.window = None
        self.received = 0
        self._read, self._write = socket.socketpair()
        for end in (self._read, self._write):
            end.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._write.fileno())
        self._old = {sig: signal.signal(sig, self._note) for sig in self.SIGNALS}
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Read)
        self._notifier.activated.connect(self._stop)

    def _note(self, signum, _frame) -> None:
        self.received = self.received or signum

    def _stop(self, *_args) -> None:
        try:
            self._read.recv(64)
        except OSError:
            pass
        if not self.received:
            return
        if self.window is not None:
            self.window.close()
        self.app.quit()

    def restore(self) -> None:
        self._notifier.setEnabled(False)
        for sig, old in self._old.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(self._old_fd)
        self._read.close()
        self._write.close()
