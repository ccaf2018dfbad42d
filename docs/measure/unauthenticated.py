"""Many TLS connections that never log in: prints how many the server
kept open, how many it refused (BYE TOO_MANY_CONNECTIONS), and the server's
thread count while they are held.

Usage: python3 unauthenticated.py HOST PORT SERVER_PID CONNECTIONS

Each connection completes its TLS handshake, reads the HELLO line, and then
says nothing. The login deadline (60 s by default) would close them in
the end; this measures what they hold before it does, so it runs well
inside it. Raise the open-file limit (`ulimit -n`) for more than about
1000 connections. Used for the figures in docs/RELIABILITY.md.
"""
import socket
import ssl
import sys
import time

host, port, pid, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def threads():
    """The server's thread count, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


held, refused, failed = [], 0, 0
start = time.monotonic()
for _ in range(count):
    try:
        raw = socket.create_connection((host, port), timeout=10)
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        first = tls.recv(4096).decode(errors="replace")
    except OSError:
        failed += 1
        continue
    if first.startswith("HELLO"):
        held.append(tls)
    else:
        refused += 1
        tls.close()
elapsed = time.monotonic() - start
print(
    f"{count} connections in {elapsed:.1f} s: {len(held)} held without logging in, "
    f"{refused} refused with {first.split()[:2] if refused else '-'}, {failed} failed; "
    f"server threads now: {threads()}"
)
for tls in held:
    tls.close()
