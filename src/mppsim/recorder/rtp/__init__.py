"""The recorder's RTP side: packet parsing, per-stream receivers with quality counters, codecs
(G.711 and G.722 from aiortp / the G722 package, Opus from opuslib when libopus loads)."""
