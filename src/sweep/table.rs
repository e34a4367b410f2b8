//! The sweep table: outputs missing everywhere, CSV text, reading, validating and merging
//! shard results (bit-exact).

use std::path::{Path, PathBuf};

use super::*;

/// the keys the results do have.
pub fn missing_outputs(r: &SweepResult) -> Vec<String> {
    let ran: Vec<&SweepRow> = r
        .rows
        .iter()
        .filter(|x| !x.status.starts_with("error"))
        .collect();
    if ran.is_empty() {
        return vec![];
    }
    r.outputs
        .iter()
        .enumerate()
        .filter(|(k, _)| ran.iter().all(|row| row.outputs[*k].is_null()))
        .map(|(_, o)| format!("`{o}`"))
        .collect()
}

/// CSV: index, seed, axes..., outputs..., status.
pub fn to_csv(r: &SweepResult) -> String {
    let mut s = String::from("index,seed");
    for a in r.axes.iter().chain(&r.outputs) {
        s.push(',');
        s.push_str(&csv_field(a));
    }
    s.push_str(",status\n");
    for row in &r.rows {
        s.push_str(&format!("{},{}", row.index, row.seed));
        for v in row.params.iter().chain(&row.outputs) {
            s.push(',');
            s.push_str(&csv_field(&match v {
                serde_json::Value::String(t) => t.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            }));
        }
        s.push(',');
        s.push_str(&csv_field(&row.status));
        s.push('\n');
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Check the shape of a sweep result read from `file`: every row has one value per axis and
/// per output, an index below `total` that belongs to its shard, and the shard is `i/n` with
/// 1 <= i <= n (issue 15: short rows crashed `figures --sweep` and made `merge` write a
/// malformed CSV).
pub fn validate_result(r: &SweepResult, file: &str) -> Result<()> {
    let bad = |message: String| Error::ModelFile {
        file: file.to_string(),
        message,
    };
    if r.shard.n == 0 || r.shard.i == 0 || r.shard.i > r.shard.n {
        return Err(bad(format!(
            "shard {}/{} is not i/n with 1 <= i <= n",
            r.shard.i, r.shard.n
        )));
    }
    if r.total > MAX_POINTS || r.rows.len() > r.total {
        return Err(bad(format!(
            "{} rows for a sweep of {} points (at most {MAX_POINTS})",
            r.rows.len(),
            r.total
        )));
    }
    for (k, row) in r.rows.iter().enumerate() {
        if row.params.len() != r.axes.len() || row.outputs.len() != r.outputs.len() {
            return Err(bad(format!(
                "row {k} (point {}) has {} axis values and {} outputs; the header has {} axes \
                 and {} outputs",
                row.index,
                row.params.len(),
                row.outputs.len(),
                r.axes.len(),
                r.outputs.len()
            )));
        }
        if row.index >= r.total || !r.shard.owns(row.index) {
            return Err(bad(format!(
                "row {k}: point {} is not a point of shard {}/{} of a sweep of {} points",
                row.index, r.shard.i, r.shard.n, r.total
            )));
        }
    }
    Ok(())
}

/// Read a sweep result or shard (JSON from `modeflow sweep`) and check its shape.
pub fn read_result(path: &Path) -> Result<SweepResult> {
    let text = crate::io::read_input(path)?;
    let r: SweepResult = serde_json::from_str(&text).map_err(|e| Error::ModelFile {
        file: path.display().to_string(),
        message: format!("not a sweep result: {e}"),
    })?;
    validate_result(&r, &path.display().to_string())?;
    Ok(r)
}

/// Merge the shard files of one sweep: every file a valid shard of the same sweep (name, file,
/// base, verb, axes, outputs, total, number of shards), each shard once, none missing.
pub fn merge_files(paths: &[PathBuf]) -> Result<SweepResult> {
    let parts = paths
        .iter()
        .map(|p| read_result(p).map(|r| (p.display().to_string(), r)))
        .collect::<Result<Vec<_>>>()?;
    let Some((f0, first)) = parts.first() else {
        return Err(Error::Requirement("merge: no shard files given".into()));
    };
    let n = first.shard.n;
    let mut seen: Vec<Option<&str>> = vec![None; n];
    for (f, p) in &parts {
        let same = p.name == first.name
            && p.sweep_file == first.sweep_file
            && p.base_file == first.base_file
            && p.verb == first.verb
            && p.axes == first.axes
            && p.outputs == first.outputs
            && p.total == first.total
            && p.shard.n == n;
        if !same {
            return Err(Error::Requirement(format!(
                "merge: {f} (sweep `{}`, {} points, shard {}/{}) does not belong to the sweep \
                 of {f0} (`{}`, {} points, {n} shards): name, files, verb, axes, outputs, \
                 points and shard count must agree",
                p.name, p.total, p.shard.i, p.shard.n, first.name, first.total
            )));
        }
        let slot = &mut seen[p.shard.i - 1];
        if let Some(other) = slot {
            return Err(Error::Requirement(format!(
                "merge: shard {}/{n} given twice: {other} and {f}",
                p.shard.i
            )));
        }
        *slot = Some(f);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{}/{n}", i + 1))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Requirement(format!(
            "merge: shard(s) {} of sweep `{}` missing",
            missing.join(", "),
            first.name
        )));
    }
    merge(parts.into_iter().map(|(_, r)| r).collect())
}

/// Merge shard results of one sweep: same sweep, no duplicate points, all points present.
pub fn merge(parts: Vec<SweepResult>) -> Result<SweepResult> {
    let mut it = parts.into_iter();
    let mut acc = it
        .next()
        .ok_or_else(|| Error::Requirement("merge: no shard files given".into()))?;
    for p in it {
        if p.name != acc.name
            || p.total != acc.total
            || p.axes != acc.axes
            || p.outputs != acc.outputs
        {
            return Err(Error::Requirement(format!(
                "merge: shard of `{}` ({} points) does not belong to sweep `{}` ({} points)",
                p.name, p.total, acc.name, acc.total
            )));
        }
        acc.rows.extend(p.rows);
    }
    acc.rows.sort_by_key(|r| r.index);
    if let Some(w) = acc.rows.windows(2).find(|w| w[0].index == w[1].index) {
        return Err(Error::Requirement(format!(
            "merge: point {} appears in two shards",
            w[0].index
        )));
    }
    if acc.rows.len() != acc.total {
        let missing: Vec<usize> = (0..acc.total)
            .filter(|i| acc.rows.binary_search_by_key(i, |r| r.index).is_err())
            .take(10)
            .collect();
        return Err(Error::Requirement(format!(
            "merge: {} of {} points present; missing e.g. {missing:?}",
            acc.rows.len(),
            acc.total
        )));
    }
    acc.shard = Shard::ALL;
    Ok(acc)
}
