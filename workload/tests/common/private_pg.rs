//! A private PostgreSQL server for one test (initdb + pg_ctl on a free port and a temporary
//! data directory), so a test may stop and restart it without disturbing other tests.
//!
//! The server binaries are looked up on PATH (`initdb` and `pg_ctl` in one directory), then
//! in `/usr/lib/postgresql/<version>/bin` (newest first), where Debian's `postgresql`
//! package, as `scripts/ci-services.sh` installs it, puts them. As root the tools run as the
//! `postgres` user through `runuser` (initdb refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running (or stopped) private server; stopped and deleted on drop.
pub struct PrivatePg {
    bindir: PathBuf,
    dir: PathBuf,
    run_as: Option<&'static str>,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

/// Where `initdb` and `pg_ctl` are, or why they cannot be used.
pub fn find_bindir() -> Result<PathBuf, String> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(d) = std::env::split_paths(&path).find(|d| has_tools(d))
    {
        return Ok(d);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d).ok_or_else(|| {
        "no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin \
         (apt-get install postgresql, or run workload/scripts/ci-services.sh)"
            .to_owned()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn check(what: &str, out: std::io::Result<Output>) -> Result<(), String> {
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{what}: {}\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

impl PrivatePg {
    /// Initialises a cluster in a new temporary directory and starts it on a free port.
    pub fn start_new() -> Result<PrivatePg, String> {
        let bindir = find_bindir()?;
        let run_as = if is_root() {
            check(
                "the postgres user (initdb refuses to run as root)",
                Command::new("id").arg("postgres").output(),
            )?;
            Some("postgres")
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!("wl-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let pg = PrivatePg {
            bindir,
            dir,
            run_as,
            port,
        };
        if let Some(user) = run_as {
            check(
                "chown",
                Command::new("chown").arg(user).arg(&pg.dir).output(),
            )?;
        }
        check(
            "initdb",
            pg.tool("initdb")
                .arg("-D")
                .arg(pg.data())
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "-N"])
                .output(),
        )?;
        pg.start()?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.bindir.join(name);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c max_connections=50",
            self.port,
            self.dir.display()
        );
        check(
            "pg_ctl start",
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .output(),
        )
        .map_err(|e| format!("{e}\nserver log:\n{}", self.log()))
    }

    /// Stops the server with `mode` (`fast` or `immediate`: no shutdown checkpoint, crash
    /// recovery at the next start).
    pub fn stop(&self, mode: &str) -> Result<(), String> {
        check(
            "pg_ctl stop",
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", mode, "-w", "-t", "60", "stop"])
                .output(),
        )
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// A connection URL for database `postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
