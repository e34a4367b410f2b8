//! Text rendering of the linear 2x2 report.

use super::*;

// ---------------------------------------------------------------------------------------------
// Text rendering

/// A number with `sig` significant digits, fixed notation for moderate magnitudes.
fn num(x: f64, sig: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-3..5).contains(&mag) {
        return format!("{:.*e}", sig.saturating_sub(1), x);
    }
    let dec = (sig as i32 - 1 - mag).max(0) as usize;
    format!("{x:.dec$}")
}

/// An input parameter as typed (shortest form after rounding to 10 significant digits).
fn short(x: f64) -> String {
    format!("{x:.9e}")
        .parse::<f64>()
        .map(|v| v.to_string())
        .unwrap_or_else(|_| x.to_string())
}

/// A small difference, always scientific.
fn diff(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x:+.1e}")
    }
}

fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

fn eig(e: &[[f64; 2]; 2]) -> String {
    let one = |v: [f64; 2]| {
        if v[1] == 0.0 {
            num(v[0], 4)
        } else {
            format!("{}{:+}i", num(v[0], 4), num(v[1], 3))
        }
    };
    format!("{}, {}", one(e[0]), one(e[1]))
}

fn matrix(m: &[[f64; 2]; 2]) -> String {
    format!(
        "[[{:.4}, {:.4}], [{:.4}, {:.4}]]",
        m[0][0], m[0][1], m[1][0], m[1][1]
    )
}

fn compared_line(out: &mut String, label: &str, c: &Compared, sig: usize) {
    out.push_str(&format!(
        "    {label:<34}{:>14}{:>16}{:>12}\n",
        num(c.closed_form, sig),
        num(c.ode, sig),
        diff(c.difference)
    ));
}

/// The column header of the [`compared_line`] tables.
fn compared_header(out: &mut String) {
    out.push_str(&format!(
        "    {:<34}{:>14}{:>16}{:>12}\n",
        "", "closed form", "ODE", "difference"
    ));
}

/// The learning times of task B's two modes alone (rotation, new formation), after `heading`.
fn modes_alone(
    out: &mut String,
    heading: &str,
    rot_label: &str,
    t_rot: &Compared,
    t_new: &Compared,
) {
    out.push_str(heading);
    compared_header(out);
    compared_line(out, rot_label, t_rot, 7);
    compared_line(out, "  t_new (p = q = 0)", t_new, 7);
}

/// Section 3 of the text report under e-prop (E-2): the closed form beside the ODE, and the
/// gradient flow on the same protocol.
fn eprop_race_text(o: &mut String, rep: &LinearReport, ep: &EpropRace) {
    let b = &rep.task_b;
    let eps = rep.spec.eps;
    o.push_str(
        "3. THE RACE UNDER E-PROP   z_BB = u / (1 - s_eff),  s_eff = s + p q/(1 - lambda)   (E-1, E-2)\n",
    );
    o.push_str(
        "    e-prop moves only row b: q' = eta e u p/D, s' = eta e u (1 - lambda)/D; lambda and p = eps stay,\n    \
         so the path is the line dq/ds = p/(1 - lambda) and s_eff grows as k s, k = 1 + p^2/(1 - lambda)^2\n",
    );
    o.push_str(&format!(
        "    k = 1 + eps^2/r^2 = {}: rotation's share is eps^2/(r^2 + eps^2) from the first instant to the last\n",
        num(ep.k, 6)
    ));
    match ep.r_star {
        Some(rs) => o.push_str(&format!(
            "    crossover r* = eps = {} (rotation wins below)\n",
            num(rs, 4)
        )),
        None => o.push_str("    no crossover: eps >= 1/2\n"),
    }
    modes_alone(
        o,
        "\n    each mode alone, until |z_BB - zhat| < tol: t = T(y0, y1)/k (k = eps^2/r^2 for q alone, 1 for s alone)\n",
        "  t_rot (q alone, s = 0)",
        &rep.t_rot,
        &rep.t_new,
    );
    o.push_str("\n    full e-prop flow\n");
    compared_line(o, "  learning time of B", &ep.t_b, 7);
    compared_line(o, "  interference I", &ep.interference, 7);
    compared_line(o, "  rotation share", &ep.rotation_share, 7);
    compared_line(o, "  q = M_ba after B", &ep.q_after, 7);
    compared_line(o, "  s = M_bb after B", &ep.s_after, 7);
    o.push_str(&format!(
        "    drift of lambda, p and of the line in (q, s): {:.1e}\n",
        b.conserved_drift
    ));
    o.push_str(&format!(
        "\n    gradient flow on the same protocol (I-8, eps = {}): {} wins, I = {}, B learned at tau = {}\n",
        short(eps),
        ep.gradient_winner.name(),
        num(ep.gradient_interference, 4),
        num(ep.gradient_t_b, 4)
    ));
    o.push_str(&format!(
        "    e-prop: I = {} ({} x the gradient's), B learned at tau = {} ({} x slower)\n\n",
        num(rep.interference, 4),
        num(rep.interference / ep.gradient_interference, 3),
        num(b.t, 4),
        num(b.t / ep.gradient_t_b, 3)
    ));
}

