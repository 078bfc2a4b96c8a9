#!/usr/bin/python3
"""A libtorrent peer for the swarm tests, run as its own process with
Debian's python (/usr/bin/python3, which has python3-libtorrent).

It seeds (``--torrent`` plus data already in ``--save``) or leeches
(``--torrent`` into an empty ``--save``, or ``--magnet``), and prints one JSON
object per line on stdout:

- ``{"event": "listening", "port": N}`` once the listen socket is up,
- ``{"event": "<alert>", ...}`` for tracker replies/errors, metadata,
  finishing, errors,
- ``{"event": "status", ...}`` every ``--interval`` seconds: torrent state,
  progress, payload totals and the connected peers (address, client, peer id,
  where we learned of them, direction, bytes exchanged).

Networking is locked down: listen on loopback (or the given interface),
no DHT, LSD, UPnP, NAT-PMP, TCP only unless ``--transport utp`` (then uTP only;
libtorrent's uTP is slow on loopback with its default 208 KiB socket buffers,
``--socket-buffer`` raises them),
several peers per IP (every peer is 127.0.0.1 in the tests). Loopback peers
are moved from libtorrent's unthrottled "local" peer class to the global one
so that ``--upload-limit``/``--download-limit`` apply to them too.

SIGTERM/SIGINT: print a last status line and exit 0.
"""

from __future__ import annotations

import argparse
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
    obj.setdefault("t", round(time.monotonic(), 3))
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def parse_endpoint(text: str):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _pid_bytes(pid) -> bytes:
    return pid.to_bytes() if hasattr(pid, "to_bytes") else bytes.fromhex(str(pid))


def _pid_prefix(pid) -> str:
    return _pid_bytes(pid)[:8].decode("latin-1")


def peer_json(p) -> dict:
    try:
        client = p.client if isinstance(p.client, str) else p.client.decode("utf-8", "replace")
    except Exception:  # pragma: no cover - diagnostic only
        client = "?"
    pid = _pid_bytes(p.pid)
    return {
        "ip": p.ip[0],
        "port": p.ip[1],
        "client": client,
        # The first 8 bytes of the peer id, e.g. "-TF0100-" or "-LT2080-".
        "pid_prefix": pid[:8].decode("latin-1"),
        "pid": pid.hex(),
        "source": int(p.source),
        "from_pex": bool(p.source & lt.peer_info.pex),
        "from_tracker": bool(p.source & lt.peer_info.tracker),
        "from_lsd": bool(p.source & lt.peer_info.lsd),
        "outgoing": bool(p.flags & lt.peer_info.outgoing_connection),
        "seed": bool(p.flags & lt.peer_info.seed),
        "connecting": bool(p.flags & lt.peer_info.connecting),
        "handshake": bool(p.flags & lt.peer_info.handshake),
        # MSE: the stream is RC4 / only the handshake was encrypted.
        "rc4": bool(p.flags & lt.peer_info.rc4_encrypted),
        "obfuscated": bool(p.flags & lt.peer_info.plaintext_encrypted),
        # peer_info::utp_socket (1 << 17 in libtorrent 2.0; the Python binding lacks the name).
        "utp": bool(p.flags & (1 << 17)),
        "up": int(p.total_upload),
        "down": int(p.total_download),
    }


