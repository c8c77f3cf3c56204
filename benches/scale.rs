//! How `propose` grows with the size of a cluster: the release binary run as a whole process on
//! generated config repositories and snapshots of 1,000 to 100,000 pods, with wall time, CPU time
//! and peak resident memory per size, the stages timed in process, and fitted slopes. It exits
//! non-zero when a size's median exceeds the figures in README.md by more than half.
//!
//! ```sh
//! cargo bench --bench scale                              # 1k, 10k, 50k and 100k pods, 5 runs each
//! cargo bench --bench scale -- --pods 10000 --runs 7     # one size
//! cargo bench --bench scale -- --generate DIR --pods N   # write DIR/repo and DIR/snapshot only
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use remediator::assess::Policies;
use remediator::config::Config;
use remediator::detect::{DetectOptions, detect};
use remediator::manifests::{IndexOptions, RepoIndex};
use remediator::propose::{Inputs, ProposeOptions, plan};
use remediator::remedy::NoHistory;
use remediator::views::Templates;

mod support;

use support::figures::{Figure, figures, thousands};

/// The moment the generated snapshots show.
const NOW: &str = "2026-11-20T12:00:00Z";

/// How much slower or bigger than the README's figures a size may be before the run fails.
const TOLERANCE: f64 = 1.5;

struct Args {
    sizes: Vec<usize>,
    runs: usize,
    generate: Option<PathBuf>,
    binary: PathBuf,
    /// Also run with kustomize on `PATH`, so that every proposal is proven by rendering.
    kustomize: bool,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args {
        sizes: vec![1_000, 10_000, 50_000, 100_000],
        runs: 5,
        generate: None,
        binary: PathBuf::from(env!("CARGO_BIN_EXE_remediator")),
        kustomize: false,
    };
    let mut sizes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            // cargo bench passes this to every benchmark.
            "--bench" => {}
            "--pods" => sizes.push(number(&value("--pods")?)?),
            "--runs" => parsed.runs = number(&value("--runs")?)?.max(1),
            "--generate" => parsed.generate = Some(PathBuf::from(value("--generate")?)),
            "--binary" => parsed.binary = PathBuf::from(value("--binary")?),
            "--kustomize" => parsed.kustomize = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; give --pods N (again for more sizes), --runs N, --binary PATH, --kustomize, or --generate DIR"
                ));
            }
        }
    }
    if !sizes.is_empty() {
        parsed.sizes = sizes;
    }
    Ok(parsed)
}

fn number(text: &str) -> Result<usize, String> {
    text.replace(['_', ','], "")
        .parse()
        .map_err(|_| format!("{text} is not a number"))
}

/// The inputs of one size: a repository of `pods / 5` apps and the snapshot of their cluster.
fn generate(dir: &Path, pods: usize) -> (PathBuf, PathBuf) {
    let apps = pods.div_ceil(support::PODS_PER_APP);
    let (repo, snapshot) = (dir.join("repo"), dir.join("snapshot"));
    support::generate_apps(&repo, apps);
    support::snapshot_apps(&snapshot, apps);
    (repo, snapshot)
}

/// One whole-process run: wall time, CPU time (user and system) and peak resident memory.
#[derive(Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: Duration,
    rss_bytes: u64,
}

