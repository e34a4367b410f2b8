//! Sequential learning in the latent model: task A then task B, the learning mode, the A fixed point tracked through B.

use super::*;

/// Which learning mode task B took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The A fixed point moved by theta >= 45 degrees or vanished, and a B fixed point along b
    /// exists: A was overwritten.
    Rotation,
    /// The A fixed point persisted (theta < 45 degrees, still stable) and a B fixed point along
    /// b exists.
    NewFormation,
    /// Neither picture fits (e.g. no stable B fixed point along b, or no A fixed point).
    Undetermined,
}

/// Tracking of the A fixed point through the learning of B.
///
/// The "A fixed point" is the stable fixed point of the *delay flow of task A*,
/// kappa' = -kappa + G M kappa + u_s (e_a + leak e_b), reached at the end of the A trial (for
/// u_s = 0 the autonomous memory attractor, for u_s != 0 the input-driven fixed point).
#[derive(Debug, Clone, Serialize)]
pub struct AFixedPointTrack {
    /// The A fixed point for M_afterA.
    pub before: [f64; 2],
    /// Its continuation to M_afterB (Newton along the dense learning path of B), if it survived.
    pub after: Option<[f64; 2]>,
    pub after_kind: Option<FixedPointType>,
    /// Learning time at which the continuation was lost (the fixed point vanished, e.g. the
    /// eigenvalue of M carrying it fell below 1), if it was.
    pub vanished_at: Option<f64>,
    /// Rotation angle of the continued A fixed point (radians, [0, pi]).
    pub theta_continued: Option<f64>,
    /// Angle between the A fixed point before and the closest (in angle) stable fixed point of
    /// the A delay flow after B — defined also when the continuation vanished.
    pub theta_nearest: Option<f64>,
    /// 2 (1 - cos theta) with theta = theta_continued, else theta_nearest: the interference of a
    /// pure rotation at fixed norm under the aligned loss (docs/theory.md I.1).
    pub interference_from_theta: Option<f64>,
}

/// Fixed points (with stability) of the delay flows, by grid seeding + Newton in a box.
#[derive(Debug, Clone, Serialize)]
pub struct DelayFixedPoints {
    /// Delay flow of task A (input u_s (e_a + leak e_b)).
    pub task_a: Vec<FixedPoint>,
    /// Delay flow of task B (input u_s (e_b + leak e_a)).
    pub task_b: Vec<FixedPoint>,
}

/// The sequential protocol: learn A from M0, then B from M_afterA.
#[derive(Debug, Clone)]
pub struct Sequential {
    pub trials: Trials,
    pub learning_a: LearningOptions,
    pub learning_b: LearningOptions,
}

/// Everything measured in one sequential run.
#[derive(Debug, Clone, Serialize)]
pub struct SequentialResult {
    pub m0: [[f64; 2]; 2],
    pub m_after_a: [[f64; 2]; 2],
    pub m_after_b: [[f64; 2]; 2],
    pub learning_a: LearningSummary,
    pub learning_b: LearningSummary,
    /// L_A(M0).
    pub loss_a_untrained: f64,
    pub loss_a_after_a: f64,
    pub loss_a_after_b: f64,
    pub loss_b_after_a: f64,
    pub loss_b_after_b: f64,
    /// I = L_A(after B) / L_A(untrained).
    pub interference: f64,
    pub decomposition: Decomposition,
    /// Memories of the autonomous flow (u = 0) in closed form (claim I-1), after A and after B.
    pub attractors_after_a: Vec<EigenFixedPoint>,
    pub attractors_after_b: Vec<EigenFixedPoint>,
    /// Fixed points of the delay flows before B (= after A) and after B.
    pub delay_fixed_points_after_a: DelayFixedPoints,
    pub delay_fixed_points_after_b: DelayFixedPoints,
    pub a_fixed_point: Option<AFixedPointTrack>,
    /// The B fixed point after B (stable fixed point of the B delay flow reached by the B
    /// trial), if it lies along b (|cos| with e_b > cos 45 degrees).
    pub b_fixed_point: Option<[f64; 2]>,
    pub mode: Mode,
    pub mode_reason: String,
}

/// Substeps per accepted learning step in the continuation of the A fixed point.
const CONTINUATION_SUBSTEPS: usize = 8;
/// Grid of the fixed-point search in the delay flows.
const FIXED_POINT_GRID: usize = 16;

