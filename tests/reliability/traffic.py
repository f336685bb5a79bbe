#!/usr/bin/env python3
"""Traffic for the reliability suite; run inside a test's namespace.

  streams DST PORT N INTERVAL STOPFILE OUT
      N long-lived TCP connections to an echo server; each sends a line every
      INTERVAL seconds and waits (2 s) for its echo. At STOPFILE, writes JSON
      {"streams", "seconds", "messages", "broken"} to OUT.
  probe DST PORT INTERVAL TIMEOUT STOPFILE OUT
      a fresh TCP connect every INTERVAL seconds (start to start); one line
      per attempt to OUT: "START END ok|no" (wall-clock seconds, to compare
      with msegd's log and the API calls' times).
  flip SOCK PATH FILE_A FILE_B COUNT PAUSE OUT
      COUNT PUTs of PATH over the unix socket SOCK, alternating the YAML
      documents FILE_A and FILE_B (starting with B: A is in force), PAUSE
      seconds apart; one line per PUT to OUT: "START END A|B STATUS".
  classify FLIPS PROBELOG ALLOWED_UNDER
      checks each probe of PROBELOG against the policy in force at its start
      and at its end (either of the two during a PUT in flight); the pair is
      allowed under the policies named in ALLOWED_UNDER ("A", "B", "AB" or
      "-"); prints JSON {"probes", "ok", "no", "neither"}.
  nft-own COMMANDS READYFILE
      runs nft COMMANDS through libnftables and keeps its netlink socket open
      (an owner-flagged table stays until this process ends); touches
      READYFILE when done, then sleeps until killed.
  udpflood DST PORT SECONDS OUT
      UDP datagrams as fast as possible for SECONDS; writes the count.
"""
import http.client, json, os, select, socket, sys, time


def connect(dst, port, timeout):
    fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((dst, port))
    return s


def streams(dst, port, n, interval, stop, out):
    socks = [connect(dst, int(port), 2.0) for _ in range(int(n))]
    alive = [True] * len(socks)
    open(out + '.ready', 'w').close()
    t0 = time.monotonic()
    msgs = 0
    seq = 0
    interval = float(interval)
    while not os.path.exists(stop):
        seq += 1
        for i, s in enumerate(socks):
            if not alive[i]:
                continue
            line = b'%d-%d\n' % (i, seq)
            try:
                s.sendall(line)
                got = b''
                while not got.endswith(b'\n'):
                    c = s.recv(64)
                    if not c:
                        raise OSError('closed')
                    got += c
                if got != line:
                    raise OSError('mismatch')
                msgs += 1
            except OSError as e:
                alive[i] = False
                sys.stderr.write('stream %d broken at %.3f: %s\n' % (i, time.monotonic(), e))
        time.sleep(interval)
    secs = time.monotonic() - t0
    with open(out, 'w') as f:
        json.dump({'streams': len(socks), 'seconds': round(secs * len(socks), 1),
                   'messages': msgs, 'broken': alive.count(False)}, f)


def probe(dst, port, interval, timeout, stop, out):
    """A new connect starts every INTERVAL (start to start, several may be
    pending); ok = the TCP handshake completed within TIMEOUT."""
    port, interval, timeout = int(port), float(interval), float(timeout)
    fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
    pending = {}          # socket -> start time
    nxt = time.monotonic()
    clk = time.time() - time.monotonic()   # lines carry wall-clock times
    with open(out, 'a', buffering=1) as f:
        open(out + '.ready', 'w').close()
        while pending or not os.path.exists(stop):
            now = time.monotonic()
            if now >= nxt and not os.path.exists(stop):
                s = socket.socket(fam, socket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex((dst, port))
                pending[s] = now
                nxt = now + interval
            wait = max(0.0, min([nxt - now] + [t + timeout - now for t in pending.values()]))
            _, w, _ = select.select([], list(pending), [], wait)
            now = time.monotonic()
            for s in list(pending):
                start = pending[s]
                if s in w:
                    ok = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                elif now - start >= timeout:
                    ok = False
                else:
                    continue
                f.write("%.4f %.4f %s\n" % (start + clk, now + clk, 'ok' if ok else 'no'))
                del pending[s]
                s.close()


def udpflood(dst, port, seconds, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    end = time.monotonic() + float(seconds)
    n = 0
    payload = b'f' * 64
    while time.monotonic() < end:
        for _ in range(100):
            try:
                s.sendto(payload, (dst, int(port)))
                n += 1
            except BlockingIOError:
                select.select([], [s], [], 0.01)
            except OSError:
                pass
    with open(out, 'w') as f:
        f.write('%d\n' % n)


def nft_own(commands, ready):
    import ctypes
    lib = ctypes.CDLL('libnftables.so.1')
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    ctx = lib.nft_ctx_new(0)
    if lib.nft_run_cmd_from_buffer(ctx, commands.encode()) != 0:
        sys.exit(1)
    open(ready, 'w').close()
    while True:
        time.sleep(3600)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__('mseg', timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.unix_path)


def flip(sock, path, file_a, file_b, count, pause, out):
    docs = {'A': open(file_a, 'rb').read(), 'B': open(file_b, 'rb').read()}
    conn = UnixHTTP(sock)
    with open(out, 'w', buffering=1) as f:
        for i in range(int(count)):
            which = 'B' if i % 2 == 0 else 'A'
            t0 = time.time()
            try:
                conn.request('PUT', path, docs[which], {'Content-Type': 'application/yaml'})
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = UnixHTTP(sock)
                status = 0
            f.write('%.4f %.4f %s %d\n' % (t0, time.time(), which, status))
            time.sleep(float(pause))


def classify(flips_path, probe_path, allowed_under):
    flips = [l.split() for l in open(flips_path)]
    flips = [(float(a), float(b), w) for a, b, w, st in flips if st in ('200', '201')]

    def in_force(t):
        """the policies that may be in force at time t"""
        cur = 'A'
        for a, b, w in flips:
            if b <= t:
                cur = w
            elif a <= t:
                return {cur, w}
            else:
                break
        return {cur}

    res = {'probes': 0, 'ok': 0, 'no': 0, 'neither': 0}
    for line in open(probe_path):
        start, end, outcome = line.split()
        res['probes'] += 1
        res[outcome] += 1
        could = in_force(float(start)) | in_force(float(end))
        expect = {'ok' if p in allowed_under else 'no' for p in could}
        if outcome not in expect:
            res['neither'] += 1
            sys.stderr.write('neither: %s (policies %s)\n' % (line.strip(), sorted(could)))
    print(json.dumps(res))


if __name__ == '__main__':
    {'streams': streams, 'probe': probe, 'udpflood': udpflood, 'flip': flip,
     'classify': classify, 'nft-own': nft_own}[sys.argv[1]](*sys.argv[2:])
