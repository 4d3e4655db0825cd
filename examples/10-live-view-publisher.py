"""Example 10's publisher: price changes for a live view, sent with the cluster's publisher
credentials through JetStream, which acknowledges each once stored. The credentials arrive as one
JSON line on standard input (`cluster.credentials("publisher")`), never in argv or the environment.

    python examples/10-live-view-publisher.py <count> < publisher-credentials.json

Needs nats-py and nkeys (`pip install nats-py nkeys`). Price i goes to `prices.sku-<i % 100>` with
value 1000 + i. Prints one JSON object: how many were stored, and the last stream sequence.
"""

import asyncio
import json
import ssl
import sys

import nats


async def main(count: int) -> None:
    access = json.loads(sys.stdin.readline())
    tls = ssl.create_default_context(cadata=access["tls"]["ca"]) if access.get("tls") else None
    nc = await nats.connect(
        servers=access["url"].split(","),
        nkeys_seed_str=access["auth"]["nkeySeed"],
        inbox_prefix=access["inboxPrefix"],
        tls=tls,
        allow_reconnect=False,
    )
    js = nc.jetstream()
    last = 0
    for i in range(count):
        ack = await js.publish("prices.sku-%d" % (i % 100), json.dumps({"price": 1000 + i}).encode())
        last = ack.seq
    await nc.close()
    print(json.dumps({"published": count, "lastSeq": last}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
