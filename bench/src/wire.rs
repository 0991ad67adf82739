//! The load generator's HTTP/1.1 client: keep-alive connections, each
//! request written and its answer parsed by the task that sends it.
//!
//! Why not reqwest here: on this 2-core box the load generator takes its CPU
//! from the same cores as the engine it measures. Measured per invocation
//! (the bench's own threads' CPU time over a c16 window), reqwest cost about
//! 70 µs: a pool checkout, the URL parsed again, and a hand-off through a
//! channel to a task that owns the socket, then back. That is a sixth of
//! what lambdabox's side of a call costs in all, charged to lambdabox at c16
//! (where the CPU is the limit) far more than to the RIE at c1 (where waiting
//! is). Load tools such as wrk are lean for the same reason. The streamed
//! function URL measure still uses reqwest: it times chunks, not calls.
//!
//! Each call takes an idle connection (or opens one), sends the whole
//! request in one write and reads until the answer is complete
//! (`Content-Length`, chunked, or the server closing).

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most headers an answer may carry.
const MAX_HEADERS: usize = 32;
/// Largest answer head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Why one exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("invalid URL {0}: only http://host:port/path is supported")]
    Url(String),
    #[error("connecting to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("malformed answer: {0}")]
    Malformed(String),
    #[error("the server closed the connection before a complete answer")]
    Closed,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// One answer, as far as the load loops look at it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// `X-Amz-Function-Error`, when the function failed.
    pub function_error: Option<String>,
    pub body: Vec<u8>,
}

/// One server (`host:port`) and its idle keep-alive connections, shared by
/// every task that invokes through it.
#[derive(Debug)]
pub struct Endpoint {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl Endpoint {
    /// The endpoint of `url` (`http://host:port/...`); `timeout` bounds
    /// each exchange, connecting included.
    pub fn of(url: &reqwest::Url, timeout: Duration) -> Result<Arc<Endpoint>, WireError> {
        let (Some(host), "http") = (url.host_str(), url.scheme()) else {
            return Err(WireError::Url(url.to_string()));
        };
        let authority = format!("{host}:{}", url.port_or_known_default().unwrap_or(80));
        Ok(Arc::new(Endpoint { authority, timeout, idle: Mutex::new(Vec::new()) }))
    }

    /// Send `request` (a whole HTTP/1.1 request, head and body) and read
    /// its answer. A connection taken from the idle list that fails before
    /// any byte of an answer (the server closed it while idle) is replaced
    /// by a new one once.
    pub async fn exchange(&self, request: &[u8]) -> Result<Answer, WireError> {
        let attempt = async {
            if let Some(mut conn) = self.take_idle() {
                match conn.exchange(request).await {
                    Ok(answer) => return self.done(conn, answer),
                    Err(Failure { error, answer_began: true }) => return Err(error),
                    Err(Failure { answer_began: false, .. }) => {}
                }
            }
            let mut conn = Connection::open(&self.authority).await?;
            let answer = conn.exchange(request).await.map_err(|f| f.error)?;
            self.done(conn, answer)
        };
        tokio::time::timeout(self.timeout, attempt).await.map_err(|_| WireError::Timeout(self.timeout))?
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle.lock().expect("idle list").pop()
    }

    /// Keep `conn` for the next call unless the server is closing it.
    fn done(&self, conn: Connection, (answer, keep): (Answer, bool)) -> Result<Answer, WireError> {
        if keep {
            self.idle.lock().expect("idle list").push(conn);
        }
        Ok(answer)
    }
}

/// A failed exchange, and whether the server had begun to answer (a
/// request on a connection it had closed fails before that).
struct Failure {
    error: WireError,
    answer_began: bool,
}

/// One keep-alive connection and the bytes read from it.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    async fn open(authority: &str) -> Result<Connection, WireError> {
        let connect = |source| WireError::Connect { addr: authority.to_owned(), source };
        let stream = TcpStream::connect(authority).await.map_err(connect)?;
        stream.set_nodelay(true).map_err(connect)?;
        Ok(Connection { stream, buf: Vec::with_capacity(4096) })
    }

    /// Write `request`, read one answer; also says whether the connection
    /// may be used again.
    async fn exchange(&mut self, request: &[u8]) -> Result<(Answer, bool), Failure> {
        let early = |error: WireError| Failure { error, answer_began: false };
        self.buf.clear();
        self.stream.write_all(request).await.map_err(|e| early(e.into()))?;
        if self.fill().await.map_err(|e| early(e.into()))? == 0 {
            return Err(early(WireError::Closed));
        }
        self.read_answer().await.map_err(|error| Failure { error, answer_began: true })
    }

    /// Read more bytes into the buffer; 0 at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(self.buf.capacity().max(4096));
        }
        self.stream.read_buf(&mut self.buf).await
    }

    async fn read_answer(&mut self) -> Result<(Answer, bool), WireError> {
        let (head_len, head) = loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(WireError::Malformed(format!("answer head over {MAX_HEAD} bytes")));
            }
            if self.fill().await? == 0 {
                return Err(WireError::Closed);
            }
        };
        let keep = !head.close;
        let body = match head.framing {
            Framing::Length(n) => {
                while self.buf.len() < head_len + n {
                    if self.fill().await? == 0 {
                        return Err(WireError::Closed);
                    }
                }
                if self.buf.len() > head_len + n {
                    return Err(WireError::Malformed("bytes after the answer's body".into()));
                }
                self.buf[head_len..].to_vec()
            }
            Framing::Chunked => self.read_chunked(head_len).await?,
            Framing::UntilClose => {
                while self.fill().await? > 0 {}
                return Ok((
                    Answer {
                        status: head.status,
                        function_error: head.function_error,
                        body: self.buf[head_len..].to_vec(),
                    },
                    false,
                ));
            }
        };
        Ok((Answer { status: head.status, function_error: head.function_error, body }, keep))
    }

    /// A chunked body starting at `at` in the buffer, chunk extensions and
    /// trailers skipped.
    async fn read_chunked(&mut self, mut at: usize) -> Result<Vec<u8>, WireError> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find_crlf(&self.buf[at..]) {
                    break at + i;
                }
                if self.fill().await? == 0 {
                    return Err(WireError::Closed);
                }
            };
            let line = std::str::from_utf8(&self.buf[at..line_end]).unwrap_or("");
            let digits = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(digits, 16)
                .map_err(|_| WireError::Malformed(format!("chunk size line {line:?}")))?;
            at = line_end + 2;
            if size == 0 {
                // Trailers, then an empty line.
                loop {
                    match find_crlf(&self.buf[at..]) {
                        Some(0) => return Ok(body),
                        Some(i) => at += i + 2,
                        None if self.fill().await? == 0 => return Err(WireError::Closed),
                        None => {}
                    }
                }
            }
            while self.buf.len() < at + size + 2 {
                if self.fill().await? == 0 {
                    return Err(WireError::Closed);
                }
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
        }
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

