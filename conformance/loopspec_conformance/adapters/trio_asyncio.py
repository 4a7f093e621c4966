"""Adapter: trio-asyncio's loop, for the kit.

trio-asyncio has no public `new_event_loop()`: its loop normally exists only
inside `trio.run()`, opened with `async with trio_asyncio.open_loop()`. Its
synchronous compatibility loop, `SyncTrioEventLoop`, runs Trio inside a
greenlet of the thread that made it and offers the plain asyncio loop API
(`run_forever`, `call_soon_threadsafe`, ...), which is what the scenarios
drive. An adapter is a Python file that defines `new_event_loop()` (the
factory) and may define NAME and PACKAGE (the distribution whose version the
results report).

trio-asyncio 0.16 does not import on CPython 3.14 and later (it subclasses
`asyncio.events.BaseDefaultEventLoopPolicy`, renamed in 3.14), so the matrix
runs it on 3.13 only.
"""

# Imported when the adapter loads, before any scenario runs: the import's own
# warnings are not a scenario's observations.
from trio_asyncio._sync import SyncTrioEventLoop

NAME = "trio-asyncio"
PACKAGE = "trio-asyncio"


def new_event_loop():
    return SyncTrioEventLoop()
