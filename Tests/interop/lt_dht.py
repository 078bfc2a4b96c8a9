#!/usr/bin/python3
"""A private mainline DHT of libtorrent nodes for the DHT tests, run as its own
process with Debian's python (/usr/bin/python3, python3-libtorrent 2.0).

Each node is a libtorrent session with the DHT on, listening on its own
loopback address (``--first-address`` and the next ones) and ``--port``: named
explicitly, as libtorrent runs no DHT on a loopback socket expanded from
0.0.0.0. Local addresses are allowed in routing and searches
(``dht_restrict_*_ips`` off), the per-IP rate limit is raised (every node is
127.0.0.x), no public bootstrap router is configured (``dht_bootstrap_nodes``
empty), and the nodes are meshed with ``add_dht_node`` (libtorrent never puts a
bootstrap router into its table). No LSD, UPnP or NAT-PMP; uTP as shipped (on)
unless ``--no-utp`` (for the seeding or leeching session).

Optionally one more session, on its own address, seeds ``--seed`` (announcing
to the DHT only: no tracker, no hint) or leeches ``--leech MAGNET`` (added after
its DHT bootstrapped, else libtorrent waits for a 15-minute timer). A leecher
given ``--leech-contact HOST:PORT`` knows that one DHT node only (not the
mesh). ``--contact HOST:PORT`` adds a node (torrentfs) to every mesh node.

Prints one JSON object per line on stdout: ``ready`` (the mesh's addresses)
once every node's DHT runs, ``seeding``, ``metadata`` and ``finished`` (with the
seconds since the torrent was added), ``peer`` for each peer the extra session
connects to, ``dht`` with table sizes every second. SIGTERM: exit 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import sys
import time

import libtorrent as lt

STOP = False


def _on_signal(signum, frame):  # noqa: ARG001
    global STOP
    STOP = True


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def endpoint(text: str):
    host, port = text.rsplit(":", 1)
    return host.strip("[]"), int(port)


def make_session(address: str, port: int, utp: bool = True) -> lt.session:
    cat = lt.alert.category_t
    return lt.session({
        "listen_interfaces": f"{address}:{port}",
        "enable_dht": True,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_block_ratelimit": 100000,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # uTP as libtorrent ships it (on) unless asked otherwise.
        "enable_incoming_utp": utp,
        "enable_outgoing_utp": utp,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": int(cat.status_notification) | int(cat.error_notification)
        | int(cat.dht_notification) | int(cat.connect_notification) | int(cat.peer_notification),
    })


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--first-address", default="127.0.0.20")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--contact", action="append", default=[])
    ap.add_argument("--seed", help=".torrent to seed (data in --save)")
    ap.add_argument("--leech", help="magnet to download into --save")
    ap.add_argument("--save")
    ap.add_argument("--extra-address", default="127.0.0.19", help="address of the seeding/leeching session")
    ap.add_argument("--leech-contact", help="the leecher's only DHT node, HOST:PORT")
    ap.add_argument("--no-utp", action="store_true", help="the seeding/leeching session speaks TCP only")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    first = ipaddress.ip_address(args.first_address)
    addresses = [str(first + i) for i in range(args.nodes)]
    mesh = [make_session(a, args.port) for a in addresses]
    extra = make_session(args.extra_address, args.port, utp=not args.no_utp) if (args.seed or args.leech) else None
    everyone = mesh + ([extra] if extra else [])
    deadline = time.monotonic() + 20
    while not all(s.is_dht_running() for s in everyone):
        if time.monotonic() > deadline:
            emit({"event": "error", "message": "DHT not running"})
            return 1
        time.sleep(0.02)
    for s in mesh:
        for a in addresses:
            s.add_dht_node((a, args.port))
        for c in args.contact:
            s.add_dht_node(endpoint(c))
    if extra is not None:
        if args.leech_contact:
            extra.add_dht_node(endpoint(args.leech_contact))
        else:
            for a in addresses:
                extra.add_dht_node((a, args.port))
    emit({"event": "ready", "nodes": [f"{a}:{args.port}" for a in addresses]})
    ready_at = time.monotonic()

    handle = None
    added_at = 0.0
    if args.seed:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.seed)
        atp.save_path = args.save
        handle = extra.add_torrent(atp)
        added_at = time.monotonic()
    bootstrapped = False
    seeding = finished = False
    last_announce = last_stats = 0.0
    seen = set()
    while not STOP:
        for s in mesh:
            s.pop_alerts()
        if extra is not None:
            extra.wait_for_alert(50)
            for a in extra.pop_alerts():
                if isinstance(a, lt.dht_bootstrap_alert):
                    bootstrapped = True
                elif isinstance(a, lt.metadata_received_alert):
                    emit({"event": "metadata", "elapsed": time.monotonic() - added_at})
                elif isinstance(a, lt.peer_connect_alert):
                    key = (a.endpoint[0], a.endpoint[1])
                    if key not in seen:
                        seen.add(key)
                        emit({"event": "peer", "ip": a.endpoint[0], "port": a.endpoint[1],
                              "message": a.message(), "elapsed": time.monotonic() - added_at})
            # Without a bootstrap alert (a mesh filled by hand), go after one second.
            if not bootstrapped and time.monotonic() - ready_at > 1:
                bootstrapped = True
            if args.leech and handle is None and bootstrapped:
                atp = lt.parse_magnet_uri(args.leech)
                atp.save_path = args.save
                handle = extra.add_torrent(atp)
                added_at = time.monotonic()
            if handle is not None:
                st = handle.status()
                if args.seed and not seeding and st.is_seeding:
                    seeding = True
                    emit({"event": "seeding"})
                if args.leech and not finished and st.is_finished:
                    finished = True
                    emit({"event": "finished", "elapsed": time.monotonic() - added_at})
                if args.seed and bootstrapped and time.monotonic() - last_announce > 2:
                    last_announce = time.monotonic()
                    handle.force_dht_announce()
        else:
            time.sleep(0.05)
        if time.monotonic() - last_stats > 1:
            last_stats = time.monotonic()
            emit({"event": "dht", "nodes": [s.status().dht_nodes for s in everyone]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
