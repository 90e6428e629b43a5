"""The SIP toolkit: every mppsim process's one reading and writing of SIP (issue 20), no I/O.

- `message`: the tolerant parser (requests and responses, compact forms, folded lines,
  case-insensitive names, multi-value headers) and the serializer;
- `uri`: SIP/tel URIs and name-addr values (user part, host, port, parameters, transport);
- `sdp`: session descriptions for offers and answers alike, and the pause conventions;
- `framing`: where a message ends on a stream (TCP, TLS);
- `limits`: the one `MAX_MESSAGE`, and the recorder's per-source rate limit;
- `dialog`: the UAS dialogs and server transactions a recorder needs.

It imports nothing from mppsim outside this package. The sockets are the users' own: the
front door's and the network SRC's selectors loops, the recorder's asyncio (recorder/transport.py).
See docs/decisions.md for why this is not aiosipua.
"""
