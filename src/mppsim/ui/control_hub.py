"""A Control Hub-like view of the call recording settings, and the provider side's accounts.

    hub = ControlHub(sim)      # sim.settings is the SettingsStore; hub.refresh() reloads it

Pages: Organisation (provider, terms of service, turning recording off, Dubber tier, failure
behaviour, region, compliance announcement), Locations (provider and compliance overrides),
Users and virtual lines (every R-USR-* / R-VL-* setting, licence, read-only platform info) and
Provider side (the accounts each provider knows, R-PRV-6 / R-USR-7).

No rule logic here: every change goes to the store, which validates it and either applies it
whole (pushed live to the agents by the simulator's subscriber) or raises SettingsError; its
messages are shown next to their field (a QLabel ``ch_error_<field path, dots -> _>``) and all
together in ``ch_errors``. A refused change changes nothing; the form keeps what the user typed
until Revert shows the stored values again. Every control has an objectName starting ``ch_``.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QDialogButtonBox,
                               QFormLayout, QFrame, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QPushButton, QScrollArea,
                               QSpinBox, QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout,
                               QWidget)

from mppsim.rules import providers as P
from mppsim.rules import settings_schema as S
from mppsim.rules.effective import FAILURE_BEHAVIORS, MODES, NOTIFICATION_TYPES
from mppsim.rules.settings import CONFIRM_OFF_TEXT, LEGAL_NOTICE, SettingsError

USE_ORG = "Use organisation settings"
ERROR_STYLE = "color: #c62828;"
NOTICE_STYLE = "color: #1565c0;"
WARN_STYLE = "color: #c62828; font-weight: bold;"
OK_STYLE = "color: #2e7d32;"


def error_name(path: str) -> str:
    """objectName of the error label of a field path: ch_error_people_carol_callRecording_record."""
    return "ch_error_" + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")


def split_error(text: str) -> tuple[str, str]:
    """'people.x.callRecording.record: why' -> ('people.x.callRecording.record', 'why')."""
    path, sep, why = text.partition(": ")
    return (path, why) if sep and " " not in path else ("", text)


def _named(widget, name: str, accessible: str):
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    return widget


def _error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(ERROR_STYLE)
    label.setVisible(False)
    return label


class _Field:
    """A settings field: its widget, its path relative to the page's prefix, its error label."""

    def __init__(self, key: str, widget: QWidget, get: Callable[[], Any], put: Callable[[Any], None]):
        self.key, self.widget, self.get, self.put = key, widget, get, put
        self.error = _error_label()


class _Page(QWidget):
    """A form over one part of the store: fields with error labels, load/save, dirty tracking."""

    def __init__(self, hub: "ControlHub"):
        super().__init__()
        self.hub = hub
        self.store = hub.sim.settings
        self.fields: dict[str, _Field] = {}
        self.prefix = ""
        self.dirty = False
        self._loading = False

    # -- fields ------------------------------------------------------------------------------
    def check(self, key: str, name: str, text: str) -> _Field:
        w = _named(QCheckBox(text), name, text)
        f = _Field(key, w, w.isChecked, lambda v: w.setChecked(bool(v)))
        w.toggled.connect(self.touch)
        return self._add(f)

    def combo(self, key: str, name: str, accessible: str, items: list[tuple[str, Any]]) -> _Field:
        w = _named(QComboBox(), name, accessible)
        for text, data in items:
            w.addItem(text, data)

        def put(v):
            i = w.findData(v)
            w.setCurrentIndex(i if i >= 0 else 0)
        f = _Field(key, w, w.currentData, put)
        w.currentIndexChanged.connect(self.touch)
        return self._add(f)

    def spin(self, key: str, name: str, accessible: str, suffix: str = " s") -> _Field:
        """A whole number; deliberately wider than any allowed range so that the store, not the
        widget, refuses out-of-range values (R-USR-6, R-CMP-2) and says why."""
        w = _named(QSpinBox(), name, accessible)
        w.setRange(0, 99999)
        w.setSuffix(suffix)
        w.setKeyboardTracking(True)
        f = _Field(key, w, w.value, lambda v: w.setValue(int(v or 0)))
        w.valueChanged.connect(self.touch)
        return self._add(f)

    def _add(self, f: _Field) -> _Field:
        self.fields[f.key] = f
        return f

    def row(self, form: QFormLayout, label: str, f: _Field) -> None:
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(1)
        lay.addWidget(f.widget)
        lay.addWidget(f.error)
        form.addRow(label, box)

    def touch(self, *_):
        if not self._loading:
            self.dirty = True
            self.on_touch()

    def on_touch(self) -> None:
        self._sync_enabled()

    def _sync_enabled(self) -> None:
        """Which fields are editable given the others (presentation only: the store checks)."""

    def show_path(self, prefix: str) -> None:
        """Show the settings under `prefix` (a location, a line, a provider account)."""
        self.prefix = prefix
        self.name_errors()
        self.clear_errors()
        self.load()

    # -- errors ------------------------------------------------------------------------------
    def name_errors(self) -> None:
        """Give each error label the objectName of its full field path under self.prefix."""
        for f in self.fields.values():
            path = f"{self.prefix}.{f.key}" if self.prefix else f.key
            f.error.setObjectName(error_name(path))

    def clear_errors(self) -> None:
        for f in self.fields.values():
            f.error.clear()
            f.error.setVisible(False)

    def show_errors(self, errors: list[str]) -> None:
        """Each error next to the field its path names (or the nearest enclosing one)."""
        self.clear_errors()
        by_path = {f"{self.prefix}.{k}" if self.prefix else k: f for k, f in self.fields.items()}
        for e in errors:
            path, why = split_error(e)
            while path and path not in by_path:
                path = path.rpartition(".")[0]
            if path:
                f = by_path[path]
                f.error.setText((f.error.text() + "\n" if f.error.text() else "") + why)
                f.error.setVisible(True)

    def apply(self, change: Callable[[], list[str]]) -> bool:
        """Run a store change; show its notices or its errors. True when applied."""
        try:
            notices = change()
        except SettingsError as exc:
            self.show_errors(exc.errors)
            self.hub.show_errors(exc.errors)
            return False
        self.clear_errors()
        self.hub.show_notices(notices)
        return True

    # -- load --------------------------------------------------------------------------------
    def load(self) -> None:
        self._loading = True
        try:
            self.fill()
        finally:
            self._loading = False
        self.dirty = False

    def fill(self) -> None:
        raise NotImplementedError

    def on_store_changed(self) -> None:
        """The store changed (here or elsewhere): show it unless the user is editing."""
        if not self.dirty:
            self.load()


