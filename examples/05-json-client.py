"""A service in another language that needs neither msgpack nor the membership: it finds the
cluster's partitions through NATS micro discovery ($SRV.INFO) and calls one endpoint of each by its
stable subject (no attempt in it) in the JSON content mode. See docs/protocol.md.

    SPS_CLIENT_BUS='<JSON from cluster.credentials("client")>' SPS_CLUSTER_ID=<cluster.id> \\
        python examples/05-json-client.py <endpoint> [<JSON payload> [<partitions>]]

With <partitions>, discovery stops once that many instances answered; without, when none answered
for half a second. Needs nats-py and nkeys. Prints one JSON object: the instances found and each
partition's reply ({"ok": true, "body": ...} or {"ok": false, "error": {"code", "message"}}).
"""

import asyncio
import json
import os
import ssl
import sys

import nats

JSON_MODE = {"Content-Type": "application/json"}


async def discover(nc, service, expected):
    """Asks every instance of `service` for its info; one reply per partition attempt."""
    inbox = nc.new_inbox()
    found = []
    more = asyncio.Event()

    async def on_info(msg):
        found.append(json.loads(msg.data))
        more.set()

    sub = await nc.subscribe(inbox, cb=on_info)
    await nc.publish("$SRV.INFO.%s" % service, b"", reply=inbox)
    while expected is None or len(found) < expected:
        more.clear()
        try:
            await asyncio.wait_for(more.wait(), 0.5 if expected is None else 10)
        except asyncio.TimeoutError:
            break
    await sub.unsubscribe()
    return found


async def main(endpoint, payload, expected):
    access = json.loads(os.environ["SPS_CLIENT_BUS"])
    cluster = os.environ["SPS_CLUSTER_ID"]
    tls = ssl.create_default_context(cadata=access["tls"]["ca"]) if access.get("tls") else None
    nc = await nats.connect(
        servers=access["url"].split(","),
        nkeys_seed_str=access["auth"]["nkeySeed"],
        inbox_prefix=access["inboxPrefix"],
        tls=tls,
        allow_reconnect=False,
    )
    instances = []
    for info in await discover(nc, cluster, expected):
        meta = info["metadata"]
        instances.append(
            {
                "partition": int(meta["partition"]),
                "attempt": int(meta["attempt"]),
                "host": meta["host"],
                "port": int(meta["port"]) if meta["port"] else None,
                "endpoints": sorted(e["name"] for e in info["endpoints"]),
            }
        )
    instances.sort(key=lambda i: i["partition"])
    replies = {}
    for i in instances:
        # The stable subject: whichever attempt is current answers, so a restart needs no new lookup.
        subject = "sps.%s.p.%d.%s" % (cluster, i["partition"], endpoint)
        msg = await nc.request(subject, json.dumps(payload).encode(), timeout=10, headers=JSON_MODE)
        replies[i["partition"]] = json.loads(msg.data)
    await nc.close()
    print(json.dumps({"instances": instances, "replies": replies}))


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            args[0] if args else "sum",
            json.loads(args[1]) if len(args) > 1 else None,
            int(args[2]) if len(args) > 2 else None,
        )
    )
