//! Supervised child processes: started from one long-lived thread with
//! `PR_SET_PDEATHSIG = SIGKILL`, output to a log file. Local only.
//!
//! Linux delivers the parent-death signal when the thread that forked the
//! child exits — not the process. Test harnesses run each test on its own
//! short-lived thread, so forking from there would kill a shared control
//! plane when the first test ends; a dedicated thread that never exits gives
//! "dies with the test process" semantics instead.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// A child process with a name and a log file.
pub struct Supervised {
    /// Short name, e.g. `kube-apiserver`.
    pub name: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Child,
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("testenv-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // All senders gone: keep the thread (and so the children)
                // alive until the process exits.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the testenv spawner thread");
        Mutex::new(tx)
    })
}

/// Starts `cmd` so that it dies with this process, its output appended to
/// `log`.
// The one place unsafe code is allowed in the workspace: pre_exec is the only
// way to set PR_SET_PDEATHSIG in the child before exec.
#[allow(unsafe_code)]
pub fn spawn_supervised(name: &str, cmd: &mut Command, log: &Path) -> std::io::Result<Supervised> {
    let out = File::create(log)?;
    let err = out.try_clone()?;
    let mut owned = std::mem::replace(cmd, Command::new("true"));
    owned.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        owned.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .expect("spawner lock")
        .send((owned, tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    let child = rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))??;
    Ok(Supervised {
        name: name.to_string(),
        log: log.to_path_buf(),
        child,
    })
}

impl Supervised {
    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit, up to `timeout`; then SIGKILL.
    pub fn terminate(&mut self, timeout: std::time::Duration) -> Option<ExitStatus> {
        send_sigterm(self.child.id());
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.kill();
        None
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends SIGTERM to `pid` (a process the caller started, or one of its
/// descendants); a process already gone is fine.
#[allow(unsafe_code)]
pub fn send_sigterm(pid: u32) {
    // SAFETY: plain kill(2); no memory is shared.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of the CPU
/// times in `/proc/PID/stat`.
#[allow(unsafe_code)]
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}
