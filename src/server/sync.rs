//! Taking the shared locks in a way that survives a panic elsewhere.
//!
//! A `std::sync::Mutex` is *poisoned* when a thread panics while holding it;
//! from then on `lock()` returns an error. The Rust Book's advice is to
//! `unwrap` that error and panic too, which is right for a program whose
//! state may now be broken. A chat server is different: if one connection's
//! thread hit a bug while holding, say, a room's lock, panicking in every
//! other thread that touches that room would turn one client's bug into an
//! outage for the whole class.
//!
//! So the server's *shared* locks (the hub's maps, each room, each client's
//! membership, the failed-login table, the connection count) are taken
//! through these functions, which accept a poisoned lock. That is safe here
//! because every critical section of the server is a handful of in-memory
//! steps (insert into a map, push to a vector, `try_send`) that leave the
//! data usable at every point: the worst a panic can leave behind is a
//! member count one off until the next join or leave. A lock that guards
//! state *one* connection owns (its TLS session) still uses `expect`: a
//! panic there ends only that connection.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, even if a panicking thread poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `rwlock`, even if a panicking thread poisoned it.
pub(crate) fn read<T>(rwlock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rwlock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `rwlock`, even if a panicking thread poisoned it.
pub(crate) fn write<T>(rwlock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rwlock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A lock poisoned by a panicking thread can still be taken, with the
    /// data as the panicking thread left it.
    #[test]
    fn poisoned_lock_is_still_usable() {
        let shared = Arc::new(Mutex::new(vec![1]));
        let in_thread = shared.clone();
        let result = std::thread::spawn(move || {
            let mut v = in_thread.lock().expect("not poisoned yet");
            v.push(2);
            panic!("a bug while holding the lock");
        })
        .join();
        assert!(result.is_err());
        assert!(shared.is_poisoned());
        assert_eq!(*lock(&shared), vec![1, 2]);
    }
}
