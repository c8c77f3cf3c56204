//! The figures README.md gives for `propose` at each size, between `<!-- scale:begin -->` and
//! `<!-- scale:end -->`, and the check that a measured size stays within a tolerance of them.
//! `benches/scale.rs` runs the check; `tests/book.rs` reads the README's table with it.

/// Where the README keeps the figures.
pub const TABLE_START: &str = "<!-- scale:begin -->";
/// Where the figures end.
pub const TABLE_END: &str = "<!-- scale:end -->";

/// One size's figures: pods, wall seconds and peak megabytes.
#[derive(Debug, PartialEq)]
pub struct Figure {
    pub pods: usize,
    pub wall: f64,
    pub peak_mb: f64,
}

impl Figure {
    /// What a measurement of this size (`wall` seconds, `peak_mb` megabytes) exceeds by more
    /// than `tolerance` times, each said.
    pub fn exceeded(&self, wall: f64, peak_mb: f64, tolerance: f64) -> Vec<String> {
        let mut said = Vec::new();
        if wall > self.wall * tolerance {
            said.push(format!(
                "{} pods: {wall:.2} s against the README's {:.2} s",
                thousands(self.pods),
                self.wall
            ));
        }
        if peak_mb > self.peak_mb * tolerance {
            said.push(format!(
                "{} pods: {peak_mb:.0} MB against the README's {:.0} MB",
                thousands(self.pods),
                self.peak_mb
            ));
        }
        said
    }
}

/// The rows of the README's table between its markers, `| pods | wall | CPU | peak RSS | … |`
/// with figures such as `10,000 | 0.41 s | 0.60 s | 120 MB`.
pub fn figures(readme: &str) -> Result<Vec<Figure>, String> {
    let start = readme
        .find(TABLE_START)
        .ok_or(format!("README.md has no {TABLE_START}"))?;
    let end = readme[start..]
        .find(TABLE_END)
        .ok_or(format!("README.md has no {TABLE_END}"))?;
    let mut rows = Vec::new();
    for line in readme[start..start + end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(pods) = cells.get(1).and_then(|c| c.replace(',', "").parse().ok()) else {
            continue;
        };
        let value = |i: usize| -> Result<f64, String> {
            let cell = cells
                .get(i)
                .ok_or(format!("README row {line:?} is short"))?;
            let text = cell.split_whitespace().next().unwrap_or(cell);
            text.parse()
                .map_err(|_| format!("README row {line:?}: {cell} is not a figure"))
        };
        rows.push(Figure {
            pods,
            wall: value(2)?,
            peak_mb: value(4)?,
        });
    }
    if rows.is_empty() {
        return Err(format!(
            "README.md has no figures between {TABLE_START} and {TABLE_END}"
        ));
    }
    Ok(rows)
}

/// `12,345`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
