//! Generic containers: started ahead of need, before anyone knows which
//! function they will run. With `LAMBDABOX_GENERIC` set, init asks the
//! controller (`GET /lambdabox/v1/specialize`, a long poll on the Runtime
//! API socket) what to become; the answer names the bootstrap and the
//! function's environment, and the controller has put its code in place
//! under /var/task and /opt before answering. Only then does the bootstrap
//! start, so a specialized container is indistinguishable from one started
//! for the function.
//!
//! The answer's body is NUL-separated fields: the bootstrap command (empty
//! for Lambda's search), an empty field, then `KEY=VALUE` pairs. No JSON:
//! init depends on libc alone.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

const REQUEST: &[u8] = b"GET /lambdabox/v1/specialize HTTP/1.1\r\nHost: lambdabox\r\nConnection: close\r\n\r\n";

/// What this container is to run.
pub struct Specialization {
    pub bootstrap: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

/// Wait (as long as it takes) for the controller to say what to run.
pub fn wait(socket: &Path) -> io::Result<Specialization> {
    let mut stream = UnixStream::connect(socket)?;
    stream.write_all(REQUEST)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    if !answer.starts_with(b"HTTP/1.1 200") {
        let status = String::from_utf8_lossy(&answer[..answer.iter().position(|&b| b == b'\r').unwrap_or(0)]);
        return Err(bad(&format!("controller answered {status}")));
    }
    parse(&answer[split + 4..])
}

fn parse(body: &[u8]) -> io::Result<Specialization> {
    let mut fields = body.split(|&b| b == 0);
    let bootstrap: Vec<OsString> =
        fields.by_ref().take_while(|f| !f.is_empty()).map(|f| OsString::from_vec(f.to_vec())).collect();
    let mut env = Vec::new();
    for field in fields.filter(|f| !f.is_empty()) {
        let eq = field.iter().position(|&b| b == b'=').ok_or_else(|| bad("environment entry without ="))?;
        env.push((OsString::from_vec(field[..eq].to_vec()), OsString::from_vec(field[eq + 1..].to_vec())));
    }
    Ok(Specialization { bootstrap, env })
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("specialization: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bootstrap_then_environment() {
        let s = parse(b"/var/runtime/bootstrap\0--flag\0\0_HANDLER=app.handler\0EMPTY=\0").unwrap();
        assert_eq!(s.bootstrap, [OsString::from("/var/runtime/bootstrap"), OsString::from("--flag")]);
        assert_eq!(s.env, [("_HANDLER".into(), "app.handler".into()), ("EMPTY".into(), "".into())]);
        let search = parse(b"\0K=V=W\0").unwrap();
        assert!(search.bootstrap.is_empty());
        assert_eq!(search.env, [("K".into(), "V=W".into())]);
        assert!(parse(b"\0NOEQUALS\0").is_err());
    }
}
