//! Splits a long Markdown body into pieces under GitHub's 65,536-character limit. A piece ends
//! where nothing is open when it can; when a code fence or a `<details>` block is longer than a
//! piece, the piece closes it and the next one opens it again, so every piece renders on its
//! own. Pure.

/// GitHub's limit on a pull request body or a comment, in characters.
pub const GITHUB_LIMIT: usize = 65_536;

/// Something open at the end of a line.
#[derive(Debug, Clone, PartialEq)]
enum Open {
    /// A code fence: its marker (```` ``` ```` or `~~~`, maybe longer) and its opening line.
    Fence { marker: String, line: String },
    /// A `<details>` block.
    Details,
}

fn closers(stack: &[Open]) -> String {
    stack
        .iter()
        .rev()
        .map(|open| match open {
            Open::Fence { marker, .. } => format!("{marker}\n"),
            Open::Details => "</details>\n".to_owned(),
        })
        .collect()
}

fn openers(stack: &[Open]) -> String {
    stack
        .iter()
        .map(|open| match open {
            Open::Fence { line, .. } => line.clone(),
            Open::Details => "<details><summary>(continued)</summary>\n\n".to_owned(),
        })
        .collect()
}

fn fence_marker(trimmed: &str) -> Option<String> {
    let first = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let run: String = trimmed.chars().take_while(|c| *c == first).collect();
    (run.len() >= 3).then_some(run)
}

fn update(stack: &mut Vec<Open>, line: &str) {
    let trimmed = line.trim_start();
    if let Some(Open::Fence { marker, .. }) = stack.last() {
        let closes = trimmed.starts_with(marker.as_str())
            && trimmed[marker.len()..]
                .trim_start_matches(marker.chars().next().unwrap_or('`'))
                .trim()
                .is_empty();
        if closes {
            stack.pop();
        }
        return;
    }
    if let Some(marker) = fence_marker(trimmed) {
        let mut line = line.to_owned();
        if !line.ends_with('\n') {
            line.push('\n');
        }
        stack.push(Open::Fence { marker, line });
        return;
    }
    let lower = trimmed.to_ascii_lowercase();
    for _ in 0..lower.matches("<details").count() {
        stack.push(Open::Details);
    }
    for _ in 0..lower.matches("</details>").count() {
        if stack.last() == Some(&Open::Details) {
            stack.pop();
        }
    }
}

/// Lines of `body`, with lines longer than `max` cut at character boundaries.
fn lines(body: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    for mut line in body.split_inclusive('\n') {
        while line.len() > max {
            let mut cut = max;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(&line[..cut]);
            line = &line[cut..];
        }
        out.push(line);
    }
    out
}

/// Splits `body` into pieces of at most `limit` bytes (so at most `limit` characters), each
/// with its fences and `<details>` blocks closed. A body that fits is returned whole.
pub fn split(body: &str, limit: usize) -> Vec<String> {
    if body.len() <= limit {
        return vec![body.to_owned()];
    }
    // Room for the fences and blocks a cut closes and opens again.
    let reserve = 512;
    let max_line = (limit.saturating_sub(2 * reserve)).max(1);
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut boundary: Option<usize> = None;
    for line in lines(body, max_line) {
        let closing = closers(&stack).len() + 1;
        if current.len() + line.len() + closing > limit.saturating_sub(reserve)
            && !current.is_empty()
        {
            match boundary.filter(|b| *b > 0) {
                Some(at) => {
                    let rest = current.split_off(at);
                    pieces.push(std::mem::replace(&mut current, rest));
                }
                None => {
                    if !stack.is_empty() && !current.ends_with('\n') {
                        current.push('\n');
                    }
                    current.push_str(&closers(&stack));
                    pieces.push(std::mem::replace(&mut current, openers(&stack)));
                }
            }
            boundary = None;
        }
        current.push_str(line);
        if line.ends_with('\n') {
            update(&mut stack, line);
            if stack.is_empty() {
                boundary = Some(current.len());
            }
        }
    }
    if !current.trim().is_empty() {
        if !stack.is_empty() && !current.ends_with('\n') {
            current.push('\n');
        }
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balanced(piece: &str) {
        let mut stack = Vec::new();
        for line in piece.split_inclusive('\n') {
            update(&mut stack, line);
        }
        assert!(
            stack.is_empty(),
            "left open: {stack:?} in …{}",
            &piece[piece.len().saturating_sub(200)..]
        );
    }

    #[test]
    fn a_short_body_is_one_piece() {
        assert_eq!(split("# Title\n\nbody\n", 100), ["# Title\n\nbody\n"]);
    }

    #[test]
    fn long_bodies_are_cut_between_blocks_and_inside_long_ones_with_both_ends_closed() {
        let mut body = String::from("# Proposal\n\n");
        for i in 0..40 {
            body.push_str(&format!(
                "<details><summary>object {i}</summary>\n\n```diff\n"
            ));
            for j in 0..60 {
                body.push_str(&format!(
                    "+  line {j} of object {i} with some padding text\n"
                ));
            }
            body.push_str("```\n</details>\n\n");
        }
        body.push_str("<details><summary>huge</summary>\n\n~~~~yaml\n");
        for j in 0..3000 {
            body.push_str(&format!("key{j}: value\n"));
        }
        body.push_str("~~~~\n</details>\n\nThe end.\n");
        let limit = 20_000;
        let pieces = split(&body, limit);
        assert!(pieces.len() > 5, "{}", pieces.len());
        for piece in &pieces {
            assert!(piece.len() <= limit, "{}", piece.len());
            balanced(piece);
        }
        let joined = pieces.concat();
        let original: Vec<&str> = body.lines().collect();
        let mut rest = joined.lines();
        for line in &original {
            assert!(rest.any(|l| l == *line), "lost or reordered: {line}");
        }
        assert!(pieces[pieces.len() - 1].ends_with("The end.\n"));
        let cut_inside = pieces
            .iter()
            .filter(|p| p.starts_with("<details><summary>(continued)"))
            .count();
        assert!(cut_inside >= 1, "the huge block is cut and reopened");
    }

    #[test]
    fn a_single_enormous_line_is_cut_at_character_boundaries() {
        let body = "é".repeat(50_000);
        let pieces = split(&body, 30_000);
        assert!(pieces.iter().all(|p| p.len() <= 30_000));
        assert!(
            pieces.concat() == body,
            "the pieces do not add up to the body"
        );
    }
}
