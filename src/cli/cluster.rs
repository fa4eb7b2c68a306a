//! `ipow run --processes N` and `--hosts FILE`: launching validator processes, connecting
//! them (through `ipow::cluster::net`), and handing the supervision node its [`TimelyPool`].
//!
//! `--processes N` re-spawns this binary N-1 times with the same flags (less the store, the
//! secret and the output ones) and `--cluster-rendezvous ADDR --process-index I`. Children
//! exit when their stdin closes, so none outlives its parent; the parent kills any child left
//! when it stops, through the child's handle.

use std::io::Read as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ipow::cluster::{ClusterError, Setup, Ship, TimelyPool, net};
use ipow::consensus::ipow::IpowParams;
use ipow::grid::placement::GridMarket;
use ipow::market::rules::{Workload, WorkloadParams};
use ipow::pipeline::VariantConfig;

use super::args::{RunArgs, ShipArg};

/// What this process is in a run.
pub(crate) enum Role {
    /// The whole run in one process.
    Alone,
    /// Process 0: the supervision node, with validator processes to connect.
    Supervisor(Cluster),
    /// A validator process.
    Validator(Peer),
}

/// Process 0's view of its cluster before and while it runs.
pub(crate) struct Cluster {
    me: Listening,
    children: Vec<Child>,
    rendezvous: Option<TcpListener>,
    /// How long connecting may take, from when this process is ready to connect (its own
    /// market built): the others build theirs meanwhile.
    timeout: Duration,
    ship: Ship,
}

/// A validator process before it connects.
pub(crate) struct Peer {
    me: Listening,
    index: usize,
    rendezvous: Option<String>,
    /// How long connecting may take, from when this process is ready to connect (its own
    /// market built): the others build theirs meanwhile.
    timeout: Duration,
    ship: Ship,
}

/// This process's listener, and every process's address when known (`--hosts`).
struct Listening {
    listener: TcpListener,
    addresses: Option<Vec<String>>,
}

impl Role {
    /// The role `args` give this process; spawns the children of `--processes`.
    pub(crate) fn of(args: &RunArgs, variant: &VariantConfig) -> anyhow::Result<Role> {
        let ship = match args.ship {
            ShipArg::Bytes => Ship::Bytes,
            ShipArg::Index => Ship::Index,
        };
        let timeout = Duration::from_secs_f64(args.cluster_timeout);
        let clustered = args.processes > 1 || args.hosts.is_some();
        if clustered && !matches!(variant, VariantConfig::Ipow(_)) {
            anyhow::bail!(
                "--processes and --hosts spread IPOW's validators over processes; PoW has one miner"
            );
        }
        if args.processes > 1 && args.hosts.is_some() {
            anyhow::bail!(
                "--processes (one machine) and --hosts (a list) are two ways to say the same: give one"
            );
        }
        if let Some(parent) = &args.cluster_rendezvous {
            let index = args
                .process_index
                .context("--cluster-rendezvous needs --process-index")?;
            return Ok(Role::Validator(Peer::child(parent, index, ship, timeout)?));
        }
        if let Some(hosts) = &args.hosts {
            return hosts_role(hosts, args.process_index, timeout, ship);
        }
        if args.process_index.is_some() {
            anyhow::bail!("--process-index goes with --hosts");
        }
        if args.processes <= 1 {
            return Ok(Role::Alone);
        }
        let cluster = Cluster::spawn(
            usize::from(args.processes),
            &run_child_args(),
            ship,
            timeout,
        )?;
        Ok(Role::Supervisor(cluster))
    }
}

/// The role of process `index` of the `--hosts` list.
fn hosts_role(
    hosts: &std::path::Path,
    index: Option<usize>,
    timeout: Duration,
    ship: Ship,
) -> anyhow::Result<Role> {
    let index = index.context("--hosts needs --process-index (this process's line, from 0)")?;
    let addresses = read_hosts(hosts)?;
    let Some(own) = addresses.get(index) else {
        anyhow::bail!(
            "--process-index {index}: {} lists {} processes",
            hosts.display(),
            addresses.len()
        );
    };
    let me = Listening {
        listener: net::listen(own)?,
        addresses: Some(addresses.clone()),
    };
    Ok(if index == 0 {
        Role::Supervisor(Cluster {
            me,
            children: Vec::new(),
            rendezvous: None,
            timeout,
            ship,
        })
    } else {
        Role::Validator(Peer {
            me,
            index,
            rendezvous: None,
            timeout,
            ship,
        })
    })
}

