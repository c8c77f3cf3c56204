//! Byte offset to line number, for messages that name a file and line. Pure.

/// Start offsets of every line of one text.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`; `\n` ends a line (a `\r\n` pair counts once).
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}

/// The 1-based line of byte `offset` in `bytes`, for text that may not be valid UTF-8.
pub fn line_of_byte(bytes: &[u8], offset: usize) -> usize {
    1 + bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let idx = LineIndex::new("a: 1\r\nb: 2\nc: 3");
        assert_eq!(idx.line(0), 1);
        assert_eq!(idx.line(5), 1);
        assert_eq!(idx.line(6), 2);
        assert_eq!(idx.line(12), 3);
        assert_eq!(line_of_byte(b"a\nb\n\xff", 4), 3);
    }
}
