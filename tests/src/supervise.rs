//! Child processes that cannot outlive the test process.
//!
//! Test binaries keep their clusters in statics, which are never dropped, and a test
//! run can end by panic, abort or SIGKILL. So instead of cleaning up in `Drop`, every
//! cluster process is started with `PR_SET_PDEATHSIG = SIGTERM`: the kernel signals it
//! when its parent goes away, and `tools/cluster.sh` then tears its cluster down.
//!
//! The kernel ties that signal to the *thread* that forked the child, and each
//! `#[tokio::test]` runs on a thread that ends with the test. Children are therefore
//! forked by one spawner thread that lives as long as the process.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

type SpawnRequest = (Command, Sender<io::Result<Child>>);

/// Starts `command` from the process-lifetime spawner thread, with the parent-death
/// signal set.
pub(crate) fn spawn_tied_to_this_process(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("cluster-spawner".into())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    // The requester may have given up waiting; nothing else to do then.
                    let _ = reply.send(spawn_with_parent_death_signal(&mut command));
                }
            })
            .expect("the spawner thread starts");
        Mutex::new(requests)
    });
    let (reply, response) = channel();
    spawner
        .lock()
        .map_err(|_| io::Error::other("spawner lock poisoned"))?
        .send((command, reply))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    response.recv().map_err(|_| io::Error::other("spawner thread is gone"))?
}

#[allow(unsafe_code)]
fn spawn_with_parent_death_signal(command: &mut Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid), allocating nothing.
    let parent = std::process::id() as libc::pid_t;
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then no signal will come.
            if libc::getppid() != parent {
                return Err(io::Error::other("test process exited during spawn"));
            }
            Ok(())
        });
    }
    command.spawn()
}
