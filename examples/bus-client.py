"""A service in another language on the cluster's bus: asks the supervisor for the membership and
calls an endpoint of every partition, with the client credentials the driver handed out
(`cluster.credentials('client')`), which may call endpoints and nothing else.

    SPS_CLIENT_BUS='<JSON from cluster.credentials("client")>' SPS_CLUSTER_ID=<cluster.id> \
        python examples/bus-client.py <endpoint>

Needs nats-py, nkeys and msgpack (`pip install nats-py nkeys msgpack`). Prints one JSON object.
The wire format: every message is a msgpack map {"v": 2, "t": <type>, ...fields}; see
src/protocol/protocol.schema.json for every type's fields and src/protocol/subjects.ts for subjects.
"""

import asyncio
import json
import os
import ssl
import sys

import msgpack
import nats
from nats.errors import NoRespondersError, TimeoutError

VERSION = 2


def envelope(t, **fields):
    return msgpack.packb(dict({"v": VERSION, "t": t}, **fields), use_bin_type=True)


def opened(data, expected):
    m = msgpack.unpackb(data, raw=False)
    if m.get("v") != VERSION or m.get("t") != expected:
        raise ValueError("expected a %r message, got %r" % (expected, m.get("t")))
    return m


async def main(endpoint):
    access = json.loads(os.environ["SPS_CLIENT_BUS"])
    cluster = os.environ["SPS_CLUSTER_ID"]
    refused = []

    async def on_error(err):
        # The server answers a forbidden publish with a permissions violation, not a message.
        refused.append(str(err))

    tls = None
    if access.get("tls"):
        tls = ssl.create_default_context(cadata=access["tls"]["ca"])
    nc = await nats.connect(
        servers=access["url"].split(","),
        nkeys_seed_str=access["auth"]["nkeySeed"],
        inbox_prefix=access["inboxPrefix"],
        tls=tls,
        error_cb=on_error,
        allow_reconnect=False,
    )
    prefix = "sps.%s" % cluster
    view = opened((await nc.request(prefix + ".ctl.members.get", envelope("members-get"), timeout=10)).data, "members")
    answers = {}
    for m in view["members"]:
        subject = "%s.p.%d.%d.%s" % (prefix, m["partition"], m["attempt"], endpoint)
        try:
            reply = opened((await nc.request(subject, envelope("req", body=None), timeout=10)).data, "res")
            answers[m["partition"]] = reply["body"] if reply["ok"] else {"error": reply["error"]}
        except (NoRespondersError, TimeoutError) as err:
            answers[m["partition"]] = {"error": {"code": type(err).__name__, "message": str(err)}}

    # Not allowed for this identity: the server refuses it and the partitions never see it.
    await nc.publish(prefix + ".ctl.shutdown", envelope("shutdown"))
    await nc.flush()
    # The server's -ERR may trail its PONG; give it a bounded moment to arrive.
    for _ in range(50):
        if refused:
            break
        await asyncio.sleep(0.1)
    await nc.close()
    print(json.dumps({"epoch": view["epoch"], "answers": answers, "refused": refused}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "sum"))