impl Report for LinearReport {
    fn text(&self) -> String {
        let mut o = String::new();
        self.header_text(&mut o);
        self.verdict_text(&mut o);
        self.task_a_text(&mut o);
        self.fixed_points_text(&mut o);
        self.race_text(&mut o);
        self.interference_text(&mut o);
        o
    }
}

/// The sections of [`LinearReport`]'s text, in order.
impl LinearReport {
    /// Title, model line and parameters.
    fn header_text(&self, o: &mut String) {
        let s = &self.spec;
        let p = &s.params;
        let r = self.r;
        let title = if self.name.is_empty() {
            "linear 2x2 model"
        } else {
            &self.name
        };
        o.push_str(&format!(
            "modeflow · learning modes of the linear 2x2 model — {title}\n"
        ));
        if !self.description.is_empty() {
            o.push_str(&format!("  {}\n", self.description));
        }
        o.push_str(
            "  network kappa' = -kappa + M kappa + u e_mu, M = [[lambda, p], [q, s]] in the basis (a, b);\n",
        );
        o.push_str(match self.rule {
            Rule::Gradient => "  gradient flow on M, task A then task B (THEORY I.3)\n\n",
            Rule::Eprop => {
                "  e-prop on M, task A then task B: the delta rule M' = eta E kappa_mu^T (THEORY III, E-1)\n\n"
            }
        });
        o.push_str(&format!(
            "  r = u/zhat = {}   u = {}   zhat = {}   eta = {}   seed eps = {}   learned when |z - zhat| < {:.0e}\n\n",
            short(r), short(p.u), short(p.zhat), short(p.eta), short(s.eps), s.tolerance
        ));
    }

    /// The verdict: who wins the race, the interference, and the criterion's prediction.
    fn verdict_text(&self, o: &mut String) {
        let p = &self.spec.params;
        // Verdict.
        let share = self.rotation_share;
        let margin = (share - 0.5).abs();
        let closeness = if margin < 0.1 { ", narrowly" } else { "" };
        let lead_mode = self.winner.name().to_uppercase();
        let other = if self.winner == Mode::Rotation {
            1.0 - share
        } else {
            share
        };
        o.push_str(&format!(
            "VERDICT  {lead_mode} wins the race{closeness}: it carries {} of the change of s_eff during task B\n",
            pct(share.max(1.0 - share))
        ));
        let fate = if self.interference < 0.05 {
            "A survives"
        } else if self.interference < 1.0 {
            "A is partly forgotten"
        } else {
            "A is forgotten"
        };
        o.push_str(&format!(
            "         ({} is left to {}). {fate}: interference I = {}.\n",
            pct(other),
            if self.winner == Mode::Rotation {
                "new formation"
            } else {
                "rotation"
            },
            num(self.interference, 3)
        ));
        // the race decides how B is learned; the interference measures A's readout after B.
        // When new formation wins and A is still forgotten, say in one line why both hold.
        let z_a = |label: &str| {
            self.fixed_points
                .iter()
                .find(|f| f.label == label)
                .map(|f| f.readout)
        };
        if let (Mode::NewFormation, true, Some(before), Some(after)) = (
            self.winner,
            self.interference >= 1.0,
            z_a("A before B"),
            z_a("A after B"),
        ) {
            o.push_str(&format!(
                "         Why both: B is learned by a new fixed point, but the same change of M also\n         \
                 drives the A fixed point: its readout z_AA goes {} -> {} (target zhat = {}),\n         \
                 so A is over-driven, not rotated away.\n",
                num(before, 3),
                num(after, 3),
                short(p.zhat)
            ));
        }
        self.criterion_text(o);
    }

