//! Text rendering of the `latent` kind report.

use super::*;

/// An eigenvalue [re, im] as "re" or "re ± im i".
fn eig_text(e: [f64; 2]) -> String {
    if e[1] == 0.0 {
        fmt_num(e[0])
    } else {
        format!(
            "{}{}{}i",
            fmt_num(e[0]),
            if e[1] < 0.0 { "-" } else { "+" },
            fmt_num(e[1].abs())
        )
    }
}

fn fp_plain(out: &mut String, fps: &[FixedPoint]) {
    for f in fps {
        out.push_str(&format!(
            "      ({:>10}, {:>10})  eigenvalues {} / {}  {}\n",
            fmt_num(f.x[0]),
            fmt_num(f.x[1]),
            eig_text(f.eigenvalues[0]),
            eig_text(f.eigenvalues[1]),
            f.kind.label()
        ));
    }
}

fn fp_lines(out: &mut String, fps: &[EigenFixedPoint]) {
    for f in fps {
        let ev = f.point.eigenvalues;
        out.push_str(&format!(
            "      ({:>10}, {:>10})  lambda {:>9}  |y| {:>9}  eigenvalues {} / {}  {}\n",
            fmt_num(f.point.x[0]),
            fmt_num(f.point.x[1]),
            fmt_num(f.lambda),
            fmt_num(f.readout),
            eig_text(ev[0]),
            eig_text(ev[1]),
            f.point.kind.label()
        ));
    }
}

fn gain_name(g: GainKind) -> &'static str {
    match g {
        GainKind::Erf => "erf",
        GainKind::Tanh => "tanh",
    }
}

fn loss_name(l: LossKind) -> &'static str {
    match l {
        LossKind::Own => "own",
        LossKind::Aligned => "aligned",
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Rotation => "ROTATION",
        Mode::NewFormation => "NEW FORMATION",
        Mode::Undetermined => "UNDETERMINED",
    }
}

impl Report for LatentReport {
    fn text(&self) -> String {
        let mut o = String::new();
        self.header_text(&mut o);
        self.verdict_text(&mut o);
        self.sections_text(&mut o);
        self.fixed_points_text(&mut o);
        o
    }
}

/// The sections of [`LatentReport`]'s text, in order.
impl LatentReport {
    /// Title, model line and parameters.
    fn header_text(&self, o: &mut String) {
        let sp = &self.spec;
        let sc = &sp.schedule;
        o.push_str(&format!(
            "modeflow · learning modes of the latent 2x2 model ({} gain, {} loss)\n",
            gain_name(sp.gain),
            loss_name(sp.loss)
        ));
        o.push_str(
            "  latent flow kappa' = -kappa + G(|kappa|^2) M kappa + u(t) e_mu (THEORY I.2);\n",
        );
        o.push_str(match sp.rule {
            Rule::Gradient => "  gradient flow on M, task A then task B\n\n",
            Rule::Eprop => {
                "  e-prop flow on M (adjoint Jacobian -> its diagonal, the leak; THEORY III.1), task A then task B\n\n"
            }
        });
        o.push_str(&format!(
            "  zhat = {}   u_p = {}   T_in = {}   u_s = {}   T_d = {}   T_l = {}   seed eps = {}\n\n",
            fmt_value(sp.zhat),
            fmt_value(sc.u_p),
            fmt_value(sc.t_in),
            fmt_value(sc.u_s),
            fmt_value(sc.t_d),
            fmt_value(sc.t_l),
            fmt_value(sp.eps)
        ));
    }

