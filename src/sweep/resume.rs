//! Resumable runs of a sweep shard: the progress file (JSON lines, synced in batches) and
//! `--resume`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::*;

/// The stem of a sweep's output files: the sanitised name ([`crate::io::file_stem`]), with
/// `.shard-I-of-N` for a shard.
pub fn output_stem(name: &str, shard: Shard) -> String {
    let stem = crate::io::file_stem(name);
    if shard.n == 1 {
        stem
    } else {
        format!("{stem}.shard-{}-of-{}", shard.i, shard.n)
    }
}

/// The progress file of a resumable run of `shard` in `out`.
pub fn progress_path(out: &Path, name: &str, shard: Shard) -> PathBuf {
    out.join(format!("{}.progress.jsonl", output_stem(name, shard)))
}

/// First line of a progress file: which sweep and shard its rows belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProgressHeader {
    modeflow_progress: u32,
    name: String,
    sweep_file: String,
    base_file: String,
    verb: String,
    axes: Vec<String>,
    outputs: Vec<String>,
    total: usize,
    shard: Shard,
}

impl ProgressHeader {
    fn of(spec: &SweepSpec, shard: Shard) -> Self {
        ProgressHeader {
            modeflow_progress: 1,
            name: spec.name.clone(),
            sweep_file: spec.file.clone(),
            base_file: spec.base.common.file.clone(),
            verb: spec.verb.clone(),
            axes: spec.axes.iter().map(|a| a.key.clone()).collect(),
            outputs: spec.outputs.clone(),
            total: total(spec),
            shard,
        }
    }
}