    /// The criterion's prediction beside the full flow (e-prop: its one-factor rotation).
    fn criterion_text(&self, o: &mut String) {
        let r = self.r;
        let b = &self.task_b;
        let crit = self.race.criterion_winner;
        if let Some(ep) = &self.eprop {
            o.push_str(&format!(
                "         Under e-prop p = M_ab stays at eps, so rotation is one-factor: it carries the fixed share
         \
                 eps^2/(r^2 + eps^2) = {} and wins only for r < r* = eps. The gradient flow on the same
         \
                 protocol: {} wins, I = {}, task B at tau = {} (e-prop: {}).\n",
                pct(ep.rotation_share.closed_form),
                ep.gradient_winner.name(),
                num(ep.gradient_interference, 3),
                num(ep.gradient_t_b, 4),
                num(b.t, 4)
            ));
        } else {
            match (self.r_star, self.race.r_star_ode) {
                (Some(rs), ode) => {
                    let cmp = if r < rs { "<" } else { ">" };
                    o.push_str(&format!(
                        "         The I-8 criterion predicts {} (r = {} {cmp} r*(eps) = {})",
                        crit.name(),
                        num(r, 3),
                        num(rs, 3)
                    ));
                    match ode {
                    Some(ro) if crit != self.winner => o.push_str(&format!(
                        "; the full flow crosses over\n         earlier, at r = {}, so here the estimate and the full flow disagree.\n",
                        num(ro, 3)
                    )),
                    Some(ro) => o.push_str(&format!(
                        "; the full flow agrees (crossover at r = {}).\n",
                        num(ro, 3)
                    )),
                    None => o.push_str(".\n"),
                }
                }
                (None, _) => o.push_str(&format!(
                    "         The I-8 criterion predicts {} at every r for this seed.\n",
                    crit.name()
                )),
            }
        }
        o.push('\n');
    }

    /// 1. Task A.
    fn task_a_text(&self, o: &mut String) {
        // 1. Task A.
        o.push_str(&format!(
            "1. TASK A, learned from M = 0 (own loss, {})\n",
            self.rule.name()
        ));
        compared_header(o);
        compared_line(o, "lambda_A = 1 - r", &self.lambda_a, 7);
        compared_line(o, "learning time of A", &self.t_a, 7);
        o.push_str(&format!(
            "    recurrent gain G_A = 1/(1 - lambda_A) = zhat/u = {}\n",
            num(self.gain_a, 4)
        ));
        o.push_str(
            "    (the ODE stops when |z_AA - zhat| < tol, so lambda falls short of 1 - r by tol u/zhat^2)\n\n",
        );
    }

    /// 2. Fixed points and stability.
    fn fixed_points_text(&self, o: &mut String) {
        let b = &self.task_b;
        // 2. Fixed points.
        o.push_str("2. FIXED POINTS AND STABILITY   (kappa_mu = u R e_mu, R = (I - M)^-1; Jacobian J = -I + M)\n");
        o.push_str(&format!(
            "    M before B = {}      M after B = {}\n",
            matrix(&b.m_before),
            matrix(&b.m_after)
        ));
        o.push_str(&format!(
            "    {:<12}{:>22}{:>11}{:>10}   {:<22}{}\n",
            "", "kappa (closed form)", "ODE diff", "readout", "eigenvalues of J", "type"
        ));
        for fp in &self.fixed_points {
            let coord = format!("({:.4}, {:.4})", fp.coordinates[0], fp.coordinates[1]);
            let d = fp
                .difference
                .map(|x| format!("{x:.1e}"))
                .unwrap_or_else(|| "— (unstable)".into());
            o.push_str(&format!(
                "    {:<12}{:>22}{:>11}{:>10}   {:<22}{}\n",
                fp.label,
                coord,
                d,
                num(fp.readout, 4),
                eig(&fp.eigenvalues),
                fp.kind.label()
            ));
        }
        o.push_str(
            "    (ODE diff: the network relaxed from kappa = 0 minus the closed form; readout z_mu mu)\n\n",
        );
    }