    /// The verdict first, then the numbers that explain it.
    fn verdict_text(&self, o: &mut String) {
        let s = &self.sequential;
        // Verdict first, then the numbers that explain it.
        let fate = if s.interference < 0.05 {
            "A survives"
        } else if s.interference < 1.0 {
            "A is partly forgotten"
        } else {
            "A is forgotten"
        };
        o.push_str(&format!(
            "VERDICT  {}: {}.\n         {fate}: interference I = L_A(after B)/L_A(untrained) = {}.\n",
            mode_name(s.mode),
            s.mode_reason,
            fmt_num(s.interference)
        ));
        let dm = &s.decomposition;
        o.push_str(&format!(
            "         Delta M during B: rotation part |R| = {}, new-formation part |N| = {} (rotation share {}).\n",
            fmt_num(dm.rotation_norm),
            fmt_num(dm.new_formation_norm),
            fmt_num(dm.rotation_share)
        ));
        if let Some(tr) = &s.a_fixed_point {
            let th = tr.theta_continued.or(tr.theta_nearest);
            if let (Some(th), Some(i)) = (th, tr.interference_from_theta) {
                o.push_str(&format!(
                    "         The A fixed point turned by theta = {} rad ({});\n         a pure rotation would give I = 2(1 - cos theta) = {}.\n",
                    fmt_num(th),
                    if tr.theta_continued.is_some() {
                        "continued along learning"
                    } else {
                        "to the nearest remaining fixed point"
                    },
                    fmt_num(i)
                ));
            }
        }
        o.push('\n');
    }

    /// 1.-3.: the target attractor, the seeding time, the learning runs.
    fn sections_text(&self, o: &mut String) {
        let s = &self.sequential;
        let t = &self.target;
        o.push_str("1. TARGET ATTRACTOR OF TASK A (I-1, I-2)\n");
        o.push_str(&format!(
            "    lambda_A = {}   |kappa_A| = {}   Jacobian eigenvalues {} (along a), {} (along b)   origin grows at {}\n\n",
            fmt_num(t.lambda_a),
            fmt_num(t.radius),
            fmt_num(t.eigenvalue_a),
            fmt_num(t.eigenvalue_b),
            fmt_num(t.origin_growth)
        ));
        let sd = &self.seeding;
        o.push_str(&format!(
            "2. SEEDING TIME (I-3), eps = {}\n",
            fmt_num(sd.eps)
        ));
        o.push_str(&format!(
            "    leading order {}   exact to {} |kappa_A| (quadrature) {}   ODE {}\n\n",
            fmt_num(sd.formula),
            sd.fraction,
            fmt_num(sd.quadrature),
            fmt_num(sd.simulated)
        ));
        o.push_str(match self.spec.rule {
            Rule::Gradient => "3. LEARNING (gradient flow on M)\n",
            Rule::Eprop => "3. LEARNING (e-prop flow on M)\n",
        });
        for (task, l) in [("A", &s.learning_a), ("B", &s.learning_b)] {
            o.push_str(&format!(
                "    task {task}: tau = {} ({}), L_{task} {} -> {}\n",
                fmt_num(l.tau),
                if l.converged {
                    "converged"
                } else {
                    "NOT converged"
                },
                fmt_num(l.loss_start),
                fmt_num(l.loss_end)
            ));
        }
        o.push('\n');
    }

    /// 4. The fixed points after A and after B.
    fn fixed_points_text(&self, o: &mut String) {
        let s = &self.sequential;
        let sc = &self.spec.schedule;
        o.push_str("4. FIXED POINTS (the memories; also drawn by `modeflow phase`)\n");
        o.push_str("    autonomous flow after A (closed form, I-1):\n");
        fp_lines(o, &s.attractors_after_a);
        o.push_str("    autonomous flow after B:\n");
        fp_lines(o, &s.attractors_after_b);
        if sc.u_s != 0.0 {
            for (label, set) in [
                ("after A", &s.delay_fixed_points_after_a),
                ("after B", &s.delay_fixed_points_after_b),
            ] {
                for (task, fps) in [("A", &set.task_a), ("B", &set.task_b)] {
                    o.push_str(&format!(
                        "    task-{task} delay flow (input u_s e_{}) {label}:\n",
                        task.to_lowercase()
                    ));
                    fp_plain(o, fps);
                }
            }
        }
    }
}
