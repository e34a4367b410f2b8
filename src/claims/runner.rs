//! Discovery of claim files and execution of their checks.
//!
//! A claim file is `proofs-checks/<ID>-<slug>.md` whose header (before the first `##`) holds
//! `key: value` lines: `id`, `source`, `tier` (fast | full), `status` (holds | disputed | trend).
//! The runner pairs files with registered checks by id. A file without a check, a check without
//! a file, a check that errors, and a disputed row in a file not marked `status: disputed` are
//! all failures: the registry and the documents cannot drift apart silently.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::{Check, Row, Tier, Verdict};
use crate::{Error, Result};

/// The header of one claim file.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimFile {
    pub id: String,
    /// The `# ...` title line without the id prefix.
    pub title: String,
    pub source: String,
    pub tier: Tier,
    /// `holds`, `disputed` or `trend`.
    pub status: String,
    pub path: PathBuf,
}

/// The outcome of one claim.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimResult {
    pub id: String,
    pub title: String,
    pub status: String,
    pub verdict: Verdict,
    pub rows: Vec<Row>,
    /// Problems of the pairing or of the run (empty when the check ran).
    pub problems: Vec<String>,
    pub seconds: f64,
}

/// Read the header of a claim file.
pub fn parse_claim_file(path: &Path) -> Result<ClaimFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: String| Error::Claims(format!("{}: {m}", path.display()));
    let mut title = String::new();
    let (mut id, mut source, mut tier, mut status) = (None, String::new(), None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("##") {
            break;
        }
        if let Some(t) = line.strip_prefix("# ") {
            title = t.to_string();
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "id" => id = Some(v),
            "source" => source = v,
            "tier" => {
                tier = Some(match v.as_str() {
                    "fast" => Tier::Fast,
                    "full" => Tier::Full,
                    _ => return Err(bad(format!("tier `{v}` (allowed: fast | full)"))),
                })
            }
            "status" => {
                if !["holds", "disputed", "trend"].contains(&v.as_str()) {
                    return Err(bad(format!(
                        "status `{v}` (allowed: holds | disputed | trend)"
                    )));
                }
                status = Some(v)
            }
            _ => {}
        }
    }
    let id = id.ok_or_else(|| bad("missing `id:` line in the header".into()))?;
    let title = title
        .split_once('—')
        .map(|(_, t)| t.trim().to_string())
        .unwrap_or(title);
    for section in ["## Statement", "## Derivation", "## Tolerance", "## Check"] {
        if !text.contains(section) {
            return Err(bad(format!("missing section `{section}`")));
        }
    }
    Ok(ClaimFile {
        id,
        title,
        source,
        tier: tier.ok_or_else(|| bad("missing `tier:` line".into()))?,
        status: status.ok_or_else(|| bad("missing `status:` line".into()))?,
        path: path.to_path_buf(),
    })
}

/// All claim files in `dir`, sorted by id (natural order: I-2 before I-10).
pub fn discover(dir: &Path) -> Result<Vec<ClaimFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.extension().is_some_and(|e| e == "md")
            && path.file_name().is_some_and(|n| n != "README.md")
        {
            files.push(parse_claim_file(&path)?);
        }
    }
    files.sort_by_key(|f| id_key(&f.id));
    let mut seen = std::collections::HashSet::new();
    for f in &files {
        if !seen.insert(f.id.clone()) {
            return Err(Error::Claims(format!(
                "two claim files share id {} ({})",
                f.id,
                f.path.display()
            )));
        }
    }
    Ok(files)
}

/// Sort key: prefix letters, then the number.
pub fn id_key(id: &str) -> (String, u32, String) {
    let (p, n) = id.split_once('-').unwrap_or((id, ""));
    let digits: String = n.chars().take_while(|c| c.is_ascii_digit()).collect();
    (p.to_string(), digits.parse().unwrap_or(0), n.to_string())
}

/// The default claims directory: `./proofs-checks` if present, else the one of the source tree.
pub fn default_dir() -> PathBuf {
    let local = PathBuf::from("proofs-checks");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("proofs-checks")
    }
}

/// Which claims to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// A claim id selects that claim alone (`I-1` is I-1, not I-10..I-19); any other text
    /// selects the claims whose id starts with it or whose title contains it (case-insensitive);
    /// empty = all.
    pub pattern: String,
    /// Include `tier: full` claims.
    pub full: bool,
}