def status_json(h) -> dict:
    st = h.status()
    out = {
        "event": "status",
        "state": str(st.state),
        "has_metadata": bool(st.has_metadata),
        "progress": float(st.progress),
        "num_pieces": int(st.num_pieces),
        "is_seeding": bool(st.is_seeding),
        "is_finished": bool(st.is_finished),
        "total_payload_upload": int(st.total_payload_upload),
        "total_payload_download": int(st.total_payload_download),
        "error": str(st.errc.message()) if st.errc.value() else "",
        "peers": [],
    }
    if st.has_metadata:
        out["total_pieces"] = h.torrent_file().num_pieces()
    try:
        out["peers"] = [peer_json(p) for p in h.get_peer_info()]
    except Exception as e:  # pragma: no cover - diagnostic only
        out["peers_error"] = repr(e)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--torrent")
    src.add_argument("--magnet")
    ap.add_argument("--save", required=True)
    ap.add_argument("--listen", default="127.0.0.1:0",
                    help="listen_interfaces value, e.g. 127.0.0.1:6881")
    ap.add_argument("--connect", action="append", default=[],
                    help="HOST:PORT to connect to (repeatable)")
    ap.add_argument("--upload-limit", type=int, default=0, help="bytes/s, 0 = none")
    ap.add_argument("--download-limit", type=int, default=0, help="bytes/s, 0 = none")
    ap.add_argument("--no-seed-outgoing", action="store_true",
                    help="as a seed, never connect out (peers must come to us)")
    ap.add_argument("--seed-mode", action="store_true",
                    help="trust the data without checking it (default: hash-check it)")
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--transport", choices=["tcp", "utp"], default="tcp",
                    help="peer connections over TCP only (default) or uTP only")
    ap.add_argument("--socket-buffer", type=int, default=0,
                    help="send/receive socket buffer bytes (0: the kernel default)")
    ap.add_argument("--encryption", choices=["enabled", "forced", "disabled"], default="enabled",
                    help="in_enc_policy and out_enc_policy (pe_enabled, pe_forced, pe_disabled)")
    ap.add_argument("--enc-level", choices=["both", "rc4", "plaintext"], default="both",
                    help="allowed_enc_level; rc4 also sets prefer_rc4")
    ap.add_argument("--lsd", action="store_true",
                    help="local service discovery on (only in a namespace of the test's own)")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    cat = lt.alert.category_t
    settings = {
        "listen_interfaces": args.listen,
        "enable_dht": False,
        "enable_lsd": args.lsd,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": args.transport == "utp",
        "enable_outgoing_utp": args.transport == "utp",
        "enable_incoming_tcp": args.transport == "tcp",
        "enable_outgoing_tcp": args.transport == "tcp",
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": args.upload_limit,
        "download_rate_limit": args.download_limit,
        "stop_tracker_timeout": 1,
        "seeding_outgoing_connections": not args.no_seed_outgoing,
        "alert_mask": int(cat.status_notification) | int(cat.error_notification)
        | int(cat.tracker_notification) | int(cat.storage_notification)
        | int(cat.connect_notification) | int(cat.peer_notification),
    }
    policy = {"enabled": lt.enc_policy.pe_enabled, "forced": lt.enc_policy.pe_forced,
              "disabled": lt.enc_policy.pe_disabled}[args.encryption]
    settings["in_enc_policy"] = int(policy)
    settings["out_enc_policy"] = int(policy)
    settings["allowed_enc_level"] = int({"both": lt.enc_level.both, "rc4": lt.enc_level.rc4,
                                         "plaintext": lt.enc_level.plaintext}[args.enc_level])
    settings["prefer_rc4"] = args.enc_level == "rc4"
    if args.socket_buffer:
        settings["recv_socket_buffer_size"] = args.socket_buffer
        settings["send_socket_buffer_size"] = args.socket_buffer
    ses = lt.session(settings)
    # By default loopback and LAN peers are in the "local" peer class, which
    # has no rate limit: put every address in the global class instead.
    pcf = lt.ip_filter()
    pcf.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    pcf.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                 1 << lt.session.global_peer_class_id)
    ses.set_peer_class_filter(pcf)

    if args.torrent:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.torrent)
    else:
        atp = lt.parse_magnet_uri(args.magnet)
    atp.save_path = args.save
    if args.seed_mode:
        atp.flags |= lt.torrent_flags.seed_mode
    h = ses.add_torrent(atp)

    connects = [parse_endpoint(c) for c in args.connect]
    last_connect = 0.0
    last_status = 0.0
    listening = False
    while not STOP:
        ses.wait_for_alert(int(min(args.interval, 0.25) * 1000))
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_succeeded_alert) and not listening:
                if a.socket_type == lt.socket_type_t.tcp:
                    listening = True
                    emit({"event": "listening", "port": ses.listen_port()})
            elif isinstance(a, lt.listen_failed_alert):
                emit({"event": "listen_failed", "message": a.message()})
            elif isinstance(a, lt.tracker_reply_alert):
                emit({"event": "tracker_reply", "url": a.tracker_url(),
                      "num_peers": a.num_peers})
            elif isinstance(a, (lt.tracker_error_alert, lt.tracker_warning_alert)):
                emit({"event": "tracker_error", "url": a.tracker_url(),
                      "message": a.message()})
            elif isinstance(a, lt.incoming_connection_alert):
                emit({"event": "incoming_connection", "ip": a.endpoint[0],
                      "port": a.endpoint[1]})
            elif isinstance(a, lt.peer_connect_alert):
                emit({"event": "peer_connect", "ip": a.endpoint[0], "port": a.endpoint[1],
                      "message": a.message()})
            elif isinstance(a, lt.peer_disconnected_alert):
                emit({"event": "peer_disconnected", "ip": a.endpoint[0],
                      "port": a.endpoint[1], "pid_prefix": _pid_prefix(a.pid),
                      "message": a.message()})
            elif isinstance(a, lt.metadata_received_alert):
                emit({"event": "metadata_received"})
            elif isinstance(a, lt.torrent_checked_alert):
                emit({"event": "checked"})
            elif isinstance(a, lt.torrent_finished_alert):
                emit({"event": "finished"})
            elif isinstance(a, (lt.torrent_error_alert, lt.file_error_alert,
                                lt.metadata_failed_alert, lt.hash_failed_alert)):
                emit({"event": "error", "type": type(a).__name__, "message": a.message()})
        now = time.monotonic()
        st = h.status()
        checking = st.state in (lt.torrent_status.checking_files,
                                lt.torrent_status.checking_resume_data)
        # (Re)issue the explicit connects every few seconds until the torrent
        # is out of the checking states; re-adding a known peer is harmless.
        if connects and not checking and now - last_connect > 2.0:
            last_connect = now
            for ep in connects:
                try:
                    h.connect_peer(ep)
                except Exception as e:  # pragma: no cover - diagnostic only
                    emit({"event": "connect_error", "peer": list(ep), "message": repr(e)})
        if now - last_status >= args.interval:
            last_status = now
            emit(status_json(h))
    emit(status_json(h))
    ses.pause()
    ses.remove_torrent(h)
    emit({"event": "stopped"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
