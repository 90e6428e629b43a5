"""Unit tests of the recorder's own SIP/RTP layer (src/mppsim/sip/dialog.py, src/mppsim/recorder/answer.py,
src/mppsim/recorder/rtp), one per rule of RFC 3261 / 3264 / 3550 / 4028 it relies on, plus the issue 9
quirk classes they fix. The SIP messages themselves: tests/test_sip_message.py."""
from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from mppsim.recorder.rtp import codecs, receiver as receiver_module
from mppsim.recorder.rtp.packet import is_rtcp, parse as parse_rtp
from mppsim.recorder.rtp.receiver import StreamReceiver
from mppsim.sip import message as m
from mppsim.sip.dialog import Dialog, Transactions
from mppsim.recorder.answer import SdpError, build_answer, parse_offer

INVITE = ("INVITE sip:srs@127.0.0.1:5070 SIP/2.0\r\n"
          "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport\r\n"
          "f: \"Alice Smith\" <sip:1001@10.0.0.1>;tag=t1\r\n"
          "t: <sip:srs@127.0.0.1>\r\n"
          "i: call-1@10.0.0.1\r\n"
          "CSeq: 7 INVITE\r\n"
          "Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\n"
          "Route: sip:127.0.0.1:5070;lr\r\n"
          "m: <sip:src@10.0.0.1:5060>;+sip.src\r\n"
          "Subject: folded\r\n continued\r\n"
          "l: 4\r\n\r\nbodyEXTRA")


def test_rfc3261_17_2_3_retransmissions_are_matched_by_branch_and_get_the_same_answer():
    req = m.parse(INVITE.encode())
    tx = Transactions(lifetime=0.05)
    assert tx.seen(req) == (False, None)
    tx.begin(req)
    tx.answered(req, b"SIP/2.0 200 OK\r\n\r\n")
    assert tx.seen(req) == (True, b"SIP/2.0 200 OK\r\n\r\n")
    ack = m.parse(INVITE.replace("INVITE sip", "ACK sip").replace("7 INVITE", "7 ACK").encode())
    assert tx.key(ack) == tx.key(req)     # the ACK of a non-2xx belongs to the INVITE transaction
    time.sleep(0.06)
    tx.expire()
    assert len(tx) == 0


def test_rfc3261_12_uas_dialog_route_set_cseq_order_2xx_retransmission_and_bye():
    req = m.parse(INVITE.encode())
    d = Dialog.from_invite(req, "127.0.0.1:5070", "udp")
    assert d.route_set == ["<sip:p1;lr>", "<sip:p2;lr>"] and d.remote_target == "sip:src@10.0.0.1:5060"
    later = m.parse(INVITE.replace("7 INVITE", "9 INVITE").encode())
    earlier = m.parse(INVITE.replace("7 INVITE", "3 INVITE").encode())
    assert d.in_order(later) and not d.in_order(earlier)          # §12.2.2: lower CSeq -> 500
    d.sent_ok(b"OK", reliable=False)
    t = d.ok_sent_at
    assert not d.due_retransmit(t + 0.1) and d.due_retransmit(t + 0.6)   # T1, then doubling
    assert d.interval == 1.0 and d.ack_overdue(t + 33) and not d.ack_overdue(t + 31)
    d.confirmed = True
    assert not d.due_retransmit(t + 10) and not d.ack_overdue(t + 40)
    bye = m.parse(d.bye())
    assert bye.method == "BYE" and bye.uri == "sip:src@10.0.0.1:5060"
    assert bye.get_all("route") == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert bye.to_tag == "t1" and bye.from_tag == d.local_tag and bye.cseq == (2, "BYE")


OFFER = ("v=0\r\no=BroadWorks 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
         "m=audio 4000 RTP/AVP 111 0 8 9 101\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n"
         "a=fmtp:101 0-15\r\na=label:1\r\na=sendonly\r\n"
         "m=audio 4002 RTP/AVP 8\r\na=label:2\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\n"
         "m=video 4004 RTP/AVP 96\r\n"
         "m=audio 4006 RTP/AVP 0\r\na=label:3\r\n")


def test_rfc3264_6_answer_has_every_m_line_in_order_recvonly_with_decodable_codecs():
    offer = parse_offer(OFFER)
    assert offer.origin_user == "BroadWorks" and [x.kind for x in offer.media] == ["audio", "audio", "video", "audio"]
    assert [x.state for x in offer.audio] == ["sendonly", "inactive", "sendrecv"]   # c=0.0.0.0 = paused
    assert [i for i, _ in offer.recorded()] == [0, 1]          # two channels: the first two audio
    answer = build_answer(offer, "127.0.0.1", {0: 30000, 1: 30002}, 1)
    mlines = [l for l in answer.split("\r\n") if l.startswith("m=")]
    assert len(mlines) == 4 and mlines[2].startswith("m=video 0 ") and mlines[3].startswith("m=audio 0 ")
    first = mlines[0].split()[3:]
    want = ["0", "8", "9", "101"] if "OPUS" not in codecs.supported() else ["111", "0", "8", "9", "101"]
    assert first == want if codecs.HAVE_G722 else True
    assert "a=rtcp:30000" in answer and "a=label:1" in answer and "a=fmtp:101 0-15" in answer
    assert answer.count("a=recvonly") == 1 and answer.count("a=inactive") == 1