impl Selection {
    /// Whether the claim `id` (titled `title`) is selected, given every known id (`ids`: an
    /// exact id match narrows the selection to that claim).
    fn matches(&self, id: &str, title: &str, ids: &[&str]) -> bool {
        let p = self.pattern.to_lowercase();
        if ids.iter().any(|i| i.to_lowercase() == p) {
            return id.to_lowercase() == p;
        }
        p.is_empty() || id.to_lowercase().starts_with(&p) || title.to_lowercase().contains(&p)
    }
}

/// What the runner reports while the checks run, supplied by the application (the CLI draws a
/// progress bar, `crate::progress`). Calls may come from several threads.
pub trait Observer: Sync {
    /// `n` claims are about to run.
    fn start(&self, n: usize);
    /// The claim `id` starts.
    fn begin(&self, id: &str);
    /// One claim finished.
    fn done(&self);
    /// All selected claims finished.
    fn finish(&self);
}

/// Observes nothing.
impl Observer for () {
    fn start(&self, _: usize) {}
    fn begin(&self, _: &str) {}
    fn done(&self) {}
    fn finish(&self) {}
}

/// Pair files with checks and run the selected ones (in parallel; results in id order).
pub fn run(files: &[ClaimFile], checks: &[Check], sel: &Selection) -> Vec<ClaimResult> {
    run_observed(files, checks, sel, &())
}

/// [`run`], reporting progress to `observer`.
pub fn run_observed(
    files: &[ClaimFile],
    checks: &[Check],
    sel: &Selection,
    observer: &dyn Observer,
) -> Vec<ClaimResult> {
    let ids: Vec<&str> = files
        .iter()
        .map(|f| f.id.as_str())
        .chain(checks.iter().map(|c| c.id))
        .collect();
    let chosen: Vec<&ClaimFile> = files
        .iter()
        .filter(|f| sel.matches(&f.id, &f.title, &ids) && (sel.full || f.tier == Tier::Fast))
        .collect();
    observer.start(chosen.len());
    let mut results: Vec<ClaimResult> = chosen
        .par_iter()
        .map(|f| {
            observer.begin(&f.id);
            let r = run_one(f, checks);
            observer.done();
            r
        })
        .collect();
    observer.finish();
    // Checks with no claim file are failures too.
    for c in checks {
        if !files.iter().any(|f| f.id == c.id) && sel.matches(c.id, "", &ids) {
            results.push(ClaimResult {
                id: c.id.to_string(),
                title: String::new(),
                status: String::new(),
                verdict: Verdict::Fail,
                rows: vec![],
                problems: vec![format!(
                    "check {} has no claim file in proofs-checks/",
                    c.id
                )],
                seconds: 0.0,
            });
        }
    }
    results.sort_by_key(|r| id_key(&r.id));
    results
}

fn run_one(f: &ClaimFile, checks: &[Check]) -> ClaimResult {
    let mut res = ClaimResult {
        id: f.id.clone(),
        title: f.title.clone(),
        status: f.status.clone(),
        verdict: Verdict::Fail,
        rows: vec![],
        problems: vec![],
        seconds: 0.0,
    };
    let matching: Vec<&Check> = checks.iter().filter(|c| c.id == f.id).collect();
    let check = match matching.as_slice() {
        [c] => *c,
        [] => {
            res.problems
                .push(format!("no check registered for {}", f.path.display()));
            return res;
        }
        _ => {
            res.problems.push(format!(
                "{} checks registered for id {}",
                matching.len(),
                f.id
            ));
            return res;
        }
    };
    if check.tier != f.tier {
        res.problems.push(format!(
            "tier mismatch: file says {:?}, check says {:?}",
            f.tier, check.tier
        ));
    }
    let start = Instant::now();
    match (check.run)() {
        Ok(rows) => res.rows = rows,
        Err(e) => res.problems.push(format!("check failed to run: {e}")),
    }
    res.seconds = start.elapsed().as_secs_f64();
    if res.rows.is_empty() && res.problems.is_empty() {
        res.problems.push("check produced no rows".into());
    }
    if f.status != "disputed" && res.rows.iter().any(|r| r.verdict == Verdict::Disputed) {
        res.problems
            .push("a row is disputed but the claim file is not marked `status: disputed`".into());
    }
    let worst = res
        .rows
        .iter()
        .map(|r| r.verdict)
        .max()
        .unwrap_or(Verdict::Fail);
    res.verdict = if res.problems.is_empty() {
        worst
    } else {
        Verdict::Fail
    };
    res
}

