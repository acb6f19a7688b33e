//! The fault node's test lock: an exclusive `flock` on
//! `<temp dir>/warren-fault-node.tests.lock`, held by every test that uses the private
//! node for as long as it runs, across threads (`cargo test`) and processes (`cargo
//! nextest`, one process per test). The library's fault tests and `warren perf`'s
//! (`cli/tests/perf_faults.rs`, which includes this file by path) take the same lock.

use std::fs::File;
use std::time::{Duration, Instant};

/// Blocks until the lock is ours (up to 10 minutes: longer means a test hung holding it);
/// released when the file is dropped.
#[allow(clippy::incompatible_msrv)] // File::try_lock: the tests build with the current toolchain
pub fn take() -> File {
    let path = std::env::temp_dir().join("warren-fault-node.tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        match file.try_lock() {
            Ok(()) => return file,
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("lock {}: {e:?}", path.display()),
        }
    }
}
