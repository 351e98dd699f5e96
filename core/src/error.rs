//! Errors of flag and segment compilation: each names the path of the problem in the document,
//! as in `rules[2].conditions[0].values[1]: invalid regex: ...`.

use std::fmt;

/// A document that cannot be compiled, with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct CompileError {
    /// Dotted path into the document, empty for the document itself.
    pub path: String,
    pub message: String,
}

impl CompileError {
    pub fn new(path: impl fmt::Display, message: impl fmt::Display) -> Self {
        Self {
            path: path.to_string(),
            message: message.to_string(),
        }
    }

    fn render(&self) -> String {
        if self.path.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.path, self.message)
        }
    }
}

/// Builds paths like `rules[2].conditions[0]` without repeating the formatting at every call.
#[derive(Debug, Clone)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root() -> Self {
        Self(String::new())
    }

    pub(crate) fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    pub(crate) fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    pub(crate) fn error(&self, message: impl fmt::Display) -> CompileError {
        CompileError::new(&self.0, message)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
