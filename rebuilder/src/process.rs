//! Running one build step: its own process group, a time limit, the output of stdout and
//! stderr interleaved into one log file up to a cap, and the whole group killed when the time
//! is up, the job is cancelled, or the step ends and leaves processes behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// One program to run.
#[derive(Debug, Clone)]
pub struct Step {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Environment variables added (or replaced) for the step.
    pub env: Vec<(String, String)>,
    /// Variables removed from the node's environment first.
    pub env_remove: Vec<String>,
    /// Start from an empty environment (only `PATH`, `HOME`, `USER`/`LOGNAME` and `env`), so
    /// that nothing of the node's own environment (its token, proxies, `LD_PRELOAD`) reaches
    /// code a buildinfo or a source package controls.
    pub clean_env: bool,
    /// Run as this user instead of the node's (only possible when the node runs as root).
    pub user: Option<BuildUser>,
}

/// The unprivileged account builds run as, so that a package's build scripts cannot read the
/// node's key, its token or other jobs' directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl BuildUser {
    /// Look `name` up in the system's user database.
    pub fn lookup(name: &str) -> Result<BuildUser, String> {
        let c = std::ffi::CString::new(name).map_err(|_| format!("user name {name:?} contains a NUL byte"))?;
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwnam_r writes into `pwd` and `buf`, both owned here and large enough
        // (ERANGE otherwise); `out` is null or points at `pwd`.
        let rc = unsafe { libc::getpwnam_r(c.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
        if rc != 0 || out.is_null() {
            return Err(format!("no user {name:?} on this machine (create it, e.g. `useradd --system debcover-build`, or pick another with --build-user)"));
        }
        Ok(BuildUser { name: name.to_owned(), uid: pwd.pw_uid, gid: pwd.pw_gid })
    }

    /// Give `path` and everything below it to this user (the job's directory, before its
    /// steps run as the user).
    pub fn own_tree(&self, path: &Path) -> std::io::Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))?;
        if std::fs::symlink_metadata(path)?.is_dir() {
            for entry in std::fs::read_dir(path)? {
                self.own_tree(&entry?.path())?;
            }
        }
        Ok(())
    }
}

