"""The scenario player: a scenario file run by app/scenario.py's Runner (the one engine), one
step at a time on a worker thread, with each step's state shown beside the faces.

    player = ScenarioPlayer(sim); player.load("examples/demo-call.yaml"); player.run()

objectNames: scenario_player, player_open, player_run, player_pause, player_step, player_stop,
player_speed, player_steps (one item per step), player_status, player_reason.

The worker only puts (kind, payload) tuples on a queue; a timer in the GUI thread drains it
(as ui/bridge.py does), so no Qt object is touched from the worker thread.
"""
from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QPushButton, QVBoxLayout, QWidget)

from mppsim.app.scenario import Runner, RunResult, Scenario, ScenarioError, load_scenario
from mppsim.app.simulator import Simulator, SimulatorError

SPEEDS = (0.5, 1.0, 2.0, 4.0)
PACE_SECONDS = 0.4      # a pause between steps at 1x, so an audience can follow the list
DRAIN_MS = 30
MARK = {"pending": "○", "running": "▶", "passed": "✓", "failed": "✗", "skipped": "–"}
COLOUR = {"running": "#fff4c2", "passed": "#e3f4e4", "failed": "#fbe0e0"}


def step_text(index: int, name: str, args) -> str:
    """One line per step: `3. dial from: alice, to: 1002`."""
    if isinstance(args, dict):
        body = ", ".join(f"{k}: {json.dumps(v) if isinstance(v, (list, dict)) else v}" for k, v in args.items())
    else:
        body = str(args)
    return f"{index}. {name} {body}"


def who_of(args) -> str | None:
    """The line a step is about (for highlighting its device)."""
    if isinstance(args, dict):
        for key in ("who", "from", "user", "line"):
            if key in args:
                return str(args[key])
    return None