/// Runs `propose` once, started from a new process of this benchmark (`--measure`), which
/// reports the run. Linux starts a child's peak resident size from its parent's size at the
/// fork, and this process holds the generated inputs and the stages' results: a run started
/// from here would be reported that much bigger.
fn run_once(binary: &Path, repo: &Path, snapshot: &Path, kustomize: bool) -> Result<Run, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(&me);
    command.arg("--measure").arg(binary).arg(repo).arg(snapshot);
    if kustomize {
        command.arg("--kustomize");
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", me.display()))?;
    if !output.status.success() {
        return Err(format!("measuring a run failed ({})", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().map_err(|_| format!("--measure said {text:?}")))
        .collect::<Result<_, _>>()?;
    let [wall, cpu, rss_bytes] = numbers[..] else {
        return Err(format!("--measure said {text:?}"));
    };
    Ok(Run {
        wall: Duration::from_micros(wall),
        cpu: Duration::from_micros(cpu),
        rss_bytes,
    })
}

/// `--measure BINARY REPO SNAPSHOT [--kustomize]`: one run, as wall and CPU microseconds and
/// peak resident bytes on one line.
fn measure_one(args: &[String]) -> ExitCode {
    let kustomize = args.get(3).is_some_and(|a| a == "--kustomize");
    let [binary, repo, snapshot, ..] = args else {
        eprintln!("error: --measure BINARY REPO SNAPSHOT [--kustomize]");
        return ExitCode::from(2);
    };
    let (binary, repo, snapshot) = (Path::new(binary), Path::new(repo), Path::new(snapshot));
    match run_child(binary, repo, snapshot, kustomize) {
        Ok(run) => {
            println!(
                "{} {} {}",
                run.wall.as_micros(),
                run.cpu.as_micros(),
                run.rss_bytes
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs `propose` once as a child of this process; without `kustomize`, with nothing on `PATH`
/// (no kustomize, kubectl or helm), so that the run is remediator's own work and every build
/// is reported not rendered.
fn run_child(binary: &Path, repo: &Path, snapshot: &Path, kustomize: bool) -> Result<Run, String> {
    let empty = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut command = Command::new(binary);
    if !kustomize {
        command.env("PATH", empty.path());
    }
    let started = Instant::now();
    let child = command
        .args([
            "propose", "--forge", "none", "--output", "json", "--now", NOW,
        ])
        .arg("--repo")
        .arg(repo)
        .arg("--snapshot")
        .arg(snapshot)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is this process's child, not yet waited for; both pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if waited != pid {
        return Err(format!(
            "waiting for {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // Exit 0 (nothing to propose) and 1 (proposals) are results; anything else is a failure.
    let code = libc::WEXITSTATUS(status);
    if !libc::WIFEXITED(status) || code > 1 {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr {
            use std::io::Read;
            pipe.read_to_string(&mut stderr)
                .map_err(|e| e.to_string())?;
        }
        return Err(format!("propose exited with {status:#x}: {stderr}"));
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(Run {
        wall,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        // Linux gives ru_maxrss in kilobytes.
        rss_bytes: usage.ru_maxrss as u64 * 1024,
    })
}

/// The stages of `propose` timed in this process, once each, with how much each one's result
/// adds to the resident memory.
struct Stages {
    index: Duration,
    load: Duration,
    detect: Duration,
    plan: Duration,
    proposals: usize,
    index_mb: f64,
    load_mb: f64,
}

/// This process's resident memory, in megabytes.
fn resident_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kb * 1024.0 / 1e6
}

fn stages(repo: &Path, snapshot: &Path) -> Stages {
    let rss = resident_mb();
    let started = Instant::now();
    let index = RepoIndex::build(repo, &IndexOptions::default()).expect("the repository indexes");
    let index_time = started.elapsed();
    let index_mb = resident_mb() - rss;
    let rss = resident_mb();
    let started = Instant::now();
    let loaded = remediator::snapshot::load(snapshot).expect("the snapshot loads");
    let load_time = started.elapsed();
    let load_mb = resident_mb() - rss;
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems.first());
    let now = NOW.parse().expect("NOW is a time");
    let started = Instant::now();
    let findings = detect(&loaded.snapshot, &DetectOptions::at(now));
    let detect_time = started.elapsed();
    drop(findings);
    let config = Config::default();
    let templates = Templates::load(None).expect("the embedded templates load");
    let inputs = Inputs {
        repo,
        index: &index,
        config: &config,
        snapshot: &loaded.snapshot,
        history: &NoHistory,
        templates: &templates,
        renderer: None,
    };
    let options = ProposeOptions {
        now: Some(now),
        ..ProposeOptions::default()
    };
    let started = Instant::now();
    let planned = plan(&inputs, &mut Policies::embedded(), &options);
    let plan_time = started.elapsed();
    assert!(
        planned.failures.is_empty(),
        "{:?}",
        planned.failures.first()
    );
    Stages {
        index: index_time,
        load: load_time,
        detect: detect_time,
        plan: plan_time,
        proposals: planned.proposals.len(),
        index_mb,
        load_mb,
    }
}

/// The measurements of one size.
struct Size {
    pods: usize,
    runs: Vec<Run>,
    /// Runs with kustomize rendering the proofs, when asked for.
    rendered: Vec<Run>,
    stages: Stages,
}

/// The median of `f` over `runs`.
fn median(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(f).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

impl Size {
    fn median(&self, f: impl Fn(&Run) -> f64) -> f64 {
        median(&self.runs, f)
    }
    fn wall(&self) -> f64 {
        self.median(|r| r.wall.as_secs_f64())
    }
    fn cpu(&self) -> f64 {
        self.median(|r| r.cpu.as_secs_f64())
    }
    fn peak_mb(&self) -> f64 {
        self.median(|r| r.rss_bytes as f64 / 1e6)
    }
}

fn measure(args: &Args, pods: usize) -> Result<Size, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let (repo, snapshot) = generate(dir.path(), pods);
    eprintln!(
        "{pods} pods: generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // One run first, not counted: the generated files reach the disk and the page cache.
    run_once(&args.binary, &repo, &snapshot, false)?;
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        runs.push(run_once(&args.binary, &repo, &snapshot, false)?);
    }
    let mut rendered = Vec::new();
    if args.kustomize {
        for _ in 0..args.runs {
            rendered.push(run_once(&args.binary, &repo, &snapshot, true)?);
        }
    }
    let stages = stages(&repo, &snapshot);
    Ok(Size {
        pods,
        runs,
        rendered,
        stages,
    })
}

/// The least-squares line through `points`: its slope and intercept.
fn line(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (slope, my - slope * mx)
}

/// How a cost grows with the number of pods between the two largest sizes: the exponent `b` of
/// `cost ∝ pods^b` after the fitted fixed cost is taken away. 1 is linear; above 1.2 is flagged.
fn exponent(points: &[(f64, f64)]) -> Option<f64> {
    let (_, intercept) = line(points);
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let [.., (x1, y1), (x2, y2)] = sorted[..] else {
        return None;
    };
    let (a, b) = (y1 - intercept.max(0.0), y2 - intercept.max(0.0));
    (a > 0.0 && b > 0.0).then(|| (b / a).ln() / (x2 / x1).ln())
}

const SUPERLINEAR: f64 = 1.2;

fn report(sizes: &[Size]) {
    println!(
        "\npropose as a whole process, median of the runs ({} cores):",
        cores()
    );
    println!("| pods | wall | CPU | peak RSS | proposals |");
    println!("|---:|---:|---:|---:|---:|");
    for size in sizes {
        println!(
            "| {} | {:.2} s | {:.2} s | {:.0} MB | {} |",
            thousands(size.pods),
            size.wall(),
            size.cpu(),
            size.peak_mb(),
            size.stages.proposals
        );
    }
    if sizes.iter().any(|s| !s.rendered.is_empty()) {
        println!("\nwith kustomize proving every edit a build reads, median of the runs:");
        println!("| pods | wall | CPU (kustomize's included) | peak RSS |");
        println!("|---:|---:|---:|---:|");
        for size in sizes.iter().filter(|s| !s.rendered.is_empty()) {
            println!(
                "| {} | {:.2} s | {:.2} s | {:.0} MB |",
                thousands(size.pods),
                median(&size.rendered, |r| r.wall.as_secs_f64()),
                median(&size.rendered, |r| r.cpu.as_secs_f64()),
                median(&size.rendered, |r| r.rss_bytes as f64 / 1e6)
            );
        }
    }
    println!("\nstages in process (one run each; memory: what the stage's result holds):");
    println!("| pods | index | load snapshot | detect | plan | index memory | snapshot memory |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for size in sizes {
        let s = &size.stages;
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} MB | {:.0} MB |",
            thousands(size.pods),
            ms(s.index),
            ms(s.load),
            ms(s.detect),
            ms(s.plan),
            s.index_mb,
            s.load_mb
        );
    }
    if sizes.len() < 2 {
        return;
    }
    println!("\nfitted against pods (per 1,000 pods; exponent between the two largest sizes):");
    type Cost = fn(&Size) -> f64;
    let costs: [(&str, &str, Cost); 7] = [
        ("wall", "ms", |s| s.wall() * 1000.0),
        ("CPU", "ms", |s| s.cpu() * 1000.0),
        ("peak RSS", "MB", Size::peak_mb),
        ("index", "ms", |s| ms(s.stages.index)),
        ("load snapshot", "ms", |s| ms(s.stages.load)),
        ("detect", "ms", |s| ms(s.stages.detect)),
        ("plan", "ms", |s| ms(s.stages.plan)),
    ];
    for (name, unit, cost) in costs {
        let points: Vec<(f64, f64)> = sizes
            .iter()
            .map(|s| (s.pods as f64 / 1000.0, cost(s)))
            .collect();
        let (slope, intercept) = line(&points);
        let growth = match exponent(&points) {
            Some(b) if b > SUPERLINEAR => format!("exponent {b:.2}: faster than linear"),
            Some(b) => format!("exponent {b:.2}"),
            None => "exponent: not measurable".to_owned(),
        };
        println!("  {name}: {slope:.2} {unit} per 1,000 pods + {intercept:.1} {unit}; {growth}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Each measured size that is more than [`TOLERANCE`] times its README figure.
fn regressions(sizes: &[Size], figures: &[Figure]) -> Vec<String> {
    sizes
        .iter()
        .flat_map(|size| {
            figures
                .iter()
                .filter(|f| f.pods == size.pods)
                .flat_map(|f| f.exceeded(size.wall(), size.peak_mb(), TOLERANCE))
        })
        .collect()
}

fn main() -> ExitCode {
    let given: Vec<String> = std::env::args().skip(1).collect();
    if given.first().is_some_and(|a| a == "--measure") {
        return measure_one(&given[1..]);
    }
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &args.generate {
        for &pods in &args.sizes {
            let target = if args.sizes.len() == 1 {
                dir.clone()
            } else {
                dir.join(pods.to_string())
            };
            let (repo, snapshot) = generate(&target, pods);
            println!("{} and {}", repo.display(), snapshot.display());
        }
        return ExitCode::SUCCESS;
    }
    let mut sizes = Vec::new();
    for &pods in &args.sizes {
        match measure(&args, pods) {
            Ok(size) => sizes.push(size),
            Err(message) => {
                eprintln!("error: {} pods: {message}", thousands(pods));
                return ExitCode::from(2);
            }
        }
    }
    report(&sizes);
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let figures = match std::fs::read_to_string(&readme)
        .map_err(|e| format!("{}: {e}", readme.display()))
        .and_then(|text| figures(&text))
    {
        Ok(figures) => figures,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let found = regressions(&sizes, &figures);
    if found.is_empty() {
        println!("\nwithin {TOLERANCE}× of the README's figures");
        return ExitCode::SUCCESS;
    }
    for regression in &found {
        eprintln!("slower or bigger than README.md allows ({TOLERANCE}×): {regression}");
    }
    ExitCode::FAILURE
}
