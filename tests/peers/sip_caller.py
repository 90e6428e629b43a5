"""An external softphone for tests: a standalone pjsua2 UA that is NOT part of mppsim.

It calls a SIP URI (e.g. the front door), follows a 302, sends a tone, keeps what it hears,
hangs up after --seconds of talk and prints one JSON line:
  {"state": "ended", "connected": true, "redirected_to": "...", "heard_hz": 1500.0, ...}
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import pjsua2 as pj

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from mppsim.phone.analysis import analyse  # noqa: E402


class Capture(pj.AudioMediaPort):
    def __init__(self):
        super().__init__()
        self.chunks = []
        fmt = pj.MediaFormatAudio()
        fmt.type = pj.PJMEDIA_TYPE_AUDIO
        fmt.clockRate, fmt.channelCount, fmt.bitsPerSample, fmt.frameTimeUsec = 8000, 1, 16, 20000
        self.createPort("capture", fmt)

    def onFrameReceived(self, frame):  # noqa: N802
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO:
            self.chunks.append(np.frombuffer(bytes(frame.buf), dtype=np.int16))

    def onFrameRequested(self, frame):  # noqa: N802
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE


class Caller(pj.Call):
    def __init__(self, acc, out):
        super().__init__(acc)
        self.out = out
        self.capture = Capture()
        self.tone = None

    def onCallState(self, prm):  # noqa: N802
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.out["connected"] = True
            self.out["remote"] = ci.remoteUri
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.out["state"] = "ended"
            self.out["status"] = ci.lastStatusCode

    def onCallMediaState(self, prm):  # noqa: N802
        ci = self.getInfo()
        for i in range(len(ci.media)):
            if ci.media[i].type == pj.PJMEDIA_TYPE_AUDIO and ci.media[i].audioConfSlot >= 0:
                aud = self.getAudioMedia(i)
                aud.startTransmit(self.capture)
                self.tone.startTransmit(aud)

    def onCallRedirected(self, prm):  # noqa: N802
        self.out["redirected_to"] = prm.targetUri
        return pj.PJSIP_REDIRECT_ACCEPT_REPLACE


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--to", required=True)
    ap.add_argument("--tone", type=float, default=600)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--transport", default="udp", choices=["udp", "tcp"])
    args = ap.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.medConfig.clockRate = cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.sndAutoCloseTime = -1
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.level = 0
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
        tc = pj.TransportConfig()
        tc.boundAddress = "127.0.0.1"
        ep.transportCreate(kind, tc)
    ep.libStart()
    acfg = pj.AccountConfig()
    acfg.idUri = '"External Tester" <sip:tester@127.0.0.1>'
    acfg.natConfig.iceEnabled = False
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acc = pj.Account()
    acc.create(acfg)

    out = {"state": "calling", "connected": False, "redirected_to": None}
    tone = pj.ToneGenerator()
    tone.createToneGenerator(8000, 1)
    td = pj.ToneDesc()
    td.freq1, td.freq2, td.on_msec, td.off_msec, td.volume = int(args.tone), 0, 10000, 0, 10000
    tv = pj.ToneDescVector()
    tv.append(td)
    tone.play(tv, True)
    call = Caller(acc, out)
    call.tone = tone
    uri = args.to + (";transport=tcp" if args.transport == "tcp" else "")
    call.makeCall(uri, pj.CallOpParam(True))

    deadline = time.monotonic() + args.timeout
    talk_end = None
    while out["state"] != "ended" and time.monotonic() < deadline:
        ep.libHandleEvents(20)
        if out["connected"] and talk_end is None:
            talk_end = time.monotonic() + args.seconds
        if talk_end is not None and time.monotonic() > talk_end and out["state"] != "hanging up":
            out["state"] = "hanging up"
            call.hangup(pj.CallOpParam(True))
    for _ in range(20):
        ep.libHandleEvents(10)
    samples = np.concatenate(call.capture.chunks) if call.capture.chunks else np.zeros(0, np.int16)
    heard = analyse(samples, 8000)
    out["heard_hz"] = heard.freq_hz
    out["heard_active_seconds"] = heard.active_seconds
    print(json.dumps(out), flush=True)
    os._exit(0)  # see src/mppsim/phone/agent.py destroy(): no pjsua teardown


if __name__ == "__main__":
    sys.exit(main())