class ScenarioPlayer(QWidget):
    say = Signal(str)          # a `say` step's caption ("" hides it)
    failed_at = Signal(str)    # the `who` of the failed step ("" when it names nobody)
    finished = Signal(bool)    # the run ended (True = every step passed)
    started = Signal()

    def __init__(self, sim: Simulator, parent=None):
        super().__init__(parent)
        self.sim = sim
        self.setObjectName("scenario_player")
        self.scenario: Scenario | None = None
        self.runner: Runner | None = None
        self.result: RunResult | None = None
        self.report_path: Path | None = None
        self._thread: threading.Thread | None = None
        self._cv = threading.Condition()
        self._playing = False          # Run: step after step; Pause: wait
        self._budget = 0               # steps allowed while paused (Step)
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self.states: list[tuple[str, str | None]] = []

        self.title = QLabel("<b>Scenario</b> · none loaded")
        self.title.setWordWrap(True)
        self.open_btn = self._button("player_open", "Open…", "Open a scenario file", self.choose_file)
        self.run_btn = self._button("player_run", "▶ Run", "Run the scenario", self.run)
        self.pause_btn = self._button("player_pause", "❚❚ Pause", "Pause after the current step", self.pause)
        self.step_btn = self._button("player_step", "Step", "Run the next step only", self.step_once)
        self.stop_btn = self._button("player_stop", "■ Stop", "Stop the run and hang up", self.stop)
        self.speed = QComboBox()
        self.speed.setObjectName("player_speed")
        self.speed.setAccessibleName("Playback speed (waits and pauses between steps)")
        for s in SPEEDS:
            self.speed.addItem(f"{s:g}x", s)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.currentIndexChanged.connect(self._speed_changed)
        self.steps = QListWidget()
        self.steps.setObjectName("player_steps")
        self.steps.setAccessibleName("Scenario steps and their state")
        self.steps.setWordWrap(True)
        self.status = QLabel("Open a scenario (menu Scenario, drag a file here, or mppsim gui --scenario FILE)")
        self.status.setObjectName("player_status")
        self.status.setWordWrap(True)
        self.reason = QLabel("")
        self.reason.setObjectName("player_reason")
        self.reason.setWordWrap(True)
        self.reason.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.reason.setStyleSheet("color: #b71c1c; font-weight: bold;")
        self.reason.setVisible(False)

        buttons = QHBoxLayout()
        for b in (self.run_btn, self.pause_btn, self.step_btn, self.stop_btn):
            buttons.addWidget(b)
        top = QHBoxLayout()
        top.addWidget(self.open_btn)
        top.addStretch(1)
        top.addWidget(QLabel("Speed"))
        top.addWidget(self.speed)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addLayout(top)
        lay.addLayout(buttons)
        lay.addWidget(self.steps, 1)
        lay.addWidget(self.reason)
        lay.addWidget(self.status)

        self._drain_timer = QTimer(self)
        self._drain_timer.setInterval(DRAIN_MS)
        self._drain_timer.timeout.connect(self._drain)
        self._drain_timer.start()
        # the worker thread ends with the widget (Stop, then it hangs up and returns)
        cv, stop = self._cv, self._stop_worker
        self.destroyed.connect(lambda *_: stop(cv))
        self._sync_buttons()

    def _button(self, name: str, text: str, accessible: str, handler) -> QPushButton:
        b = QPushButton(text)
        b.setObjectName(name)
        b.setAccessibleName(accessible)
        b.clicked.connect(handler)
        return b

    # ----- loading ------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open scenario", "", "Scenarios (*.yaml *.yml)")
        if path:
            self.load(path)

    def load(self, path: str | Path) -> bool:
        """Load a scenario for this window's simulator; False (and the reason shown) if it cannot run here."""
        if self.running:
            self.status.setText("Stop the current run first")
            return False
        try:
            scenario = load_scenario(path)
            self.check_fits(scenario)
        except (ScenarioError, SimulatorError) as exc:
            self.status.setText(str(exc))
            return False
        self.scenario = scenario
        self.runner = None
        self.result = None
        self.report_path = None
        self.steps.clear()
        self.states = []
        for step in scenario.steps:
            item = QListWidgetItem()
            item.setToolTip(step_text(step.index, step.name, step.args))
            self.steps.addItem(item)
            self.states.append(("pending", None))
            self._paint(step.index - 1)
        self.title.setText(f"<b>Scenario</b> · {scenario.name} · {len(scenario.steps)} steps")
        same_org = Path(self.sim.org.source).resolve() == scenario.org if self.sim.org.source else True
        self.status.setText(f"Loaded {scenario.source.name}" + (
            "" if same_org else f" (written for {scenario.org.name}; its names exist in this org)"))
        self.reason.setVisible(False)
        self.say.emit("")
        self._sync_buttons()
        return True

    def check_fits(self, scenario: Scenario) -> None:
        """Every line (and location) a step names must exist in the running org (the window runs one org)."""
        unknown = []
        for step in scenario.steps:
            if isinstance(step.args, dict):
                for key in ("who", "from", "user", "line"):
                    if key in step.args:
                        try:
                            self.sim.party(str(step.args[key]))
                        except SimulatorError:
                            unknown.append(f"steps[{step.index}].{step.name}.{key}: {step.args[key]}")
                locations = {loc.id for loc in self.sim.org.locations}
                if step.name == "set" and "location" in step.args and str(step.args["location"]) not in locations:
                    unknown.append(f"steps[{step.index}].set.location: {step.args['location']}")
        if unknown:
            raise SimulatorError(f"{scenario.source.name} names lines this window's org does not have "
                                 f"({', '.join(unknown)}); start mppsim gui --scenario {scenario.source}")

    # ----- controls -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Run from the next step on, step after step (or carry on after Pause)."""
        self._go(play=True)

    def step_once(self) -> None:
        """Run only the next step (starts a paused run when none is going)."""
        self._go(play=False, steps=1)

    def pause(self) -> None:
        with self._cv:
            self._playing = False
            self._cv.notify_all()
        if self.running:
            self.status.setText("Paused after the current step: Run carries on, Step runs one")
        self._sync_buttons()

    def stop(self) -> None:
        if self.running:
            self.status.setText("Stopping: hanging up the calls still up…")
        self._stop_worker(self._cv)
        self._sync_buttons()

    def _stop_worker(self, cv) -> None:
        runner = self.runner
        if runner is not None:
            runner.stop()
        with cv:
            self._playing = False
            self._budget = 0
            cv.notify_all()

    def shutdown(self, timeout: float = 8.0) -> None:
        """Stop and wait for the worker (the window is closing)."""
        self._stop_worker(self._cv)
        if self._thread is not None:
            self._thread.join(timeout)

    def _go(self, play: bool, steps: int = 0) -> None:
        if self.scenario is None:
            self.status.setText("Open a scenario first")
            return
        with self._cv:
            self._playing = play
            self._budget += steps
            self._cv.notify_all()
        if not self.running:
            if self.runner is None or self.runner.done:
                self._reset()
            self._thread = threading.Thread(target=self._work, args=(self.runner,), daemon=True,
                                             name="scenario-player")
            self._thread.start()
            self.started.emit()
        self.status.setText("Running…" if play else "Step")
        self._sync_buttons()

    def _reset(self) -> None:
        """A new run of the loaded scenario: every step pending again."""
        assert self.scenario is not None
        events = self._events
        self.runner = Runner(self.sim, self.scenario,
                             on_step=lambda r: events.put(("step", (r.index, r.status, r.error))),
                             on_say=lambda text: events.put(("say", text)))
        self.runner.speed = self.speed.currentData()
        self.result = None
        self.report_path = None
        self.reason.setVisible(False)
        for i in range(len(self.states)):
            self.states[i] = ("pending", None)
            self._paint(i)

    def _speed_changed(self, _index: int) -> None:
        if self.runner is not None:
            self.runner.speed = self.speed.currentData()

    # ----- the worker thread --------------------------------------------------------------
    def _work(self, runner: Runner) -> None:
        try:
            while True:
                with self._cv:
                    while not (self._playing or self._budget > 0 or runner.stopped.is_set()):
                        self._cv.wait()
                    if runner.stopped.is_set():
                        break
                    if not self._playing:
                        self._budget -= 1
                    playing = self._playing
                result = runner.step()
                if result is None or runner.done:
                    break
                if playing and runner.stopped.wait(PACE_SECONDS / runner.speed):
                    break
                if not playing:
                    self._events.put(("paused", None))
        finally:
            try:
                self._events.put(("finished", runner.finish()))
            except Exception as exc:  # noqa: BLE001  (the simulator was stopped under us)
                self._events.put(("error", str(exc)))

    # ----- GUI side -----------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            try:
                kind, payload = self._events.get_nowait()
            except queue.Empty:
                return
            if kind == "step":
                index, status, error = payload
                self.states[index - 1] = (status, error)
                self._paint(index - 1)
                if status == "running":
                    self.steps.scrollToItem(self.steps.item(index - 1))
                elif status == "failed":
                    self._on_failed(index, error)
            elif kind == "say":
                self.say.emit(payload)
            elif kind == "paused":
                self.status.setText("Paused: Run carries on, Step runs the next step")
                self._sync_buttons()
            elif kind == "finished":
                self._on_finished(payload)
            elif kind == "error":
                self.status.setText(f"The run ended abnormally: {payload}")
                self._sync_buttons()

    def _paint(self, i: int) -> None:
        assert self.scenario is not None
        step = self.scenario.steps[i]
        status, error = self.states[i]
        item = self.steps.item(i)
        text = f"{MARK[status]} {step_text(step.index, step.name, step.args)}"
        if status == "failed" and error:
            text += f"\n    ✗ {error}"
        elif status == "skipped" and error:
            text += f" ({error})"
        item.setText(text)
        item.setData(Qt.UserRole, status)
        item.setBackground(QBrush(QColor(COLOUR.get(status, "#ffffff"))))

    def _on_failed(self, index: int, error: str | None) -> None:
        assert self.scenario is not None
        step = self.scenario.steps[index - 1]
        self.reason.setText(f"Step {index} ({step.name}) failed: {error}")
        self.reason.setVisible(True)
        self.failed_at.emit(who_of(step.args) or "")

    def _on_finished(self, result: RunResult) -> None:
        self.result = result
        if self._thread is not None:
            self._thread.join(2.0)      # it only returns after putting "finished"
        out = Path(self.sim.run_dir) / "scenario-reports"
        out.mkdir(parents=True, exist_ok=True)
        self.report_path = out / f"{result.scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        self.report_path.write_text(json.dumps(result.report(), indent=2, default=str))
        for i, r in enumerate(result.steps):      # steps never reached: skipped, as in the report
            if self.states[i][0] in ("pending", "running"):
                self.states[i] = (r.status, r.error)
                self._paint(i)
        failed = result.failed_step
        passed = sum(1 for s in result.steps if s.status == "passed")
        if failed is not None:
            text = f"FAILED at step {failed.index} ({failed.step})"
        elif result.passed:
            text = f"All {len(result.steps)} steps passed in {result.seconds:.1f} s"
        else:
            text = f"Stopped after {passed} of {len(result.steps)} steps"
        self.status.setText(f"{text}; report: {self.report_path}")
        self.say.emit("")
        self._sync_buttons()
        self.finished.emit(result.passed)

    def _sync_buttons(self) -> None:
        loaded, running = self.scenario is not None, self.running
        self.run_btn.setEnabled(loaded and not (running and self._playing))
        self.step_btn.setEnabled(loaded and not (running and self._playing))
        self.pause_btn.setEnabled(running and self._playing)
        self.stop_btn.setEnabled(running)
        self.open_btn.setEnabled(not running)

    # ----- read back (tests) --------------------------------------------------------------
    def step_states(self) -> list[str]:
        return [s for s, _ in self.states]

    def step_errors(self) -> list[str | None]:
        return [e for _, e in self.states]
