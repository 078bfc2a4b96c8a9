"""A home router made of network namespaces, for the port-mapping tests:
miniupnpd (Debian's miniupnpd-nftables, which speaks UPnP IGD and NAT-PMP) as
the gateway, its firewall in nft tables made by hand in the gateway's
namespace only.

    test namespace (the LAN client)          gateway namespace           WAN namespace
    <lan_if> 192.168.<n>.2  --- veth ---  192.168.<n>.1 | 11.77.<n>.1  --- veth ---  11.77.<n>.2
    default route via 192.168.<n>.1

The WAN address must be neither private nor reserved (miniupnpd refuses to
run behind one); 11.77.<n>.0/24 exists only on these two interfaces, with no
route anywhere else. Mappings appear as nft ``dnat`` rules in the gateway's
``nat`` table and nowhere else. Everything goes away with the namespaces."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import List

from swarm import ProcGroup, Proc

MINIUPNPD = "/usr/sbin/miniupnpd"

NFT_TABLES = """
table inet filter {
    chain forward { type filter hook forward priority 0; policy drop; jump miniupnpd; }
    chain miniupnpd { }
}
table inet nat {
    chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
    chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
    chain prerouting_miniupnpd { }
    chain postrouting_miniupnpd { }
}
"""


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise AssertionError(f"`{' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


class Gateway:
    """The rig above, with miniupnpd running (``enable_natpmp=yes``,
    ``secure_mode=yes``, an ``allow`` line for the LAN)."""

    def __init__(self, procs: ProcGroup, workdir: Path, subnet: int, *, min_lifetime: int = 2,
                 natpmp: bool = True):
        tag = f"tfs-{os.getpid()}-gw{subnet}"
        self.gw_ns = f"{tag}g"
        self.wan_ns = f"{tag}w"
        self.lan_if = f"tfsgw{subnet}a"[:15]
        self.gw_lan_if = f"tfsgw{subnet}b"[:15]
        self.gw_wan_if = f"tfsgw{subnet}c"[:15]
        self.wan_if = f"tfsgw{subnet}d"[:15]
        self.lan_addr = f"192.168.{subnet}.2"
        self.gw_addr = f"192.168.{subnet}.1"
        self.external_addr = f"11.77.{subnet}.1"
        self.procs = procs
        procs.add_cleanup(self.close)
        self.close()  # a leftover of a killed run
        _run("ip", "netns", "add", self.gw_ns)
        _run("ip", "netns", "add", self.wan_ns)
        _run("ip", "link", "add", self.lan_if, "type", "veth", "peer", "name", self.gw_lan_if, "netns", self.gw_ns)
        _run("ip", "-n", self.gw_ns, "link", "add", self.gw_wan_if, "type", "veth", "peer", "name", self.wan_if,
             "netns", self.wan_ns)
        _run("ip", "addr", "add", f"{self.lan_addr}/24", "dev", self.lan_if)
        _run("ip", "-n", self.gw_ns, "addr", "add", f"{self.gw_addr}/24", "dev", self.gw_lan_if)
        _run("ip", "-n", self.gw_ns, "addr", "add", f"{self.external_addr}/24", "dev", self.gw_wan_if)
        _run("ip", "-n", self.wan_ns, "addr", "add", f"11.77.{subnet}.2/24", "dev", self.wan_if)
        _run("ip", "link", "set", self.lan_if, "up")
        for ns, ifs in ((self.gw_ns, ["lo", self.gw_lan_if, self.gw_wan_if]), (self.wan_ns, ["lo", self.wan_if])):
            for name in ifs:
                _run("ip", "-n", ns, "link", "set", name, "up")
        self._wait_up()
        _run("ip", "route", "add", "default", "via", self.gw_addr, "dev", self.lan_if)
        _run("ip", "netns", "exec", self.gw_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _run("ip", "netns", "exec", self.gw_ns, "nft", "-f", "-", stdin=NFT_TABLES)
        conf = workdir / "miniupnpd.conf"
        conf.write_text("\n".join([
            f"ext_ifname={self.gw_wan_if}",
            f"listening_ip={self.gw_lan_if}",
            "http_port=0",
            f"enable_natpmp={'yes' if natpmp else 'no'}",
            "enable_upnp=yes",
            "secure_mode=yes",
            f"min_lifetime={min_lifetime}",
            "upnp_table_name=filter",
            "upnp_nat_table_name=nat",
            "upnp_forward_chain=miniupnpd",
            "upnp_nat_chain=prerouting_miniupnpd",
            "upnp_nat_postrouting_chain=postrouting_miniupnpd",
            "uuid=3c6a8b1e-4a52-4b5e-9d7f-2f1c9a0b7e11",
            f"allow 1024-65535 192.168.{subnet}.0/24 1024-65535",
            "deny 0-65535 0.0.0.0/0 0-65535",
            "",
        ]))
        self.daemon: Proc = procs.start("miniupnpd", ["ip", "netns", "exec", self.gw_ns, MINIUPNPD,
                                                     "-f", str(conf), "-d"])
        self.daemon.wait_for_output(lambda text: "HTTP listening on port" in text
                                    and ("Listening for NAT-PMP" in text or not natpmp), 20.0,
                                    "miniupnpd listening", stream="stderr")

    def _wait_up(self, timeout: float = 10.0) -> None:
        """A veth reports UP up to ~1 s after `ip link set up`: wait for carrier."""
        deadline = time.monotonic() + timeout
        while True:
            states = [_run("ip", "-o", "link", "show", self.lan_if).stdout,
                      _run("ip", "-n", self.gw_ns, "-o", "link", "show", self.gw_lan_if).stdout,
                      _run("ip", "-n", self.gw_ns, "-o", "link", "show", self.gw_wan_if).stdout]
            if all("LOWER_UP" in s for s in states):
                return
            if time.monotonic() > deadline:
                raise AssertionError("gateway veths not up:\n" + "".join(states))
            time.sleep(0.05)

    def dnat_rules(self) -> List[str]:
        """The gateway's port mappings: its nft ``dnat`` rules."""
        out = _run("ip", "netns", "exec", self.gw_ns, "nft", "list", "chain", "inet", "nat",
                   "prerouting_miniupnpd").stdout
        return [line.strip() for line in out.splitlines() if "dnat" in line]

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.lan_if], capture_output=True, timeout=30)
        for ns in (self.gw_ns, self.wan_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
