//! Micro-benchmarks of the pure protocol layer: the line splitter and the
//! command parser, the two steps every received line goes through.
//!
//! `cargo bench --bench protocol`. The numbers are per line, so a
//! regression shows up as a change in ns/line.

use std::hint::black_box;

use chat::protocol::{Command, LineSplitter, ServerLine, Timestamp};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// 1,000 typical chat lines in one buffer, as one TCP read might bring them.
fn chat_bytes() -> Vec<u8> {
    (0..1000)
        .map(|i| format!("SAY message number {i}, with a little text in it\r\n"))
        .collect::<String>()
        .into_bytes()
}

/// Splitting a buffer of 1,000 lines, and splitting it in 16-byte pieces
/// (a worst case: every push carries a fragment of a line).
fn splitter(c: &mut Criterion) {
    let bytes = chat_bytes();
    let mut group = c.benchmark_group("splitter");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1000 lines, one push", |b| {
        b.iter_batched(
            || LineSplitter::new(4096),
            |mut s| {
                s.push(black_box(&bytes));
                let mut n = 0;
                while let Some(e) = s.next_event() {
                    black_box(e);
                    n += 1;
                }
                n
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("1000 lines, 16-byte pushes", |b| {
        b.iter_batched(
            || LineSplitter::new(4096),
            |mut s| {
                let mut n = 0;
                for piece in bytes.chunks(16) {
                    s.push(black_box(piece));
                    while let Some(e) = s.next_event() {
                        black_box(e);
                        n += 1;
                    }
                }
                n
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Parsing one line of each common kind, and rendering the line every
/// member receives.
fn parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("parser");
    group.throughput(Throughput::Elements(1));
    for line in [
        "SAY hello everybody, how are you today?",
        "JOIN sala_publica",
        "LOGIN usuario1 123",
        "DM bob see you tomorrow",
        "FROB nonsense",
    ] {
        group.bench_function(line.split(' ').next().unwrap_or(line), |b| {
            b.iter(|| Command::parse(black_box(line)))
        });
    }
    let msg = ServerLine::Msg {
        room: "sala_publica".into(),
        time: Timestamp(1_796_024_409_123),
        user: "alice".into(),
        text: "hello everybody, how are you today?".into(),
    };
    group.bench_function("render MSG", |b| b.iter(|| black_box(&msg).to_string()));
    group.finish();
}

criterion_group!(benches, splitter, parser);
criterion_main!(benches);
