"""nginx (Debian package) started by a test on a local address, serving a folder, with its
config, pid file and logs in the test's temporary folder; stopped by PID at the end."""

from __future__ import annotations

from pathlib import Path

from swarm import ProcGroup, free_port, wait_tcp

NGINX = "/usr/sbin/nginx"

CONFIG = """
user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


class Nginx:
    def __init__(self, procs: ProcGroup, root: Path, prefix: Path, name: str = "nginx"):
        prefix.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(CONFIG.format(prefix=prefix, port=self.port, root=root))
        self.proc = procs.start(name, [NGINX, "-c", str(conf), "-p", str(prefix)])
        wait_tcp("127.0.0.1", self.port, proc=self.proc)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"
