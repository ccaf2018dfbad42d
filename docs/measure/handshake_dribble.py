"""Sends a real TLS ClientHello to a server one byte at a time and prints
how long the server keeps the socket open.

Usage: python3 handshake_dribble.py HOST PORT [SECONDS_PER_BYTE [CAP_SECONDS]]

The ClientHello is made by Python's own TLS stack (a memory BIO, no
network), so the server sees exactly what a real client would send, only
slowly. The script stops at CAP_SECONDS (default 40) if the server has not
closed the socket by then. Used for the figures in docs/RELIABILITY.md.
"""
import socket
import ssl
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.3
cap = float(sys.argv[4]) if len(sys.argv) > 4 else 40.0

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass  # the ClientHello is written; the answer would come next
hello = outgoing.read()

sock = socket.create_connection((host, port))
# The pause between two bytes is a read's timeout: a read that returns
# instead means the server closed the socket.
sock.settimeout(interval)
start = time.monotonic()
sent = 0
outcome = "still open at the cap"
while time.monotonic() - start < cap:
    if sent < len(hello):
        try:
            sock.send(hello[sent:sent + 1])
            sent += 1
        except OSError as e:
            outcome = f"send failed ({e})"
            break
    try:
        if not sock.recv(4096):
            outcome = "closed by the server"
            break
    except socket.timeout:
        pass
    except OSError as e:
        outcome = f"reset ({e})"
        break
print(f"ClientHello of {len(hello)} bytes, {sent} sent: {outcome} "
      f"after {time.monotonic() - start:.1f} s")
