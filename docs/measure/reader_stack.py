"""How deep each command goes on a connection's reader stack.

Usage: python3 reader_stack.py SERVER [SERVER_OPTIONS...]

A reader thread keeps every stack page it has ever touched for as long as
its client stays connected, so the deepest point of any command it runs
decides how many pages each connected client costs (see "Memory per
connection" in docs/BENCHMARKS.md). This script starts SERVER (a release
build; fast hashing, a temporary database, the bundled certificate, any
SERVER_OPTIONS after those) on a free port, logs a second user in to make
rooms, and then, for each command of a script:

1. waits until the probe client's reader thread is blocked in its read,
   and fills the part of its stack below that point with a pattern,
   through /proc/PID/mem;
2. sends the command, waits for the first line of its answer, then for
   the reader to block in its read again (it has handled the line);
3. looks for the deepest byte that is no longer the pattern.

It prints that depth, counted from the top of the thread's stack mapping
(which starts with the C library's thread descriptor), and the pages it
takes. Reading and writing another process's memory needs to be its
parent (this script is) or root.
"""
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

PAGE = 4096
# Left alone below the blocked reader's stack pointer: the read's own
# frames, which are in use while we paint.
MARGIN = 1024
PATTERN = b"\xa5" * 8
# The system calls a reader blocks in, waiting for its socket (x86-64:
# read, recvfrom).
RECEIVE_CALLS = ("0", "45")

SCRIPT = [
    "PING x", "WHO", "REGISTER ana secret123", "LOGIN ana wrongpass",
    "LOGIN ana secret123", "ROOMS", "JOIN hall", "SAY hi there", "WHO",
    "DM zed hello", "DM bob hello", "TOPIC", "LEAVE", "JOIN vault pw123456",
    "CREATE mine pw123456", "JOIN mine pw123456", "TOPIC new topic",
    "BAN zed 5 spam", "BANS", "UNBAN zed", "CLOSE mine", "HELP", "NOPE",
]

if len(sys.argv) < 2:
    sys.exit(__doc__.strip().splitlines()[2])
server, options = sys.argv[1], sys.argv[2:]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
with socket.socket() as free:
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
workdir = tempfile.mkdtemp()
proc = subprocess.Popen(
    [server, "--addr", f"127.0.0.1:{port}", "--db", os.path.join(workdir, "chat.db"),
     "--cert", os.path.join(root, "cert.pem"), "--key", os.path.join(root, "key.pem"),
     "--fast-hash", *options],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
pid = proc.pid

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def connect():
    """A logged-out client that has read its HELLO."""
    deadline = time.monotonic() + 10
    while True:
        try:
            tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5))
            tls.recv(4096)
            return tls
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("the server did not start")
            time.sleep(0.05)


def send(tls, line):
    """Sends a line and waits for the first line of its answer (every
    command of the script gets one); returns it."""
    tls.sendall(line.encode() + b"\r\n")
    tls.settimeout(5)
    answer = b""
    while b"\n" not in answer:
        chunk = tls.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer.decode(errors="replace")


def readers():
    """The server's reader threads, by name ("conn-N"), and their ids."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as comm:
            name = comm.read().strip()
        if name.startswith("conn-") and name.count("-") == 1:
            found[name] = tid
    return found


def blocked_stack(tid):
    """(stack pointer, top of the stack mapping) of the reader thread, once
    it is blocked reading its socket: then it has handled every line it
    had, and nothing runs on its stack."""
    deadline = time.monotonic() + 5
    while True:
        with open(f"/proc/{pid}/task/{tid}/syscall") as syscall:
            fields = syscall.read().split()
        if fields[0] in RECEIVE_CALLS:
            break
        if time.monotonic() > deadline:
            sys.exit("the reader thread never blocked")
        time.sleep(0.01)
    sp = int(fields[-2], 16)
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            if low <= sp < high:
                return sp, high
    sys.exit("no mapping holds the reader's stack pointer")


try:
    zed = connect()
    for line in ["REGISTER zed secret123", "LOGIN zed secret123", "CREATE hall",
                 "CREATE vault pw123456", "REGISTER bob secret123"]:
        send(zed, line)
    before = readers()
    ana = connect()
    (tid,) = [tid for name, tid in readers().items() if name not in before]
    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
        deepest = 0
        print(f"{'command':24} {'bytes':>6} pages")
        for line in SCRIPT:
            sp, top = blocked_stack(tid)
            start, end = top - 64 * 1024, sp - MARGIN
            mem.seek(start)
            mem.write(PATTERN * ((end - start) // len(PATTERN)))
            answer = send(ana, line)
            blocked_stack(tid)
            mem.seek(start)
            painted = mem.read(end - start)
            untouched = 0
            while painted[untouched:untouched + 8] == PATTERN:
                untouched += 8
            depth = top - (start + untouched)
            deepest = max(deepest, depth)
            first = answer.splitlines()[0] if answer else ""
            print(f"{line:24} {depth:6} {-(-depth // PAGE):5}   {first[:50]}")
        print(f"{'deepest':24} {deepest:6} {-(-deepest // PAGE):5}")
        print(f"(blocked in read at {top - sp} bytes; the {MARGIN} below it are not measured)")
finally:
    proc.kill()
    proc.wait()