impl Sequential {
    fn delay_flow(&self, m: &Matrix2<f64>, task: Task) -> LatentFlow {
        let t = &self.trials;
        LatentFlow {
            m: *m,
            input: t.input_direction(task) * t.schedule.u_s,
            gain: t.gain.clone(),
        }
    }

    fn delay_fixed_points(&self, m: &Matrix2<f64>) -> Result<DelayFixedPoints> {
        // every fixed point has |k| <= r(|M|_F) + |u| (|k| = |G M k + u|, and G |M k| <= |k|
        // beyond the autonomous radius); the box adds a margin
        let u = self.trials.schedule.u_s.abs() * (1.0 + self.trials.leak.abs());
        let r = fixed_point_box(m, &self.trials.gain)? + 2.0 * u;
        let find = |task| {
            fixed_points_in_box(
                &self.delay_flow(m, task),
                [-r, -r],
                [r, r],
                FIXED_POINT_GRID,
            )
        };
        Ok(DelayFixedPoints {
            task_a: find(Task::A),
            task_b: find(Task::B),
        })
    }

    /// Run A then B; also returns the raw learning runs.
    pub fn run(&self, m0: &Matrix2<f64>) -> Result<(SequentialResult, LearningRun, LearningRun)> {
        let t = &self.trials;
        let run_a = learn(t, m0, Task::A, &self.learning_a)?;
        let m_a = run_a.m_end;
        let run_b = learn(t, &m_a, Task::B, &self.learning_b)?;
        let m_b = run_b.m_end;
        let loss_a_untrained = t.loss(m0, Task::A)?;
        let loss_a_after_b = t.loss(&m_b, Task::A)?;
        let delay_a = self.delay_fixed_points(&m_a)?;
        let delay_b = self.delay_fixed_points(&m_b)?;

        // The A fixed point: Newton in the A delay flow from the end of the A trial, else the
        // stable fixed point of that flow with the largest kappa_a.
        let end_a = t.trial(&m_a, Task::A)?.end_state();
        let a_point = self.stable_point_from(&m_a, Task::A, &end_a).or_else(|| {
            delay_a
                .task_a
                .iter()
                .filter(|f| is_stable(f.kind) && f.x[0].hypot(f.x[1]) > 1e-8)
                .max_by(|p, q| p.x[0].total_cmp(&q.x[0]))
                .map(|f| Vector2::new(f.x[0], f.x[1]))
        });
        let track = a_point.map(|x| self.track(&run_b, x, &delay_b.task_a));

        // The B fixed point: Newton in the B delay flow from the end of the B trial.
        let end_b = t.trial(&m_b, Task::B)?.end_state();
        let b_point = self
            .stable_point_from(&m_b, Task::B, &end_b)
            .filter(|x| x[1].abs() / x.norm() > std::f64::consts::FRAC_1_SQRT_2)
            .map(|x| [x[0], x[1]]);

        let (mode, mode_reason) = match &track {
            None => (
                Mode::Undetermined,
                "task A did not produce a stable fixed point".to_string(),
            ),
            Some(tr) => {
                let persisted = tr
                    .theta_continued
                    .is_some_and(|th| th < std::f64::consts::FRAC_PI_4)
                    && tr.after_kind.is_some_and(is_stable);
                match (persisted, b_point.is_some()) {
                    (true, true) => (
                        Mode::NewFormation,
                        format!(
                            "the A fixed point persisted (theta = {:.4} rad) and a B fixed point formed along b",
                            tr.theta_continued.unwrap_or(0.0)
                        ),
                    ),
                    (false, true) => (
                        Mode::Rotation,
                        match (tr.theta_continued, tr.vanished_at) {
                            (Some(th), _) => format!(
                                "the A fixed point rotated by theta = {th:.4} rad toward b"
                            ),
                            (None, Some(tau)) => format!(
                                "the A fixed point vanished at tau = {tau:.4}; the nearest remaining one is {} rad away",
                                tr.theta_nearest.map_or("-".to_string(), |th| format!("{th:.4}"))
                            ),
                            _ => "the A fixed point was lost".to_string(),
                        },
                    ),
                    (true, false) => (
                        Mode::Undetermined,
                        "the A fixed point persisted but no B fixed point along b formed"
                            .to_string(),
                    ),
                    (false, false) => (
                        Mode::Undetermined,
                        "the A fixed point was lost and no B fixed point along b formed"
                            .to_string(),
                    ),
                }
            }
        };

        let result = SequentialResult {
            m0: arr(m0),
            m_after_a: arr(&m_a),
            m_after_b: arr(&m_b),
            learning_a: (&run_a).into(),
            learning_b: (&run_b).into(),
            loss_a_untrained,
            loss_a_after_a: run_a.loss_end,
            loss_a_after_b,
            loss_b_after_a: run_b.loss_start,
            loss_b_after_b: run_b.loss_end,
            interference: loss_a_after_b / loss_a_untrained,
            decomposition: decompose(&m_a, &m_b),
            attractors_after_a: eigen_fixed_points(&m_a, &t.gain)?,
            attractors_after_b: eigen_fixed_points(&m_b, &t.gain)?,
            delay_fixed_points_after_a: delay_a,
            delay_fixed_points_after_b: delay_b,
            a_fixed_point: track,
            b_fixed_point: b_point,
            mode,
            mode_reason,
        };
        Ok((result, run_a, run_b))
    }

