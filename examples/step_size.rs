//! I-18 on networks: the gradient flow, GD at eta and the modified flow of GD at eta, per seed.
//!
//! ```text
//! cargo run --release --example step_size [-- SEEDS [LADDER [G [N [TOP]]]]]
//! ```
//!
//! The shipped `models/rnn-flow.toml` (full W, working memory, aligned loss; g and N may be
//! overridden), seeds from the model's seed on (default 16), eta = 2^TOP, 2^(TOP-1), ... (LADDER
//! rungs; default TOP = 0, 9 rungs). Prints I and the mode (R rotation, N new formation, ? unresolved, x did
//! not converge) of each run and the critical steps of GD and of the modified flow.

use modeflow::rnn::flow_limit::shipped_setting;
use modeflow::rnn::step_size::{step_size_runs, Outcome};
use modeflow::rnn::tmaps::Mode;

fn tag(o: &Outcome) -> char {
    if !o.converged {
        return 'x';
    }
    match o.mode {
        Mode::Rotation => 'R',
        Mode::NewFormation => 'N',
        Mode::Unresolved => '?',
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().map_or(Ok(16), |s| s.parse())?;
    let ladder: i32 = args.next().map_or(Ok(9), |s| s.parse())?;
    let (mut spec, seed0, _) = shipped_setting()?;
    if let Some(g) = args.next() {
        spec.network.g = g.parse()?;
    }
    if let Some(n) = args.next() {
        spec.network.n = n.parse()?;
    }
    let top: i32 = args.next().map_or(Ok(0), |s| s.parse())?;
    let etas: Vec<f64> = (0..ladder).map(|k| 2f64.powi(top - k)).collect();
    let seeds: Vec<u64> = (seed0..seed0 + seeds).collect();
    let t0 = std::time::Instant::now();
    let runs = step_size_runs(&spec, &seeds, &etas)?;
    println!(
        "N = {}, g = {}, {} seeds, eta = 2^{top} .. 2^{}; {:.1} s wall",
        spec.network.n,
        spec.network.g,
        seeds.len(),
        top - ladder + 1,
        t0.elapsed().as_secs_f64()
    );
    for r in &runs {
        print!(
            "seed {:>3} eps {:+.3e} 2/lambda_B {:.3e} flow I {:.4e} {}  eta*_GD {:?} eta*_MF {:?}\n   GD:",
            r.seed,
            r.eps,
            2.0 / r.sharpness_b,
            r.flow.interference,
            tag(&r.flow),
            r.critical(&r.gd),
            r.critical(&r.modified)
        );
        for o in &r.gd {
            print!(" {:.3e}{}", o.interference, tag(o));
        }
        print!("\n   MF:");
        for o in &r.modified {
            print!(" {:.3e}{}", o.interference, tag(o));
        }
        let ev: usize = r.modified.iter().map(|o| o.evaluations).sum();
        let eg: usize = r.gd.iter().map(|o| o.evaluations).sum();
        println!(
            "\n   evaluations: flow {}, GD {eg}, MF {ev}",
            r.flow.evaluations
        );
    }
    Ok(())
}
