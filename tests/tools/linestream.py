#!/usr/bin/env python3
"""Line streams for the revocation tests (tests/integration/revoke*.sh).

  linestream.py server DIR PORT...: note time.time() of each stream's last
      line in DIR/ID
  linestream.py client ID ADDR PORT: send "ID\n" every 100 ms until killed
"""
import os, socket, sys, threading, time
def serve(d, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=conn, args=(d, c), daemon=True).start()
def conn(d, c):
    f = c.makefile("rb")
    for line in f:
        sid = line.strip().decode()
        if not sid.isalnum():
            continue
        tmp = os.path.join(d, "." + sid)
        with open(tmp, "w") as o:
            o.write("%.6f\n" % time.time())
        os.replace(tmp, os.path.join(d, sid))
if sys.argv[1] == "server":
    for p in sys.argv[3:]:
        threading.Thread(target=serve, args=(sys.argv[2], int(p)), daemon=True).start()
    while True:
        time.sleep(3600)
else:
    sid, addr, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
    c = socket.create_connection((addr, port), timeout=2)
    c.settimeout(None)
    while True:
        c.sendall((sid + "\n").encode())
        time.sleep(0.1)