/// How an answer's body ends.
#[derive(Debug, PartialEq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// What the head of an answer says.
#[derive(Debug)]
struct Head {
    status: u16,
    function_error: Option<String>,
    framing: Framing,
    /// `Connection: close`: do not reuse the connection.
    close: bool,
}

/// The head at the start of `buf` and its length, or `None` while it is
/// incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, WireError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(WireError::Malformed(e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let mut head = Head { status, function_error: None, framing: Framing::UntilClose, close: false };
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") && head.framing != Framing::Chunked {
            let n = value.parse().map_err(|_| WireError::Malformed(format!("Content-Length {value:?}")))?;
            head.framing = Framing::Length(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            head.framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            head.close = true;
        } else if h.name.eq_ignore_ascii_case("x-amz-function-error") {
            head.function_error = Some(value.to_owned());
        }
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        head.framing = Framing::Length(0);
    }
    if head.framing == Framing::UntilClose {
        head.close = true;
    }
    Ok(Some((len, head)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request on one connection with the next
    /// of `answers`, then closes it.
    async fn serve(answers: Vec<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for answer in answers {
                let _ = socket.read(&mut buf).await.unwrap();
                // Split the answer in two writes to exercise partial reads.
                let (a, b) = answer.as_bytes().split_at(answer.len() / 2);
                socket.write_all(a).await.unwrap();
                socket.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                socket.write_all(b).await.unwrap();
            }
        });
        format!("http://{addr}/x")
    }

    fn endpoint(url: &str) -> Arc<Endpoint> {
        Endpoint::of(&url.parse().unwrap(), Duration::from_secs(5)).unwrap()
    }

    const REQUEST: &[u8] = b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{}";

    #[tokio::test]
    async fn lengths_chunks_and_reuse() {
        let url = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Amz-Function-Error: Unhandled\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
            "HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let e = endpoint(&url);
        let a = e.exchange(REQUEST).await.unwrap();
        assert_eq!((a.status, a.function_error.as_deref(), &a.body[..]), (200, Some("Unhandled"), &b"hello"[..]));
        let b = e.exchange(REQUEST).await.unwrap();
        assert_eq!((b.status, &b.body[..]), (200, &b"abcde"[..]));
        let c = e.exchange(REQUEST).await.unwrap();
        assert_eq!(c.status, 202);
        assert!(e.take_idle().is_none(), "a closing connection is not kept");
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced() {
        // The first server answers once and closes; the retry needs a new
        // connection to the same listener, so serve on one that accepts twice.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let (mut first, _) = listener.accept().await.unwrap();
            let _ = first.read(&mut buf).await.unwrap();
            first.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na").await.unwrap();
            drop(first);
            let (mut second, _) = listener.accept().await.unwrap();
            let _ = second.read(&mut buf).await.unwrap();
            second.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb").await.unwrap();
        });
        let e = endpoint(&format!("http://{addr}/x"));
        assert_eq!(e.exchange(REQUEST).await.unwrap().body, b"a");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(e.exchange(REQUEST).await.unwrap().body, b"b");
    }

    #[tokio::test]
    async fn truncated_and_malformed_answers_are_errors() {
        let url = serve(vec!["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"]).await;
        assert!(matches!(endpoint(&url).exchange(REQUEST).await, Err(WireError::Closed)));
        let url = serve(vec!["NOT HTTP\r\n\r\n"]).await;
        assert!(matches!(endpoint(&url).exchange(REQUEST).await, Err(WireError::Malformed(_))));
        assert!(matches!(
            Endpoint::of(&"https://a:1/".parse().unwrap(), Duration::from_secs(1)),
            Err(WireError::Url(_))
        ));
    }
}
