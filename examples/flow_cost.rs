//! The gradient-flow limit of GD on the shipped `models/rnn-flow.toml`, and what it costs.
//!
//! ```text
//! cargo run --release --example flow_cost [-- SEEDS [LADDER [FLOW_RTOL]]]
//! ```
//!
//! For each seed (default 16, from the model's seed on): I by the flow at the model's
//! `flow_rtol`, at flow_rtol / 100, and by GD at lr = 1, 1/2, ..., 2^-(LADDER-1) (default 9
//! rungs); then the observed order of |I_GD - I_flow| in lr, and the gradient evaluations and
//! wall time of the flow vs GD at the largest lr that agrees with the flow within 1% on every
//! seed (`bench/README.md` quotes the output).

use modeflow::rnn::flow_limit::{cost, lr_limit, shipped_setting};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().map_or(Ok(16), |s| s.parse())?;
    let ladder: i32 = args.next().map_or(Ok(9), |s| s.parse())?;
    let (mut spec, seed0, _) = shipped_setting()?;
    if let Some(r) = args.next() {
        spec.train.optimizer = modeflow::rnn::train::Optimizer::Flow {
            rtol: r.parse()?,
            atol: None,
        };
    }
    let lrs: Vec<f64> = (0..ladder).map(|k| 2f64.powi(-k)).collect();
    let seeds: Vec<u64> = (seed0..seed0 + seeds).collect();
    let limits = lr_limit(&spec, &seeds, &lrs, &[10.0, 100.0])?;
    print!(
        "{:>5} {:>11} {:>9} {:>9} {:>8} {:>8} {:>6}",
        "seed", "I_flow", "dI(x10)", "dI(x100)", "tau_A", "tau_B", "evals"
    );
    for lr in &lrs {
        print!(" {:>10}", format!("lr={lr}"));
    }
    println!();
    for l in &limits {
        let m = l.tolerance_moves();
        print!(
            "{:>5} {:>11.6} {:>9.2e} {:>9.2e} {:>8.3} {:>8.3} {:>6}",
            l.seed, l.i_flow, m[0], m[1], l.tau_a, l.tau_b, l.flow_evaluations
        );
        for p in &l.gd {
            print!(" {:>10.6}", p.interference);
        }
        println!();
    }
    println!("\nobserved order log2(e(lr)/e(lr/2)), e = |I_GD - I_flow(rtol/100)|, per seed:");
    for l in &limits {
        let o: Vec<String> = l.orders().iter().map(|o| format!("{o:5.2}")).collect();
        println!("{:>5} {}", l.seed, o.join(" "));
    }
    for rel in [0.01, 0.05] {
        let c = cost(&limits, rel);
        println!(
            "\nwithin {:.0}% on every seed: GD at lr = {:?}: {} gradient evaluations, {:.3} s; \
             flow: {} gradient evaluations, {:.3} s (sums over {} seeds)",
            rel * 100.0,
            c.lr,
            c.gd_evaluations,
            c.gd_seconds,
            c.flow_evaluations,
            c.flow_seconds,
            limits.len()
        );
    }
    Ok(())
}