    /// Newton in the delay flow of `task` from `x0`: the point if it is a stable fixed point.
    fn stable_point_from(
        &self,
        m: &Matrix2<f64>,
        task: Task,
        x0: &Vector2<f64>,
    ) -> Option<Vector2<f64>> {
        let flow = self.delay_flow(m, task);
        let x = newton_fixed_point(&flow, x0)?;
        let fp = fixed_point_at(&flow, &x);
        (x.norm() > 1e-8 && is_stable(fp.kind)).then_some(x)
    }

    /// Continue the A fixed point along the learning path of B by Newton from the previous
    /// point, `CONTINUATION_SUBSTEPS` substeps per accepted step (dense output of M(tau)).
    /// Newton failing, or converging to a point that jumped by more than half its norm, marks
    /// the point as vanished.
    fn track(
        &self,
        run_b: &LearningRun,
        start: Vector2<f64>,
        after: &[FixedPoint],
    ) -> AFixedPointTrack {
        let mut x = start;
        let mut vanished_at = None;
        'outer: for w in run_b.path.t.windows(2) {
            for s in 1..=CONTINUATION_SUBSTEPS {
                let tau = w[0] + (w[1] - w[0]) * s as f64 / CONTINUATION_SUBSTEPS as f64;
                let m = unpack(&run_b.path.eval(tau));
                match newton_fixed_point(&self.delay_flow(&m, Task::A), &x) {
                    Some(xn) if (xn - x).norm() < 0.5 * x.norm() => x = xn,
                    _ => {
                        vanished_at = Some(tau);
                        break 'outer;
                    }
                }
            }
        }
        let angle = |y: &Vector2<f64>| {
            (start.dot(y) / (start.norm() * y.norm()))
                .clamp(-1.0, 1.0)
                .acos()
        };
        let theta_nearest = after
            .iter()
            .filter(|f| is_stable(f.kind) && f.x[0].hypot(f.x[1]) > 1e-8)
            .map(|f| angle(&Vector2::new(f.x[0], f.x[1])))
            .min_by(|p, q| p.total_cmp(q));
        let (after_pt, after_kind, theta_continued) = if vanished_at.is_some() {
            (None, None, None)
        } else {
            let kind = fixed_point_at(&self.delay_flow(&run_b.m_end, Task::A), &x).kind;
            (Some([x[0], x[1]]), Some(kind), Some(angle(&x)))
        };
        let theta = theta_continued.or(theta_nearest);
        AFixedPointTrack {
            before: [start[0], start[1]],
            after: after_pt,
            after_kind,
            vanished_at,
            theta_continued,
            theta_nearest,
            interference_from_theta: theta.map(|th| 2.0 * (1.0 - th.cos())),
        }
    }
}

/// Newton on the autonomous flow from `x0`; None if it does not converge.
fn newton_fixed_point(flow: &LatentFlow, x0: &Vector2<f64>) -> Option<Vector2<f64>> {
    planar::newton_fixed_point(flow, *x0, &NewtonOptions::default())
        .ok()
        .map(|r| r.x)
}
