//! Text form of the cross-validation report.

use super::*;

impl crate::report::Report for XvalResult {
    fn text(&self) -> String {
        use crate::report::fmt_num;
        let mut out = String::from(
            "M-only erf network at g = 0 vs the latent 2x2 model (same Euler dt and GD) given the measured eps\n\
             cells: network / latent\n",
        );
        out.push_str(&format!(
            "{:>6} {:>5} {:>11} {:>11}  {}\n",
            "N",
            "seed",
            "eps",
            "leak",
            QUANTITIES
                .iter()
                .map(|q| format!("{q:>24}"))
                .collect::<String>()
        ));
        for r in &self.rows {
            let cells: String = r
                .network
                .values()
                .iter()
                .zip(r.latent.values())
                .map(|(a, b)| format!("{:>24}", format!("{} / {}", fmt_num(*a), fmt_num(b))))
                .collect();
            out.push_str(&format!(
                "{:>6} {:>5} {:>11} {:>11}  {cells}\n",
                r.n,
                r.seed,
                fmt_num(r.network.eps),
                fmt_num(r.leak)
            ));
        }
        out.push_str("\nRMS relative disagreement over seeds, fit rms ~ C N^(-p):\n");
        for f in &self.fits {
            let cells: String =
                f.n.iter()
                    .zip(&f.rms)
                    .map(|(n, r)| format!("  N={n}: {}", fmt_num(*r)))
                    .collect();
            out.push_str(&format!(
                "{:>10}{cells}   p = {:.3} +- {:.3}, C = {}\n",
                f.quantity,
                f.p,
                f.p_se,
                fmt_num(f.c)
            ));
        }
        if !self.verdicts.is_empty() {
            out.push_str(
                "
prediction beside measurement (latent model = prediction):
",
            );
            for r in &self.verdicts {
                out.push_str(&format!(
                    "  {:<9} {:<52} measured {:>10}  tolerance {:>10}  {}
",
                    format!("{:?}", r.verdict).to_lowercase(),
                    r.label,
                    fmt_num(r.measured),
                    fmt_num(r.tolerance),
                    r.note
                ));
            }
            out.push_str(
                "  (interference I: no verdict here; the network forgets more than the latent model \
                 given the same eps, disputed in X-6 / X-7)\n",
            );
        }
        out
    }
}
