"""The recorder's RTP side: packet parsing, per-stream receivers with quality counters, codecs
(G.711 tables from the ITU formulas, G.722 from the G722 package, Opus from opuslib when libopus loads)."""
