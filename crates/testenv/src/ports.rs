//! Loopback ports for processes that must be *told* a port (etcd,
//! kube-apiserver, Prometheus, mariadbd, an operator's `HTTP_ADDR`), handed
//! out so that no two holders can ever get the same one. Touches the local
//! filesystem (one lock file per port) and binds loopback briefly.
//!
//! Binding `127.0.0.1:0`, closing the socket and passing the number on is a
//! race: any listener that starts in between — another test's in-process
//! server, another test binary, a second `make test` on the machine — can be
//! given the same port by the kernel. Retrying on "address already in use"
//! would only shrink that window, and could not serve a restart on the same
//! port (`ControlPlane::restart_apiserver`). So instead:
//!
//! - ports come from **below the kernel's ephemeral range**
//!   (`net.ipv4.ip_local_port_range`), which the kernel never hands out for
//!   `bind(:0)` or as the source port of an outgoing connection;
//! - each port is **leased under an exclusive `flock`** on
//!   `/tmp/shopify-operator-ports/<port>.lock`. The lease lives as long as the
//!   [`PortLease`] (for a shared control plane: until the process exits) and
//!   the kernel drops it when the process dies, so a crashed run leaks
//!   nothing. The folder is fixed, not `$TMPDIR`, so that every run on the
//!   machine shares it;
//! - a leased port is **probed by binding it** once, so a foreign program
//!   that listens on a fixed port in the range is skipped, not fought.

use std::fs::{File, OpenOptions, TryLockError};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

/// Where the lock files live: one folder for every run on the machine.
const LOCK_DIR: &str = "/tmp/shopify-operator-ports";

/// How many ports below the ephemeral range are ours to lease.
const SPAN: u16 = 12_000;

/// A loopback port nobody else can lease while this value lives. Nothing
/// listens on it until its holder starts a server there.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    // Held for the lock; closing it releases the lease.
    _lock: File,
}

impl PortLease {
    /// The port number.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The range leases come from: the `SPAN` ports just below the ephemeral
/// range, or just above it where it starts too low to leave room.
fn lease_range() -> std::ops::Range<u16> {
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    if low >= 1024 + SPAN {
        low - SPAN..low
    } else {
        let start = high.saturating_add(1).max(1024);
        start..start.saturating_add(SPAN)
    }
}

/// Leases a loopback port (see the module docs for why it cannot collide).
pub fn lease_port() -> std::io::Result<PortLease> {
    lease_in(Path::new(LOCK_DIR), lease_range())
}

/// Leases a port of `range` under the lock files in `dir`.
fn lease_in(dir: &Path, range: std::ops::Range<u16>) -> std::io::Result<PortLease> {
    std::fs::create_dir_all(dir)?;
    let span = u32::from(range.end - range.start);
    // Start somewhere different in every process and every call, so that
    // concurrent runs rarely contend for the same lock files.
    let seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for i in 0..span {
        let port = range.start + (seed.wrapping_add(i) % span) as u16;
        if let Some(lease) = try_lease(&dir.join(format!("{port}.lock")), port)? {
            return Ok(lease);
        }
    }
    Err(std::io::Error::other(format!(
        "no free loopback port in {range:?}: every one is leased or in use"
    )))
}

/// The lease of `port` if its lock is free and nothing listens on it.
fn try_lease(lock_path: &Path, port: u16) -> std::io::Result<Option<PortLease>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    // A program outside this scheme may listen on a fixed port here.
    if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
        return Ok(None);
    }
    Ok(Some(PortLease { port, _lock: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_distinct_and_outside_the_ephemeral_range() {
        let range = lease_range();
        let leases: Vec<PortLease> = (0..50).map(|_| lease_port().unwrap()).collect();
        let mut ports: Vec<u16> = leases.iter().map(PortLease::port).collect();
        assert!(
            ports.iter().all(|p| range.contains(p)),
            "{ports:?} outside {range:?}"
        );
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 50, "a port was leased twice");
    }

    #[test]
    fn a_held_lease_is_never_given_again_and_a_dropped_one_is_free() {
        // The port of a real lease, so nobody binds it meanwhile, under lock
        // files of this test's own.
        let real = lease_port().unwrap();
        let range = real.port()..real.port() + 1;
        let dir = tempfile::tempdir().unwrap();
        let held = lease_in(dir.path(), range.clone()).unwrap();
        assert!(lease_in(dir.path(), range.clone()).is_err(), "leased twice");
        drop(held);
        assert_eq!(lease_in(dir.path(), range).unwrap().port(), real.port());
    }

    #[test]
    fn a_port_someone_listens_on_is_skipped() {
        // Bound by the kernel and held: nobody else has it.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let err = lease_in(dir.path(), port..port + 1).unwrap_err();
        assert!(err.to_string().contains("no free loopback port"), "{err}");
    }
}
