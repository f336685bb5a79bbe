#!/usr/bin/env python3
"""Helpers of tests/integration/netpol_conformance.sh (see README.md here).

  conformance.py prepare OUT PREFIX CASE.yaml... each case file -> OUT/NAME/
                                                endpoints.yaml, policies/case.yaml,
                                                cells, nslots (or OUT/NAME/error)
  conformance.py echo                           TCP and UDP echo on ports 80, 81
                                                (IPv4 and IPv6), until killed
  conformance.py check NAME DIR PREFIX TIMEOUT  every cell of DIR/cells probed at once,
                                                each socket made in the source pod's
                                                network namespace; PASS/FAIL lines,
                                                exit 1 on a difference
"""
import errno
import os
import selectors
import socket
import sys
import time

PORTS = (80, 81)
PROBES = [(proto, port, fam) for fam in (4, 6) for proto in ("tcp", "udp") for port in PORTS]


def slot_addr(k, fam):
    return "10.201.0.%d" % (10 + k) if fam == 4 else "fd00:201::%d" % (10 + k)


def prepare(path, out, prefix):
    import yaml

    def fail(msg):
        sys.exit("%s: %s" % (path, msg))

    doc = yaml.safe_load(open(path))
    known = {"description", "namespaces", "pods", "policies", "expect"}
    if not isinstance(doc, dict) or set(doc) - known:
        fail("unknown keys %s" % sorted(set(doc or {}) - known))
    pods = doc.get("pods") or fail("no pods")
    names, endpoints = [], []
    for k, pod in enumerate(pods, 1):
        ns = pod.get("namespace", "default")
        names.append("%s/%s" % (ns, pod["name"]))
        ep = {"id": "%s-%s" % (ns, pod["name"]), "name": pod["name"], "namespace": ns,
              "labels": pod.get("labels") or {},
              "netns": "/run/netns/%s-s%d" % (prefix, k),
              "ips": [slot_addr(k, 4), slot_addr(k, 6)]}
        if pod.get("ports"):
            ep["ports"] = pod["ports"]
        endpoints.append(ep)
    inv = {}
    if doc.get("namespaces"):
        inv["namespaces"] = doc["namespaces"]
    inv["endpoints"] = endpoints
    os.makedirs(os.path.join(out, "policies"), exist_ok=True)
    with open(os.path.join(out, "endpoints.yaml"), "w") as f:
        yaml.safe_dump(inv, f, sort_keys=False)
    with open(os.path.join(out, "policies", "case.yaml"), "w") as f:
        yaml.safe_dump_all(doc.get("policies") or [], f, sort_keys=False)

    # expect: {"PROBES": MATRIX}; PROBES is "*" or space-separated
    # proto/port (port may be *) with an optional @4 or @6; a later key
    # overrides an earlier one for the probes it names.
    want = {}
    for key, text in (doc.get("expect") or {}).items():
        sel = []
        for tok in str(key).split():
            spec, _, fam = tok.partition("@")
            proto, _, port = spec.partition("/")
            sel += [p for p in PROBES
                    if (spec == "*" or (p[0] == proto and port in ("*", str(p[1]))))
                    and fam in ("", str(p[2]))]
        if not sel:
            fail("expect key %r selects no probe" % key)
        rows = [r.split() for r in str(text).strip().splitlines() if r.strip()]
        cols = rows[0][1:]
        if sorted(cols) != sorted(names) or sorted(r[0] for r in rows[1:]) != sorted(names):
            fail("expect %r: rows and columns must name every pod %s" % (key, names))
        for r in rows[1:]:
            if len(r) != len(cols) + 1:
                fail("expect %r: row %s has %d cells" % (key, r[0], len(r) - 1))
            for to, v in zip(cols, r[1:]):
                if r[0] == to:
                    continue
                if v not in ("0", "1"):
                    fail("expect %r: %s -> %s: %r (0 or 1)" % (key, r[0], to, v))
                for p in sel:
                    want[(r[0], to, p)] = v
    with open(os.path.join(out, "cells"), "w") as f:
        for a in names:
            for b in names:
                if a == b:
                    continue
                for p in PROBES:
                    if (a, b, p) not in want:
                        fail("no expectation for %s -> %s %s/%d IPv%d" % ((a, b) + p))
                    f.write("%d %s %s %s %s %d %d %s\n" % (
                        names.index(a) + 1, a, b, slot_addr(names.index(b) + 1, p[2]),
                        p[0], p[1], p[2], want[(a, b, p)]))
    with open(os.path.join(out, "nslots"), "w") as f:
        f.write("%d\n" % len(pods))


