//! Claims T-1..T-5 (proofs-checks/T-0*.md): the talk's claims checked over maps in the
//! gradient-flow limit ([`crate::rnn::tmaps`]). The claims layer holds the checks; the domain
//! (`rnn::tmaps`) runs the maps and judges regions, and knows nothing of claims. Both tiers run one map each (shared by the five
//! claims of the tier, computed once per process): the fast tier a reduced grid at N = 64, the
//! full tier the grid of THEORY I.7 at N = 256.
//!
//! Every region gives a row: its statistic with the 95% bootstrap interval over 16 seeds. The
//! row's verdict is `pass` where the claim holds, `disputed` where the interval excludes it,
//! `undetermined` where it straddles the threshold. Each claim file documents the standing of
//! every region in a table in its `## Result` section (`| region | standing | ... |`); a region
//! whose measured standing differs from the documented one, or is not documented, is a `fail`
//! (the map changed: re-measure and rewrite the claim file).

use std::sync::OnceLock;

use super::{Check, Row, Tier, Verdict};
use crate::model;
use crate::num::stats::Band;
use crate::rnn::spec::{check, RnnSpec};
use crate::rnn::tmaps::{self, MapGrid, MapOutcome, MapSpec, Region, Standing};
use crate::{Error, Result};

/// The base model of the maps (also the base of `models/t-maps.toml`).
pub const BASE_FILE: &str = "models/t-maps-base.toml";
const BASE_TEXT: &str = include_str!("../../models/t-maps-base.toml");

/// The base spec (N = 256, 16 seeds, full W, gradient flow).
pub fn base_spec() -> Result<RnnSpec> {
    check(&model::parse(BASE_FILE, BASE_TEXT)?)
}

/// The map of a tier: full = THEORY I.7's grid at N = 256; fast = u_s {0, 0.3} x T_d = 10 x
/// g {0, 0.8} at N = 96 (same seeds and flow; the regime where the claims can both hold and
/// fail: T_d = 10, u_s = 0 rotates at g = 0).
pub fn map_spec(tier: Tier) -> Result<MapSpec> {
    let mut base = base_spec()?;
    let grid = match tier {
        Tier::Full => MapGrid {
            u_s: vec![0.0, 0.1, 0.3],
            t_d: vec![5.0, 10.0],
            g: vec![0.0, 0.5, 0.8, 1.2],
        },
        Tier::Fast => {
            base.network.n = 96;
            MapGrid {
                u_s: vec![0.0, 0.3],
                t_d: vec![10.0],
                g: vec![0.0, 0.8],
            }
        }
    };
    Ok(MapSpec { base, grid })
}

fn map(tier: Tier) -> Result<&'static MapOutcome> {
    // the error is kept as (bad input?, message) so that its cause (exit 2 or 1) survives
    type Cached = std::result::Result<MapOutcome, (bool, String)>;
    static FAST: OnceLock<Cached> = OnceLock::new();
    static FULL: OnceLock<Cached> = OnceLock::new();
    let cell = match tier {
        Tier::Fast => &FAST,
        Tier::Full => &FULL,
    };
    cell.get_or_init(|| {
        map_spec(tier)
            .and_then(|s| tmaps::run_map(&s))
            .map_err(|e| (e.is_bad_input(), e.to_string()))
    })
    .as_ref()
    .map_err(|(bad_input, e)| {
        let message = format!("T-map ({tier:?} tier): {e}");
        if *bad_input {
            Error::Requirement(message)
        } else {
            Error::Numerical(message)
        }
    })
}

/// The standings a claim file documents: the rows `| region | standing | ... |` of the table in
/// its `## Result` section (the file whose header says `id: <id>`, in the claims directory).
/// The claim file is the one place the map's findings are written; the check compares with it.
pub(crate) fn documented(id: &str) -> Result<Vec<(String, Standing)>> {
    let dir = super::runner::default_dir();
    for f in super::runner::discover(&dir)? {
        if f.id != id {
            continue;
        }
        let text = std::fs::read_to_string(&f.path).map_err(|e| Error::io(&f.path, e))?;
        let Some((_, result)) = text.split_once("## Result") else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for line in result.lines() {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            if cells.len() < 2 {
                continue;
            }
            let standing = match cells[1] {
                "holds" => Standing::Holds,
                "fails" => Standing::Fails,
                "undetermined" => Standing::Undetermined,
                _ => continue,
            };
            out.push((cells[0].trim_matches('`').to_string(), standing));
        }
        return Ok(out);
    }
    Ok(Vec::new())
}

