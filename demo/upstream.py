"""A local HTTPS stand-in for api.example.com, for the end-to-end demo only.

It answers JSON describing what it received, echoing the request headers back
(as a careless upstream might) so the demo can show that the runtime redacts
the injected key from responses. It logs the credential it got to its own
stderr, which the demo prints as "what the upstream saw".
"""

from __future__ import annotations

import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        auth = self.headers.get("authorization", "")
        sys.stderr.write(f"upstream received {self.command} {self.path} authorization={auth!r}\n")
        sys.stderr.flush()
        payload = {
            "method": self.command,
            "path": self.path,
            "users": [{"id": 7, "name": "Ada"}] if self.path.startswith("/v1/users") else [],
            "echoedHeaders": dict(self.headers.items()),
            "bodyBytes": len(body),
        }
        data = json.dumps(payload, indent=2).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


def main() -> None:
    cert, key, port_file = (Path(arg) for arg in sys.argv[1:4])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