/// Plain-text table of results.
pub fn render(results: &[ClaimResult]) -> String {
    use crate::report::fmt_num;
    let mut s = format!(
        "{:<6} {:<44} {:>14} {:>14} {:>10} {:>9}  {}\n",
        "id", "claim / row", "predicted", "measured", "error", "tol", "verdict"
    );
    s.push_str(&"-".repeat(112));
    s.push('\n');
    for r in results {
        // the claim title in full on its own line, the verdict beside it
        s.push_str(&format!(
            "{:<6} {}   {}   ({:.2} s)\n",
            r.id,
            r.title,
            verdict_str(r.verdict).to_uppercase(),
            r.seconds
        ));
        for row in &r.rows {
            // a row label longer than its column goes on its own line, never cut
            let label = format!("  {}", row.label);
            let cell = if label.chars().count() > 44 {
                s.push_str(&format!("{:<6} {label}\n", ""));
                String::new()
            } else {
                label
            };
            // a yes/no row (Row::holds) reads yes/no, not 1.000000
            let (pred, meas) = if is_holds(row) {
                (
                    "holds".to_string(),
                    (if row.measured == 1.0 {
                        "holds"
                    } else {
                        "does not"
                    })
                    .to_string(),
                )
            } else {
                (fmt_num(row.predicted), fmt_num(row.measured))
            };
            s.push_str(&format!(
                "{:<6} {:<44} {:>14} {:>14} {:>10} {:>9}  {}{}\n",
                "",
                cell,
                pred,
                meas,
                format!("{:.2e}{}", row.error, if row.relative { "r" } else { "" }),
                format!("{:.1e}", row.tolerance),
                verdict_str(row.verdict),
                if row.note.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", row.note)
                }
            ));
            if let (Some(lo), Some(hi), Some(n)) = (row.lo, row.hi, row.n) {
                s.push_str(&format!(
                    "{:<6} {:<44} {:>14} {:>25}\n",
                    "",
                    format!("    95% interval, n = {n}"),
                    "",
                    format!("[{}, {}]", fmt_num(lo), fmt_num(hi)),
                ));
            }
        }
        for p in &r.problems {
            s.push_str(&format!("{:<6}   ! {p}\n", ""));
        }
    }
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let undetermined = count(Verdict::Undetermined);
    s.push_str(&format!(
        "\n{} passed, {} failed, {} disputed{} (of {} claims)\n",
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Disputed),
        if undetermined > 0 {
            format!(", {undetermined} undetermined")
        } else {
            String::new()
        },
        results.len()
    ));
    s
}

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Undetermined => "undetermined",
        Verdict::Disputed => "disputed",
        Verdict::Fail => "FAIL",
    }
}