pub(crate) fn rows(id: &str, regions: Vec<Region>) -> Result<Vec<Row>> {
    let table = documented(id)?;
    Ok(regions
        .into_iter()
        .map(|r| {
            let band = if r.within {
                Band {
                    predicted: 0.0,
                    lo: -r.threshold,
                    hi: r.threshold,
                    tol: r.threshold,
                    relative: false,
                }
            } else {
                Band {
                    predicted: r.threshold,
                    lo: r.threshold,
                    hi: f64::MAX,
                    tol: 0.0,
                    relative: false,
                }
            };
            let mut row = Row::interval(&r.label, &band, &r.estimate);
            row.verdict = match r.standing {
                Standing::Holds => Verdict::Pass,
                Standing::Fails => Verdict::Disputed,
                Standing::Undetermined => Verdict::Undetermined,
            };
            let mut note = format!("{}; {}", r.standing.name(), row.note);
            if r.dropped > 0 {
                note.push_str(&format!("; {} unresolved seed(s) dropped", r.dropped));
            }
            match table.iter().find(|(l, _)| *l == r.label).map(|(_, d)| *d) {
                Some(d) if d == r.standing => {}
                Some(d) => {
                    row.verdict = Verdict::Fail;
                    note.push_str(&format!(
                        "; the claim file documents `{}` here: the map changed",
                        d.name()
                    ));
                }
                None => {
                    row.verdict = Verdict::Fail;
                    note.push_str("; this region is not documented in the claim file");
                }
            }
            row.note = note;
            row
        })
        .collect())
}

fn run(id: &str, tier: Tier, f: fn(&MapOutcome) -> Result<Vec<Region>>) -> Result<Vec<Row>> {
    rows(id, f(map(tier)?)?)
}

macro_rules! tier_checks {
    ($($name:ident, $id:expr, $tier:expr, $f:path;)*) => {
        $(fn $name() -> Result<Vec<Row>> { run($id, $tier, $f) })*
    };
}

tier_checks! {
    t1_fast, "T-1", Tier::Fast, tmaps::t1;
    t2_fast, "T-2", Tier::Fast, tmaps::t2;
    t3_fast, "T-3", Tier::Fast, tmaps::t3;
    t4_fast, "T-4", Tier::Fast, tmaps::t4;
    t5_fast, "T-5", Tier::Fast, tmaps::t5;
    t1_full, "T-1-map", Tier::Full, tmaps::t1;
    t2_full, "T-2-map", Tier::Full, tmaps::t2;
    t3_full, "T-3-map", Tier::Full, tmaps::t3;
    t4_full, "T-4-map", Tier::Full, tmaps::t4;
    t5_full, "T-5-map", Tier::Full, tmaps::t5;
}

/// The registered checks: T-1..T-5 on the fast map; T-1-full..T-5-full on the full map.
pub fn checks() -> Vec<Check> {
    let c = |id, tier, run| Check { id, tier, run };
    vec![
        c("T-1", Tier::Fast, t1_fast as fn() -> Result<Vec<Row>>),
        c("T-2", Tier::Fast, t2_fast),
        c("T-3", Tier::Fast, t3_fast),
        c("T-4", Tier::Fast, t4_fast),
        c("T-5", Tier::Fast, t5_fast),
        c("T-1-map", Tier::Full, t1_full),
        c("T-2-map", Tier::Full, t2_full),
        c("T-3-map", Tier::Full, t3_full),
        c("T-4-map", Tier::Full, t4_full),
        c("T-5-map", Tier::Full, t5_full),
    ]
}
