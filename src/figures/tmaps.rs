//! Figures of the T-maps (THEORY I.7, claims T-1..T-5) from a sweep result of
//! `models/t-maps.toml` (axes `task.u_s`, `task.t_d`, `network.g`; outputs as that file names
//! them). One set per delay T_d, over (g, u_s):
//!
//! - `tmap_interference_td{T}`: the median interference over seeds (log colour), the border of
//!   T-1's region (cells whose 95% interval of the median lies above I_f = 0.1 against the
//!   rest), and each point marked by its T-1 standing (holds / fails / undetermined, by the
//!   same rule as the check, [`crate::rnn::tmaps::standing`]);
//! - `tmap_modes_td{T}`: the rotation share among resolved seeds (45-degree rule), the border
//!   between cells whose Wilson interval lies above 1/2 (rotation wins) and the rest, and the
//!   points marked by that majority;
//! - `tmap_eps_td{T}`: the median seed covariate eps (log colour);
//! - `tmap_i_vs_eps_td{T}` (when the sweep records the per-seed outputs [`PER_SEED`]): I against
//!   |eps| seed by seed, one series per (u_s, g) point (THEORY I.7: each map reports I against
//!   the covariate as well as against the grid).
//!
//! The paired statistics of T-2..T-5 (the same seed at two points) are not in a sweep's per-point
//! outputs; their regions are the claim files' tables (`modeflow check --full T-`).

use std::path::{Path, PathBuf};

use crate::num::stats::{Estimate, Statistic};
use crate::plot::heatmap::{self, Curve, Grid, HeatSpec, Points};
use crate::plot::lines::{self, LineSpec, Mark, Series};
use crate::plot::Output;
use crate::report::SweepResult;
use crate::rnn::tmaps::{standing, Standing, FORGETTING};
use crate::{io, Error, Result};

/// The sweep outputs a T-map figure reads (a subset of `models/t-maps.toml`'s `outputs`).
pub const OUTPUTS: [&str; 7] = [
    "summary.interference.median.value",
    "summary.interference.median.lo",
    "summary.interference.median.hi",
    "summary.rotation_share.value",
    "summary.rotation_share.lo",
    "summary.rotation_share.hi",
    "summary.eps.median.value",
];

/// Per-seed outputs (a `*` path of `modeflow sweep`): interference and eps of every seed.
pub const PER_SEED: [&str; 2] = ["runs.*.sequential.interference", "runs.*.sequential.eps"];

/// Whether a sweep result is a T-map: its axes end in `u_s`, `t_d` and `g`.
pub fn is_tmap(sw: &SweepResult) -> bool {
    ["u_s", "t_d", "g"]
        .iter()
        .all(|n| sw.axes.iter().any(|a| a.rsplit('.').next() == Some(*n)))
}

/// One point of the map: (u_s, T_d, g) and the outputs in [`OUTPUTS`] order (NaN if missing).
struct MapPoint {
    u_s: f64,
    t_d: f64,
    g: f64,
    out: [f64; 7],
    /// (|eps|, I) per seed, when the sweep records [`PER_SEED`].
    seeds: Vec<[f64; 2]>,
}

