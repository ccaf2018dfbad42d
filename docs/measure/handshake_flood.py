"""Many peers dribbling ClientHellos (each reconnects as soon as the server
closes it), then one legitimate TLS client: prints how long the legitimate
client waits for the server's HELLO line, or how it failed.

Usage: python3 handshake_flood.py HOST PORT DRIBBLERS [SECONDS_PER_BYTE]

Each dribbler sends one byte of a real ClientHello every SECONDS_PER_BYTE
(default 0.3). The legitimate client connects 3 s after the flood starts.
Raise the open-file limit (`ulimit -n`) for more than about 1000
dribblers. Used for the figures in docs/RELIABILITY.md.
"""
import socket
import ssl
import sys
import threading
import time

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.3

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
probe = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
try:
    probe.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = outgoing.read()


def dial():
    """A non-blocking connection and the number of bytes sent on it."""
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect((host, port))
    except BlockingIOError:
        pass
    return [s, 0]


result = None


def legitimate():
    global result
    t0 = time.monotonic()
    try:
        raw = socket.create_connection((host, port), timeout=60)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        line = s.makefile().readline().strip()
        result = f"{line[:30]!r}... after {time.monotonic() - t0:.1f} s"
    except Exception as e:  # any failure is the figure we want
        result = f"failed after {time.monotonic() - t0:.1f} s: {e!r}"


dribblers = [dial() for _ in range(count)]
start = time.monotonic()
client = None
while time.monotonic() - start < 70:
    if client is None and time.monotonic() - start >= 3.0:
        client = threading.Thread(target=legitimate)
        client.start()
    if client is not None and not client.is_alive():
        break
    for d in dribblers:
        s, sent = d
        try:
            if sent < len(hello):
                s.send(hello[sent:sent + 1])
                d[1] += 1
            s.recv(1)  # returns only if the server closed (or answered)
        except BlockingIOError:
            continue
        except OSError:
            pass
        s.close()
        d[:] = dial()
    time.sleep(interval)
print(f"{count} dribblers, a byte every {interval} s; legitimate client: {result}")