def echo():
    sel = selectors.DefaultSelector()
    for port in PORTS:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET6, kind)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::", port))
            if kind == socket.SOCK_STREAM:
                s.listen(256)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, "listen" if kind == socket.SOCK_STREAM
                         else "udp")
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            try:
                if key.data == "udp":
                    data, peer = s.recvfrom(2048)
                    s.sendto(data, peer)
                elif key.data == "listen":
                    c, _ = s.accept()
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, "conn")
                else:
                    data = s.recv(2048)
                    if data:
                        s.send(data)
                        continue
                    sel.unregister(s)
                    s.close()
            except OSError:
                if key.data == "conn":
                    sel.unregister(s)
                    s.close()


def netns_enter(path, libc=[]):
    import ctypes
    if not libc:
        libc.append(ctypes.CDLL(None, use_errno=True))
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc[0].setns(fd, 0x40000000) != 0:    # CLONE_NEWNET
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def probe(cells, timeout):
    """cells: (n, netns path, addr, proto, port) -> {n: "1" | "0"}"""
    sel = selectors.DefaultSelector()
    res = {}
    netns = None
    for n, path, addr, proto, port in cells:
        if path != netns:
            netns_enter(path)     # sockets stay in the namespace they were made in
            netns = path
        res[n] = "0"
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        s.setblocking(False)
        try:
            if proto == "tcp":
                e = s.connect_ex((addr, int(port)))
                if e not in (0, errno.EINPROGRESS):
                    raise OSError(e, "connect")
                sel.register(s, selectors.EVENT_WRITE, [n, "connect"])
            else:
                s.connect((addr, int(port)))
                s.send(b"ping-" + n.encode())
                sel.register(s, selectors.EVENT_READ, [n, "reply"])
        except OSError:
            s.close()
    deadline = time.monotonic() + timeout
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            s, (n, state) = key.fileobj, key.data
            try:
                if state == "connect":
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        raise OSError("connect")
                    s.send(b"ping-" + n.encode())
                    sel.modify(s, selectors.EVENT_READ, [n, "reply"])
                    continue
                if s.recv(64) == b"ping-" + n.encode():
                    res[n] = "1"
            except OSError:
                pass
            sel.unregister(s)
            s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return res


def check(name, out, prefix, timeout, verbose):
    cells = [line.split() for line in open(os.path.join(out, "cells"))]
    got = probe([(str(n), "/run/netns/%s-s%s" % (prefix, c[0]), c[3], c[4], c[5])
                 for n, c in enumerate(cells, 1)], timeout)
    bad = 0
    for n, (_, a, b, _, proto, port, fam, want) in enumerate(cells, 1):
        cell = "%s -> %s %s/%s IPv%s %s" % (a, b, proto, port, fam,
                                            "reached" if want == "1" else "refused")
        if got.get(str(n)) == want:
            if verbose:
                print("PASS: conformance/%s: %s" % (name, cell))
        else:
            print("FAIL: conformance/%s: %s expected, got %s" % (
                name, cell, {"1": "reached", "0": "refused"}.get(got.get(str(n)), "nothing")))
            bad += 1
    if bad:
        print("FAIL: conformance/%s (%d of %d cells differ)" % (name, bad, len(cells)))
        return 1
    print("PASS: conformance/%s (%d cells)" % (name, len(cells)))
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "prepare":
        for case in sys.argv[4:]:
            out = os.path.join(sys.argv[2], os.path.basename(case)[:-len(".yaml")])
            os.makedirs(out, exist_ok=True)
            try:
                prepare(case, out, sys.argv[3])
            except (SystemExit, Exception) as e:
                with open(os.path.join(out, "error"), "w") as f:
                    f.write("%s\n" % e)
    elif cmd == "echo":
        echo()
    elif cmd == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]),
                       bool(os.environ.get("CELLS"))))
    else:
        sys.exit(__doc__)
