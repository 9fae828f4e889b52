#!/usr/bin/env python3
"""tests/faults/stallproxy.py PORTFILE UPSTREAM_PORT -- a TCP proxy on
127.0.0.1 that the fault suite can stall, as a network that drops packets
would (standard library only).

Listens on a free loopback port (written to PORTFILE once listening) and
forwards each connection to 127.0.0.1:UPSTREAM_PORT.  SIGUSR1 stalls it:
no byte moves either way and new connections wait unanswered, but nothing
is closed (as with `iptables -j DROP`: TCP just retransmits).  SIGUSR2 lets
everything flow again.  SIGTERM stops it.
"""

import asyncio
import os
import signal
import sys


async def main(portfile, upstream):
    flowing = asyncio.Event()
    flowing.set()

    async def pump(reader, writer):
        try:
            while True:
                await flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                # bytes read just before a stall wait for the heal too
                await flowing.wait()
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except OSError:
                pass

    async def client(creader, cwriter):
        await flowing.wait()
        try:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1",
                                                             upstream)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pump(creader, uwriter), pump(ureader, cwriter))

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, flowing.clear)
    loop.add_signal_handler(signal.SIGUSR2, flowing.set)
    loop.add_signal_handler(signal.SIGTERM, done.set)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(portfile + ".tmp", portfile)
    await done.wait()
    server.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
