"""The recorder's own SIP layer (asyncio): message, transport, dialog, sdp. See docs/decisions.md
for why it is not aiosipua."""
