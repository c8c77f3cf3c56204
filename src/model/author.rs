//! Who commits: the name and e-mail of remediator's own commits. Pure.

/// Who commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

impl Default for Author {
    fn default() -> Self {
        Author {
            name: "remediator".to_owned(),
            email: "remediator@users.noreply.github.com".to_owned(),
        }
    }
}
