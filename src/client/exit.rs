//! Exit codes: stable, documented in docs/cli.md, what a pipeline stage
//! branches on. A failure carries its code and the one line that explains it.

use std::fmt;

/// How a client command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Done; for `wait`, the build is in the channel.
    Ok = 0,
    /// The server refused (a 4xx other than the ones below): a bad file, a
    /// rule that forbids the move, a frozen channel, a conflict.
    Refused = 1,
    /// Wrong arguments or client configuration (also clap's own code).
    Usage = 2,
    /// 401 or 403: no token, an unknown one, or one without the permission.
    Denied = 3,
    /// 404: no such build, channel or revision (or not visible to the token).
    NotFound = 4,
    /// The server failed (5xx) or could not be reached, after the retries.
    Unavailable = 5,
    /// `wait`: the timeout passed first.
    TimedOut = 6,
    /// `wait`: the build was demoted on its way or discarded.
    Rejected = 7,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit code an HTTP status stands for.
    pub fn for_status(status: u16) -> Exit {
        match status {
            200..=299 => Exit::Ok,
            401 | 403 => Exit::Denied,
            404 => Exit::NotFound,
            400..=499 => Exit::Refused,
            _ => Exit::Unavailable,
        }
    }
}

/// A command that could not finish: printed as `forklift: <message>`.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Usage, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pipelines branch on these numbers: changing one breaks them.
    #[test]
    fn codes_are_stable() {
        let pinned = [
            (Exit::Ok, 0),
            (Exit::Refused, 1),
            (Exit::Usage, 2),
            (Exit::Denied, 3),
            (Exit::NotFound, 4),
            (Exit::Unavailable, 5),
            (Exit::TimedOut, 6),
            (Exit::Rejected, 7),
        ];
        for (exit, code) in pinned {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }

    #[test]
    fn statuses_map_to_codes() {
        assert_eq!(Exit::for_status(201), Exit::Ok);
        assert_eq!(Exit::for_status(401), Exit::Denied);
        assert_eq!(Exit::for_status(403), Exit::Denied);
        assert_eq!(Exit::for_status(404), Exit::NotFound);
        assert_eq!(Exit::for_status(409), Exit::Refused);
        assert_eq!(Exit::for_status(422), Exit::Refused);
        assert_eq!(Exit::for_status(500), Exit::Unavailable);
        assert_eq!(Exit::for_status(503), Exit::Unavailable);
    }
}