/// A row made by [`Row::holds`]: predicted 1, measured 0 or 1, absolute, tolerance 0.
fn is_holds(row: &Row) -> bool {
    row.predicted == 1.0
        && (row.measured == 1.0 || row.measured == 0.0)
        && row.tolerance == 0.0
        && !row.relative
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_rows() -> Result<Vec<Row>> {
        Ok(vec![Row::abs("x", 1.0, 1.0 + 1e-12, 1e-9)])
    }
    fn bad_rows() -> Result<Vec<Row>> {
        Ok(vec![Row::rel("x", 1.0, 1.1, 1e-3)])
    }
    fn disputed_rows() -> Result<Vec<Row>> {
        Ok(vec![Row::disputed("x", 1.0, 2.0, 0.01, 2.0, 0.01)])
    }

    fn file(id: &str, status: &str) -> ClaimFile {
        ClaimFile {
            id: id.into(),
            title: "t".into(),
            source: "der".into(),
            tier: Tier::Fast,
            status: status.into(),
            path: PathBuf::from(format!("{id}.md")),
        }
    }

    #[test]
    fn pairing_and_verdicts() {
        let checks = [
            Check {
                id: "T-1",
                tier: Tier::Fast,
                run: ok_rows,
            },
            Check {
                id: "T-2",
                tier: Tier::Fast,
                run: bad_rows,
            },
            Check {
                id: "T-3",
                tier: Tier::Fast,
                run: disputed_rows,
            },
            Check {
                id: "T-4",
                tier: Tier::Fast,
                run: disputed_rows,
            },
            Check {
                id: "T-9",
                tier: Tier::Fast,
                run: ok_rows,
            },
        ];
        let files = [
            file("T-1", "holds"),
            file("T-2", "holds"),
            file("T-3", "disputed"),
            file("T-4", "holds"),
            file("T-5", "holds"),
        ];
        let r = run(&files, &checks, &Selection::default());
        let v: Vec<(&str, Verdict)> = r.iter().map(|r| (r.id.as_str(), r.verdict)).collect();
        assert_eq!(
            v,
            vec![
                ("T-1", Verdict::Pass),
                ("T-2", Verdict::Fail),
                ("T-3", Verdict::Disputed),
                ("T-4", Verdict::Fail), // disputed row, file not marked
                ("T-5", Verdict::Fail), // file without check
                ("T-9", Verdict::Fail), // check without file
            ]
        );
        let text = render(&r);
        assert!(text.contains("1 passed, 4 failed, 1 disputed"));
    }

    fn interval_rows() -> Result<Vec<Row>> {
        use crate::num::stats::{bootstrap, Band, Bootstrap, Statistic};
        let x: Vec<f64> = (0..16).map(|i| 2.0 + 0.01 * i as f64).collect();
        let e = bootstrap(&x, Statistic::Median, &Bootstrap::new(1))?;
        Ok(vec![
            Row::interval("holds", &Band::rel(2.08, 0.05), &e),
            Row::interval("excluded", &Band::rel(1.0, 0.05), &e),
        ])
    }

    #[test]
    fn interval_rows_report_their_interval_and_can_fail() {
        let checks = [Check {
            id: "T-1",
            tier: Tier::Fast,
            run: interval_rows,
        }];
        let r = run(&[file("T-1", "holds")], &checks, &Selection::default());
        assert_eq!(r[0].rows[0].verdict, Verdict::Pass);
        assert_eq!(r[0].rows[1].verdict, Verdict::Disputed);
        assert_eq!(r[0].verdict, Verdict::Fail); // disputed row in a `holds` file
        let text = render(&r);
        assert!(text.contains("95% interval, n = 16"), "{text}");
        let json = serde_json::to_string(&r[0].rows[0]).unwrap();
        assert!(
            json.contains("\"lo\"") && json.contains("\"n\":16"),
            "{json}"
        );
        let plain = serde_json::to_string(&Row::abs("x", 1.0, 1.0, 0.1)).unwrap();
        assert!(!plain.contains("\"lo\""), "{plain}");
        let r = run(&[file("T-1", "disputed")], &checks, &Selection::default());
        assert_eq!(r[0].verdict, Verdict::Disputed);
    }

    #[test]
    fn natural_id_order() {
        let mut ids = vec!["I-10", "I-2", "B-1", "I-1"];
        ids.sort_by_key(|i| id_key(i));
        assert_eq!(ids, vec!["B-1", "I-1", "I-2", "I-10"]);
    }

    /// Regression (session 4): `check I-1` ran I-1 and every I-1x claim (prefix match), which
    /// made `--quiet` on `check I-1` time out in tests/hardening.rs. An exact id selects one
    /// claim; a prefix that is no id still selects the family.
    #[test]
    fn an_exact_id_selects_one_claim_and_a_prefix_the_family() {
        let checks: Vec<Check> = ["I-1", "I-10", "I-14", "I-14-full"]
            .into_iter()
            .map(|id| Check {
                id,
                tier: Tier::Fast,
                run: ok_rows,
            })
            .collect();
        let files: Vec<ClaimFile> = checks.iter().map(|c| file(c.id, "holds")).collect();
        let ids = |pattern: &str| -> Vec<String> {
            let sel = Selection {
                pattern: pattern.into(),
                full: true,
            };
            run(&files, &checks, &sel)
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(ids("I-1"), ["I-1"]);
        assert_eq!(ids("i-14"), ["I-14"]);
        assert_eq!(ids("I-14-full"), ["I-14-full"]);
        assert_eq!(ids("I-1").len() + 3, ids("I-").len());
        assert_eq!(ids("I-14-"), ["I-14-full"]);
        assert_eq!(ids("").len(), 4);
    }
}
