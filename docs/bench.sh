#!/usr/bin/env bash
# Re-runs every benchmark of docs/BENCHMARKS.md and prints the numbers.
#
#   bash docs/bench.sh                # all scenarios, 3 runs each (median)
#   RUNS=1 bash docs/bench.sh fanout  # one group only: fanout capacity logins sweep rate-sweep
#   bash docs/bench.sh real-logins    # logins at the real argon2 cost (not in "all")
#   bash docs/bench.sh ws-fanout      # 1 x 100 over WebSocket and over lines, in turn (not in "all")
#   bash docs/bench.sh register-flood # a LOGIN under a REGISTER flood, real argon2 (not in "all")
#   bash docs/bench.sh hash-memory    # RSS of 300 parallel REGISTER+LOGIN, real argon2 (not in "all")
#   SERVER=path/to/server bash docs/bench.sh register-flood   # another build (e.g. an older one)
#   RUNS=12 bash docs/bench.sh slow-consumers  # 1 x 100 flat out, RUNS times: runs with drops (not in "all")
#   bash docs/bench.sh reader-stack   # how deep each command goes on a reader's stack (not in "all")
#   bash docs/bench.sh nodes          # 1 x 100 over 1, 2 and 3 nodes on one Redis (not in "all";
#                                     # needs redis-server; STORE=postgres://... for a shared
#                                     # PostgreSQL, else the nodes share one SQLite file)
#
# Each group gets a fresh server (release build, temporary database, the
# limits raised for load testing) on 127.0.0.1:$PORT; its pid goes to the
# load generator (--server-pid) for RSS, threads and CPU from /proc. The
# JSON of every run is kept in target/bench/. Run from anywhere, as root if
# you want the capacity run's kernel limits raised (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
PORT=${PORT:-23457}
OUT=target/bench
GROUPS_TO_RUN=${*:-fanout capacity logins sweep rate-sweep}
mkdir -p "$OUT" docs/img

cargo build --release --bin server --bin loadgen
SERVER=${SERVER:-target/release/server}
LOADGEN=target/release/loadgen

# 10,000 clients are 20,000 server threads (two per client): each thread
# needs memory maps and a pid. Raise the kernel limits if we may.
if [ "$(id -u)" = 0 ]; then
    sysctl -q -w vm.max_map_count=262144 kernel.pid_max=4194304 || true
fi
ulimit -n "$(ulimit -Hn)" || true

SERVER_PID=
DB_DIR=$(mktemp -d)
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

# A fresh server and database; waits until it listens. Without an
# argument, the load-test options: fast hashing, every rate limit raised,
# outboxes of 65,536 lines. "default-queue": the same with the server's
# default outbox (--queue-lines), as the issue-12 fanout rows require.
# "real": the server's production defaults plus any options after "real".
start_server() {
    stop_server
    rm -f "$DB_DIR"/bench.db*
    local options=(--fast-hash --msg-rate 1000000 --msg-burst 1000000
        --line-rate 1000000 --line-burst 1000000
        --register-rate 1000000 --register-burst 1000000
        --max-connections 20000 --history 0)
    case "${1:-}" in
    real) options=("${@:2}") ;;
    default-queue) ;;
    *) options+=(--queue-lines 65536) ;;
    esac
    "$SERVER" --addr "127.0.0.1:$PORT" --db "$DB_DIR/bench.db" \
        --cert cert.pem --key key.pem "${options[@]}" \
        >"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 50); do
        grep -q "listening on" "$OUT/server.log" && return 0
        sleep 0.1
    done
    echo "server did not start; see $OUT/server.log" >&2
    exit 1
}