/// The directories searched for programs in a clean environment (what sbuild gives a build).
pub const CLEAN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Step {
    /// `program args...` in `cwd`.
    pub fn new(program: &str, args: &[&str], cwd: &Path) -> Step {
        Step {
            program: program.to_owned(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            cwd: cwd.to_owned(),
            env: Vec::new(),
            env_remove: Vec::new(),
            clean_env: false,
            user: None,
        }
    }

    /// The command line, for the log.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code (signals are reported as 128 + the signal number).
    Exited(i32),
    /// The time limit passed; the group was killed.
    TimedOut,
    /// The job was cancelled (shutdown); the group was killed.
    Cancelled,
}

impl Ended {
    /// Exit code 0.
    pub fn success(self) -> bool {
        self == Ended::Exited(0)
    }
}

/// The build log of a job: every step appends to one file, which stops growing at the cap.
pub struct Log {
    path: PathBuf,
    cap: u64,
    written: u64,
    truncated: bool,
    file: std::fs::File,
}

impl Log {
    /// A new log file at `path`, capped at `cap` bytes.
    pub fn create(path: &Path, cap: u64) -> std::io::Result<Log> {
        let file = std::fs::File::create(path)?;
        Ok(Log { path: path.to_owned(), cap, written: 0, truncated: false, file })
    }

    /// Append `bytes`, up to the cap; past it, one marker line is written and the rest dropped.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let room = self.cap.saturating_sub(self.written) as usize;
        let take = bytes.len().min(room);
        if take > 0 {
            self.file.write_all(&bytes[..take])?;
            self.written += take as u64;
        }
        if take < bytes.len() && !self.truncated {
            self.truncated = true;
            let note = format!("\n[debcover-rebuilder: log truncated at {} bytes (log_cap)]\n", self.cap);
            self.file.write_all(note.as_bytes())?;
        }
        Ok(())
    }

    /// A line from the node itself (`[debcover-rebuilder] ...`).
    pub fn note(&mut self, line: &str) -> std::io::Result<()> {
        self.write(format!("[debcover-rebuilder] {line}\n").as_bytes())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether output was dropped.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn try_clone(&self) -> std::io::Result<Log> {
        Ok(Log { path: self.path.clone(), cap: self.cap, written: self.written, truncated: self.truncated, file: self.file.try_clone()? })
    }
}

/// How long the output of a finished step is read before a process that escaped the group and
/// keeps it open is given up on.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Name of the file, beside a job's log, that holds the process group of its running step.
pub const PGID_FILE: &str = "running.pgid";

/// Kill the process group a crashed run of the node left running in `job_dir`, if its leader
/// is still there and still works inside `job_dir` (a recycled group id belongs to someone
/// else and is left alone). Returns the group killed.
pub fn kill_leftover(job_dir: &Path) -> Option<i32> {
    let pgid: i32 = std::fs::read_to_string(job_dir.join(PGID_FILE)).ok()?.trim().parse().ok()?;
    let cwd = std::fs::read_link(format!("/proc/{pgid}/cwd")).ok()?;
    let dir = std::fs::canonicalize(job_dir).ok()?;
    if !cwd.starts_with(&dir) {
        return None;
    }
    kill_group(pgid, libc::SIGKILL);
    Some(pgid)
}

fn kill_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: killpg only sends a signal; a group that is gone gives ESRCH, which is fine.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// Run `step` with its output going to `log`, for at most `limit`, stopping early when
/// `cancel` fires. Whatever the outcome, every process of the step's group is gone on return.
pub async fn run(step: &Step, log: &mut Log, limit: Duration, cancel: &CancellationToken) -> std::io::Result<Ended> {
    log.note(&format!("$ {}", step.display()))?;
    tracing::info!(command = %step.display(), "running {}", step.program);
    let (reader, writer) = std::io::pipe()?;
    let mut cmd = tokio::process::Command::new(&step.program);
    cmd.args(&step.args)
        .current_dir(&step.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer))
        .process_group(0)
        .kill_on_drop(true);
    // The node's own settings (its token above all) are never a step's business.
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("DEBCOVER_")) {
            cmd.env_remove(k);
        }
    }
    if step.clean_env {
        cmd.env_clear();
        cmd.env("PATH", CLEAN_PATH);
        // HOME comes from `env` when the caller gives one (a directory of the job's own).
        cmd.env("HOME", "/nonexistent");
    }
    if let Some(u) = &step.user {
        cmd.env("USER", &u.name).env("LOGNAME", &u.name);
        // std drops the supplementary groups (root's, which could open what the build must
        // not see) when it changes the user of a child started by root.
        cmd.uid(u.uid).gid(u.gid);
    }
    for k in &step.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &step.env {
        cmd.env(k, v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            log.note(&format!("cannot start {}: {e}", step.program))?;
            return Err(std::io::Error::new(e.kind(), format!("cannot start {}: {e}", step.program)));
        }
    };
    // The command holds the write ends; drop ours so the reader sees EOF when the group ends.
    drop(cmd);
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    // Recorded beside the log, so that a node restarted after a crash can end a build its
    // previous run left behind (see `kill_leftover`).
    let pgid_file = log.path().with_file_name(PGID_FILE);
    let _ = std::fs::write(&pgid_file, pgid.to_string());
    watchdog::guard(pgid);
    let mut sink = log.try_clone()?;
    let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader))?;
    let mut pump = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut reader = reader;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => return Ok(sink),
                Ok(n) => sink.write(&buf[..n])?,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    });
    let started = Instant::now();
    let ended = tokio::select! {
        status = child.wait() => {
            let status = status?;
            use std::os::unix::process::ExitStatusExt;
            Ended::Exited(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
        }
        _ = tokio::time::sleep(limit) => Ended::TimedOut,
        _ = cancel.cancelled() => Ended::Cancelled,
    };
    if !matches!(ended, Ended::Exited(_)) {
        // Ask politely first, so that tools can clean up their own temporary files.
        kill_group(pgid, libc::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
            kill_group(pgid, libc::SIGKILL);
            let _ = child.wait().await;
        }
    }
    // Anything the step left running in its group (daemons, stuck test helpers) goes too.
    kill_group(pgid, libc::SIGKILL);
    watchdog::release(pgid);
    let _ = std::fs::remove_file(&pgid_file);
    // The output ends when the last holder of the pipe's write end is gone. A process that left
    // the group (setsid, a daemon) may hold it for ever: read what is there for a moment, then
    // stop reading instead of waiting on it.
    let mut sink = match tokio::time::timeout(DRAIN_LIMIT, &mut pump).await {
        Ok(done) => done.map_err(std::io::Error::other)??,
        Err(_) => {
            pump.abort();
            let mut sink = log.try_clone()?;
            sink.note(&format!(
                "a process outside the step's process group still holds its output open after {} s: stopped reading it",
                DRAIN_LIMIT.as_secs()
            ))?;
            sink
        }
    };
    let note = match ended {
        Ended::Exited(code) => format!("exit status {code} after {:.1} s", started.elapsed().as_secs_f64()),
        Ended::TimedOut => format!("time limit of {} s reached: process group killed", limit.as_secs()),
        Ended::Cancelled => "cancelled: process group killed".to_owned(),
    };
    sink.note(&note)?;
    log.written = sink.written;
    log.truncated = sink.truncated;
    Ok(ended)
}

