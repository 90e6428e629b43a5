"""The recorder's G.711 against the ITU reference (issue 21): every one of the 256 codes of each law
decodes to the value of Sun Microsystems' public-domain g711.c (the reference implementation of the
ITU-T G.711 tables), recomputed here from its bit operations, not read from the table under test;
plus values printed in G.711 itself. A 16 kHz -> 8 kHz change keeps a tone and removes what
narrowband cannot carry."""
import numpy as np

from mppsim.recorder.rtp import codecs


def sun_alaw2linear(a_val: int) -> int:
    a_val ^= 0x55
    t = (a_val & 0x0F) << 4
    seg = (a_val & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t += 0x108
        t <<= seg - 1
    return t if a_val & 0x80 else -t


def sun_ulaw2linear(u_val: int) -> int:
    u_val = ~u_val & 0xFF
    t = ((u_val & 0x0F) << 3) + 0x84
    t <<= (u_val & 0x70) >> 4
    return 0x84 - t if u_val & 0x80 else t - 0x84


def test_alaw_decodes_every_code_as_the_itu_reference():
    got = np.frombuffer(codecs.PcmaCodec().decode(bytes(range(256))), "<i2")
    assert [int(v) for v in got] == [sun_alaw2linear(c) for c in range(256)]
    # G.711 table 1a: the smallest positive step is sent as 0xD5 (aiortp 0.8.0 gave -8)
    assert (got[0xD5], got[0x55], got[0xAA], got[0x2A]) == (8, -8, 32256, -32256)


def test_ulaw_decodes_every_code_as_the_itu_reference():
    got = np.frombuffer(codecs.PcmuCodec().decode(bytes(range(256))), "<i2")
    assert [int(v) for v in got] == [sun_ulaw2linear(c) for c in range(256)]
    assert (got[0x80], got[0x00], got[0xFF], got[0x7F]) == (32124, -32124, 0, 0)


def test_encoders_round_trip_and_keep_the_sign():
    for codec, zero_codes in ((codecs.PcmaCodec(), set()), (codecs.PcmuCodec(), {0x7F})):
        codes = bytes(c for c in range(256) if c not in zero_codes)
        assert codec.encode(codec.decode(codes)) == codes
        tone = (10000 * np.sin(2 * np.pi * 440 * np.arange(800) / 8000)).astype(np.int16)
        back = np.frombuffer(codec.decode(codec.encode(tone.tobytes())), np.int16)
        assert np.corrcoef(tone, back)[0, 1] > 0.999          # not inverted: +1, not -1


def test_a_pcma_and_a_pcmu_channel_of_the_same_signal_add_up_instead_of_cancelling():
    tone = (8000 * np.sin(2 * np.pi * 1000 * np.arange(1600) / 8000)).astype(np.int16).tobytes()
    a = np.frombuffer(codecs.PcmaCodec().decode(codecs.PcmaCodec().encode(tone)), np.int16)
    u = np.frombuffer(codecs.PcmuCodec().decode(codecs.PcmuCodec().encode(tone)), np.int16)
    mix = a.astype(np.int32) + u
    assert np.abs(mix).max() > 15000


def test_16k_to_8k_keeps_a_tone_and_removes_what_narrowband_cannot_carry():
    t = np.arange(16000) / 16000
    x = (6000 * np.sin(2 * np.pi * 1000 * t) + 6000 * np.sin(2 * np.pi * 5000 * t)).astype(np.int16)
    rs = codecs.Resampler(16000, 8000)
    out = np.concatenate([rs(x[i:i + 320]) for i in range(0, len(x), 320)])   # packet by packet
    assert len(out) == 8000              # every packet gives its share: packets are placed by position
    spectrum = np.abs(np.fft.rfft(out[1000:7000].astype(float)))
    freqs = np.fft.rfftfreq(6000, 1 / 8000)
    at = lambda f: spectrum[np.argmin(np.abs(freqs - f))]           # noqa: E731
    # 5 kHz would fold to 3 kHz with a 2-tap average (it keeps ~30 % of it); a real filter removes it
    assert at(3000) < at(1000) / 300
