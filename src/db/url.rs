use std::path::PathBuf;

/// The database location, parsed from `--database-url` / `VRS_DATABASE_URL`.
/// The backend is chosen by scheme, never by trial: a mistyped PostgreSQL URL
/// must not quietly become an SQLite file of that name.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("database URL (--database-url / VRS_DATABASE_URL) {shown:?}: {reason}")]
pub struct DatabaseUrlError {
    shown: String,
    reason: &'static str,
}

impl DatabaseUrl {
    pub fn parse(input: &str) -> Result<Self, DatabaseUrlError> {
        let err = |reason| DatabaseUrlError {
            shown: redact(input),
            reason,
        };
        let s = input.trim();
        if let Some(rest) = s.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err(err("names no file; use sqlite://data/vrs.db"));
            }
            if rest.contains(":memory:")
                || rest.starts_with("file:") && rest.contains("mode=memory")
            {
                return Err(err(
                    "an in-memory database would be empty on every pooled connection; name a file",
                ));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(rest)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            if s.len() <= "postgresql://".len() && !s.contains('@') && !s.contains('/') {
                return Err(err("names no server"));
            }
            return Ok(DatabaseUrl::Postgres(s.to_string()));
        }
        Err(err("must start with sqlite:// or postgres://"))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DatabaseUrl::Postgres(_))
    }
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => f.write_str(&redact(u)),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/vrs.db").unwrap(),
            DatabaseUrl::Sqlite("data/vrs.db".into())
        );
        assert!(
            DatabaseUrl::parse("postgres://u:p@localhost/db")
                .unwrap()
                .is_postgres()
        );
    }

    #[test]
    fn bad_urls_are_named_and_passwords_hidden() {
        for bad in ["mysql://x", "data/vrs.db", "sqlite://", "sqlite://:memory:"] {
            let e = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("VRS_DATABASE_URL"), "{e}");
        }
        let e = DatabaseUrl::parse("postgress://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
        assert_eq!(
            DatabaseUrl::parse("postgres://u:secret@h/db")
                .unwrap()
                .to_string(),
            "postgres://u:***@h/db"
        );
    }
}