/// A hosts file: one `host:port` per line (blank lines and `#` comments skipped), at most
/// 1,024 lines of at most 256 bytes, read within that bound.
fn read_hosts(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let meta = std::fs::metadata(path).with_context(|| format!("--hosts {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!("--hosts {}: not a regular file", path.display());
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1 << 18).read_to_string(&mut text))
        .with_context(|| format!("--hosts {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.len() > 256 || !line.contains(':') || line.contains(char::is_whitespace) {
            anyhow::bail!(
                "--hosts {} line {}: {line:?} is not host:port",
                path.display(),
                n + 1
            );
        }
        out.push(line.to_owned());
    }
    if out.len() < 2 || out.len() > 1024 {
        anyhow::bail!(
            "--hosts {}: {} processes listed; a cluster has 2 to 1024",
            path.display(),
            out.len()
        );
    }
    Ok(out)
}

/// The flags a child does not take: its parent's store, secret and output.
const PARENT_ONLY: [(&str, bool); 7] = [
    ("--processes", true),
    ("--decisions", true),
    ("--resume", false),
    ("--store", true),
    ("--secret", true),
    ("--json", false),
    ("--announce-commits", false),
];

/// A child's flags for `ipow run --processes`: the parent's less [`PARENT_ONLY`].
fn run_child_args() -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut skip_value = false;
    for a in std::env::args().skip(1) {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match PARENT_ONLY
            .iter()
            .find(|(f, _)| a == *f || a.starts_with(&format!("{f}=")))
        {
            Some((f, takes_value)) => skip_value = *takes_value && a == *f,
            None => args.push(a),
        }
    }
    args
}

/// Starts child `index` of this binary with `base` and its place in the cluster.
fn spawn_child(base: &[String], rendezvous: &str, index: usize) -> anyhow::Result<Child> {
    let mut args = base.to_vec();
    args.extend([
        "--cluster-rendezvous".into(),
        rendezvous.into(),
        "--process-index".into(),
        index.to_string(),
    ]);
    let exe =
        std::env::current_exe().context("finding this binary to start validator processes")?;
    Command::new(exe)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting validator process {index}"))
}

/// A child exits when its stdin closes: its parent is gone, whatever the way.
fn watch_stdin() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(3);
    });
}

/// The run's fingerprint: what every process must derive alike (the market's parameters, the
/// validators', the grid's, how asks travel).
pub(crate) fn fingerprint(
    workload: &WorkloadParams,
    variant: &VariantConfig,
    grid: Option<&GridMarket>,
    ship: Ship,
) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"ipow-run-fingerprint/v1");
    h.update(serde_json::to_vec(workload).unwrap_or_default());
    if let VariantConfig::Ipow(p) = variant {
        h.update(serde_json::to_vec(p).unwrap_or_default());
    }
    h.update(grid.map_or([0; 32], |g| g.model().grid().fingerprint()));
    h.update(ship.name());
    h.finalize().into()
}

impl Cluster {
    /// Starts `processes - 1` validator processes of this binary on this machine, each with
    /// `args` and its place in the cluster (`--cluster-rendezvous`, `--process-index`).
    pub(crate) fn spawn(
        processes: usize,
        args: &[String],
        ship: Ship,
        timeout: Duration,
    ) -> anyhow::Result<Cluster> {
        let rendezvous = net::listen("127.0.0.1:0")?;
        let at = rendezvous.local_addr()?.to_string();
        let me = Listening {
            listener: net::listen("127.0.0.1:0")?,
            addresses: None,
        };
        let mut cluster = Cluster {
            me,
            children: Vec::new(),
            rendezvous: Some(rendezvous),
            timeout,
            ship,
        };
        for i in 1..processes {
            // On a failure the children already started are killed with the cluster.
            cluster.children.push(spawn_child(args, &at, i)?);
        }
        Ok(cluster)
    }

    /// How asks travel.
    pub(crate) fn ship(&self) -> Ship {
        self.ship
    }

