"""A Sparkplug B edge node from a library nobody on the team wrote (pysparkplug, PyPI),
run in its own venv (it needs paho-mqtt < 2). Usage:

    python pysparkplug_edge.py HOST PORT GROUP N crash|graceful

Births a node (an Int8 temperature, negative) with one device (power, energy), sends N
device updates one millisecond apart, one node update, then crashes (the broker sends
the NDEATH Will) or disconnects. Prints the first data timestamp.
"""

import os
import sys
import time

from pysparkplug import DataType, Device, EdgeNode, Metric

host, port, group, count, mode = (
    sys.argv[1],
    int(sys.argv[2]),
    sys.argv[3],
    int(sys.argv[4]),
    sys.argv[5],
)
start = int(time.time() * 1000) - 10 * 60 * 1000
node = EdgeNode(
    group,
    "third-party-gw",
    metrics=[Metric(timestamp=start, name="Temperature", datatype=DataType.INT8, value=-12)],
)
node.register(
    Device(
        "meter-x",
        metrics=[
            Metric(timestamp=start, name="Power", datatype=DataType.DOUBLE, value=40.0),
            Metric(timestamp=start, name="Energy", datatype=DataType.UINT64, value=1000),
        ],
    )
)
node.connect(host, port=port, blocking=False)
time.sleep(1.5)
for k in range(count):
    ts = start + 1 + k
    node.update_device(
        "meter-x",
        [Metric(timestamp=ts, name="Power", datatype=DataType.DOUBLE, value=40.0 + k % 9)],
    )
    time.sleep(0.002)
node.update(
    [Metric(timestamp=start + count + 5, name="Temperature", datatype=DataType.INT8, value=-20)]
)
time.sleep(1.5)
print(start, flush=True)
if mode == "crash":
    os._exit(0)  # no DISCONNECT: the broker publishes the NDEATH Will
node.disconnect()