# Several nodes on one Redis (docs/SCALING.md): start_nodes N starts a
# fresh redis-server and N nodes on PORT+1..PORT+N, sharing the store
# (STORE, or one SQLite file); NODE_ADDRS and NODE_PIDS are then
# comma-separated lists for the load generator, REDIS_PID Redis's pid.
REDIS_PORT=${REDIS_PORT:-26379}
NODE_PIDS=
NODE_ADDRS=
REDIS_PID=
stop_nodes() {
    for pid in ${NODE_PIDS//,/ } $REDIS_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    NODE_PIDS= NODE_ADDRS= REDIS_PID=
}
start_nodes() {
    stop_server
    stop_nodes
    rm -f "$DB_DIR"/bench.db*
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$DB_DIR" >"$OUT/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 50); do
        redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    local store=${STORE:-sqlite:$DB_DIR/bench.db} bus=redis://127.0.0.1:$REDIS_PORT/
    if [ "${1}" = local ]; then bus=local; set -- 1; fi
    for n in $(seq "$1"); do
        "$SERVER" --addr "127.0.0.1:$((PORT + n))" --store "$store" --bus "$bus" \
            --node-id "n$n" --cert cert.pem --key key.pem --fast-hash \
            --msg-rate 1000000 --msg-burst 1000000 --line-rate 1000000 --line-burst 1000000 \
            --register-rate 1000000 --register-burst 1000000 --history 0 ${NODE_OPTS:-} \
            >"$OUT/node-$n.log" 2>&1 &
        NODE_PIDS=${NODE_PIDS:+$NODE_PIDS,}$!
        NODE_ADDRS=${NODE_ADDRS:+$NODE_ADDRS,}127.0.0.1:$((PORT + n))
        for _ in $(seq 100); do
            grep -q "listening on" "$OUT/node-$n.log" && break
            sleep 0.1
        done
    done
}
# Redis's CPU seconds so far.
redis_cpu() { redis-cli -p "$REDIS_PORT" info cpu | awk -F: '/used_cpu_(sys|user):/ { s += $2 } END { print s }'; }
trap 'stop_server; stop_nodes; rm -rf "$DB_DIR"' EXIT

lg() { "$LOADGEN" --addr "127.0.0.1:$PORT" --ca cert.pem --server-pid "$SERVER_PID" -q --json "$@"; }

# The first number after "NAME": in a JSON file (top-level fields and the
# latency block are each written once in a fanout report).
field() { grep -m1 "\"$2\":" "$1" | sed 's/.*: *//; s/,$//'; }

# The median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# fanout NAME ARGS...: RUNS runs, then the median line.
fanout() {
    local name=$1; shift
    for i in $(seq "$RUNS"); do
        lg fanout "$@" >"$OUT/$name-$i.json"
        echo "  $name run $i: $(field "$OUT/$name-$i.json" deliveries_per_s) deliveries/s," \
            "p99 $(field "$OUT/$name-$i.json" p99_ms) ms, lost $(field "$OUT/$name-$i.json" lost)," \
            "dropped $(field "$OUT/$name-$i.json" dropped)," \
            "server $(field "$OUT/$name-$i.json" cpu_us_per_delivery) us CPU/delivery"
    done
    echo "$name median: $(for i in $(seq "$RUNS"); do field "$OUT/$name-$i.json" deliveries_per_s; done | median) deliveries/s," \
        "p99 $(for i in $(seq "$RUNS"); do field "$OUT/$name-$i.json" p99_ms; done | median) ms," \
        "server $(for i in $(seq "$RUNS"); do field "$OUT/$name-$i.json" cpu_us_per_delivery; done | median) us CPU/delivery"
}