fn points(sw: &SweepResult, file: &str) -> Result<Vec<MapPoint>> {
    let axis = |name: &str| {
        sw.axes
            .iter()
            .position(|a| a.rsplit('.').next() == Some(name))
            .ok_or_else(|| Error::Requirement(format!("{file}: the sweep has no `{name}` axis")))
    };
    let (iu, it, ig) = (axis("u_s")?, axis("t_d")?, axis("g")?);
    let mut cols = [0usize; 7];
    for (c, name) in cols.iter_mut().zip(OUTPUTS) {
        *c = sw.outputs.iter().position(|o| o == name).ok_or_else(|| {
            Error::Requirement(format!(
                "{file}: a T-map figure needs the sweep output `{name}` (as in models/t-maps.toml)"
            ))
        })?;
    }
    let per_seed: Option<[usize; 2]> = PER_SEED
        .iter()
        .map(|name| sw.outputs.iter().position(|o| o == name))
        .collect::<Option<Vec<usize>>>()
        .map(|v| [v[0], v[1]]);
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let arr = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().map(num).collect())
            .unwrap_or_default()
    };
    let pts: Vec<MapPoint> = sw
        .rows
        .iter()
        .filter(|r| !r.status.starts_with("error"))
        .map(|r| MapPoint {
            u_s: num(&r.params[iu]),
            t_d: num(&r.params[it]),
            g: num(&r.params[ig]),
            out: cols.map(|c| num(&r.outputs[c])),
            seeds: per_seed
                .map(|[ci, ce]| {
                    arr(&r.outputs[ci])
                        .into_iter()
                        .zip(arr(&r.outputs[ce]))
                        .map(|(i, e)| [e.abs(), i])
                        .filter(|p| {
                            p[0].is_finite() && p[0] > 0.0 && p[1].is_finite() && p[1] > 0.0
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    if pts.is_empty() {
        return Err(Error::Requirement(format!(
            "{file}: the sweep result has no measured rows"
        )));
    }
    Ok(pts)
}

/// Sorted distinct finite values.
fn distinct(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = v.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// Cell edges around centres (midpoints; the ends half a step out; a single centre gets a
/// unit-width cell), as the heat map draws them.
fn edges(c: &[f64]) -> Vec<f64> {
    let n = c.len();
    if n == 1 {
        return vec![c[0] - 0.5, c[0] + 0.5];
    }
    let mut e = vec![c[0] - 0.5 * (c[1] - c[0])];
    e.extend(c.windows(2).map(|w| 0.5 * (w[0] + w[1])));
    e.push(c[n - 1] + 0.5 * (c[n - 1] - c[n - 2]));
    e
}

/// The border between cells in a region and cells outside it, as one polyline of cell-edge
/// segments separated by NaN breaks (`inside[j * nx + i]`: column i of x, row j of y; `None`
/// cells have no data and draw no border).
pub fn region_border(x: &[f64], y: &[f64], inside: &[Option<bool>]) -> Vec<[f64; 2]> {
    let (nx, ny) = (x.len(), y.len());
    let (xe, ye) = (edges(x), edges(y));
    let mut out = Vec::new();
    let mut seg = |a: [f64; 2], b: [f64; 2]| {
        if !out.is_empty() {
            out.push([f64::NAN, f64::NAN]);
        }
        out.push(a);
        out.push(b);
    };
    for j in 0..ny {
        for i in 0..nx {
            let Some(here) = inside[j * nx + i] else {
                continue;
            };
            if i + 1 < nx {
                if let Some(right) = inside[j * nx + i + 1] {
                    if right != here {
                        seg([xe[i + 1], ye[j]], [xe[i + 1], ye[j + 1]]);
                    }
                }
            }
            if j + 1 < ny {
                if let Some(up) = inside[(j + 1) * nx + i] {
                    if up != here {
                        seg([xe[i], ye[j + 1]], [xe[i + 1], ye[j + 1]]);
                    }
                }
            }
        }
    }
    out
}

/// The region border as a curve of the map (none when every cell stands alike).
fn border(label: &str, x: &[f64], y: &[f64], inside: &[Option<bool>]) -> Vec<Curve> {
    let points = region_border(x, y, inside);
    if points.is_empty() {
        return vec![];
    }
    vec![Curve {
        label: label.into(),
        points,
    }]
}

/// Standing of an interval against a threshold (`within = false`: above it holds).
fn standing_of(
    statistic: Statistic,
    value: f64,
    lo: f64,
    hi: f64,
    threshold: f64,
) -> Option<Standing> {
    value.is_finite().then(|| {
        standing(
            &Estimate {
                statistic,
                value,
                lo,
                hi,
                n: 0,
            },
            threshold,
            false,
        )
    })
}

/// The T-map figures of a sweep result into `dir` (see the module doc).
pub fn tmap_figures(sw: &SweepResult, file: &str, dir: &Path) -> Result<Vec<PathBuf>> {
    io::ensure_dir(dir)?;
    let pts = points(sw, file)?;
    let gs = distinct(pts.iter().map(|p| p.g));
    let us = distinct(pts.iter().map(|p| p.u_s));
    let mut files = Vec::new();
    for t_d in distinct(pts.iter().map(|p| p.t_d)) {
        let slice = Slice {
            pts: &pts,
            gs: gs.clone(),
            us: us.clone(),
            t_d,
            dir,
            tag: format!("{t_d}").replace('.', "p"),
            provenance: serde_json::json!({
                "modeflow_version": env!("CARGO_PKG_VERSION"),
                "sweep": sw.name,
                "sweep_file": sw.sweep_file,
                "base_file": sw.base_file,
                "t_d": t_d,
                "what": "T-maps of THEORY I.7: per point the seeds' median with its 95% bootstrap interval, the rotation share with its Wilson interval",
            }),
        };
        files.extend(slice.interference()?);
        files.extend(slice.modes()?);
        files.extend(slice.covariate()?);
        files.extend(slice.against_covariate()?);
    }
    Ok(files)
}

/// The maps at one delay T_d: a grid of cells (column g, row u_s).
struct Slice<'a> {
    pts: &'a [MapPoint],
    gs: Vec<f64>,
    us: Vec<f64>,
    t_d: f64,
    dir: &'a Path,
    /// T_d in file names
    tag: String,
    provenance: serde_json::Value,
}

impl Slice<'_> {
    fn n(&self) -> usize {
        self.gs.len() * self.us.len()
    }

    /// Grid cell k -> the point's outputs.
    fn cell(&self, k: usize) -> Option<&[f64; 7]> {
        let (i, j) = (k % self.gs.len(), k / self.gs.len());
        self.pts
            .iter()
            .find(|p| p.t_d == self.t_d && p.g == self.gs[i] && p.u_s == self.us[j])
            .map(|p| &p.out)
    }

    /// Grid cell k -> (g, u_s).
    fn at(&self, k: usize) -> [f64; 2] {
        [self.gs[k % self.gs.len()], self.us[k / self.gs.len()]]
    }

    /// Output `c` of every cell (NaN where missing).
    fn values(&self, c: usize) -> Vec<f64> {
        (0..self.n())
            .map(|k| self.cell(k).map_or(f64::NAN, |o| o[c]))
            .collect()
    }

    /// The cells of each standing, as labelled point sets (empty ones dropped).
    fn classes(&self, st: &[Option<Standing>], names: [&str; 3]) -> Vec<Points> {
        [Standing::Holds, Standing::Fails, Standing::Undetermined]
            .iter()
            .zip(names)
            .map(|(s, name)| Points {
                label: name.into(),
                points: (0..self.n())
                    .filter(|&k| st[k] == Some(*s))
                    .map(|k| self.at(k))
                    .collect(),
                values: None,
            })
            .filter(|p| !p.points.is_empty())
            .collect()
    }

    /// 1. Median interference with T-1's region.
    fn interference(&self) -> Result<Vec<PathBuf>> {
        let t1: Vec<Option<Standing>> = (0..self.n())
            .map(|k| {
                self.cell(k)
                    .and_then(|o| standing_of(Statistic::Median, o[0], o[1], o[2], FORGETTING))
            })
            .collect();
        let mut hs = HeatSpec::new(
            &format!("T-1: median interference over seeds, T_d = {}", self.t_d),
            "g (random connectivity)",
            "u_s (input during the delay)",
            "median I = L_A(after B)/L_A(0)",
        );
        hs.log_colour = true;
        let inside: Vec<Option<bool>> =
            t1.iter().map(|s| s.map(|s| s == Standing::Holds)).collect();
        let res = heatmap::render(
            &Grid {
                x: self.gs.clone(),
                y: self.us.clone(),
                values: {
                    let mut v = self.values(0);
                    heatmap::floor_non_positive(&mut v);
                    v
                },
            },
            &border(
                "border of T-1 holds (95% CI of median I above 0.1)",
                &self.gs,
                &self.us,
                &inside,
            ),
            &self.classes(
                &t1,
                [
                    "T-1 holds: CI above I_f = 0.1",
                    "T-1 fails: CI below 0.1",
                    "undetermined: CI straddles 0.1",
                ],
            ),
            &hs,
            &Output::new(self.dir, format!("tmap_interference_td{}", self.tag))
                .with_provenance(self.provenance.clone()),
        )?;
        Ok(res.files)
    }

    /// 2. Rotation share with the majority region.
    fn modes(&self) -> Result<Vec<PathBuf>> {
        let maj: Vec<Option<Standing>> = (0..self.n())
            .map(|k| {
                self.cell(k)
                    .and_then(|o| standing_of(Statistic::Share, o[3], o[4], o[5], 0.5))
            })
            .collect();
        let mut hs = HeatSpec::new(
            &format!(
                "Outcome: share of rotations among resolved seeds, T_d = {}",
                self.t_d
            ),
            "g (random connectivity)",
            "u_s (input during the delay)",
            "rotation share (A turned > 45°)",
        );
        hs.range = Some((0.0, 1.0));
        let inside: Vec<Option<bool>> = maj
            .iter()
            .map(|s| s.map(|s| s == Standing::Holds))
            .collect();
        let res = heatmap::render(
            &Grid {
                x: self.gs.clone(),
                y: self.us.clone(),
                values: self.values(3),
            },
            &border(
                "border of rotation majority (Wilson CI above 1/2)",
                &self.gs,
                &self.us,
                &inside,
            ),
            &self.classes(
                &maj,
                [
                    "rotation wins: CI above 1/2",
                    "new formation wins: CI below 1/2",
                    "undetermined: CI straddles 1/2",
                ],
            ),
            &hs,
            &Output::new(self.dir, format!("tmap_modes_td{}", self.tag))
                .with_provenance(self.provenance.clone()),
        )?;
        Ok(res.files)
    }

    /// 3. The seed covariate.
    fn covariate(&self) -> Result<Vec<PathBuf>> {
        let mut hs = HeatSpec::new(
            &format!("Seed covariate: median ε over seeds, T_d = {}", self.t_d),
            "g (random connectivity)",
            "u_s (input during the delay)",
            "median ε",
        );
        hs.log_colour = true;
        let res = heatmap::render(
            &Grid {
                x: self.gs.clone(),
                y: self.us.clone(),
                values: {
                    let mut v: Vec<f64> = self.values(6).into_iter().map(f64::abs).collect();
                    heatmap::floor_non_positive(&mut v);
                    v
                },
            },
            &[],
            &[],
            &hs,
            &Output::new(self.dir, format!("tmap_eps_td{}", self.tag))
                .with_provenance(self.provenance.clone()),
        )?;
        Ok(res.files)
    }

    /// 4. I against the covariate, seed by seed.
    fn against_covariate(&self) -> Result<Vec<PathBuf>> {
        let series: Vec<Series> = self
            .pts
            .iter()
            .filter(|p| p.t_d == self.t_d && !p.seeds.is_empty())
            .map(|p| {
                Series::new(
                    &format!("u_s = {}, g = {}", p.u_s, p.g),
                    p.seeds.clone(),
                    Mark::Points,
                )
            })
            .collect();
        if series.is_empty() {
            return Ok(Vec::new());
        }
        {
            let spec = LineSpec::new(
                &format!(
                    "Interference against the seed covariate, per seed, T_d = {}",
                    self.t_d
                ),
                "|ε| (B trial's overlap with a before B)",
                "I = L_A(after B)/L_A(0)",
            )
            .log_log();
            let res = lines::render(
                &series,
                &spec,
                &Output::new(self.dir, format!("tmap_i_vs_eps_td{}", self.tag))
                    .with_provenance(self.provenance.clone()),
            )?;
            Ok(res.files)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Shard, SweepRow};

    fn sweep(rows: Vec<(f64, f64, f64, [f64; 7])>) -> SweepResult {
        sweep_with(rows, false)
    }

    fn sweep_with(rows: Vec<(f64, f64, f64, [f64; 7])>, per_seed: bool) -> SweepResult {
        SweepResult {
            modeflow_version: "test".into(),
            name: "t-maps".into(),
            sweep_file: "t-maps.toml".into(),
            base_file: "t-maps-base.toml".into(),
            verb: "train".into(),
            axes: vec!["task.u_s".into(), "task.t_d".into(), "network.g".into()],
            outputs: OUTPUTS
                .iter()
                .chain(if per_seed { &PER_SEED[..] } else { &[] })
                .map(|s| s.to_string())
                .collect(),
            total: rows.len(),
            shard: Shard::ALL,
            rows: rows
                .into_iter()
                .enumerate()
                .map(|(k, (u, t, g, o))| SweepRow {
                    index: k,
                    seed: 0,
                    params: vec![u.into(), t.into(), g.into()],
                    outputs: o
                        .iter()
                        .map(|&v| v.into())
                        .chain(if per_seed {
                            vec![
                                serde_json::json!([o[0], 2.0 * o[0], null]),
                                serde_json::json!([-o[6], 0.5 * o[6], 0.1]),
                            ]
                        } else {
                            vec![]
                        })
                        .collect(),
                    status: "ok".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn border_separates_cells_of_different_standing() {
        // 2 x 2 cells: the left column inside, the right outside: one vertical edge per row
        let b = region_border(
            &[0.0, 1.0],
            &[0.0, 1.0],
            &[Some(true), Some(false), Some(true), Some(false)],
        );
        let segs: Vec<&[[f64; 2]]> = b.split(|p| p[0].is_nan()).collect();
        assert_eq!(segs.len(), 2);
        for s in segs {
            assert_eq!(s.len(), 2);
            assert_eq!(s[0][0], 0.5);
            assert_eq!(s[1][0], 0.5);
        }
        // no data: no border
        assert!(region_border(&[0.0, 1.0], &[0.0], &[Some(true), None]).is_empty());
    }

    #[test]
    fn draws_one_set_per_delay() {
        let o = |i: f64, s: f64| [i, i * 0.8, i * 1.2, s, s - 0.2, s + 0.2, 0.01];
        let sw = sweep_with(
            vec![
                (0.0, 10.0, 0.0, o(1.9, 1.0)),
                (0.0, 10.0, 0.8, o(0.05, 0.1)),
                (0.3, 10.0, 0.0, o(0.004, 0.0)),
                (0.3, 10.0, 0.8, o(0.002, 0.0)),
                (0.0, 5.0, 0.0, o(0.5, 0.6)),
            ],
            true,
        );
        assert!(is_tmap(&sw));
        let dir = std::env::temp_dir().join(format!("modeflow-tmapfig-{}", std::process::id()));
        let files = tmap_figures(&sw, "t.json", &dir).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        for stem in [
            "tmap_interference_td10",
            "tmap_modes_td10",
            "tmap_eps_td5",
            "tmap_i_vs_eps_td10",
        ] {
            assert!(
                names
                    .iter()
                    .any(|n| n.starts_with(stem) && n.ends_with(".svg")),
                "{stem} missing from {names:?}"
            );
        }
        // the T-1 standing classes carried in the figure's data
        let json = std::fs::read_to_string(dir.join("tmap_interference_td10.json")).unwrap();
        assert!(json.contains("T-1 holds"), "{json}");
        assert!(json.contains("T-1 fails"), "{json}");
        // per seed: |eps| on x, the seed without an I value dropped
        let sc = std::fs::read_to_string(dir.join("tmap_i_vs_eps_td10.json")).unwrap();
        assert!(sc.contains("u_s = 0.3, g = 0.8"), "{sc}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_output_names_the_file_and_output() {
        let mut sw = sweep(vec![(0.0, 10.0, 0.0, [1.0; 7])]);
        sw.outputs[6] = "summary.other".into();
        let e = tmap_figures(&sw, "x.json", &std::env::temp_dir()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("x.json") && msg.contains("summary.eps.median.value"),
            "{msg}"
        );
    }
}