    /// 3. The race (e-prop's own section under e-prop).
    fn race_text(&self, o: &mut String) {
        let s = &self.spec;
        let b = &self.task_b;
        let share = self.rotation_share;
        // 3. The race.
        let race = &self.race;
        if let Some(ep) = &self.eprop {
            eprop_race_text(o, self, ep);
        } else {
            o.push_str(
            "3. THE RACE   z_BB = u / (1 - s_eff),  s_eff = s + p q/(1 - lambda)   (I-6, I-8)\n",
        );
            o.push_str(&format!(
            "    rotation       two-factor pathway p q/(1 - lambda): starts at a saddle, seeded by eps;\n                   \
             grows at rate 2 eta zhat^2 (1 - r) = {} from rho0 = eps^2/r = {}  ->  time ~ {}\n",
            num(race.rotation_rate, 4),
            num(race.rho0, 3),
            num(race.rotation_estimate, 4)
        ));
            o.push_str(&format!(
            "    new formation  one-factor pathway s: moves at once, needs s ~ 1 - r  ->  time ~ 1/(eta u zhat) = {}\n",
            num(race.new_formation_estimate, 4)
        ));
            o.push_str(&format!(
            "    criterion      (r/2) ln(r(1 - r)/eps^2) = {}  vs  1 - r = {}  ->  {} predicted",
            num(race.lhs, 4),
            num(race.rhs, 4),
            race.criterion_winner.name()
        ));
            match race.r_star {
                Some(rs) => o.push_str(&format!("; r*(eps = {}) = {}\n", s.eps, num(rs, 4))),
                None => o.push_str("; no crossover r* at this eps\n"),
            }
            modes_alone(
                o,
                "\n    each mode alone, until |z_BB - zhat| < tol (I-7)\n",
                "  t_rot (balanced p = q, s = 0)",
                &self.t_rot,
                &self.t_new,
            );
            o.push_str(&format!(
            "\n    full flow (I-6): B learned at tau = {};  delta s = {},  delta p q/(1 - lambda) = {}\n",
            num(b.t, 5),
            num(b.delta_s, 4),
            num(b.delta_rotation, 4)
        ));
            o.push_str(&format!(
            "                     rotation share {}  ->  {} wins;  conserved p^2 - q^2 drifted by {:.1e}\n",
            pct(share),
            self.winner.name(),
            b.conserved_drift
        ));
            match race.r_star_ode {
            Some(ro) => o.push_str(&format!(
                "                     full-flow crossover at this eps: r = {} (rotation wins below)\n",
                num(ro, 4)
            )),
            None => o.push_str("                     the full flow has no crossover at this eps\n"),
        }
            match race.r_star_refined {
            Some(rr) => o.push_str(&format!(
                "                     closed-form path criterion (I-16): r* = {}\n\n",
                num(rr, 4)
            )),
            None => o.push_str("                     closed-form path criterion (I-16): no crossover at this eps\n\n"),
        }
        }
    }

    /// 4. Interference.
    fn interference_text(&self, o: &mut String) {
        let p = &self.spec.params;
        let r = self.r;
        let b = &self.task_b;
        // 4. Interference.
        let ra = &b.readouts_after;
        o.push_str("4. INTERFERENCE   I = L_A(after B) / L_A(M = 0),  L_A = (zhat - z_AA)^2 / 2\n");
        o.push_str(&format!(
            "    z_AA: {} before B -> {} after B (target {});  z_BB after B = {}\n",
            num(b.readouts_before.z_aa, 6),
            num(ra.z_aa, 6),
            num(p.zhat, 4),
            num(ra.z_bb, 7)
        ));
        o.push_str(&format!(
            "    cross readouts after B: z_BA = {}, z_AB = {}\n",
            num(ra.z_ba, 4),
            num(ra.z_ab, 4)
        ));
        let (l1, p1, q1, s1) = (
            b.m_after[0][0],
            b.m_after[0][1],
            b.m_after[1][0],
            b.m_after[1][1],
        );
        o.push_str(&format!(
            "    why: z_AA = u / ((1 - lambda) - p q/(1 - s)); after B, 1 - lambda = {} and the rotation\n         \
             term p q/(1 - s) = {} leave u / {} = {} (A needs 1 - lambda_A = r = {})\n",
            num(1.0 - l1, 4),
            num(p1 * q1 / (1.0 - s1), 4),
            num((1.0 - l1) - p1 * q1 / (1.0 - s1), 4),
            num(ra.z_aa, 4),
            num(r, 4)
        ));
        o.push_str(&format!(
            "    I = {}   ({})\n",
            num(self.interference, 4),
            if self.interference < 1.0 {
                "A is remembered better than by the untrained network"
            } else {
                "A is remembered worse than by the untrained network"
            }
        ));
    }
}
