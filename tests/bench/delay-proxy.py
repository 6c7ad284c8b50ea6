#!/usr/bin/env python3
"""delay-proxy.py - a TCP proxy on loopback that delays every byte by a fixed time in
each direction: the round-trip delay of a distant server, for a kernel without the
netem qdisc (tests/bench/run.sh's IMAP row).

    delay-proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT ONE_WAY_MS

Prints "listening PORT" once it accepts (LISTEN_PORT 0 = any free port). Each chunk
read from one side is written to the other ONE_WAY_MS after it was read, in order;
a request and its answer so take 2 x ONE_WAY_MS more, as over a link with that delay
(the bandwidth is loopback's)."""
import asyncio
import sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def sender():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    task = asyncio.ensure_future(sender())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data if data else None))
            if not data:
                break
    except (ConnectionError, OSError):
        queue.put_nowait((loop.time(), None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def serve(listen_port, host, port, delay):
    async def handle(creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection(host, port)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pump(creader, swriter, delay), pump(sreader, cwriter, delay))
        cwriter.close()
        swriter.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main():
    if len(sys.argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                      float(sys.argv[4]) / 1000.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