/// Ends the builds of a node that died without cleaning up (SIGKILL, OOM killer, a panic).
///
/// Started before the node's runtime, while the process has one thread, as a forked process
/// that reads the process groups of running steps from a pipe. The node holds the only write
/// end: when the node is gone, however it died, the watchdog reads end-of-file and kills every
/// group still listed, so no `dpkg-buildpackage` outlives its node and goes on writing into a
/// directory the next run removes. Without [`watchdog::start`] (unit tests, the library) the
/// registration calls do nothing.
pub mod watchdog {
    use std::io::{BufRead, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::sync::{Mutex, OnceLock};

    static PIPE: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

    /// Fork the watchdog. Call before any thread is started.
    pub fn start() -> std::io::Result<()> {
        let (reader, writer) = std::io::pipe()?;
        // SAFETY: the process has a single thread here (called before the runtime starts), so
        // the child may allocate and run ordinary code until it exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            drop(writer);
            // SAFETY: plain system calls in the child: a session of its own (a terminal's
            // Ctrl-C or a signal to the node's group leaves it alone; it ends at end-of-file),
            // its name for ps, stdin and stdout to /dev/null.
            unsafe {
                libc::setsid();
                libc::prctl(libc::PR_SET_NAME, c"debcover-watch".as_ptr() as libc::c_ulong, 0, 0, 0);
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 {
                    libc::dup2(null, 0);
                    libc::dup2(null, 1);
                }
            }
            let mut groups: Vec<i32> = Vec::new();
            for line in std::io::BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                match (line.get(..1), line.get(1..).and_then(|n| n.parse::<i32>().ok())) {
                    (Some("+"), Some(g)) if g > 0 => groups.push(g),
                    (Some("-"), Some(g)) => groups.retain(|x| *x != g),
                    _ => {}
                }
            }
            for g in groups {
                // SAFETY: killpg only sends a signal.
                unsafe {
                    libc::killpg(g, libc::SIGKILL);
                }
                eprintln!("debcover-rebuilder watchdog: the node is gone; killed its build process group {g}");
            }
            // SAFETY: leave without running the parent's exit handlers or flushing its buffers.
            unsafe { libc::_exit(0) }
        }
        drop(reader);
        // The write end must not leak into builds (they would keep the watchdog waiting).
        let fd = OwnedFd::from(writer);
        // SAFETY: fcntl on a descriptor this function owns.
        unsafe {
            let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
            libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        // SAFETY: into_raw_fd hands the descriptor's ownership to the File.
        let file = unsafe { std::fs::File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
        let _ = PIPE.set(Mutex::new(file));
        Ok(())
    }

    fn send(line: String) {
        if let Some(pipe) = PIPE.get() {
            if let Ok(mut f) = pipe.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }

    /// The group `pgid` is running a step: kill it if the node dies.
    pub fn guard(pgid: i32) {
        if pgid > 0 {
            send(format!("+{pgid}\n"));
        }
    }

    /// The group `pgid` has ended.
    pub fn release(pgid: i32) {
        if pgid > 0 {
            send(format!("-{pgid}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_is_captured_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("log"), 200).unwrap();
        let step = Step::new("sh", &["-c", "echo out; echo err >&2; head -c 1000 /dev/zero | tr '\\0' x"], dir.path());
        let ended = run(&step, &mut log, Duration::from_secs(30), &CancellationToken::new()).await.unwrap();
        assert_eq!(ended, Ended::Exited(0));
        let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert!(text.contains("out\n") && text.contains("err\n"), "{text}");
        assert!(text.contains("log truncated at 200 bytes"), "{text}");
        assert!(log.truncated());
        assert!(text.len() < 400, "{}", text.len());
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let mut log = Log::create(&dir.path().join("log"), 1 << 20).unwrap();
        // A grandchild in the background: it must die with the group.
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let step = Step::new("sh", &["-c", &script], dir.path());
        let t = Instant::now();
        let ended = run(&step, &mut log, Duration::from_millis(500), &CancellationToken::new()).await.unwrap();
        assert_eq!(ended, Ended::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(20));
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // Gone, or a zombie waiting for init to reap it (its state in /proc/PID/stat is Z). The
        // SIGKILL is delivered but the process may take a moment to exit: wait up to 10 s.
        let t = Instant::now();
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
            if matches!(state, None | Some('Z') | Some('X')) {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "the background sleep {pid} survived: {stat}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A build step sees none of the node's environment: not its token, not a preload.
    #[tokio::test]
    async fn clean_steps_see_nothing_of_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("log"), 1 << 20).unwrap();
        // SAFETY: tests set only variables no other test reads.
        unsafe {
            std::env::set_var("DEBCOVER_NODE_TOKEN", "secret-token-of-the-node");
            std::env::set_var("NODE_PRIVATE_SETTING", "private-value");
        }
        let mut step = Step::new("sh", &["-c", "env"], dir.path());
        step.clean_env = true;
        step.env.push(("DEB_BUILD_OPTIONS".into(), "nocheck".into()));
        assert_eq!(run(&step, &mut log, Duration::from_secs(30), &CancellationToken::new()).await.unwrap(), Ended::Exited(0));
        let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert!(!text.contains("secret-token") && !text.contains("private-value"), "{text}");
        assert!(text.contains("DEB_BUILD_OPTIONS=nocheck") && text.contains(&format!("PATH={CLEAN_PATH}")), "{text}");
        // Even an operator's own command (no clean environment) never gets the node's token.
        let step = Step::new("sh", &["-c", "env"], dir.path());
        let mut log = Log::create(&dir.path().join("log2"), 1 << 20).unwrap();
        run(&step, &mut log, Duration::from_secs(30), &CancellationToken::new()).await.unwrap();
        let text = std::fs::read_to_string(dir.path().join("log2")).unwrap();
        assert!(!text.contains("secret-token") && text.contains("private-value"), "{text}");
    }

    /// Run as the build user, a step cannot read what the node keeps to itself (mode 0600).
    #[tokio::test]
    async fn the_build_user_cannot_read_the_node_key() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root");
            eprintln!("SKIPPING: switching users needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let key = dir.path().join("node-key.pem");
        std::fs::write(&key, "PRIVATE").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let job = dir.path().join("job");
        std::fs::create_dir(&job).unwrap();
        let user = BuildUser::lookup("nobody").unwrap();
        user.own_tree(&job).unwrap();
        let mut log = Log::create(&dir.path().join("log"), 1 << 20).unwrap();
        let script = format!("id -u; cat {} && echo READ-IT; touch made-here", key.display());
        let mut step = Step::new("sh", &["-c", &script], &job);
        step.clean_env = true;
        step.user = Some(user.clone());
        let ended = run(&step, &mut log, Duration::from_secs(30), &CancellationToken::new()).await.unwrap();
        let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert_eq!(ended, Ended::Exited(0), "{text}");
        assert!(!text.lines().any(|l| l == "PRIVATE" || l == "READ-IT") && text.contains("Permission denied"), "{text}");
        assert!(text.contains(&format!("\n{}\n", user.uid)), "{text}");
        // The job's own directory is the build user's to write.
        assert!(job.join("made-here").exists(), "{text}");
        assert!(BuildUser::lookup("no-such-user-here").unwrap_err().contains("--build-user"));
    }

    /// A process that leaves the step's group and keeps its output open does not hang the node.
    #[tokio::test]
    async fn an_escaped_process_holding_the_output_does_not_hang_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let mut log = Log::create(&dir.path().join("log"), 1 << 20).unwrap();
        let script = format!("setsid sh -c 'echo $$ > {}; exec sleep 120' & sleep 0.5; echo done", pidfile.display());
        let step = Step::new("sh", &["-c", &script], dir.path());
        let t = Instant::now();
        let ended = tokio::time::timeout(Duration::from_secs(60), run(&step, &mut log, Duration::from_secs(30), &CancellationToken::new()))
            .await
            .expect("the step never returned: its output is held open by an escaped process");
        assert_eq!(ended.unwrap(), Ended::Exited(0));
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
        let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert!(text.contains("done") && text.contains("stopped reading"), "{text}");
        if let Ok(pid) = std::fs::read_to_string(&pidfile).unwrap_or_default().trim().parse::<i32>() {
            // SAFETY: kill only sends a signal.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }

    #[tokio::test]
    async fn exit_codes_and_missing_programs() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("log"), 1 << 20).unwrap();
        let step = Step::new("sh", &["-c", "exit 3"], dir.path());
        assert_eq!(run(&step, &mut log, Duration::from_secs(10), &CancellationToken::new()).await.unwrap(), Ended::Exited(3));
        let step = Step::new("/nonexistent/prog", &[], dir.path());
        let e = run(&step, &mut log, Duration::from_secs(10), &CancellationToken::new()).await.unwrap_err();
        assert!(e.to_string().contains("/nonexistent/prog"), "{e}");
    }
}
