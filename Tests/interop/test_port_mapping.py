"""Port mapping (NAT-PMP, RFC 6886, and UPnP IGD) against a real gateway: Debian's
miniupnpd-nftables as the router of namespaces built by gateway.py, the test's
namespace being its LAN client (default route through it).

A mount with ``natpmp=on`` maps its listen port for TCP and UDP (nft ``dnat``
rules to our LAN address appear in the gateway), shows the external address
and ports in ``.status``, renews the mappings (``natpmp_lease=4``: renewed
every 2 s), and deletes them at unmount. The same with UPnP (``natpmp=off``,
``upnp=on``), and UPnP as the fallback when the gateway does not speak
NAT-PMP. The time from start to both ports mapped is printed (targets: NAT-PMP
≤ 0.2 s, UPnP ≤ 1 s; reported, not asserted).

The default route and the gateway exist only for the duration of the test and
lead only into namespaces of our own."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from gateway import Gateway
from mounts import Mount, wait_until

MAP_TIMEOUT = 10.0
# Two renewals at a 4 s lease take ~4 s.
RENEW_TIMEOUT = 15.0
EXIT_TIMEOUT = 20.0


def test_natpmp_maps_renews_and_removes(tmp_path: Path, procs, torrentfs_bin):
    gw = Gateway(procs, tmp_path, subnet=86)
    mnt = tmp_path / "mnt"
    mount = Mount(procs, torrentfs_bin, mnt, tmp_path / "data",
                  opts=["natpmp=on", "natpmp_lease=4", "lsd=off"])
    port = mount.status()["listenPort"]

    def mapping():
        return mount.status().get("portMapping") or {}

    wait_until(lambda: mapping().get("tcpPort") and mapping().get("udpPort"), MAP_TIMEOUT,
               "both ports mapped", detail=mount.log)
    status = mapping()
    assert status["method"] == "natpmp" and status["gateway"] == gw.gw_addr
    assert status["tcpPort"] == port and status["udpPort"] == port, status
    wait_until(lambda: mapping().get("externalAddress") == gw.external_addr, MAP_TIMEOUT,
               "the external address", detail=mount.log)
    rules = gw.dnat_rules()
    assert len(rules) == 2, rules
    assert all(f"dport {port} dnat ip to {gw.lan_addr}:{port}" in rule for rule in rules), rules
    print(f"NAT-PMP: both ports mapped {status['mappedAfter'] * 1000:.0f} ms after start (target ≤ 200 ms)")

    wait_until(lambda: mapping().get("renewals", 0) >= 4, RENEW_TIMEOUT, "two renewals of both mappings",
               detail=mount.log)
    assert mapping()["lifetime"] == 4 and len(gw.dnat_rules()) == 2

    started = time.monotonic()
    subprocess.run(["fusermount3", "-u", str(mnt)], check=True, capture_output=True, timeout=30)
    assert mount.proc.wait(EXIT_TIMEOUT) == 0, mount.log()
    assert gw.dnat_rules() == [], "mappings left after unmount"
    # Removed by our deletion requests, not by the lease running out.
    log = gw.daemon.stderr()
    for transport in ("UDP", "TCP"):
        assert f"NAT-PMP {transport} port {port} mapping removed" in log, log[-3000:]
    assert "because it has expired" not in log
    print(f"NAT-PMP: mappings gone {time.monotonic() - started:.2f}s after fusermount3 -u")


def run_upnp(tmp_path: Path, procs, torrentfs_bin, *, gateway_natpmp: bool, opts) -> None:
    gw = Gateway(procs, tmp_path, subnet=87 if gateway_natpmp else 88, natpmp=gateway_natpmp)
    mnt = tmp_path / "mnt"
    mount = Mount(procs, torrentfs_bin, mnt, tmp_path / "data", opts=[*opts, "natpmp_lease=4", "lsd=off"])
    port = mount.status()["listenPort"]

    def mapping():
        return mount.status().get("portMapping") or {}

    wait_until(lambda: mapping().get("tcpPort") and mapping().get("udpPort"), MAP_TIMEOUT,
               "both ports mapped", detail=mount.log)
    status = mapping()
    assert status["method"] == "upnp", status
    assert status["tcpPort"] == port and status["udpPort"] == port, status
    assert status["externalAddress"] == gw.external_addr, status
    rules = gw.dnat_rules()
    assert len(rules) == 2 and all(f"dport {port} dnat ip to {gw.lan_addr}:{port}" in r for r in rules), rules
    how = "after NAT-PMP failed" if opts[0] == "natpmp=on" else "with NAT-PMP off"
    print(f"UPnP ({how}): both ports mapped {status['mappedAfter'] * 1000:.0f} ms after start "
          "(target ≤ 1000 ms)")
    wait_until(lambda: mapping().get("renewals", 0) >= 2, RENEW_TIMEOUT, "a renewal of both mappings",
               detail=mount.log)
    assert len(gw.dnat_rules()) == 2

    started = time.monotonic()
    subprocess.run(["fusermount3", "-u", str(mnt)], check=True, capture_output=True, timeout=30)
    assert mount.proc.wait(EXIT_TIMEOUT) == 0, mount.log()
    assert gw.dnat_rules() == [], "mappings left after unmount"
    log = gw.daemon.stderr()
    assert "because it has expired" not in log, log[-3000:]
    print(f"UPnP: mappings gone {time.monotonic() - started:.2f}s after fusermount3 -u")


def test_upnp_maps_renews_and_removes(tmp_path: Path, procs, torrentfs_bin):
    run_upnp(tmp_path, procs, torrentfs_bin, gateway_natpmp=True, opts=["natpmp=off", "upnp=on"])


def test_upnp_is_the_fallback_when_natpmp_gets_no_answer(tmp_path: Path, procs, torrentfs_bin):
    run_upnp(tmp_path, procs, torrentfs_bin, gateway_natpmp=False, opts=["natpmp=on", "upnp=on"])
