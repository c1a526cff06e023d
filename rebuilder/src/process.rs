//! Running one build step: its own process group, a time limit, the output of stdout and
//! stderr interleaved into one log file up to a cap, and the whole group killed when the time
//! is up, the job is cancelled, or the step ends and leaves processes behind.

use std::io::{Read, Write};
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
}

impl Step {
    /// `program args...` in `cwd`.
    pub fn new(program: &str, args: &[&str], cwd: &Path) -> Step {
        Step {
            program: program.to_owned(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            cwd: cwd.to_owned(),
            env: Vec::new(),
            env_remove: Vec::new(),
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
    let mut sink = log.try_clone()?;
    let pump = tokio::task::spawn_blocking(move || -> std::io::Result<Log> {
        let mut reader = reader;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
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
    let _ = std::fs::remove_file(&pgid_file);
    let mut sink = pump.await.map_err(std::io::Error::other)??;
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