def _leaf(d: dict, key: str) -> Any:
    for part in key.split("."):
        d = d[part]
    return d


def _set_leaf(d: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        d = d.setdefault(part, {})
    d[last] = value


# ---------------------------------------------------------------------------------------------
# Dialogs


class TermsDialog(QDialog):
    """R-PRV-7: a provider's terms of service, listing exactly what accepting shares with it."""

    def __init__(self, provider: str, reason: str, parent=None):
        super().__init__(parent)
        self.provider = provider
        self.setObjectName("ch_terms_dialog")
        self.setWindowTitle(f"{provider} terms of service")
        intro = QLabel(f"<b>{provider} terms of service</b><br>Using {provider} as the call recording "
                       f"provider requires accepting its terms once. On acceptance the following "
                       f"is shared with {provider}:")
        intro.setWordWrap(True)
        self.shared = _named(QListWidget(), "ch_terms_shared", f"Data shared with {provider}")
        for item in P.TERMS_SHARED:
            self.shared.addItem(item)
        self.shared.setMaximumHeight(18 * len(P.TERMS_SHARED) + 12)
        self.reason = _named(QLabel(reason), "ch_terms_reason", "Why the terms are needed")
        self.reason.setWordWrap(True)
        self.reason.setStyleSheet(ERROR_STYLE)
        self.error = _named(_error_label(), "ch_terms_error", "Error after accepting")
        self.accept_button = _named(QPushButton("Accept"), "ch_terms_accept", f"Accept {provider}'s terms")
        self.cancel_button = _named(QPushButton("Cancel"), "ch_terms_cancel", "Cancel")
        buttons = QDialogButtonBox()
        buttons.addButton(self.accept_button, QDialogButtonBox.AcceptRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.RejectRole)
        self.accept_button.clicked.connect(self.accept)
        self.cancel_button.clicked.connect(self.reject)
        lay = QVBoxLayout(self)
        for w in (intro, self.shared, self.reason, self.error):
            lay.addWidget(w)
        lay.addWidget(buttons)
        self.resize(460, 300)

    def shared_items(self) -> list[str]:
        return [self.shared.item(i).text() for i in range(self.shared.count())]


class OffDialog(QDialog):
    """R-ORG-2: turning recording off (provider None) needs an explicit confirmation. The box is
    passed to the store as confirm_off; the store, not the dialog, refuses an unticked box."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("ch_off_dialog")
        self.setWindowTitle("Turn off call recording")
        text = QLabel("<b>Turn off call recording for the organisation?</b><br>Choosing the provider "
                      "None removes call recording for every user and virtual line.")
        text.setWordWrap(True)
        self.confirm = _named(QCheckBox(CONFIRM_OFF_TEXT), "ch_off_confirm", CONFIRM_OFF_TEXT)
        self.error = _named(_error_label(), "ch_off_error", "Why turning off was refused")
        self.ok = _named(QPushButton("Turn off"), "ch_off_ok", "Turn off call recording")
        self.cancel_button = _named(QPushButton("Cancel"), "ch_off_cancel", "Cancel")
        buttons = QDialogButtonBox()
        buttons.addButton(self.ok, QDialogButtonBox.AcceptRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.RejectRole)
        self.cancel_button.clicked.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(text)
        lay.addWidget(self.confirm)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.resize(520, 180)


# ---------------------------------------------------------------------------------------------
# Pages


class OrganisationPage(_Page):
    """R-ORG-1 (Dubber preselected), R-ORG-2, R-PRV-2 tier, R-PRV-7 terms, R-ORG-3, R-CMP-1/2."""

    def __init__(self, hub: "ControlHub"):
        super().__init__(hub)
        self.prefix = "organisation.recording"
        self.terms_dialog: TermsDialog | None = None
        self.off_dialog: OffDialog | None = None
        notice = _named(QLabel("⚖ " + LEGAL_NOTICE), "ch_legal_notice", "Legal notice")   # R-PRE-3
        notice.setWordWrap(True)
        notice.setStyleSheet("background: #fff8e1; border: 1px solid #ffe082; padding: 6px;")

        self.provider = self.combo("provider", "ch_org_provider", "Call recording provider",
                                   [(p, p) for p in P.PROVIDER_CHOICES])
        self.provider.widget.currentIndexChanged.disconnect(self.touch)
        self.provider.widget.activated.connect(self.on_provider_chosen)
        self.terms = _named(QLabel(), "ch_org_terms", "Providers whose terms are accepted")
        self.tier = self.combo("tier", "ch_org_tier", "Dubber tier",
                               [(f"Dubber {t}" + (" (free, 30 days)" if v.free else " (paid)"), t)
                                for t, v in P.DUBBER_TIERS.items()])
        self.failure = self.combo("failureBehavior", "ch_org_failure", "When the recorder cannot be reached",
                                  [(f, f) for f in FAILURE_BEHAVIORS])
        self.region = self.combo("region", "ch_org_region", "Region the customer is hosted in",
                                 [(r, r) for r in P.REGIONS])
        self.inbound = self.check("compliance.inboundPSTNCallsEnabled", "ch_compliance_inbound",
                                  "Inbound PSTN calls (played before answer)")
        self.outbound = self.check("compliance.outboundPSTNCallsEnabled", "ch_compliance_outbound",
                                   "Outbound PSTN calls (played after answer)")
        self.delay_on = self.check("compliance.outboundPSTNCallsDelayEnabled", "ch_compliance_delay_enabled",
                                   "Delay the outbound announcement")
        self.delay = self.spin("compliance.delayInSeconds", "ch_compliance_delay",
                               "Compliance announcement delay in seconds (0-60)")
        self.save = _named(QPushButton("Save"), "ch_org_save", "Save organisation settings")
        self.revert = _named(QPushButton("Revert"), "ch_org_revert", "Revert organisation settings")
        self.save.clicked.connect(self.on_save)
        self.revert.clicked.connect(self.on_revert)

        prov = QGroupBox("Recording provider")
        pf = QFormLayout(prov)
        self.row(pf, "Provider:", self.provider)
        pf.addRow("Terms accepted:", self.terms)
        self.row(pf, "Dubber tier:", self.tier)
        self.row(pf, "Region:", self.region)
        self.row(pf, "If the recorder fails:", self.failure)
        comp = QGroupBox("Compliance announcement (\"This call may be recorded\")")
        cf = QFormLayout(comp)
        self.row(cf, "Inbound PSTN:", self.inbound)
        self.row(cf, "Outbound PSTN:", self.outbound)
        self.row(cf, "Delay:", self.delay_on)
        self.row(cf, "Delay (max 60 s):", self.delay)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.revert)
        buttons.addWidget(self.save)
        lay = QVBoxLayout(self)
        lay.addWidget(notice)
        lay.addWidget(prov)
        lay.addWidget(comp)
        lay.addLayout(buttons)
        lay.addStretch(1)
        self.name_errors()

    def fill(self) -> None:
        org = self.store.get_org()
        for f in self.fields.values():
            f.put(_leaf(org, f.key))
        self.terms.setText(", ".join(org["termsAccepted"]) or "none")

    def on_provider_chosen(self, _index: int) -> None:
        """Choosing a provider applies at once (as in Control Hub). None asks for the R-ORG-2
        confirmation; a provider whose terms the store says are not accepted opens the terms."""
        chosen = self.provider.get()
        self.choose_provider(chosen)

    def choose_provider(self, chosen: str) -> None:
        stored = self.store.get_org()["provider"]
        if chosen == stored:
            return
        if chosen == P.NO_PROVIDER:
            self.open_off_dialog()
            return
        self.hub.ask_terms_then(lambda: self.store.set_org({"provider": chosen}), chosen, self,
                                on_done=self.load)

    def open_off_dialog(self) -> None:
        d = self.off_dialog = OffDialog(self)

        def ok():
            try:
                notices = self.store.set_org({"provider": P.NO_PROVIDER}, confirm_off=d.confirm.isChecked())
            except SettingsError as exc:
                d.error.setText("\n".join(split_error(e)[1] for e in exc.errors))
                d.error.setVisible(True)
                self.hub.show_errors(exc.errors)
                return
            self.hub.show_notices(notices)
            d.accept()
        d.ok.clicked.connect(ok)
        d.finished.connect(lambda _r: self.load())
        d.open()

    def on_save(self) -> None:
        """Everything but the provider (applied when chosen), as one change."""
        patch: dict[str, Any] = {}
        for key, f in self.fields.items():
            if key != "provider":
                _set_leaf(patch, key, f.get())
        if self.apply(lambda: self.store.set_org(patch)):
            self.load()

    def on_revert(self) -> None:
        self.clear_errors()
        self.hub.show_errors([])
        self.load()


class LocationsPage(_Page):
    """R-LOC-1 (provider per location), R-CMP-1 (use organisation / location-specific), R-ORG-3."""

    def __init__(self, hub: "ControlHub"):
        super().__init__(hub)
        self.select = _named(QComboBox(), "ch_loc_select", "Location")
        for loc in hub.sim.org.locations:
            self.select.addItem(f"{loc.name} ({loc.id})", loc.id)
        self.select.currentIndexChanged.connect(lambda _i: self.on_select())
        self.provider = self.combo("provider", "ch_loc_provider", "Location's recording provider",
                                   [(USE_ORG, S.ORGANISATION)] + [(p, p) for p in P.PROVIDER_CHOICES])
        self.failure = self.combo("failureBehavior", "ch_loc_failure", "Location's failure behaviour",
                                  [(USE_ORG, S.ORGANISATION)] + [(f, f) for f in FAILURE_BEHAVIORS])
        self.comp_mode = self.combo("compliance", "ch_loc_compliance", "Location's compliance announcement",
                                    [(USE_ORG, S.ORGANISATION), ("Location-specific settings", "location")])
        self.inbound = self.check("compliance.inboundPSTNCallsEnabled", "ch_loc_compliance_inbound",
                                  "Inbound PSTN calls")
        self.outbound = self.check("compliance.outboundPSTNCallsEnabled", "ch_loc_compliance_outbound",
                                   "Outbound PSTN calls")
        self.delay_on = self.check("compliance.outboundPSTNCallsDelayEnabled", "ch_loc_compliance_delay_enabled",
                                   "Delay the outbound announcement")
        # the organisation page has a box of the same text: a tool needs the two apart
        self.delay_on.widget.setAccessibleName("Location: delay the outbound announcement")
        self.delay = self.spin("compliance.delayInSeconds", "ch_loc_compliance_delay",
                               "Location's compliance delay in seconds (0-60)")
        self.inherited = _named(QLabel(), "ch_loc_effective", "What applies at this location")
        self.inherited.setWordWrap(True)
        self.save = _named(QPushButton("Save"), "ch_loc_save", "Save location settings")
        self.revert = _named(QPushButton("Revert"), "ch_loc_revert", "Revert location settings")
        self.save.clicked.connect(self.on_save)
        self.revert.clicked.connect(self.on_revert)
        form = QFormLayout()
        form.addRow("Location:", self.select)
        self.row(form, "Provider:", self.provider)
        self.row(form, "If the recorder fails:", self.failure)
        self.row(form, "Compliance announcement:", self.comp_mode)
        self.row(form, "Inbound PSTN:", self.inbound)
        self.row(form, "Outbound PSTN:", self.outbound)
        self.row(form, "Delay:", self.delay_on)
        self.row(form, "Delay (max 60 s):", self.delay)
        form.addRow("In effect:", self.inherited)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.revert)
        buttons.addWidget(self.save)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addStretch(1)
        self.on_select()

    @property
    def location(self) -> str:
        return self.select.currentData()

    def on_select(self) -> None:
        self.show_path(f"locations.{self.location}.recording")

    def _sync_enabled(self) -> None:
        specific = self.comp_mode.get() != S.ORGANISATION
        for f in (self.inbound, self.outbound, self.delay_on, self.delay):
            f.widget.setEnabled(specific)

    def fill(self) -> None:
        loc = self.store.get_location(self.location)
        self.provider.put(loc["provider"])
        self.failure.put(loc["failureBehavior"])
        comp = loc["compliance"]
        self.comp_mode.put(S.ORGANISATION if comp == S.ORGANISATION else "location")
        shown = self.store.get_org()["compliance"] if comp == S.ORGANISATION else comp
        for key in ("inboundPSTNCallsEnabled", "outboundPSTNCallsEnabled",
                    "outboundPSTNCallsDelayEnabled", "delayInSeconds"):
            self.fields[f"compliance.{key}"].put(shown[key])
        self._sync_enabled()
        lines = [lid for lid in self.store.lines() if self.store.line_info(lid).location == self.location]
        eff = self.store.effective(lines[0]) if lines else None
        if eff is not None:
            c = eff.compliance
            self.inherited.setText(
                f"provider {eff.provider or 'None (no recording)'}; failure {eff.failure_behavior}; "
                f"compliance inbound {'on' if c.inbound_pstn else 'off'}, "
                f"outbound {'on' if c.outbound_pstn else 'off'}"
                + (f" after {c.delay_seconds} s" if c.outbound_pstn and c.outbound_delay_enabled else ""))
        else:
            self.inherited.setText("no lines at this location")

    def on_save(self) -> None:
        patch: dict[str, Any] = {"provider": self.provider.get(), "failureBehavior": self.failure.get()}
        if self.comp_mode.get() == S.ORGANISATION:
            patch["compliance"] = S.ORGANISATION
        else:
            patch["compliance"] = {k.split(".", 1)[1]: f.get() for k, f in self.fields.items()
                                   if k.startswith("compliance.")}
        loc = self.location

        def change():
            return self.store.set_location(loc, patch)
        self.hub.ask_terms_then(change, self.provider.get(), self, on_done=self.load)

    def on_revert(self) -> None:
        self.clear_errors()
        self.hub.show_errors([])
        self.load()


USER_FIELDS = [
    # (key, objectName suffix, label, kind, extra)
    ("enabled", "enabled", "Call recording enabled", "check", None),
    ("record", "record", "Record", "combo", [(m, m) for m in MODES]),
    ("recordVoicemailEnabled", "voicemail", "Record voicemail", "check", None),
    ("notification.enabled", "notification_enabled", "Pause/resume notification", "check", None),
    ("notification.type", "notification_type", "Notification type", "combo",
     [(t, t) for t in NOTIFICATION_TYPES]),
    ("repeat.enabled", "repeat_enabled", "Repeat a tone while recording", "check", None),
    ("repeat.interval", "repeat_interval", "Repeat tone interval (10-90 s)", "spin", None),
    ("startStopAnnouncement.internalCallsEnabled", "announce_internal", "Start/stop announcement: internal calls",
     "check", None),
    ("startStopAnnouncement.pstnCallsEnabled", "announce_pstn", "Start/stop announcement: PSTN calls",
     "check", None),
    ("selectiveCallRecordingSettings.enabled", "selective_enabled", "Selective call recording", "check", None),
    ("selectiveCallRecordingSettings.recordInboundInternalCallsEnabled", "selective_inbound_internal",
     "Record inbound internal calls", "check", None),
    ("selectiveCallRecordingSettings.recordInboundExternalCallsEnabled", "selective_inbound_external",
     "Record inbound external calls", "check", None),
    ("selectiveCallRecordingSettings.recordOutboundInternalCallsEnabled", "selective_outbound_internal",
     "Record outbound internal calls", "check", None),
    ("selectiveCallRecordingSettings.recordOutboundExternalCallsEnabled", "selective_outbound_external",
     "Record outbound external calls", "check", None),
    ("callRecordingAccessSettings.viewAndPlayRecordingsEnabled", "access_view", "User can view and play recordings",
     "check", None),
    ("callRecordingAccessSettings.downloadRecordingsEnabled", "access_download", "User can download recordings",
     "check", None),
    ("callRecordingAccessSettings.deleteRecordingsEnabled", "access_delete", "User can delete recordings",
     "check", None),
    ("callRecordingAccessSettings.shareRecordingsEnabled", "access_share", "User can share recordings",
     "check", None),
    ("postCallRecordingSettings.summaryAndActionItemsEnabled", "post_summary",
     "Summary and action items (Webex provider)", "check", None),
    ("postCallRecordingSettings.transcriptEnabled", "post_transcript", "Transcript (Webex provider)",
     "check", None),
]
GROUPS = [("Recording", ("enabled", "record", "recordVoicemailEnabled")),
          ("Notifications", ("notification.", "repeat.", "startStopAnnouncement.")),
          ("Selective call recording (Always modes only)", ("selectiveCallRecordingSettings.",)),
          ("Recording access", ("callRecordingAccessSettings.",)),
          ("After the call", ("postCallRecordingSettings.",))]


class UsersPage(_Page):
    """R-USR-1..8 and R-VL-1..4 per line, R-PRE-2 licence shown, R-USR-7 platform info read-only.
    Save sends the whole form as one put_person(..., view="control_hub") (R-USR-6: 10-90 s)."""

    def __init__(self, hub: "ControlHub"):
        super().__init__(hub)
        self.list = _named(QListWidget(), "ch_user_list", "List of users and virtual lines")   # the tab has the other name
        self.list.setMinimumWidth(250)
        self.list.setMaximumWidth(300)
        org = hub.sim.org
        names = {u.id: u for u in org.users}
        for lid in self.store.lines():
            info = self.store.line_info(lid)
            if info.kind == "user":
                text = f"{names[lid].name} ({lid}) · {names[lid].extension}"
            else:
                vl = next(v for v in org.virtual_lines if v.id == lid)
                text = f"{vl.name} ({lid}) · {vl.extension}\n  virtual line on {info.owner}'s {info.devices[0]}"
            item = QListWidgetItem(text)
            item.setData(Qt.UserRole, lid)
            self.list.addItem(item)
        self.list.currentRowChanged.connect(lambda _r: self.on_select())

        self.title = _named(QLabel(), "ch_user_title", "Selected line")
        self.licence = _named(QLabel(), "ch_user_licence", "Licence")
        self.location = _named(QLabel(), "ch_user_location", "Location")
        self.status = _named(QLabel(), "ch_user_status", "Recording status of the line")
        self.status.setWordWrap(True)
        self.platform = {}
        for key, suffix, label in (("serviceProvider", "sp", "Service Provider"),
                                   ("externalGroup", "group", "External Group"),
                                   ("externalIdentifier", "identifier", "External Identifier")):
            w = _named(QLineEdit(), f"ch_user_platform_{suffix}", f"{label} (read-only)")
            w.setReadOnly(True)
            w.setStyleSheet("background: #eeeeee;")
            self.platform[key] = (label, w)

        for key, suffix, label, kind, extra in USER_FIELDS:
            name = f"ch_user_{suffix}"
            if kind == "check":
                self.check(key, name, label)
            elif kind == "combo":
                self.combo(key, name, label, extra)
            else:
                self.spin(key, name, label)

        self.save = _named(QPushButton("Save"), "ch_save", "Save the line's recording settings")
        self.revert = _named(QPushButton("Revert"), "ch_revert", "Show the stored settings again")
        self.save.clicked.connect(self.on_save)
        self.revert.clicked.connect(self.on_revert)

        form_box = QWidget()
        fl = QVBoxLayout(form_box)
        fl.addWidget(self.title)
        head = QFormLayout()
        head.addRow("Licence:", self.licence)
        head.addRow("Location:", self.location)
        head.addRow("Status:", self.status)
        fl.addLayout(head)
        for title, prefixes in GROUPS:
            g = QGroupBox(title)
            gf = QFormLayout(g)
            for key, f in self.fields.items():
                if any(key == p or (p.endswith(".") and key.startswith(p)) for p in prefixes):
                    label = next(lbl for k, _s, lbl, _k, _e in USER_FIELDS if k == key)
                    if isinstance(f.widget, QCheckBox):
                        self.row(gf, "", f)
                    else:
                        self.row(gf, label + ":", f)
            fl.addWidget(g)
        plat = QGroupBox("Call recording platform info (read-only)")
        pf = QFormLayout(plat)
        for label, w in self.platform.values():
            pf.addRow(label + ":", w)
        fl.addWidget(plat)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.revert)
        buttons.addWidget(self.save)
        fl.addLayout(buttons)
        fl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(form_box)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        lay = QHBoxLayout(self)
        lay.addWidget(self.list)
        lay.addWidget(scroll, 1)
        self.list.setCurrentRow(0)

    @property
    def line(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.UserRole) if item else None

    def select(self, line_id: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.UserRole) == line_id:
                self.list.setCurrentRow(i)
                return
        raise KeyError(line_id)

    def on_select(self) -> None:
        if self.line is None:
            return
        info = self.store.line_info(self.line)
        section = "people" if info.kind == "user" else "virtualLines"
        self.show_path(f"{section}.{self.line}.callRecording")

    def _sync_enabled(self) -> None:
        """Settings are editable while recording is enabled (a line that is off has only
        cleared settings, R-USR-1): presentation only, the store checks every value."""
        on = self.fields["enabled"].get()
        for key, f in self.fields.items():
            if key != "enabled":
                f.widget.setEnabled(on)

    def fill(self) -> None:
        line = self.line
        person = self.store.get_person(line)
        info = self.store.line_info(line)
        for f in self.fields.values():
            f.put(_leaf(person, f.key))
        for key, (_label, w) in self.platform.items():
            w.setText(person[key])
        kind = "User" if info.kind == "user" else f"Virtual line on {info.owner}'s {info.devices[0]}"
        self.title.setText(f"<b>{line}</b> · {kind}")
        self.licence.setText(info.licence if info.kind == "user" else f"(virtual line; {info.owner}'s)")
        self.location.setText(info.location)
        self.refresh_status()
        self._sync_enabled()

    def refresh_status(self) -> None:
        eff = self.store.effective(self.line)
        if not eff.enabled:
            text, style = "call recording off for this line", ""
        elif eff.provider is None:
            text, style = "enabled, but no provider at its location (recording off there)", WARN_STYLE
        elif eff.recording_blocked:
            text, style = f"recording will fail: {eff.recording_blocked}", WARN_STYLE
        else:
            tier = f" {eff.provider_tier}" if eff.provider_tier else ""
            text, style = f"{eff.mode} · provider {eff.provider}{tier}", OK_STYLE
        self.status.setText(text)
        self.status.setStyleSheet(style)

    def patch(self) -> dict:
        """The whole form; a line being turned off sends only enabled: false (R-USR-1 clears it)."""
        if not self.fields["enabled"].get():
            return {"enabled": False}
        out: dict[str, Any] = {}
        for key, f in self.fields.items():
            _set_leaf(out, key, f.get())
        return out

    def on_save(self) -> None:
        line, patch = self.line, self.patch()
        if self.apply(lambda: self.store.put_person(line, patch, view=S.VIEW_CONTROL_HUB)):
            self.hub.show_errors([])
            self.load()

    def on_revert(self) -> None:
        self.clear_errors()
        self.hub.show_errors([])
        self.load()

    def on_store_changed(self) -> None:
        super().on_store_changed()
        if self.dirty:
            self.refresh_status()


ACCOUNT_COLUMNS = [("line", "Line"), ("product", "Product"), ("externalType", "External Type"),
                   ("serviceProvider", "Service Provider"), ("externalGroup", "External Group"),
                   ("externalIdentifier", "External Identifier"), ("status", "Recording")]


class ProviderPage(_Page):
    """The provider side (R-PRV-6, R-USR-7): the accounts each provider knows. Dubber's are
    created automatically when a line is enabled; Imagicle's and CallCabinet's by hand here, with
    the platform info Control Hub shows — a mismatch makes recording fail for the line."""

    def __init__(self, hub: "ControlHub"):
        super().__init__(hub)
        self.select = _named(QComboBox(), "ch_prov_select", "Provider")
        for p in S.ACCOUNT_PROVIDERS:
            self.select.addItem(f"{p} ({P.profile(p).provisioning} provisioning)", p)
        self.select.currentIndexChanged.connect(lambda _i: self.on_select())
        self.info = _named(QLabel(), "ch_prov_info", "About this provider's accounts")
        self.info.setWordWrap(True)
        self.table = _named(QTableWidget(0, len(ACCOUNT_COLUMNS)), "ch_prov_accounts", "Provider accounts")
        self.table.setHorizontalHeaderLabels([t for _k, t in ACCOUNT_COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self.on_row)
        self.admins = _named(QLabel(), "ch_prov_admins", "Provider administrators")

        self.line_choice = _named(QComboBox(), "ch_prov_line", "Line the account is for")
        for lid in self.store.lines():
            self.line_choice.addItem(lid, lid)
        self.line_choice.currentIndexChanged.connect(lambda _i: self.on_line())
        self.edits: dict[str, QLineEdit] = {}
        for key, suffix, label in (("product", "product", "Product"),
                                   ("externalType", "external_type", "External Type"),
                                   ("serviceProvider", "sp", "Service Provider"),
                                   ("externalGroup", "group", "External Group"),
                                   ("externalIdentifier", "identifier", "External Identifier")):
            w = _named(QLineEdit(), f"ch_prov_{suffix}", label)
            w.textEdited.connect(self.touch)
            self.edits[key] = w
            self._add(_Field(key, w, w.text, lambda v, w=w: w.setText(v or "")))
        self.fill_button = _named(QPushButton("Copy platform info from Control Hub"), "ch_prov_fill",
                                  "Fill in the line's platform info as Control Hub shows it")
        self.save = _named(QPushButton("Save account"), "ch_prov_save", "Create or update the account")
        self.delete = _named(QPushButton("Delete account"), "ch_prov_delete", "Delete the account")
        self.fill_button.clicked.connect(self.on_fill)
        self.save.clicked.connect(self.on_save)
        self.delete.clicked.connect(self.on_delete)

        editor = QGroupBox("Account")
        ef = QFormLayout(editor)
        ef.addRow("Line:", self.line_choice)
        for key, w in self.edits.items():
            label = next(t for k, t in ACCOUNT_COLUMNS if k == key)
            self.row(ef, label + ":", self.fields[key])
        buttons = QHBoxLayout()
        buttons.addWidget(self.fill_button)
        buttons.addStretch(1)
        buttons.addWidget(self.delete)
        buttons.addWidget(self.save)
        ef.addRow(buttons)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Provider:"))
        top.addWidget(self.select, 1)
        lay.addLayout(top)
        lay.addWidget(self.info)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.admins)
        lay.addWidget(editor)
        self.on_select()

    @property
    def provider(self) -> str:
        return self.select.currentData()

    @property
    def editable(self) -> bool:
        return P.profile(self.provider).provisioning == P.MANUAL

    def on_select(self) -> None:
        self.clear_errors()
        self.on_line()

    def on_line(self) -> None:
        self.show_path(f"organisation.recording.accounts.{self.provider}.users.{self.line_choice.currentData()}")

    def accounts(self) -> dict:
        return self.store.get_org()["accounts"].get(self.provider, {"administrators": [], "users": {}})

    def fill(self) -> None:
        prov = self.provider
        acc = self.accounts()
        if self.editable:
            self.info.setText(f"{prov} accounts are not created automatically: add one per recorded line "
                              f"with the platform info Control Hub shows, or recording fails for the line "
                              f"(R-PRV-6, R-USR-7).")
        else:
            self.info.setText(f"{prov} accounts are created automatically when a line is enabled for "
                              f"recording (R-PRV-6); shown read-only.")
        users = acc.get("users", {})
        # lines this provider records but has no account for (R-PRV-6: recording fails for them)
        missing = [lid for lid in self.store.lines() if lid not in users
                   and self.store.effective(lid).provider == prov and self.store.effective(lid).enabled]
        rows = [(lid, a) for lid, a in users.items()] + [(lid, {"product": "(no account)"}) for lid in missing]
        self.table.setRowCount(len(rows))
        for r, (lid, a) in enumerate(rows):
            status = self._status(lid)
            values = {"line": lid, **a, "status": status}
            for c, (key, _t) in enumerate(ACCOUNT_COLUMNS):
                item = QTableWidgetItem(str(values.get(key, "")))
                item.setToolTip(item.text())
                if key == "status" and status.startswith("fails"):
                    item.setForeground(Qt.red)
                self.table.setItem(r, c, item)
        self.admins.setText("Administrators: " + (", ".join(acc.get("administrators", [])) or "none"))
        line = self.line_choice.currentData()
        a = users.get(line)
        for key, w in self.edits.items():
            w.setText(a.get(key, "") if a else "")
            w.setReadOnly(not self.editable)
        for b in (self.fill_button, self.save, self.delete):
            b.setEnabled(self.editable)
        self.delete.setEnabled(self.editable and a is not None)

    def _status(self, line: str) -> str:
        eff = self.store.effective(line)
        if eff.provider != self.provider:
            return f"not in use (line's provider: {eff.provider or 'None'})"
        if not eff.enabled:
            return "line not enabled"
        return f"fails: {eff.recording_blocked}" if eff.recording_blocked else "works"

    def on_row(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            lid = self.table.item(rows[0].row(), 0).text()
            i = self.line_choice.findData(lid)
            if i >= 0 and i != self.line_choice.currentIndex():
                self.line_choice.setCurrentIndex(i)

    def on_fill(self) -> None:
        """The values Control Hub shows for the line (R-USR-7), to paste on the provider side."""
        sp, group, ident = self.store.platform_info(self.line_choice.currentData())
        for key, v in (("product", P.PRODUCT), ("externalType", P.EXTERNAL_TYPE), ("serviceProvider", sp),
                       ("externalGroup", group), ("externalIdentifier", ident)):
            self.edits[key].setText(v)
        self.touch()

    def on_save(self) -> None:
        account = {k: w.text() for k, w in self.edits.items()}
        prov, line = self.provider, self.line_choice.currentData()
        if self.apply(lambda: self.store.set_provider_account(prov, line, account)):
            self.hub.show_errors([])
            self.load()

    def on_delete(self) -> None:
        prov, line = self.provider, self.line_choice.currentData()
        if self.apply(lambda: self.store.set_provider_account(prov, line, None)):
            self.hub.show_errors([])
            self.load()


# ---------------------------------------------------------------------------------------------


class _StoreSignal(QObject):
    changed = Signal(list)


class ControlHub(QWidget):
    """The Control Hub view of ``sim.settings``. Changes apply through the store, which the
    simulator's subscriber pushes live to the agents; this view follows every store change
    (from here, a scenario or the API) except on a page with unsaved edits."""

    def __init__(self, sim, parent=None):
        super().__init__(parent)
        self.sim = sim
        self.store = sim.settings
        self.setObjectName("control_hub")
        self.setWindowTitle(f"Control Hub — call recording — {sim.org.name}")
        self.errors = _named(QLabel(), "ch_errors", "Errors of the last change")
        self.errors.setWordWrap(True)
        self.errors.setStyleSheet("color: #c62828; background: #ffebee; border: 1px solid #ef9a9a; padding: 6px;")
        self.errors.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.errors.setVisible(False)
        self.notices = _named(QLabel(), "ch_notices", "Notices of the last change")
        self.notices.setWordWrap(True)
        self.notices.setStyleSheet(NOTICE_STYLE)
        self.notices.setVisible(False)
        self.org_page = OrganisationPage(self)
        self.locations_page = LocationsPage(self)
        self.users_page = UsersPage(self)
        self.provider_page = ProviderPage(self)
        self.pages = [self.org_page, self.locations_page, self.users_page, self.provider_page]
        self.tabs = _named(QTabWidget(), "ch_tabs", "Control Hub pages")
        self.tabs.addTab(self.org_page, "Organisation")
        self.tabs.addTab(self.locations_page, "Locations")
        self.tabs.addTab(self.users_page, "Users and virtual lines")
        self.tabs.addTab(self.provider_page, "Provider side")
        from .control_hub_features import FeaturesPage     # Calling > Features (issue 25)

        self.features_page = FeaturesPage(self)
        self.tabs.addTab(self.features_page, "Features")
        self.tabs.currentChanged.connect(lambda _i: self.show_errors([]))
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("<b>Control Hub</b> · Calling › Call recording"))
        lay.addWidget(self.tabs, 1)
        lay.addWidget(self.errors)
        lay.addWidget(self.notices)
        self.terms_dialog: TermsDialog | None = None

        # follow the store (its subscribers may run on any thread: hop to the GUI thread)
        self._signal = _StoreSignal(self)
        self._signal.changed.connect(self._on_store_changed)
        unsubscribe = self.store.subscribe(self._signal.changed.emit)
        self.destroyed.connect(lambda *_: unsubscribe())
        self.resize(980, 760)
        self.refresh()

    def refresh(self) -> None:
        """Show the stored settings on every page (unsaved edits are discarded)."""
        for page in self.pages:
            page.clear_errors()
            page.load()
        self.show_errors([])

    def _on_store_changed(self, _lines: list) -> None:
        for page in self.pages:
            page.on_store_changed()
        self.features_page.on_store_changed()

    def show_errors(self, errors: list[str]) -> None:
        self.errors.setText("\n".join(f"• {e}" for e in errors))
        self.errors.setVisible(bool(errors))
        if errors:
            self.notices.setVisible(False)

    def show_notices(self, notices: list[str]) -> None:
        self.show_errors([])
        self.notices.setText("\n".join(f"ℹ {n}" for n in notices))
        self.notices.setVisible(bool(notices))

    def ask_terms_then(self, change: Callable[[], list[str]], provider: str, page: _Page,
                       on_done: Callable[[], None]) -> None:
        """Try ``change``; if the store refuses it only because ``provider``'s terms are not
        accepted (409, R-PRV-7), open the terms dialog: Accept -> accept_terms + retry; Cancel ->
        nothing changes. Other refusals show next to their fields."""
        try:
            notices = change()
        except SettingsError as exc:
            if exc.status == 409 and provider in P.PROFILES:
                self.open_terms(provider, exc.errors, change, page, on_done)
                return
            page.show_errors(exc.errors)
            self.show_errors(exc.errors)
            return
        page.clear_errors()
        self.show_notices(notices)
        on_done()

    def open_terms(self, provider: str, errors: list[str], change: Callable[[], list[str]],
                   page: _Page, on_done: Callable[[], None]) -> None:
        reason = "\n".join(split_error(e)[1] for e in errors)
        d = self.terms_dialog = TermsDialog(provider, reason, self)
        page.show_errors(errors)
        self.show_errors(errors)

        def accepted():
            self.store.accept_terms(provider)
            try:
                notices = change()
            except SettingsError as exc:
                page.show_errors(exc.errors)
                self.show_errors(exc.errors)
            else:
                page.clear_errors()
                self.show_notices(notices)
            on_done()

        def rejected():
            on_done()           # show the stored values again: nothing changed
        d.accepted.connect(accepted)
        d.rejected.connect(rejected)
        d.open()


def save_screenshots(org_path: str, out_dir: str) -> list[str]:
    """PNG of each Control Hub page, headless: the organisation page, a user with a refused
    change (repeat interval 5, R-USR-6) and the provider side with an R-USR-7 mismatch.
    ``python -m mppsim.ui.control_hub [ORG] [DIR]``."""
    import os
    from pathlib import Path
    import tempfile
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from mppsim.app.simulator import Simulator

    app = QApplication.instance() or QApplication([])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved: list[str] = []
    with tempfile.TemporaryDirectory() as run:
        sim = Simulator(org_path, run_dir=run, recorder=False)
        hub = ControlHub(sim)
        hub.resize(1000, 800)
        hub.show()

        def grab(name: str) -> None:
            app.processEvents()
            saved.append(str(out / name))
            hub.grab().save(saved[-1])

        grab("control-hub-org.png")
        hub.tabs.setCurrentWidget(hub.users_page)
        page = hub.users_page
        page.select(sim.org.users[-1].id)
        page.fields["repeat.enabled"].put(True)
        page.fields["repeat.interval"].put(5)
        page.dirty = True
        page.on_save()
        app.processEvents()
        page.fields["repeat.interval"].widget.setFocus()
        grab("control-hub-user.png")
        # provider side: Imagicle, alice's account with a wrong External Group (R-USR-7)
        sim.settings.accept_terms(P.IMAGICLE)
        sim.settings.set_org({"provider": P.IMAGICLE})
        first = sim.org.users[0].id
        sp, group, ident = sim.settings.platform_info(first)
        sim.settings.set_provider_account(P.IMAGICLE, first, {"serviceProvider": sp, "externalGroup": "wrong-group",
                                                             "externalIdentifier": ident})
        second = sim.org.users[1].id
        sp, group, ident = sim.settings.platform_info(second)
        sim.settings.set_provider_account(P.IMAGICLE, second, {"serviceProvider": sp, "externalGroup": group,
                                                              "externalIdentifier": ident})
        hub.refresh()
        pp = hub.provider_page
        pp.select.setCurrentIndex(pp.select.findData(P.IMAGICLE))
        hub.tabs.setCurrentWidget(pp)
        grab("control-hub-provider.png")
        hub.close()
        sim.stop()
    return saved


if __name__ == "__main__":
    import sys
    args = sys.argv[1:]
    for path in save_screenshots(args[0] if args else "examples/demo-org.yaml",
                                 args[1] if len(args) > 1 else "docs/screenshots"):
        print(path)
