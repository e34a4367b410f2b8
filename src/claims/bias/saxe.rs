//! B-13: Saxe mode curves against the closed form (`crate::bias::saxe`).

use crate::bias::saxe::{half_time, map_gf_error, mode_gd};
use crate::bias::spec::saxe::{net_rows, run, Spec};
use crate::claims::Row;
use crate::Result;

/// B-13 check: the trained net's rows of the reference run (`models/bias-saxe-check.toml`, the
/// run of `modeflow train` on it: modes vs the scalar map, decoupling), then, from the map and
/// the closed form alone, the first-order approach of GD to GF and the GD half-time.
pub fn check_b13() -> Result<Vec<Row>> {
    let spec = Spec::reference();
    let mut rows: Vec<Row> = net_rows(&spec, &run(&spec)?);
    // GD -> GF at first order in eta: error of the map against u(t) at t = 3, halving eta
    let (sm, um, t_end) = (2.0, 1e-3, 3.0);
    let err = |eta: f64| map_gf_error(sm, um, eta, t_end);
    let (e1, e2, e3) = (err(0.01), err(0.005), err(0.0025));
    rows.push(
        Row::rel(
            "GD map vs GF curve: error ratio on halving eta (first order)",
            2.0,
            e1 / e2,
            0.15,
        )
        .note(format!(
            "max error over t in [0, 3]: {e1:.3e}, {e2:.3e}, {e3:.3e}"
        )),
    );
    rows.push(Row::rel("same, next halving", 2.0, e2 / e3, 0.15));
    // half-time: steps to reach s/2 times eta vs ln(s/u0 - 1)/(2s)
    let th = half_time(sm, um);
    for eta in [0.001, 0.0001] {
        let mut u = um;
        let mut k = 0usize;
        while u < sm / 2.0 {
            let next = mode_gd(u, sm, eta);
            k += 1;
            if next >= sm / 2.0 {
                // linear interpolation of the crossing within the step
                let frac = (sm / 2.0 - u) / (next - u);
                let t = (k as f64 - 1.0 + frac) * eta;
                rows.push(
                    Row::abs(format!("half-time, eta={eta}"), th, t, 2.0 * eta)
                        .note("GD half-time differs from GF by O(eta) (measured ~eta x const)"),
                );
                break;
            }
            u = next;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b13_check_passes() {
        for row in check_b13().unwrap() {
            eprintln!(
                "{} | {:e} | {:e} | {}",
                row.label, row.measured, row.error, row.note
            );
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