for group in $GROUPS_TO_RUN; do
    case $group in
    fanout)
        # Issue 12's three rows, in its shapes (the load generator's
        # defaults): one TLS record and one write per line, 32 messages in
        # flight per flat-out sender, a window freed by the next member's
        # receipt. The server's default outbox: a flat-out run must not
        # need a bigger one.
        start_server default-queue
        fanout fanout-10x20-rate2 --rooms 10 --members 20 --senders 20 --rate 2 --duration 10
        fanout fanout-1x100 --rooms 1 --members 100 --senders 10 --window 32 --duration 10
        fanout fanout-10x50 --rooms 10 --members 50 --senders 5 --window 32 --duration 10
        ;;
    slow-consumers)
        # The 1 x 100 flat-out row again and again (RUNS times, 12 is a
        # good number) on one server with the default outbox, counting the
        # runs in which members were dropped as slow consumers although
        # the load generator read everything it was sent.
        start_server default-queue
        with_drops=0
        for i in $(seq "$RUNS"); do
            json="$OUT/slow-consumers-$i.json"
            lg fanout --rooms 1 --members 100 --senders 10 --window 32 --duration 10 >"$json"
            dropped=$(field "$json" dropped)
            echo "  slow-consumers run $i: $(field "$json" deliveries_per_s) deliveries/s," \
                "dropped $dropped, lost $(field "$json" lost)"
            [ "$dropped" = 0 ] || with_drops=$((with_drops + 1))
        done
        echo "slow-consumers: $with_drops of $RUNS runs dropped members"
        ;;
    nodes)
        # Issue 15's rows: 1 room x 100 members spread round-robin over 1,
        # 2 and 3 nodes on one Redis, and "local" (one node on the
        # in-process bus) for the bus's cost. Two loads: "paced", 10
        # senders at 100 msg/s each with the default outbox; "flat", 10
        # senders flat out (32 in flight each) with outboxes of 65,536
        # lines, for throughput. Server CPU is the nodes' together;
        # Redis's is printed apart (a PostgreSQL store's is not counted).
        for load in paced flat; do
            case $load in
            paced) NODE_OPTS= ; pace=(--rate 100) ;;
            flat) NODE_OPTS="--queue-lines 65536" ; pace=(--window 32) ;;
            esac
            for shape in local 1 2 3; do
                for i in $(seq "$RUNS"); do
                    start_nodes "$shape"
                    before=$(redis_cpu)
                    json="$OUT/nodes-$load-$shape-$i.json"
                    "$LOADGEN" --addr "$NODE_ADDRS" --ca cert.pem --server-pid "$NODE_PIDS" -q --json \
                        fanout --rooms 1 --members 100 --senders 10 "${pace[@]}" --duration 10 >"$json"
                    after=$(redis_cpu)
                    delivered=$(field "$json" deliveries_per_s)
                    echo "  nodes $load $shape run $i: $delivered deliveries/s," \
                        "p99 $(field "$json" p99_ms) ms, lost $(field "$json" lost)," \
                        "nodes $(field "$json" cpu_us_per_delivery) us CPU/delivery," \
                        "redis $(python3 -c "print(round(($after - $before) / ($delivered * 10) * 1e6, 3))") us CPU/delivery"
                    stop_nodes
                done
            done
        done
        ;;
    ws-fanout)
        # Issue 13's row: the same fanout by browsers' transport (ALPN
        # http/1.1, GET /ws, one text frame per line) and by the terminal
        # client's, in turn on one server. Needs a server with --web on.
        start_server default-queue
        fanout fanout-1x100-line --rooms 1 --members 100 --senders 10 --window 32 --duration 10
        fanout fanout-1x100-ws --rooms 1 --members 100 --senders 10 --window 32 --duration 10 \
            --transport ws
        ;;
    rate-sweep)
        # CPU per delivery against the send rate per member, in a class's
        # rooms (10 x 20, every member sending). 50 msg/s x 200 members is
        # 10,000 SAY/s: the server's rate limits are raised (start_server).
        start_server default-queue
        "$LOADGEN" --addr "127.0.0.1:$PORT" --ca cert.pem --server-pid "$SERVER_PID" -q \
            sweep-rate --rates 1,2,5,10,50 --rooms 10 --members 20 --senders 20 --duration 10 \
            --svg docs/img/rate-sweep.svg --out docs/img/rate-sweep.json
        ;;
    capacity)
        for i in $(seq "$RUNS"); do
            # A fresh server each run, so that "RSS before" is the empty server's.
            start_server
            lg capacity --connections 10000 --rooms 100 --hold 10 >"$OUT/capacity-$i.json"
            echo "  capacity run $i: alive $(field "$OUT/capacity-$i.json" alive) of $(field "$OUT/capacity-$i.json" ready)," \
                "RSS per connection $(field "$OUT/capacity-$i.json" rss_per_connection_kib) KiB" \
                "(stacks $(field "$OUT/capacity-$i.json" stacks_per_connection_kib) KiB)," \
                "threads per connection $(field "$OUT/capacity-$i.json" threads_per_connection)"
        done
        echo "capacity median: $(for i in $(seq "$RUNS"); do field "$OUT/capacity-$i.json" rss_per_connection_kib; done | median) KiB per connection"
        ;;
    logins)
        start_server
        for i in $(seq "$RUNS"); do
            lg logins --connectors 256 --duration 10 >"$OUT/logins-$i.json"
            echo "  logins run $i: $(field "$OUT/logins-$i.json" per_s) cycles/s," \
                "errors $(field "$OUT/logins-$i.json" errors), p99 $(field "$OUT/logins-$i.json" p99_ms) ms"
        done
        echo "logins median: $(for i in $(seq "$RUNS"); do field "$OUT/logins-$i.json" per_s; done | median) cycles/s"
        ;;
    real-logins)
        # Production hashing; the server-wide registration limit raised,
        # since every cycle registers a new account.
        start_server real --register-burst 1000000000 --register-rate 1000000000
        lg logins --connectors 64 --duration 20 >"$OUT/real-logins.json"
        echo "real-logins: $(field "$OUT/real-logins.json" per_s) cycles/s," \
            "errors $(field "$OUT/real-logins.json" errors), p99 $(field "$OUT/real-logins.json" p99_ms) ms"
        ;;
    register-flood)
        # 200 connections keep one REGISTER each waiting for the hashing
        # pool; a legitimate client logs in $LOGINS times meanwhile. The
        # server-wide registration limit is raised, so that every REGISTER
        # is hashed: this measures the pool's fairness by itself.
        for i in $(seq "$RUNS"); do
            start_server real --register-burst 1000000000 --register-rate 1000000000
            lg register-flood --attackers 200 --logins "${LOGINS:-20}" >"$OUT/register-flood-$i.json"
            echo "  register-flood run $i: LOGIN p50 $(field "$OUT/register-flood-$i.json" p50_ms) ms," \
                "p95 $(field "$OUT/register-flood-$i.json" p95_ms) ms, max $(field "$OUT/register-flood-$i.json" max_ms) ms," \
                "$(field "$OUT/register-flood-$i.json" registered_per_s) REGISTER/s," \
                "errors $(field "$OUT/register-flood-$i.json" errors)"
        done
        echo "register-flood median: LOGIN p95 $(for i in $(seq "$RUNS"); do field "$OUT/register-flood-$i.json" p95_ms; done | median) ms"
        ;;
    hash-memory)
        # The server's memory while 300 clients register and log in at the
        # production argon2 cost (registration limit raised), at its peak
        # (VmHWM) and 3 s after they stopped.
        for i in $(seq "$RUNS"); do
            start_server real --register-burst 1000000000 --register-rate 1000000000
            lg logins --connectors 300 --duration 15 >"$OUT/hash-memory-$i.json"
            sleep 3
            peak=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
            after=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
            echo "$peak $after" >"$OUT/hash-memory-$i.rss"
            echo "  hash-memory run $i: $(field "$OUT/hash-memory-$i.json" completed) cycles," \
                "server RSS peak $peak KiB, 3 s after $after KiB"
        done
        echo "hash-memory median: peak $(for i in $(seq "$RUNS"); do cut -d' ' -f1 "$OUT/hash-memory-$i.rss"; done | median) KiB," \
            "after $(for i in $(seq "$RUNS"); do cut -d' ' -f2 "$OUT/hash-memory-$i.rss"; done | median) KiB"
        ;;
    sweep)
        start_server
        "$LOADGEN" --addr "127.0.0.1:$PORT" --ca cert.pem --server-pid "$SERVER_PID" -q \
            sweep --sizes 10,50,100,250,500,1000 --senders 10 --duration 10 \
            --svg docs/img/sweep.svg --out docs/img/sweep.json
        ;;
    reader-stack)
        # What decides the reader's share of "capacity": the deepest byte
        # each command touches on its stack (docs/measure/reader_stack.py
        # starts its own server).
        python3 docs/measure/reader_stack.py "$SERVER"
        ;;
    *)
        echo "unknown group $group (fanout capacity logins sweep rate-sweep ws-fanout slow-consumers nodes real-logins register-flood hash-memory reader-stack)" >&2
        exit 2
        ;;
    esac
done
