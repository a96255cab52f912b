"""A TCP proxy on 127.0.0.1 that holds every chunk from the client back for a fixed delay
before passing it on to the upstream port, for scripts/bench.sh: moto answers in a few
milliseconds from one Python process, while AWS's API endpoints are tens of milliseconds
away. With the delay, a scan is bound by latency as it is against AWS, so running
account-regions concurrently shows what it saves.

    latency_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS

Runs until killed. Loopback only.
"""

import asyncio
import sys


async def pump(reader, writer, delay):
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            if delay:
                await asyncio.sleep(delay)
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main(listen_port, upstream_port, delay):
    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pump(client_reader, up_writer, delay),
            pump(up_reader, client_writer, 0),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    listen, upstream, delay_ms = (int(a) for a in sys.argv[1:4])
    asyncio.run(main(listen, upstream, delay_ms / 1000.0))
