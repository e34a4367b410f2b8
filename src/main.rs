//! The `modeflow` command line: parse, call the library, print. Exit codes: 0 success,
//! 1 a check failed or a run diverged, 2 bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use modeflow::claims::runner::{self, Selection};
use modeflow::claims::{registry, Verdict};
use modeflow::{gallery, model, run, sweep, Error};

#[derive(Parser)]
#[command(
    name = "modeflow",
    version,
    about = "A workbench for the theory of learning dynamics: interference in sequential RNN \
             learning and the implicit bias of (S)GD, every formula cross-checked numerically.",
    long_about = "Without a subcommand, runs the main job: the learning-mode report of the \
                  embedded default model (models/default.toml)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// No progress bars, notes or warnings on stderr (errors are still printed).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Memory budget of a run, e.g. 512M, 4G, 16GiB (default 4G). Models whose estimated
    /// memory exceeds it are refused before anything is allocated, naming the field to change.
    #[arg(long, global = true, value_name = "SIZE")]
    max_memory: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Predict learning modes for a model file: fixed points, which mode wins, interference and
    /// learning times, each analytic number beside its ODE value.
    Predict {
        /// A model file (TOML); see models/.
        model: PathBuf,
        /// Print JSON (with model, seed and version) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Train the networks a model file describes; print each prediction beside its
    /// measurement with a verdict.
    Train {
        /// A model file (TOML); see models/.
        model: PathBuf,
        /// Print JSON (with model, seed and version) instead of text.
        #[arg(long)]
        json: bool,
        /// Output directory of the files a model names (`csv = ...`), created if missing.
        #[arg(long, default_value = "out")]
        out: PathBuf,
    },
    /// Phase and learning portraits of a model with a 2-D latent form (SVG + PNG + data).
    Phase {
        /// A model file (TOML) of kind latent or linear2x2.
        model: PathBuf,
        /// Output directory (created if missing).
        #[arg(long, default_value = "out")]
        out: PathBuf,
    },
    /// The gallery: every figure of the shipped model files, in one command.
    Figures {
        /// Output directory (created if missing).
        #[arg(long, default_value = "out/figures")]
        out: PathBuf,
        /// Directory of the shipped model files (default: ./models, else the source tree's).
        #[arg(long)]
        models: Option<PathBuf>,
        /// A sweep result (JSON from `modeflow sweep`) whose points are overlaid on the maps:
        /// axes (r, eps) on the interference map, (g, t_d) on the rotation-share map.
        #[arg(long)]
        sweep: Option<PathBuf>,
    },
    /// Run a parameter sweep (a `kind = "sweep"` file) in parallel; writes NAME.csv and
    /// NAME.json (or NAME.shard-I-of-N.*) into --out.
    Sweep {
        /// The sweep file.
        sweep: PathBuf,
        /// Output directory (created if missing).
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Run only shard I of N (1-based), e.g. --shard 3/8; `--shard slurm` takes I and N
        /// from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (task ids MIN..MIN+N-1).
        #[arg(long)]
        shard: Option<String>,
        /// Skip the points a killed run of this shard recorded in --out (NAME[.shard-I-of-N]
        /// .progress.jsonl; every finished point is appended there as it completes).
        #[arg(long)]
        resume: bool,
        /// Print (or with a file name, write) a script that submits the sweep to Slurm: an
        /// sbatch array of --tasks shards, then the merge as a job depending on it (afterok).
        #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
        slurm_script: Option<PathBuf>,
        /// Number of array tasks (shards) of --slurm-script.
        #[arg(long, default_value_t = 4)]
        tasks: usize,
    },
    /// Merge the JSON shards of one sweep into NAME.csv and NAME.json in --out.
    Merge {
        /// Shard JSON files written by `modeflow sweep --shard`.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        #[arg(long, default_value = "out")]
        out: PathBuf,
    },
    /// Run the numerical checks of the claims in proofs-checks/.
    Check {
        /// Run only this claim (an exact id), else the claims whose id starts with, or whose
        /// title contains, this text.
        pattern: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also run the long checks (tier: full).
        #[arg(long)]
        full: bool,
        /// Directory of claim files (default: ./proofs-checks, else the source tree's).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // MODEFLOW_KERNELS: an unknown value is bad input (exit 2), before any work
    if let Err(e) = modeflow::num::simd::check_env() {
        eprintln!("error: {e}");
        return ExitCode::from(e.exit_code() as u8);
    }
    // MODEFLOW_SPLIT_PASSES likewise
    if let Err(e) = modeflow::rnn::bptt::split_check_env() {
        eprintln!("error: {e}");
        return ExitCode::from(e.exit_code() as u8);
    }
    modeflow::progress::set_quiet(cli.quiet);
    modeflow::rnn::train::set_progress(modeflow::progress::training);
    if let Some(size) = &cli.max_memory {
        match modeflow::budget::parse_size(size) {
            Ok(bytes) => modeflow::budget::set_max_memory(bytes),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let result = match cli.command {
        None => main_job(),
        Some(Command::Predict { model, json }) => run::load(&model)
            .and_then(|m| run::predict(&m))
            .map(|o| emit(o, json)),
        Some(Command::Train { model, json, out }) => run::load(&model)
            .and_then(|mut m| {
                m.common.out = out;
                run::train(&m)
            })
            .map(|o| emit(o, json)),
        Some(Command::Check {
            pattern,
            json,
            full,
            dir,
        }) => check(pattern, json, full, dir),
        Some(Command::Phase { model, out }) => run::load(&model)
            .and_then(|m| run::phase(&m, &out))
            .map(|files| list_files(&files)),
        Some(Command::Figures { out, models, sweep }) => gallery(&out, models, sweep),
        Some(Command::Sweep {
            sweep,
            out,
            shard,
            resume,
            slurm_script,
            tasks,
        }) => match slurm_script {
            Some(script) => slurm_script_for(&sweep, &out, &script, tasks),
            None => run_sweep(&sweep, &out, shard.as_deref(), resume),
        },
        Some(Command::Merge { shards, out }) => merge(&shards, &out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// Write to stdout; a closed pipe (`modeflow ... | head`) ends the output quietly.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

fn emit(out: run::Output, json: bool) -> ExitCode {
    if json {
        say(&format!(
            "{}\n",
            serde_json::to_string_pretty(&out.json).expect("JSON values serialise")
        ));
    } else {
        say(&out.text);
    }
    if out.failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The main job: the learning-mode report of the embedded default model, and its phase and
/// learning portraits in `out/`.
fn main_job() -> Result<ExitCode, Error> {
    let m = model::default_model();
    let out = run::predict(&m)?;
    let code = emit(out, false);
    let files = run::phase(&m, Path::new("out"))?;
    say(&format!(
        "\nFIGURES  phase and learning portraits of the default model: {} files in out/ \
         (`modeflow figures` draws the whole gallery)\n",
        files.len()
    ));
    Ok(code)
}

fn list_files(files: &[PathBuf]) -> ExitCode {
    for f in files {
        say(&format!("{}\n", f.display()));
    }
    ExitCode::SUCCESS
}

fn gallery(out: &Path, models: Option<PathBuf>, sweep: Option<PathBuf>) -> Result<ExitCode, Error> {
    use rayon::prelude::*;
    let models = models.unwrap_or_else(gallery::default_models_dir);
    // read_result checks the rows' shape (issue 15: a short row panicked here)
    let sw = sweep.as_ref().map(|p| sweep::read_result(p)).transpose()?;
    let file = sweep.as_ref().map(|p| p.display().to_string());
    let overlay = match (&sw, &file) {
        (Some(sw), Some(f)) => gallery::sweep_overlay(sw, f)?,
        _ => (vec![], vec![]),
    };
    modeflow::io::ensure_dir(out)?;
    // all or nothing: the gallery is drawn into a fresh directory beside --out and moved into
    // it only when every item succeeded (issue 15: one failing model left a partial gallery)
    let staging = staging_dir(out)?;
    // a T-map sweep (axes u_s, t_d, g) also gets its own maps (THEORY I.7)
    let mut tmap_files = 0;
    if let (Some(sw), Some(f)) = (&sw, &file) {
        if modeflow::figures::tmaps::is_tmap(sw) {
            match modeflow::figures::tmaps::tmap_figures(sw, f, &staging) {
                Ok(files) => tmap_files = files.len(),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&staging);
                    return Err(e);
                }
            }
        }
    }
    let items = gallery::gallery_items();
    let bar = modeflow::progress::bar(items.len() as u64, "figure sets");
    bar.set_message("figures");
    // collecting into a Result stops scheduling items after the first error
    let results: Result<Vec<Vec<PathBuf>>, Error> = items
        .par_iter()
        .map(|item| {
            let r = gallery::gallery_item(item, &models, &staging, &overlay);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    let n = match results {
        Ok(files) => tmap_files + files.iter().map(Vec::len).sum::<usize>(),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let moved = move_tree(&staging, out);
    let _ = std::fs::remove_dir_all(&staging);
    moved?;
    say(&format!("{n} files written to {}\n", out.display()));
    Ok(ExitCode::SUCCESS)
}

/// A fresh, empty directory beside `out` (same file system, so its files can be renamed into
/// `out`).
fn staging_dir(out: &Path) -> Result<PathBuf, Error> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = parent.join(format!(".{name}.staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

/// Move every file under `from` to the same relative path under `to` (rename; directories
/// created as needed).
fn move_tree(from: &Path, to: &Path) -> Result<(), Error> {
    modeflow::io::ensure_dir(to)?;
    let entries = std::fs::read_dir(from).map_err(|e| Error::io(from, e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ty = e.file_type().map_err(|err| Error::io(&src, err))?;
        if ty.is_dir() {
            move_tree(&src, &dst)?;
        } else {
            std::fs::rename(&src, &dst).map_err(|err| Error::io(&dst, err))?;
        }
    }
    Ok(())
}

fn check(
    pattern: Option<String>,
    json: bool,
    full: bool,
    dir: Option<PathBuf>,
) -> Result<ExitCode, Error> {
    let dir = dir.unwrap_or_else(runner::default_dir);
    let files = runner::discover(&dir)?;
    let sel = Selection {
        pattern: pattern.unwrap_or_default(),
        full,
    };
    let results = runner::run_observed(
        &files,
        &registry(),
        &sel,
        &modeflow::progress::ClaimsBar::new(),
    );
    if results.is_empty() {
        // issue 15: a pattern matching no claim exited 0
        return Err(Error::Requirement(format!(
            "check: no claim matches `{}`{} (claims: {})",
            modeflow::io::truncate(&sel.pattern, 80),
            if sel.full {
                ""
            } else {
                " in the fast tier (try --full)"
            },
            files
                .iter()
                .map(|f| f.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if json {
        let v = serde_json::json!({
            "modeflow_version": env!("CARGO_PKG_VERSION"),
            "claims": results,
        });
        say(&format!(
            "{}\n",
            serde_json::to_string_pretty(&v).expect("serialisable")
        ));
    } else {
        say(&runner::render(&results));
    }
    let failed = results.iter().any(|r| r.verdict == Verdict::Fail);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_sweep(r: &sweep::SweepResult, out: &Path) -> Result<(), Error> {
    modeflow::io::ensure_dir(out)?;
    let stem = sweep::output_stem(&r.name, r.shard);
    let json = serde_json::to_string_pretty(r).expect("sweep results serialise");
    modeflow::io::write_atomic(&out.join(format!("{stem}.json")), json.as_bytes())?;
    modeflow::io::write_atomic(
        &out.join(format!("{stem}.csv")),
        sweep::to_csv(r).as_bytes(),
    )?;
    let errors = r.rows.iter().filter(|x| x.status != "ok").count();
    say(&format!(
        "{}: {} of {} points, {} not ok -> {}\n",
        r.name,
        r.rows.len(),
        r.total,
        errors,
        out.join(format!("{stem}.{{csv,json}}")).display()
    ));
    let missing = sweep::missing_outputs(r);
    if !missing.is_empty() {
        modeflow::progress::note(&format!(
            "warning: output(s) {} missing in every point that ran (a typo in `outputs`?)",
            missing.join(", ")
        ));
    }
    Ok(())
}

/// The sweep file, parsed and validated (axes, values, size) before any point runs.
fn load_sweep(file: &Path) -> Result<sweep::SweepSpec, Error> {
    let m = run::load(file)?;
    if m.common.kind != "sweep" {
        return Err(Error::ModelFile {
            file: m.common.file,
            message: format!(
                "`modeflow sweep` needs kind = \"sweep\", found `{}`",
                m.common.kind
            ),
        });
    }
    sweep::parse(&m)
}

/// Exit code of a sweep: 1 when no point is ok (every point errored or failed), else 0.
fn sweep_code(r: &sweep::SweepResult) -> ExitCode {
    if !r.rows.is_empty() && r.rows.iter().all(|x| x.status != "ok") {
        modeflow::progress::note(&format!(
            "sweep {}: no point is ok (first status: {})",
            r.name,
            modeflow::io::truncate(&r.rows[0].status, 300)
        ));
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_sweep(
    file: &Path,
    out: &Path,
    shard: Option<&str>,
    resume: bool,
) -> Result<ExitCode, Error> {
    let shard = match shard {
        None => sweep::Shard::ALL,
        Some("slurm") => sweep::Shard::from_slurm(|k| std::env::var(k).ok())?,
        Some(s) => sweep::Shard::parse(s)?,
    };
    let mut spec = load_sweep(file)?;
    // files the points write (a bias model's `csv`) go under --out too
    spec.base.common.out = out.to_path_buf();
    modeflow::io::ensure_dir(out)?;
    let progress = sweep::progress_path(out, &spec.name, shard);
    let r = sweep::run_resumable(&spec, shard, &progress, resume)?;
    write_sweep(&r, out)?;
    std::fs::remove_file(&progress).map_err(|e| Error::io(&progress, e))?;
    Ok(sweep_code(&r))
}

/// `--slurm-script`: a bash script submitting the sweep as an array of `tasks` shards and the
/// merge as a job that runs after all of them succeeded.
fn slurm_script_for(
    file: &Path,
    out: &Path,
    script: &Path,
    tasks: usize,
) -> Result<ExitCode, Error> {
    if !(1..=10_000).contains(&tasks) {
        return Err(Error::Requirement(format!(
            "--tasks {tasks}: expected 1 to 10000 array tasks"
        )));
    }
    let spec = load_sweep(file)?;
    let abs = |p: &Path| -> Result<PathBuf, Error> {
        std::path::absolute(p).map_err(|e| Error::io(p, e))
    };
    let exe = std::env::current_exe().map_err(|e| Error::io("modeflow", e))?;
    let (sweep_abs, out_abs) = (abs(file)?, abs(out)?);
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let shards: Vec<String> = (1..=tasks)
        .map(|i| {
            q(&out_abs.join(format!(
                "{}.json",
                sweep::output_stem(&spec.name, sweep::Shard { i, n: tasks })
            )))
        })
        .collect();
    let job = shell_quote(&format!("modeflow-{}", modeflow::io::file_stem(&spec.name)));
    let text = format!(
        r#"#!/usr/bin/env bash
# Submit the sweep `{name}` ({total} points) to Slurm: an array of {tasks} shards, then the
# merge, which runs only if every shard succeeded (--dependency=afterok). Shards resume from
# their progress files if requeued. Written by `modeflow sweep --slurm-script`.
set -euo pipefail
mkdir -p {out}/slurm-logs
array=$(sbatch --parsable --array=1-{tasks} --job-name={job}   --output={logs}/%A_%a.out   --wrap={shard_cmd})
array=${{array%%;*}}
merge=$(sbatch --parsable --dependency=afterok:"$array" --job-name={job}-merge   --output={logs}/%j-merge.out   --wrap={merge_cmd})
echo "array job $array ({tasks} tasks), merge job ${{merge%%;*}} -> {out}"
"#,
        name = spec.name,
        total = sweep::total(&spec),
        out = q(&out_abs),
        logs = q(&out_abs.join("slurm-logs")),
        shard_cmd = shell_quote(&format!(
            "{} sweep {} --out {} --shard slurm --resume --quiet",
            q(&exe),
            q(&sweep_abs),
            q(&out_abs)
        )),
        merge_cmd = shell_quote(&format!(
            "{} merge {} --out {} --quiet",
            q(&exe),
            shards.join(" "),
            q(&out_abs)
        )),
    );
    if script == Path::new("-") {
        say(&text);
    } else {
        modeflow::io::write_atomic(script, text.as_bytes())?;
        say(&format!("{}\n", script.display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `s` in single quotes for sh (a `'` becomes `'\''`).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn merge(shards: &[PathBuf], out: &Path) -> Result<ExitCode, Error> {
    let r = sweep::merge_files(shards)?;
    write_sweep(&r, out)?;
    Ok(sweep_code(&r))
}