    /// Connects every process and returns the supervision node's validator tier.
    pub(crate) fn pool(
        &mut self,
        fingerprint: &[u8; 32],
        params: &IpowParams,
    ) -> anyhow::Result<TimelyPool> {
        let deadline = Instant::now() + self.timeout;
        let addresses = match (&self.rendezvous, &self.me.addresses) {
            (Some(rv), _) => {
                let me = self.me.listener.local_addr()?;
                let children = &mut self.children;
                net::rendezvous_parent(rv, me, children.len() + 1, deadline, &mut || {
                    exited(children)
                })?
            }
            (None, Some(a)) => a.clone(),
            (None, None) => anyhow::bail!("a cluster without addresses"),
        };
        let children = &mut self.children;
        let sockets = net::mesh(
            0,
            &self.me.listener,
            &addresses,
            fingerprint,
            deadline,
            &mut || exited(children),
        )?;
        let (worker, guard) = ipow::cluster::worker(0, sockets)?;
        Ok(TimelyPool::new(worker, guard, params.clone(), self.ship))
    }

    /// Waits for every child to finish after a complete run (they do once the dataflow
    /// closes); kills those still running after 10 s and says so.
    pub(crate) fn finish(mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        for (i, child) in self.children.iter_mut().enumerate() {
            loop {
                match child.try_wait()? {
                    Some(status) if status.success() => break,
                    Some(status) => {
                        anyhow::bail!("validator process {} ended with {status}", i + 1)
                    }
                    None if Instant::now() >= deadline => {
                        anyhow::bail!("validator process {} did not end after the run", i + 1)
                    }
                    None => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        Ok(())
    }
}

/// An error when a child has exited before the cluster connected.
fn exited(children: &mut [Child]) -> Result<(), net::NetError> {
    for (i, c) in children.iter_mut().enumerate() {
        if let Ok(Some(status)) = c.try_wait() {
            return Err(net::NetError::Peer {
                index: i + 1,
                address: "127.0.0.1".into(),
                message: format!("exited ({status}) before the cluster connected"),
            });
        }
    }
    Ok(())
}

impl Drop for Cluster {
    /// Nothing outlives the parent: a child still running now (a failed run) is killed
    /// through its handle and reaped.
    fn drop(&mut self) {
        for child in &mut self.children {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Peer {
    /// A child of [`Cluster::spawn`]: validator process `index`, its parent's rendezvous at
    /// `parent`. Exits when its stdin closes.
    pub(crate) fn child(
        parent: &str,
        index: usize,
        ship: Ship,
        timeout: Duration,
    ) -> anyhow::Result<Peer> {
        watch_stdin();
        Ok(Peer {
            me: Listening {
                listener: net::listen("127.0.0.1:0")?,
                addresses: None,
            },
            index,
            rendezvous: Some(parent.to_owned()),
            timeout,
            ship,
        })
    }

    /// Connects to the cluster and answers the supervision node's asks until it closes.
    pub(crate) fn serve(
        self,
        fingerprint: &[u8; 32],
        workload: Workload,
        grid: Option<GridMarket>,
        params: IpowParams,
    ) -> anyhow::Result<()> {
        let index = self.index;
        let fail = |e: ClusterError| anyhow::anyhow!("validator process {index}: {e}");
        let deadline = Instant::now() + self.timeout;
        let addresses = match (&self.rendezvous, self.me.addresses) {
            (Some(parent), _) => net::rendezvous_child(parent, index, &self.me.listener, deadline)
                .map_err(|e| fail(e.into()))?,
            (None, Some(a)) => a,
            (None, None) => anyhow::bail!("a validator process without addresses"),
        };
        let sockets = net::mesh(
            index,
            &self.me.listener,
            &addresses,
            fingerprint,
            deadline,
            &mut || Ok(()),
        )
        .map_err(|e| fail(e.into()))?;
        let (worker, guard) = ipow::cluster::worker(index, sockets).map_err(fail)?;
        let setup = Setup {
            workload,
            grid,
            params,
        };
        ipow::cluster::serve(worker, guard, setup).map_err(fail)
    }

    /// How asks travel.
    pub(crate) fn ship(&self) -> Ship {
        self.ship
    }
}
