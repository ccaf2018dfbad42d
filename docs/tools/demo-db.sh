#!/usr/bin/env bash
# Makes chat.db.example again: a real database in the current schema, made
# by this server through the protocol and its command line, as the README's
# "The demo database" describes it.
#
#   bash docs/tools/demo-db.sh            # writes chat.db.example
#
# Needs python3 (its ssl module drives a protocol session).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --bin server
BIN=target/release/server
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
"$BIN" --addr 127.0.0.1:0 --db "$DIR/demo.db" --web off 2> "$DIR/log" &
PID=$!
for _ in $(seq 100); do grep -q "listening on" "$DIR/log" && break; sleep 0.1; done
PORT=$(grep -o "listening on [^ ]*" "$DIR/log" | head -1 | sed 's/.*://')

python3 - "$PORT" <<'PY'
import socket, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context(cafile="cert.pem")

def session(lines):
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            f = s.makefile("rw", encoding="utf-8", newline="\n")
            f.readline()  # HELLO
            for line in lines:
                f.write(line + "\n"); f.flush()
                # A SAY is answered by its own MSG; the rest by OK/ERR/BYE.
                ends = ("MSG",) if line.startswith("SAY ") else ("OK", "ERR", "BYE")
                while True:
                    reply = f.readline().rstrip("\n")
                    if reply.split(" ")[0] in ends:
                        break
                if reply.startswith("ERR") or reply.startswith("BYE") and line != "QUIT":
                    sys.exit(f"{line!r}: {reply}")

session(["REGISTER usuario1 123", "REGISTER usuario2 123", "REGISTER professor aula2026"])
session(["LOGIN usuario1 123", "CREATE sala_publica", "CREATE sala_privada senhasecreta",
         "JOIN sala_publica", "SAY Olá, turma!", "SAY Bem-vindos à sala pública.", "QUIT"])
session(["LOGIN professor aula2026", "CREATE geral", "JOIN geral",
         "TOPIC Avisos da disciplina: prova na sexta-feira", "QUIT"])
PY

"$BIN" --db "$DIR/demo.db" user admin professor on
kill -INT $PID; wait $PID || true
# Everything in the one file: the server checkpoints its WAL when it
# stops; this makes sure nothing is left beside it.
python3 -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA wal_checkpoint(TRUNCATE)')" "$DIR/demo.db"
cp "$DIR/demo.db" chat.db.example
echo "wrote chat.db.example"
