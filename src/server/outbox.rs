//! The outbox: the bounded queue of lines waiting for one client's writer.
//!
//! # Why not `crossbeam_channel::bounded`
//!
//! A bounded crossbeam channel allocates its whole ring buffer up front:
//! 1024 slots of 32 bytes is 32 KiB per client *before it receives
//! anything*, 320 MB for 10,000 idle students, most of a laptop's spare
//! memory spent on empty queues. So the outbox is an **unbounded** crossbeam
//! channel (a linked list of small blocks, allocated as lines arrive and
//! freed as the writer drains them) with the bound enforced here, by
//! counting: a send that finds `capacity` lines waiting fails with `Full`,
//! exactly as `bounded(capacity).try_send` would. An idle client's outbox
//! costs a few dozen bytes.
//!
//! The count check and the send are two steps, so two threads sending to
//! the same client at the same instant can both pass the check: the queue
//! may then hold one line more per concurrent sender. That is a handful of
//! lines over a bound of a thousand, and it never grows further: the next
//! send sees the queue over its bound and fails.

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::client::Outgoing;
use crate::oneshot;

/// The sending side of a client's outbox; held by its `Client` handle.
#[derive(Debug)]
pub struct Outbox {
    /// The channel to the writer thread.
    tx: Sender<Outgoing>,
    /// The most lines that may wait (`--queue-lines`).
    capacity: usize,
}

/// A new outbox holding at most `capacity` lines, and the writer's end.
pub fn outbox(capacity: usize) -> (Outbox, Receiver<Outgoing>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (Outbox { tx, capacity }, rx)
}

impl Outbox {
    /// Queues a line unless `capacity` lines are already waiting. Never
    /// blocks.
    ///
    /// # Errors
    ///
    /// `Full` when the client is not keeping up; `Disconnected` when its
    /// writer has gone.
    pub fn try_send(&self, item: Outgoing) -> Result<(), TrySendError<Outgoing>> {
        if self.tx.len() >= self.capacity {
            return Err(TrySendError::Full(item));
        }
        self.tx
            .send(item)
            .map_err(|e| TrySendError::Disconnected(e.0))
    }

    /// Wakes the writer. The wake-up marker is not a line, so it is queued
    /// even on a full outbox: it must never be the reason a client is
    /// dropped, and at most a few are ever waiting.
    pub fn wake(&self) {
        let _ = self.tx.send(Outgoing::Wake);
    }

    /// Queues a marker (not a line, so even on a full outbox) and returns
    /// the channel on which the writer says it has written everything
    /// queued before it. If the writer
    /// is gone, the marker is dropped at once and the channel is
    /// disconnected.
    pub fn mark(&self) -> oneshot::Receiver<()> {
        let (taken, told) = oneshot::channel();
        let _ = self.tx.send(Outgoing::Mark(taken));
        told
    }

    /// Items waiting now.
    pub fn len(&self) -> usize {
        self.tx.len()
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.tx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound is enforced like a bounded channel's: `Full` at capacity,
    /// room again once the writer takes a line.
    #[test]
    fn full_at_capacity() {
        let (tx, rx) = outbox(2);
        assert!(tx.try_send(Outgoing::Owned("a\n".into())).is_ok());
        assert!(tx.try_send(Outgoing::Owned("b\n".into())).is_ok());
        assert!(matches!(
            tx.try_send(Outgoing::Owned("c\n".into())),
            Err(TrySendError::Full(_))
        ));
        rx.recv().expect("a line");
        assert!(tx.try_send(Outgoing::Owned("c\n".into())).is_ok());
        assert_eq!(tx.len(), 2);
    }

    /// A marker is signalled when the writer takes it, after the lines
    /// before it; a marker the writer never takes (it went away before or
    /// after the marker was queued) says so at once instead of leaving its
    /// waiter to a timeout.
    #[test]
    fn a_marker_is_signalled_when_taken() {
        let (tx, rx) = outbox(2);
        tx.try_send(Outgoing::Owned("a\n".into())).expect("room");
        let marker = tx.mark();
        assert!(marker.try_recv().is_err(), "not taken yet");
        assert!(matches!(rx.recv(), Ok(Outgoing::Owned(_))));
        match rx.recv() {
            Ok(Outgoing::Mark(taken)) => taken.send(()).expect("waiter alive"),
            other => panic!("expected the marker, got {other:?}"),
        }
        assert_eq!(marker.recv(), Ok(()));
        // A marker still queued when the writer goes away: its queue is
        // dropped, and the waiter hears so at once.
        let waiting = tx.mark();
        drop(rx);
        assert!(waiting.recv().is_err(), "the writer went away");
        assert!(tx.mark().recv().is_err(), "the writer is gone");
    }

    /// A writer that has gone is `Disconnected`, not `Full`.
    #[test]
    fn disconnected_when_the_writer_is_gone() {
        let (tx, rx) = outbox(2);
        drop(rx);
        assert!(matches!(
            tx.try_send(Outgoing::Owned("a\n".into())),
            Err(TrySendError::Disconnected(_))
        ));
    }
}
