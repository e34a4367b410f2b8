//! The `modeflow` command line: parse, call the library, print. Exit codes: 0 success,
//! 1 a check failed or a run diverged, 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use modeflow::claims::runner::{self, Selection};
use modeflow::claims::{registry, Verdict};
use modeflow::{model, run, Error};

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
    let result = match cli.command {
        None => main_job(),
        Some(Command::Predict { model, json }) => model::load(&model)
            .and_then(|m| run::predict(&m))
            .map(|o| emit(o, json)),
        Some(Command::Check {
            pattern,
            json,
            full,
            dir,
        }) => check(pattern, json, full, dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn emit(out: run::Output, json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&out.json).expect("JSON values serialise")
        );
    } else {
        print!("{}", out.text);
    }
    if out.failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main_job() -> Result<ExitCode, Error> {
    let m = model::default_model();
    let out = run::predict(&m)?;
    Ok(emit(out, false))
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
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("serialisable")
        );
    } else {
        print!("{}", runner::render(&results));
    }
    let failed = results.iter().any(|r| r.verdict == Verdict::Fail);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
