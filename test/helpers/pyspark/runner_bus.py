"""The runner's bus connection riding out a restart of its nats-server: a flush made while the
server is gone waits for the reconnect instead of failing the runner, and ending a connection that
is still reconnecting closes it instead of raising. Driven by the test over stdin/stdout."""

import asyncio
import importlib.util
import json
import sys

import nats.errors

spec = importlib.util.spec_from_file_location("sps_runner", sys.argv[1])
assert spec is not None and spec.loader is not None
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main():
    loop = asyncio.get_running_loop()
    lines = asyncio.Queue()
    loop.add_reader(sys.stdin, lambda: lines.put_nowait(sys.stdin.readline().strip()))
    access = {"url": sys.argv[2], "reconnectWindowMs": 120000}
    nc = await runner.nats_connect(access, "runner-bus-test")
    flush = nc.flush

    async def reported_flush(*args, **kwargs):
        # The test restarts the server only once a flush has timed out, so the retry is exercised.
        try:
            return await flush(*args, **kwargs)
        except nats.errors.FlushTimeoutError:
            say("FLUSH-TIMEOUT")
            raise

    nc.flush = reported_flush
    # Its own subscription sees the message: a reconnecting client subscribes again before it sends
    # what it buffered (another client might subscribe again only after the message went by).
    received = loop.create_future()

    async def on_message(msg):
        if not received.done():
            received.set_result(msg.data.decode())

    await nc.subscribe("runner.test", cb=on_message)
    await nc.flush()
    say("CONNECTED")
    assert await lines.get() == "server-gone"
    await nc.publish("runner.test", b"published while the server was gone")
    await runner.flush_bus(nc, 120.0)
    say("FLUSHED")
    say(json.dumps({"received": await asyncio.wait_for(received, 120.0)}))
    assert await lines.get() == "server-gone"
    # Ending a connection that is reconnecting: closed, nothing raised.
    await runner.end_bus(nc)
    say(json.dumps({"closed": nc.is_closed}))


asyncio.run(main())
