//! Passwords: argon2id only. Parameters: 64 MiB memory, 2 passes, 1 lane —
//! about 50–100 ms per hash on one core of the machines we run on (measure
//! with `vrs bench login`), stored in the PHC string with the hash so they
//! can be raised later without invalidating existing passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Condvar, Mutex, OnceLock};

pub const MEMORY_KIB: u32 = 64 * 1024;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// At most this many argon2 computations run at once (one core is always
/// left for pages): a burst of logins queues here instead of starving every
/// other request of CPU and memory bandwidth. A plain counting semaphore on
/// std primitives, since the callers are blocking-pool threads.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Slots {
            free: Mutex::new(cores.saturating_sub(1).max(1)),
            freed: Condvar::new(),
        }
    })
}

fn with_slot<T>(work: impl FnOnce() -> T) -> T {
    let s = slots();
    {
        let mut free = s.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = s.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
    }
    // Give the slot back even if the work panics.
    struct Release<'a>(&'a Slots);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            self.0.freed.notify_one();
        }
    }
    let _release = Release(s);
    work()
}

pub fn hash(password: &str) -> String {
    with_slot(|| hash_now(password))
}

fn hash_now(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id hashing of a bounded password cannot fail")
        .to_string()
}

/// Checks a password. A stored hash that is not an argon2id PHC string never
/// verifies.
pub fn verify(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(h) if h.algorithm.as_str() == "argon2id" => {
            with_slot(|| hasher().verify_password(password.as_bytes(), &h).is_ok())
        }
        _ => false,
    }
}

/// A real hash of a random password, verified against when the login name is
/// unknown, so that an unknown name costs the same time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_now(&uuid::Uuid::new_v4().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery 1");
        assert!(h.starts_with("$argon2id$v=19$m=65536,t=2,p=1$"), "{h}");
        assert!(verify(&h, "correct horse battery 1"));
        assert!(!verify(&h, "correct horse battery 2"));
        assert!(!verify("plain-text", "plain-text"));
    }
}
