//! Errors: a message tied to a place in the spec file.

use std::fmt;

use crate::model::Pos;

/// Why a spec could not be read or generated. Displays as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    file: String,
    pos: Option<Pos>,
    message: String,
}

impl Error {
    /// An error at `pos` in `file`.
    pub fn at(file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Error {
            file: file.to_owned(),
            pos: Some(pos),
            message: message.into(),
        }
    }

    /// An error about `file` as a whole (reading or writing it).
    pub fn file(file: &str, message: impl Into<String>) -> Self {
        Error {
            file: file.to_owned(),
            pos: None,
            message: message.into(),
        }
    }

    /// The file the error is in.
    pub fn file_name(&self) -> &str {
        &self.file
    }

    /// Line and column, when the error has a place.
    pub fn pos(&self) -> Option<Pos> {
        self.pos
    }

    /// The message alone.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: {}", self.file, p.line, p.col, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for Error {}
