//! A line diff for showing what a policy version changed: the longest common subsequence
//! of the two texts' lines, as kept, removed and added lines. Documents are bounded
//! (`MAX_SOURCE_CHARS`), and a diff larger than [`MAX_CELLS`] is refused rather than
//! computed.

/// What happened to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Kept,
    Removed,
    Added,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub change: Change,
    pub text: String,
}

impl DiffLine {
    /// `+`, `-` or a space, as a unified diff marks the line.
    pub fn mark(&self) -> &'static str {
        match self.change {
            Change::Kept => " ",
            Change::Removed => "-",
            Change::Added => "+",
        }
    }

    /// The CSS class of the line.
    pub fn class(&self) -> &'static str {
        match self.change {
            Change::Kept => "kept",
            Change::Removed => "removed",
            Change::Added => "added",
        }
    }
}

/// The largest table (old lines × new lines) computed: 4 million cells of 4 bytes.
pub const MAX_CELLS: usize = 4_000_000;

/// The lines of `new` against `old`, or `None` when they are too long to compare.
pub fn lines(old: &str, new: &str) -> Option<Vec<DiffLine>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    if (n + 1).checked_mul(m + 1)? > MAX_CELLS {
        return None;
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let width = m + 1;
    let mut lcs = vec![0_u32; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let line = |change, text: &str| DiffLine {
        change,
        text: text.to_owned(),
    };
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(n.max(m));
    while i < n && j < m {
        if a[i] == b[j] {
            out.push(line(Change::Kept, a[i]));
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
            out.push(line(Change::Removed, a[i]));
            i += 1;
        } else {
            out.push(line(Change::Added, b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|t| line(Change::Removed, t)));
    out.extend(b[j..].iter().map(|t| line(Change::Added, t)));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(old: &str, new: &str) -> String {
        lines(old, new)
            .unwrap()
            .iter()
            .map(|l| format!("{}{}", l.mark(), l.text))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_changed_threshold_is_one_line_out_and_one_in() {
        let old =
            "@id(\"small\")\npermit (principal, action, resource)\nwhen { context.amount < 400 };";
        let new =
            "@id(\"small\")\npermit (principal, action, resource)\nwhen { context.amount < 500 };";
        assert_eq!(
            marked(old, new),
            " @id(\"small\")\n permit (principal, action, resource)\n-when { context.amount < 400 };\n+when { context.amount < 500 };"
        );
    }

    #[test]
    fn additions_removals_and_empty_sides() {
        assert_eq!(marked("a\nb\nc", "a\nc\nd"), " a\n-b\n c\n+d");
        assert_eq!(marked("", "x"), "+x");
        assert_eq!(marked("x", ""), "-x");
        assert_eq!(marked("same\ntext", "same\ntext"), " same\n text");
    }

    #[test]
    fn too_large_to_compare_is_refused_not_computed() {
        let big = "line\n".repeat(3_000);
        assert!(lines(&big, &big).is_none());
    }
}
