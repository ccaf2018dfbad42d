//! Micro-benchmark of the broadcast path: one `SAY` in a room of N members,
//! which formats the `MSG` line once and `try_send`s a shared pointer to it
//! into every member's outbox, under the room's lock.
//!
//! `cargo bench --bench broadcast`. The throughput is in deliveries (one
//! line into one member's outbox), so the figure is directly comparable with
//! the load generator's deliveries per second; the difference between the
//! two is the cost of the writer threads, TLS and the sockets. No writer
//! thread runs here, so no writer is ever asleep and the broadcast never
//! writes to a socket itself: this is the queueing alone.

use std::hint::black_box;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chat::protocol::Name;
use chat::server::client::Client;
use chat::server::hub::{Hub, Room};
use chat::server::writer::Framing;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A connected loopback socket, only so that a `Client` can be built (the
/// benchmark never writes to it).
fn socket(listener: &TcpListener) -> Arc<TcpStream> {
    let addr = listener.local_addr().expect("addr");
    let stream = TcpStream::connect(addr).expect("connect");
    let _ = listener.accept().expect("accept");
    Arc::new(stream)
}

/// A room with `members` logged-in members; returns the hub, a member to
/// speak with, and every member (to drain their outboxes).
fn room_of(members: usize) -> (Hub, Arc<Client>, Vec<Arc<Client>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    // A TLS session per client, only so that a `Client` can be built (no
    // handshake ever runs).
    let config = chat::tls::server_config(Path::new("cert.pem"), Path::new("key.pem"))
        .expect("the bundled certificate");
    let hub = Hub::new(
        0,
        Vec::new(),
        chat::clock::Clock::system(),
        std::sync::Arc::new(chat::bus::LocalBus::new("bench".into())),
    );
    hub.add_room(Room::new(1, Name::parse("sala").expect("name"), None, None));
    let room = hub.room("sala").expect("room");
    let mut clients = Vec::new();
    for i in 0..members {
        let tls = rustls::ServerConnection::new(config.clone()).expect("session");
        let peer = listener.local_addr().expect("addr");
        let client = Arc::new(Client::new(
            i as u64,
            peer,
            Arc::new(Mutex::new(tls)),
            socket(&listener),
            (1 << 20, usize::MAX),
            Framing::Lines,
        ));
        client.set_user(Name::parse(&format!("user{i}")).expect("name"));
        hub.join(&client, &room).expect("join");
        clients.push(client);
    }
    for client in &clients {
        client.pen().discard(); // JOINED and OK JOIN lines
    }
    let speaker = clients.first().cloned().expect("at least one member");
    (hub, speaker, clients)
}

/// One SAY to rooms of 10, 100 and 1,000 members.
fn say(c: &mut Criterion) {
    let mut group = c.benchmark_group("say");
    for members in [10, 100, 1000] {
        let (hub, speaker, clients) = room_of(members);
        group.throughput(Throughput::Elements(members as u64));
        group.bench_function(format!("{members} members"), |b| {
            b.iter(|| {
                let said = hub.say(&speaker, black_box("hello everybody".to_string()));
                black_box(said);
                // Drain so that no outbox fills up; this is the writers'
                // share of the work, done here in the same loop.
                for client in &clients {
                    client.pen().discard();
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, say);
criterion_main!(benches);
