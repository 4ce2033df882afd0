#!/usr/bin/python3
"""pyzmq over loopback: the reference beside bench_transport's Loopback rows.

One large message (100 MB by default) goes from a DEALER socket to a ROUTER socket over
tcp://127.0.0.1, as one multipart message of 1 MiB frames (the last one shorter), with CURVE
(fresh keys from zmq.curve_keypair, no ZAP handler) and without ("plain"). The two sockets
have a context each, so each end has its own ZeroMQ I/O thread, as a ppreid site and its
aggregator do. The frames are sent without copying (copy=False, memoryviews of one buffer) and
received without copying, so the figure is what libzmq itself achieves: no hashing, no
encoding, nothing else. Like bench_transport, one Python thread sends one message and then
receives it, so the timed span of a run is one whole message from the first frame sent to the
last frame received. The first run of each mode is a warm-up and is not counted.

Prints JSON on stdout: for each mode and frame size the MB/s (10^6 bytes of payload per
second of wall time) of every run, the median (the headline figure) and the best.

Run:  /usr/bin/python3 bench/transport_pyzmq.py                     (needs Debian's python3-zmq)
      /usr/bin/python3 bench/transport_pyzmq.py --frame-bytes 262144 1048576 4194304 --runs 10
bench_transport reads this output (PPREID_PYZMQ_JSON, or runs this script itself) and prints
the median beside its own rows; see bench/README.md.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import zmq


def make_pair(curve):
    """A ROUTER bound to an ephemeral loopback port and a DEALER connected to it."""
    rctx, dctx = zmq.Context(io_threads=1), zmq.Context(io_threads=1)
    router, dealer = rctx.socket(zmq.ROUTER), dctx.socket(zmq.DEALER)
    for s in (router, dealer):
        s.linger = 0
    if curve:
        server_public, server_secret = zmq.curve_keypair()
        client_public, client_secret = zmq.curve_keypair()
        router.curve_server = True
        router.curve_secretkey = server_secret
        dealer.curve_serverkey = server_public
        dealer.curve_publickey = client_public
        dealer.curve_secretkey = client_secret
    router.bind("tcp://127.0.0.1:0")
    dealer.connect(router.getsockopt_string(zmq.LAST_ENDPOINT))
    return (rctx, router), (dctx, dealer)


def one_message(dealer, router, frames, total):
    start = time.perf_counter()
    dealer.send_multipart(frames, copy=False)
    parts = router.recv_multipart(copy=False)
    seconds = time.perf_counter() - start
    got = sum(len(p.buffer) for p in parts[1:])  # parts[0] is the routing id
    if got != total or len(parts) != len(frames) + 1:
        sys.exit(f"received {got} bytes in {len(parts) - 1} frames, sent {total} in {len(frames)}")
    return seconds


def measure(curve, payload, frame_bytes, runs):
    (rctx, router), (dctx, dealer) = make_pair(curve)
    try:
        view = memoryview(payload)
        frames = [view[i:i + frame_bytes] for i in range(0, len(payload), frame_bytes)]
        # Warm-up: the handshake, and a first message that also checks the bytes arrive intact.
        dealer.send_multipart(frames, copy=False)
        parts = router.recv_multipart()
        if b"".join(parts[1:]) != payload:
            sys.exit("the warm-up message arrived altered")
        rates = [len(payload) / one_message(dealer, router, frames, len(payload)) / 1e6
                 for _ in range(runs)]
    finally:
        router.close()
        dealer.close()
        rctx.term()
        dctx.term()
    return {
        "frame_bytes": frame_bytes,
        "frames": len(frames),
        "MB_per_s": round(statistics.median(rates), 1),
        "MB_per_s_best": round(max(rates), 1),
        "runs_MB_per_s": [round(r, 1) for r in rates],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--message-bytes", type=int, default=100_000_000,
                        help="payload bytes of the message (default 100,000,000)")
    parser.add_argument("--frame-bytes", type=int, nargs="+", default=[1 << 20],
                        help="frame sizes to measure (default 1 MiB); the first is the headline")
    parser.add_argument("--runs", type=int, default=10, help="timed messages per mode and size")
    parser.add_argument("--modes", nargs="+", choices=["curve", "plain"], default=["curve", "plain"])
    args = parser.parse_args()
    if args.message_bytes <= 0 or args.runs <= 0 or min(args.frame_bytes) <= 0:
        parser.error("sizes and runs must be > 0")
    if not zmq.has("curve"):
        sys.exit("this libzmq has no CURVE support")
    payload = os.urandom(args.message_bytes)
    results = {mode: [measure(mode == "curve", payload, f, args.runs) for f in args.frame_bytes]
               for mode in args.modes}
    out = {
        "what": "one multipart message DEALER -> ROUTER over tcp://127.0.0.1, zero-copy, "
                "one context (one I/O thread) per end; MB_per_s is the median, 10^6 bytes/s",
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "message_bytes": args.message_bytes,
        "runs": args.runs,
        **results,
    }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