/// The rows recorded in a progress file and the byte length of its complete lines. A last
/// line without its newline (the write in flight when the process was killed) is dropped; any
/// other malformed line, a header of another sweep or shard, or a row that is not a point of
/// the shard is an error naming the file.
fn read_progress(path: &Path, header: &ProgressHeader) -> Result<(Vec<SweepRow>, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let bad = |message: String| Error::ModelFile {
        file: path.display().to_string(),
        message,
    };
    if !meta.is_file() {
        return Err(bad("progress file is not a regular file".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let mut lines = text[..complete].lines();
    let Some(first) = lines.next() else {
        return Ok((vec![], 0));
    };
    let found: ProgressHeader = serde_json::from_str(first)
        .map_err(|e| bad(format!("line 1 is not a progress header: {e}")))?;
    if &found != header {
        return Err(bad(format!(
            "progress of another sweep or shard (`{}`, shard {}/{}, {} points; this run: `{}`, \
             shard {}/{}, {} points); delete it or run without --resume",
            found.name,
            found.shard.i,
            found.shard.n,
            found.total,
            header.name,
            header.shard.i,
            header.shard.n,
            header.total
        )));
    }
    let mut rows: Vec<SweepRow> = Vec::new();
    for (k, line) in lines.enumerate() {
        let row: SweepRow = serde_json::from_str(line)
            .map_err(|e| bad(format!("line {}: not a sweep row: {e}", k + 2)))?;
        let shape_ok =
            row.params.len() == header.axes.len() && row.outputs.len() == header.outputs.len();
        if !shape_ok || row.index >= header.total || !header.shard.owns(row.index) {
            return Err(bad(format!(
                "line {}: point {} does not fit shard {}/{} of {} points",
                k + 2,
                row.index,
                header.shard.i,
                header.shard.n,
                header.total
            )));
        }
        rows.push(row);
    }
    rows.sort_by_key(|r| r.index);
    rows.dedup_by_key(|r| r.index);
    Ok((rows, complete as u64))
}

/// The interval after which a progress row written is synced with the next one (`ProgressLog`).
pub const PROGRESS_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// The progress file of a resumable run: every row is written (`write(2)`) as its point
/// completes, so a killed process (Ctrl-C, `kill`, a batch system's time limit) loses only the
/// points in flight; the data reach the disk (`fdatasync`) in batches, once
/// [`PROGRESS_SYNC_INTERVAL`] has passed since the last sync or 1 % of the points have been
/// written since, and at the end. A crash of the machine (power, kernel) may lose the rows
/// written since the last sync -- at most one batch, which `--resume` recomputes. (One sync per
/// point cost 10,000 `fdatasync` calls on the 100 x 100 race grid, under the lock the other
/// workers wait on: ~2 s of its ~3 s wall time; bench/README.md.)
struct ProgressLog {
    file: std::fs::File,
    last_sync: std::time::Instant,
    unsynced: usize,
    batch: usize,
    syncs: usize,
}

impl ProgressLog {
    fn new(file: std::fs::File, points: usize) -> Self {
        ProgressLog {
            file,
            last_sync: std::time::Instant::now(),
            unsynced: 0,
            batch: points.div_ceil(100).max(1),
            syncs: 0,
        }
    }

    /// Write one row; sync when the batch is full or the interval has passed.
    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.file.write_all(line)?;
        self.unsynced += 1;
        if self.unsynced >= self.batch || self.last_sync.elapsed() >= PROGRESS_SYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    /// Make every written row durable.
    fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced > 0 {
            self.file.sync_data()?;
            self.unsynced = 0;
            self.syncs += 1;
        }
        self.last_sync = std::time::Instant::now();
        Ok(())
    }
}

/// Run the points of `shard`, appending each finished point to the progress file `progress`
/// (one JSON line, written as it completes, made durable in batches: `ProgressLog`). With
/// `resume`, the points already recorded there are kept and skipped; without it the file is
/// started afresh. The result is the same, byte for byte, as that of [`mod@run`]. The caller
/// removes the progress file once the outputs are written.
pub fn run_resumable(
    spec: &SweepSpec,
    shard: Shard,
    progress: &Path,
    resume: bool,
) -> Result<SweepResult> {
    let header = ProgressHeader::of(spec, shard);
    let io = |e| Error::io(progress, e);
    let (mut done, valid_len) = if resume && progress.exists() {
        read_progress(progress, &header)?
    } else {
        (vec![], 0)
    };
    let file = if valid_len > 0 {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(progress)
            .map_err(io)?;
        // drop a partial last line, then append after the complete ones
        f.set_len(valid_len).map_err(io)?;
        let mut f = f;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(io)?;
        f
    } else {
        let mut f = std::fs::File::create(progress).map_err(io)?;
        let mut line = serde_json::to_string(&header).expect("headers serialise");
        line.push('\n');
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        f
    };
    if !done.is_empty() {
        crate::progress::note(&format!(
            "sweep {}: resuming, {} point(s) already done in {}",
            spec.name,
            done.len(),
            progress.display()
        ));
    }
    let have: std::collections::HashSet<usize> = done.iter().map(|r| r.index).collect();
    let indices: Vec<usize> = (0..total(spec))
        .filter(|&i| shard.owns(i) && !have.contains(&i))
        .collect();
    let log = Mutex::new(ProgressLog::new(file, indices.len()));
    let record = |row: &SweepRow| -> Result<()> {
        let mut line = serde_json::to_string(row).expect("rows serialise");
        line.push('\n');
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        log.append(line.as_bytes()).map_err(io)
    };
    let ran = run_points(spec, &indices, &record);
    // make the last batch durable whether the points ended well or not
    let synced = log
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .sync()
        .map_err(io);
    let mut rows = ran?;
    synced?;
    rows.append(&mut done);
    rows.sort_by_key(|r| r.index);
    Ok(result(spec, shard, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rows_are_written_at_once_and_synced_in_batches() {
        let dir = std::env::temp_dir().join(format!("modeflow-plog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.jsonl");
        let t0 = std::time::Instant::now();
        let mut log = ProgressLog::new(std::fs::File::create(&path).unwrap(), 1000);
        for k in 0..1000 {
            log.append(format!("{k}\n").as_bytes()).unwrap();
            // every row is in the file (the page cache) as soon as it is appended
            if k % 97 == 0 {
                let n = std::fs::read_to_string(&path).unwrap().lines().count();
                assert_eq!(n, k + 1);
            }
        }
        log.sync().unwrap();
        // at most one sync per 1 % of the points, one per interval elapsed, and the last
        let by_time = (t0.elapsed().as_secs_f64() / PROGRESS_SYNC_INTERVAL.as_secs_f64()) as usize;
        assert!(log.syncs <= 100 + by_time + 1, "{} syncs", log.syncs);
        assert!(log.syncs >= 10, "{} syncs", log.syncs);
        assert_eq!(log.unsynced, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
