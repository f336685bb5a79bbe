#!/usr/bin/env python3
"""HTTP abuse against msegd's API on a unix socket, for 10_http_abuse.sh.

  httpabuse.py SOCK slowloris N SECONDS
      N connections each send a request line and then one header byte every
      second; meanwhile a normal GET /v1/status every 0.2 s on a fresh
      connection. Prints JSON: slow connections cut off, normal calls, how
      many failed or took over 1 s, the worst latency.
  httpabuse.py SOCK oversize N
      N PUTs with a 2 MiB body (declared and chunked) and N requests with a
      64 KiB header; prints the status codes seen (or "closed").
  httpabuse.py SOCK garbage N
      N connections sending 1-8 KiB of random bytes; prints how each ended
      (a 4xx status, closed, or "hung" when nothing came back in 2 s).
"""
import json, os, random, socket, sys, time


def conn(path, timeout=2.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def status_of(s):
    """the status code of the response on s, 'closed', or 'hung'"""
    buf = b''
    try:
        while b'\r\n' not in buf:
            c = s.recv(4096)
            if not c:
                break
            buf += c
    except socket.timeout:
        return 'hung'
    except OSError:
        return 'closed'
    if not buf.startswith(b'HTTP/1.'):
        return 'closed'
    return buf.split()[1].decode()


def get_status(path):
    t0 = time.monotonic()
    try:
        s = conn(path, 1.0)
        s.sendall(b'GET /v1/status HTTP/1.1\r\nHost: mseg\r\nConnection: close\r\n\r\n')
        st = status_of(s)
        s.close()
    except OSError:
        st = 'error'
    return st, time.monotonic() - t0


def slowloris(path, n, seconds):
    n, seconds = int(n), float(seconds)
    slow = []
    for i in range(n):
        try:
            s = conn(path)
            s.sendall(b'GET /v1/status HTTP/1.1\r\nHost: mseg\r\nX-Slow: ')
            slow.append(s)
        except OSError:
            pass
    calls = failed = 0
    worst = 0.0
    end = time.monotonic() + seconds
    nxt = 0.0
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= nxt:
            for s in slow:
                try:
                    s.send(b'a')
                except OSError:
                    pass
            nxt = now + 1.0
        st, dt = get_status(path)
        calls += 1
        worst = max(worst, dt)
        if st != '200' or dt > 1.0:
            failed += 1
        time.sleep(0.2)
    cut = 0
    for s in slow:
        s.settimeout(0.05)
        try:
            s.send(b'a')
            if s.recv(1) == b'':
                cut += 1
        except socket.timeout:
            pass
        except OSError:
            cut += 1
        s.close()
    print(json.dumps({'slow_connections': len(slow), 'slow_cut_off': cut, 'calls': calls,
                      'calls_failed': failed, 'worst_ms': int(worst * 1000)}))


def oversize(path, n):
    seen = {}
    body = b'x' * (2 << 20)
    for i in range(int(n)):
        for kind in ('declared', 'chunked', 'header'):
            try:
                s = conn(path)
                if kind == 'declared':
                    s.sendall(b'PUT /v1/policies/default/big HTTP/1.1\r\nHost: mseg\r\n'
                              b'Content-Type: application/yaml\r\nContent-Length: %d\r\n\r\n' % len(body))
                    try:
                        s.sendall(body)
                    except OSError:
                        pass
                elif kind == 'chunked':
                    s.sendall(b'PUT /v1/policies/default/big HTTP/1.1\r\nHost: mseg\r\n'
                              b'Content-Type: application/yaml\r\nTransfer-Encoding: chunked\r\n\r\n')
                    try:
                        for _ in range(32):
                            s.sendall(b'10000\r\n' + b'y' * 0x10000 + b'\r\n')
                        s.sendall(b'0\r\n\r\n')
                    except OSError:
                        pass
                else:
                    s.sendall(b'GET /v1/status HTTP/1.1\r\nHost: mseg\r\nX-Big: ' + b'h' * (64 << 10) + b'\r\n\r\n')
                st = status_of(s)
                s.close()
            except OSError:
                st = 'closed'
            key = kind + ':' + st
            seen[key] = seen.get(key, 0) + 1
    print(json.dumps(seen, sort_keys=True))


def garbage(path, n):
    rnd = random.Random(1206)
    seen = {}
    for i in range(int(n)):
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1024, 8192)))
        try:
            s = conn(path)
            try:
                s.sendall(data)
            except OSError:
                pass
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            st = status_of(s)
            s.close()
        except OSError:
            st = 'closed'
        seen[st] = seen.get(st, 0) + 1
    print(json.dumps(seen, sort_keys=True))


if __name__ == '__main__':
    path, what = sys.argv[1], sys.argv[2]
    {'slowloris': slowloris, 'oversize': oversize, 'garbage': garbage}[what](path, *sys.argv[3:])
