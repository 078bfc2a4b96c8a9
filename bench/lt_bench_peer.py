#!/usr/bin/python3
"""A libtorrent 2.0 peer for the benchmarks (Debian's /usr/bin/python3 has
python3-libtorrent), run as its own process; benchcommon.lt_peer() builds its command.

Roles:
- ``seed``: seeds ``--torrent`` from ``--save`` (seed mode: the data is trusted), prints
  ``ready PORT`` once listening, then serves until SIGTERM. With ``--events`` it also
  prints, on CLOCK_MONOTONIC (time.monotonic(), comparable across processes), the time of
  the first incoming connection (``incoming T``) and of the first peer whose BitTorrent
  handshake is done (``handshake T``, polled every 2 ms).
- ``leech``: downloads ``--torrent`` or ``--magnet`` into ``--save``, offering the
  ``--peer``s again every second (as a tracker or PEX would: libtorrent retries a peer
  given once only after a long back-off), prints ``connected T`` when its first peer is
  past the BitTorrent handshake (polled every 5 ms) and ``finished T`` and exits once
  complete.
- ``handshakes``: ``--count`` times, adds ``--torrent``, connects to the one ``--peer``,
  waits for the BitTorrent handshake to be done (or the peer to be disconnected, or 10 s)
  and removes the torrent again (its files deleted), ``--parallel`` sessions at a time;
  prints one line per attempt (``ok rc4``, ``ok plaintext``, ``fail MESSAGE``) and ``done``.

Networking is locked down: loopback only, no DHT, LSD, UPnP, NAT-PMP, several
connections per IP. ``--transport``: tcp (default), utp or both. ``--encryption``:
default (libtorrent's pe_enabled, both levels) or rc4 (in and out policies forced, RC4
only, prefer_rc4). ``--buffer``: socket buffer bytes (0: the kernel default).
"""
import argparse, signal, sys, time

import libtorrent as lt

STOP = False


def on_signal(signum, frame):  # noqa: ARG001
    global STOP
    STOP = True


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def session(args):
    settings = {
        "listen_interfaces": f"127.0.0.1:{args.port}",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_tcp": args.transport in ("tcp", "both"),
        "enable_outgoing_tcp": args.transport in ("tcp", "both"),
        "enable_incoming_utp": args.transport in ("utp", "both"),
        "enable_outgoing_utp": args.transport in ("utp", "both"),
        "allow_multiple_connections_per_ip": True,
        "alert_mask": int(lt.alert.category_t.status_notification)
        | int(lt.alert.category_t.error_notification)
        | int(lt.alert.category_t.connect_notification)
        | int(lt.alert.category_t.peer_notification),
    }
    if args.encryption == "rc4":
        settings["in_enc_policy"] = int(lt.enc_policy.pe_forced)
        settings["out_enc_policy"] = int(lt.enc_policy.pe_forced)
        settings["allowed_enc_level"] = int(lt.enc_level.rc4)
        settings["prefer_rc4"] = True
    if args.buffer:
        settings["recv_socket_buffer_size"] = args.buffer
        settings["send_socket_buffer_size"] = args.buffer
    return lt.session(settings)


def params(args):
    if args.torrent:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.torrent)
    else:
        atp = lt.parse_magnet_uri(args.magnet)
    atp.save_path = args.save
    return atp


def handshake_done(h):
    """The flags of the first peer past its BitTorrent handshake, or None."""
    for p in h.get_peer_info():
        if not p.flags & (lt.peer_info.connecting | lt.peer_info.handshake):
            return p.flags
    return None


def seed(ses, args):
    atp = params(args)
    atp.flags |= lt.torrent_flags.seed_mode
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + 10
    listening = False
    while not listening and time.monotonic() < deadline:
        ses.wait_for_alert(100)
        listening = any(isinstance(a, lt.listen_succeeded_alert) for a in ses.pop_alerts())
    # A connection for a torrent still being added is refused: ready once it seeds, and
    # some more (connections in the first ~0.1 s after that still failed here).
    while not h.status().is_seeding and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(1.0)
    print(f"ready {args.port or ses.listen_port()}", flush=True)
    incoming = handshake = None
    while not STOP:
        if not args.events or handshake is not None:
            ses.pop_alerts()
            time.sleep(0.1)
            continue
        for a in ses.pop_alerts():
            if incoming is None and isinstance(a, lt.incoming_connection_alert):
                incoming = time.monotonic()
                print(f"incoming {incoming:.6f}", flush=True)
        if handshake_done(h) is not None:
            handshake = time.monotonic()
            print(f"handshake {handshake:.6f}", flush=True)
        time.sleep(0.002)


def leech(ses, args):
    h = ses.add_torrent(params(args))
    peers = [endpoint(p) for p in args.peer]
    last = 0.0
    connected = False
    while not STOP:
        if time.monotonic() - last > 1.0:
            for p in peers:
                h.connect_peer(p)
            last = time.monotonic()
        if not connected and handshake_done(h) is not None:
            connected = True
            print(f"connected {time.monotonic():.6f}", flush=True)
        st = h.status()
        if st.is_seeding:
            print(f"finished {time.monotonic():.6f}", flush=True)
            return
        ses.pop_alerts()
        time.sleep(0.005)


def handshakes(args):
    """--count attempts by --parallel sessions at once (libtorrent makes an added torrent's
    first connection on a tick, about 1 s after adding it: one session alone would take
    1000 s)."""
    peer = endpoint(args.peer[0])
    ti = lt.torrent_info(args.torrent)
    slots = []
    for index in range(args.parallel):
        args.port = 0
        slots.append({"ses": session(args), "h": None, "removing": False, "save": f"{args.save}/{index}"})
    started = finished = 0
    while finished < args.count and not STOP:
        for slot in slots:
            ses, h = slot["ses"], slot["h"]
            alerts = ses.pop_alerts()
            if slot["removing"]:
                if any(isinstance(a, lt.torrent_removed_alert) for a in alerts):
                    slot["removing"] = False
                    slot["h"] = None
                continue
            if h is None:
                if started < args.count:
                    atp = lt.add_torrent_params()
                    atp.ti = ti
                    atp.save_path = slot["save"]
                    atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
                    slot["h"] = ses.add_torrent(atp)
                    slot["h"].connect_peer(peer)
                    slot["deadline"] = time.monotonic() + 10
                    started += 1
                continue
            result = None
            for a in alerts:
                if isinstance(a, (lt.peer_disconnected_alert, lt.peer_error_alert)) and a.handle == h:
                    result = "fail " + a.error.message()
            flags = handshake_done(h)
            if flags is not None:
                result = "ok rc4" if flags & lt.peer_info.rc4_encrypted else "ok plaintext"
            elif result is None and time.monotonic() > slot["deadline"]:
                result = "fail no handshake within 10 s"
            if result is not None:
                print(result, flush=True)
                finished += 1
                ses.remove_torrent(h, lt.session.delete_files)
                slot["removing"] = True
        time.sleep(0.001)
    print("done", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["seed", "leech", "handshakes"])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent")
    source.add_argument("--magnet")
    ap.add_argument("--save", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--transport", choices=["tcp", "utp", "both"], default="tcp")
    ap.add_argument("--encryption", choices=["default", "rc4"], default="default")
    ap.add_argument("--buffer", type=int, default=0)
    ap.add_argument("--events", action="store_true")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=10)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.role == "handshakes":
        handshakes(args)
    else:
        {"seed": seed, "leech": leech}[args.role](session(args), args)


if __name__ == "__main__":
    main()
