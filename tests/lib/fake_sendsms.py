#!/usr/bin/env python3
"""tests/lib/fake_sendsms.py PORT_FILE LOG MODE_FILE -- a stand-in for
Kannel's sendsms for integration tests of the notices dispatcher (the e2e
suite runs the real Kannel).  It listens on a free loopback port (written
to PORT_FILE), appends one JSON line per POST to LOG (to, coding,
validity, dlr-url, text, the answer it gave) and answers as MODE_FILE says,
read at each request:
  202    "0: Accepted for delivery"     503   "Queue full" (nothing queued)
  400    a bad request                  hang  read it, answer after 30 s
  drop   read it, close without an answer
  slow:S read it, answer 202 after S seconds (logged when it came)
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_file, mode_file = sys.argv[1:4]
lock = threading.Lock()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        try:
            mode = open(mode_file).read().strip() or "202"
        except OSError:
            mode = "202"
        rec = {
            "to": self.headers.get("X-Kannel-To"),
            "coding": self.headers.get("X-Kannel-Coding"),
            "validity": self.headers.get("X-Kannel-Validity"),
            "dlr": self.headers.get("X-Kannel-DLR-Url"),
            "text": body,
            "mode": mode,
            "t": time.time(),
        }
        with lock:
            with open(log_file, "a") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        if mode == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if mode == "hang":
            time.sleep(30)
            return
        if mode.startswith("slow:"):
            time.sleep(float(mode[5:]))
            mode = "202"
        code, text = {
            "202": (202, "0: Accepted for delivery"),
            "503": (503, "Queue full"),
            "400": (400, "Missing receiver number"),
        }.get(mode, (202, "0: Accepted for delivery"))
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# socketserver's listen backlog is 5: a burst of dispatches beyond it waits
# for a SYN retransmit (1 s) and can outlive the daemon's sendsms deadline on
# a busy machine, which the test would read as "may have left".  Kannel's
# own listener has a deep backlog.
ThreadingHTTPServer.request_queue_size = 128
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
