//! The `modeflow` command line: parse, call the library, print. Exit codes: 0 success,
//! 1 a check failed or a run diverged, 2 bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use modeflow::claims::runner::{self, Selection};
use modeflow::claims::{registry, Verdict};
use modeflow::{figures, model, run, sweep, Error};

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
        /// Run only shard I of N (1-based), e.g. for array jobs: --shard 3/8.
        #[arg(long)]
        shard: Option<String>,
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
        /// Run only claims whose id starts with, or whose title contains, this text.
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
    let result = match cli.command {
        None => main_job(),
        Some(Command::Predict { model, json }) => model::load(&model)
            .and_then(|m| run::predict(&m))
            .map(|o| emit(o, json)),
        Some(Command::Train { model, json }) => model::load(&model)
            .and_then(|m| run::train(&m))
            .map(|o| emit(o, json)),
        Some(Command::Check {
            pattern,
            json,
            full,
            dir,
        }) => check(pattern, json, full, dir),
        Some(Command::Phase { model, out }) => model::load(&model)
            .and_then(|m| figures::phase(&m, &out))
            .map(|files| list_files(&files)),
        Some(Command::Figures { out, models, sweep }) => gallery(&out, models, sweep),
        Some(Command::Sweep { sweep, out, shard }) => run_sweep(&sweep, &out, shard.as_deref()),
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
    let files = figures::phase(&m, Path::new("out"))?;
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
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use rayon::prelude::*;
    use std::io::IsTerminal;
    let models = models.unwrap_or_else(figures::default_models_dir);
    let overlay = match &sweep {
        None => (vec![], vec![]),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            let sw: sweep::SweepResult =
                serde_json::from_str(&text).map_err(|e| Error::ModelFile {
                    file: p.display().to_string(),
                    message: format!("not a sweep result: {e}"),
                })?;
            figures::sweep_overlay(&sw, &p.display().to_string())?
        }
    };
    modeflow::io::ensure_dir(out)?;
    let items = figures::gallery_items();
    let bar = ProgressBar::new(items.len() as u64);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} figure sets [{elapsed}]")
                .expect("static template"),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let results: Vec<Result<Vec<PathBuf>, Error>> = items
        .par_iter()
        .map(|item| {
            let r = figures::gallery_item(item, &models, out, &overlay);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    let mut n = 0;
    for r in results {
        n += r?.len();
    }
    say(&format!("{n} files written to {}\n", out.display()));
    Ok(ExitCode::SUCCESS)
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
    let results = runner::run(&files, &registry(), &sel);
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
    let stem = if r.shard.n == 1 {
        r.name.clone()
    } else {
        format!("{}.shard-{}-of-{}", r.name, r.shard.i, r.shard.n)
    };
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
    Ok(())
}

fn run_sweep(file: &Path, out: &Path, shard: Option<&str>) -> Result<ExitCode, Error> {
    let shard = shard
        .map(sweep::Shard::parse)
        .transpose()?
        .unwrap_or(sweep::Shard::ALL);
    let m = model::load(file)?;
    if m.common.kind != "sweep" {
        return Err(Error::ModelFile {
            file: m.common.file,
            message: format!(
                "`modeflow sweep` needs kind = \"sweep\", found `{}`",
                m.common.kind
            ),
        });
    }
    let spec = sweep::parse(&m)?;
    let r = sweep::run(&spec, shard);
    write_sweep(&r, out)?;
    Ok(ExitCode::SUCCESS)
}

fn merge(shards: &[PathBuf], out: &Path) -> Result<ExitCode, Error> {
    let parts = shards
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            serde_json::from_str::<sweep::SweepResult>(&text).map_err(|e| Error::ModelFile {
                file: p.display().to_string(),
                message: format!("not a sweep shard: {e}"),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let r = sweep::merge(parts)?;
    write_sweep(&r, out)?;
    Ok(ExitCode::SUCCESS)
}