def test_issue_9_class_1_pcma_only_offer_is_recordable_and_unknown_codecs_are_not():
    pcma = parse_offer("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 8\r\n")
    assert pcma.audio[0].recordable and pcma.audio[0].decodable() == {8: ("PCMA", 8000)}
    odd = parse_offer("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 98\r\na=rtpmap:98 AMR/8000\r\n")
    assert not odd.audio[0].recordable
    with pytest.raises(SdpError):
        parse_offer("v=0\r\nm=audio notaport RTP/AVP 0\r\n")
    with pytest.raises(SdpError):
        parse_offer("v=0\r\n" + "m=audio 4 RTP/AVP 0\r\n" * 65)


def rtp(pt, seq, ts, payload, ssrc=7, marker=False, csrc=0, ext=b"", pad=0):
    b0 = 0x80 | csrc | (0x10 if ext else 0) | (0x20 if pad else 0)
    head = bytes([b0, pt | (0x80 if marker else 0)]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big") \
        + ssrc.to_bytes(4, "big") + b"\0\0\0\1" * csrc
    if ext:
        head += b"\xbe\xde" + (len(ext) // 4).to_bytes(2, "big") + ext
    return head + payload + (bytes(pad - 1) + bytes([pad]) if pad else b"")


def test_rfc3550_5_1_header_csrc_extension_padding_and_garbage():
    p = parse_rtp(rtp(8, 5, 160, b"\x55" * 10, csrc=2, ext=b"abcd", pad=4))
    assert (p.pt, p.seq, p.ts, p.ssrc, p.payload) == (8, 5, 160, 7, b"\x55" * 10)
    assert parse_rtp(b"\x00" * 20) is None and parse_rtp(b"\x80") is None
    assert parse_rtp(rtp(0, 1, 1, b"", pad=200)[:-1] + b"\xff") is None
    assert is_rtcp(b"\x81\xc9\x00\x07" + bytes(28))


class _T:   # stands in for the asyncio transport in unit tests
    def get_extra_info(self, _k):
        return ("127.0.0.1", 1)

    def close(self):
        pass


def receiver(formats, rate=8000):
    rx = StreamReceiver(rate, time.monotonic())
    rx.connection_made(_T())
    rx.set_formats(formats)
    return rx


def test_rfc3550_a1_loss_late_duplicate_wrong_pt_and_dtmf_are_counted():
    rx = receiver({8: ("PCMA", 8000), 101: ("TELEPHONE-EVENT", 8000)})
    alaw = codecs.PcmaCodec().encode(np.full(160, 3000, np.int16).tobytes())
    for seq in (1, 2, 4, 5, 5):                      # 3 lost, 5 duplicated
        rx.datagram_received(rtp(8, seq, seq * 160, alaw), None)
    rx.datagram_received(rtp(0, 6, 960, alaw), None)   # PCMU was not offered
    rx.datagram_received(rtp(101, 7, 960, b"\x01\x0a\x00\xa0"), None)
    rx.datagram_received(b"\x80\xc8" + bytes(30), None)  # RTCP on the RTP port
    rx.datagram_received(b"garbage!" * 3, None)
    out = rx.drain(int(0.25 * 8000) + 2000)
    st = rx.final_stats()
    assert (st["received"], st["lost"], st["duplicates"], st["wrong_pt"], st["dtmf"]) == (6, 1, 1, 1, 1)
    assert (st["rtcp"], st["garbage"], st["codecs"]) == (1, 1, ["PCMA"])
    assert np.abs(out).max() > 2000 and st["peak"] > 2000
    rx.datagram_received(rtp(8, 3, 3 * 160, alaw), None)   # seq 3 after its place was written
    assert rx.final_stats()["late"] == 1


def test_packets_are_placed_by_timestamp_gaps_become_silence():
    rx = receiver({0: ("PCMU", 8000)})
    ulaw = codecs.PcmuCodec().encode(np.full(160, 8000, np.int16).tobytes())
    rx.datagram_received(rtp(0, 1, 1000, ulaw), None)
    rx.datagram_received(rtp(0, 3, 1320, ulaw), None)      # one packet (seq 2) missing
    start = rx._anchor[2]
    out = rx.drain(start + 480)
    tail = out[start:]
    assert np.all(tail[:160] > 7000) and np.all(tail[160:320] == 0) and np.all(tail[320:] > 7000)


def test_drain_in_one_join_gives_the_samples_of_the_general_copy(monkeypatch):
    """The receiver's drain joins packets that lie end to end (the usual stream) instead of
    copying each: on streams with loss, reordering, duplicates and drains at any point it gives
    exactly what the general copy gives, stream by stream; also when a new SSRC (a transfer, a
    restarted sender) is anchored where the old one's packets still wait, so they overlap."""
    now = [1000.0]     # one clock for both receivers: a packet's arrival places it the same
    monkeypatch.setattr(receiver_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    rng = np.random.default_rng(7)
    fast_drains = 0
    for trial in range(40):
        fast, slow = StreamReceiver(8000, now[0]), StreamReceiver(8000, now[0])
        for rx in (fast, slow):
            rx.connection_made(_T())
            rx.set_formats({0: ("PCMU", 8000)})
        slow.drain = slow._drain_copy           # the reference: every drain the general way
        order = list(range(1, 120))
        for _ in range(int(rng.integers(0, 8))):                     # some arrive late
            i = int(rng.integers(0, len(order) - 3))
            order[i], order[i + 2] = order[i + 2], order[i]
        order = [s for s in order if rng.random() > 0.05]            # some are lost
        order += [int(s) for s in rng.choice(order, 3)]              # some come twice
        got_fast, got_slow = [], []
        switch = int(rng.integers(20, 100)) if trial % 2 else len(order)
        for k, seq in enumerate(order):
            now[0] += 0.02 if k != switch else -0.05       # the new SSRC anchors 70 ms back
            ssrc = 7 if k < switch else 8
            pcm = np.full(160, 100 * (seq % 50) + 200 + 7 * ssrc, np.int16).tobytes()
            for rx in (fast, slow):
                rx.datagram_received(rtp(0, seq, seq * 160, codecs.PcmuCodec().encode(pcm), ssrc=ssrc), None)
            if k % int(rng.integers(1, 12)) == 0 and fast.high:
                upto = fast._written + int(rng.integers(0, max(0, fast.high - fast._written) + 1))
                fast_drains += bool(fast._pending) and fast._pending[0][0] == fast._written
                got_fast.append(fast.drain(upto))
                got_slow.append(slow.drain(upto))
        end = fast.high + 80
        got_fast.append(fast.drain(end))
        got_slow.append(slow.drain(end))
        assert np.array_equal(np.concatenate(got_fast), np.concatenate(got_slow)), trial
        assert fast.stats.late == slow.stats.late
        assert fast.stats.received > 100 and np.count_nonzero(np.concatenate(got_fast)) > 80 * 160
    assert fast_drains > 200         # the join was tried, not only the general copy


@pytest.mark.skipif(not codecs.HAVE_G722, reason="G722 package missing")
def test_issue_9_class_5_g722_is_decoded_wideband_and_resampled_into_a_narrowband_file():
    from aiortp.codecs.g722 import G722Codec
    t = np.arange(16000) / 16000
    tone = (8000 * np.sin(2 * np.pi * 5000 * t)).astype(np.int16)      # above 4 kHz: wideband only
    enc = G722Codec()
    packets = [enc.encode(tone[i:i + 320].tobytes()) for i in range(0, 16000, 320)]
    wide = receiver({9: ("G722", 8000)}, rate=16000)
    for i, p in enumerate(packets):
        wide.datagram_received(rtp(9, i, i * 160, p), None)
    out = wide.drain(wide._anchor[2] + 16000)[wide._anchor[2]:]
    spectrum = np.abs(np.fft.rfft(out[4000:12000]))
    assert abs(np.argmax(spectrum) * 16000 / 8000 - 5000) < 20         # 5 kHz survives at 16 kHz
    narrow = receiver({9: ("G722", 8000)}, rate=8000)
    for i, p in enumerate(packets):
        narrow.datagram_received(rtp(9, i, i * 160, p), None)
    assert len(narrow.drain(narrow._anchor[2] + 8000)) == narrow._anchor[2] + 8000
    assert narrow.final_stats()["codecs"] == ["G722"]


@pytest.mark.skipif(not codecs.HAVE_OPUS, reason="libopus not loadable")
def test_opus_is_decoded_when_libopus_loads():
    import opuslib
    enc = opuslib.Encoder(48000, 1, opuslib.APPLICATION_VOIP)
    t = np.arange(960 * 25) / 48000
    tone = (8000 * np.sin(2 * np.pi * 600 * t)).astype(np.int16)
    rx = receiver({111: ("OPUS", 48000)}, rate=16000)
    for i in range(25):
        rx.datagram_received(rtp(111, i, i * 960, enc.encode(tone[i * 960:(i + 1) * 960].tobytes(), 960)), None)
    out = rx.drain(rx._anchor[2] + 8000)[rx._anchor[2]:]
    spectrum = np.abs(np.fft.rfft(out[1600:]))
    assert abs(np.argmax(spectrum) * 16000 / len(out[1600:]) - 600) < 30


def test_issue_21_audio_verdict_counts_packets_per_stream_against_the_recorded_time():
    from mppsim.recorder.session import audio_verdict
    both = [{"channel": "left", "received": 100}, {"channel": "right", "received": 98}]
    assert audio_verdict(both, 2.0) == ""
    assert audio_verdict([dict(s, received=0) for s in both], 0.5) == ""         # too short to judge
    assert audio_verdict([dict(s, received=0) for s in both], 4.1).startswith("no audio: no RTP packet")
    few = audio_verdict([both[0], dict(both[1], received=3)], 4.0)
    assert few.startswith("no audio on right (3 packets) in 4.0 s")
