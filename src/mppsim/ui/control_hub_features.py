"""Control Hub's Calling > Features, read only: the hunt groups, call queues and auto attendants
of the org file with their numbers, location and language (issue 25).

The language column is what a caller hears: the feature's menu and messages, and the compliance
announcement of a PSTN call straight to it (R-CMP-5) when its location has that on (the last
column, from the settings store: it follows Control Hub changes).
"""
from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

KIND_NAMES = {"hunt_group": "Hunt group", "call_queue": "Call queue", "auto_attendant": "Auto attendant"}
COLUMNS = ("Type", "Name", "Extension", "Number", "Location", "Language", "Routing", "Members / menu",
           "Compliance announcement")


def feature_rows(org, store) -> list[list[str]]:
    """The table's rows, in the org file's order (pure: tests read it without Qt)."""
    rows = []
    for f in org.features:
        if f.kind == "auto_attendant":
            routing = "business-hours menu"
            members = ", ".join(f"{k}: {a.action}" + (f" {a.target}" if a.target else "") for k, a in f.menu)
        else:
            routing = f.policy
            members = ", ".join(m.line + (f" ({m.weight}%)" if f.policy == "weighted" else "") for m in f.members)
        comp = store.compliance_at(f.location)
        compliance = (f"inbound PSTN, in {f.language}" if comp["inbound_pstn"] and comp["provider"] else "off")
        rows.append([KIND_NAMES[f.kind], f.name, f.extension or "", f.number or "",
                     org.location(f.location).name, f.language, routing, members, compliance])
    return rows


class FeaturesPage(QWidget):
    def __init__(self, hub) -> None:
        super().__init__()
        self.hub = hub
        self.setObjectName("ch_features")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("ch_features_table")
        self.table.setAccessibleName("Hunt groups, call queues and auto attendants")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        lay = QVBoxLayout(self)
        note = QLabel("Calling › Features, from the org file (read only). A feature speaks its menu, messages "
                      "and the compliance announcement in its language (General settings › Language).")
        note.setWordWrap(True)
        lay.addWidget(note)
        lay.addWidget(self.table, 1)
        self.load()

    def load(self) -> None:
        rows = feature_rows(self.hub.sim.org, self.hub.store)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))

    def on_store_changed(self) -> None:
        self.load()

    def clear_errors(self) -> None:
        pass
