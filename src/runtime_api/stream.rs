//! Streamed answers: a runtime that posts its response with
//! `Lambda-Runtime-Function-Response-Mode: streaming` sends a chunked body
//! that may take as long as the function runs, and may end it with error
//! trailers (`Lambda-Runtime-Function-Error-Type`, and
//! `Lambda-Runtime-Function-Error-Body`: base64 of the error document).
//!
//! The caller is handed a [`ResponseStream`] as soon as the headers arrive,
//! and each chunk is passed on as it is read, never gathered: a function
//! URL's client sees the first bytes while the function still runs. Only
//! buffered answers go through [`super::read_body`]; this path costs them
//! nothing.

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use base64::Engine as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::headers;

/// Largest streamed response, Lambda's figure for response streaming.
pub const MAX_STREAMED_RESPONSE: u64 = 200 * 1024 * 1024;
/// The content type of a stream whose runtime named none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// Chunks read ahead of a caller that has not taken them yet; beyond this
/// the runtime's writes wait (TCP back-pressure), as a slow client's would.
const CHUNKS_AHEAD: usize = 16;

/// How a streamed answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The body ended without error trailers.
    Complete,
    /// The runtime reported an error in the trailers: its error document
    /// (decoded from base64) and the type it declared.
    Failed { body: Bytes, error_type: Option<String> },
    /// Over [`MAX_STREAMED_RESPONSE`].
    TooLarge,
    /// The connection broke mid-body.
    Broken(String),
    /// The function's deadline passed before the body ended.
    TimedOut,
}

/// The caller's side of a streamed answer: the chunks as they arrive (the
/// channel closes when the body ends), then how it ended.
#[derive(Debug)]
pub struct ResponseStream {
    /// The runtime's `Content-Type`, [`DEFAULT_CONTENT_TYPE`] if it sent none.
    pub content_type: String,
    pub chunks: mpsc::Receiver<Bytes>,
    /// Sent once the body is over; dropped unsent if the container went away.
    pub end: oneshot::Receiver<StreamEnd>,
}

/// Streams are told apart by identity: no two are the same answer.
impl PartialEq for ResponseStream {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for ResponseStream {}

/// The runtime's side of a [`ResponseStream`].
#[derive(Debug)]
pub struct StreamWriter {
    chunks: mpsc::Sender<Bytes>,
    end: oneshot::Sender<StreamEnd>,
}

/// Whether a posted response asks to be streamed.
pub fn is_streaming(request_headers: &HeaderMap) -> bool {
    request_headers
        .get(headers::RESPONSE_MODE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("streaming"))
}

/// A connected pair for a response whose headers are `request_headers`.
pub fn channel(request_headers: &HeaderMap) -> (StreamWriter, ResponseStream) {
    let content_type = request_headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_CONTENT_TYPE)
        .to_owned();
    let (chunks_tx, chunks) = mpsc::channel(CHUNKS_AHEAD);
    let (end_tx, end) = oneshot::channel();
    (StreamWriter { chunks: chunks_tx, end: end_tx }, ResponseStream { content_type, chunks, end })
}

impl StreamWriter {
    /// Pass `body` on chunk by chunk until it ends, breaks, grows past the
    /// limit or runs past `deadline`; then tell the caller how it ended, and
    /// return that too. A caller that hung up stops getting chunks, but the
    /// body is still read to its end so the runtime's POST completes.
    pub async fn pump(self, body: Body, deadline: Instant) -> StreamEnd {
        let StreamWriter { chunks, end } = self;
        let ended = tokio::time::timeout_at(deadline, forward(body, chunks)).await.unwrap_or(StreamEnd::TimedOut);
        let _ = end.send(ended.clone());
        ended
    }
}

async fn forward(mut body: Body, chunks: mpsc::Sender<Bytes>) -> StreamEnd {
    use http_body_util::BodyExt as _;
    let mut seen: u64 = 0;
    let mut listening = true;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return StreamEnd::Broken(e.to_string()),
        };
        match frame.into_data() {
            Ok(data) => {
                seen += data.len() as u64;
                if seen > MAX_STREAMED_RESPONSE {
                    return StreamEnd::TooLarge;
                }
                if listening && !data.is_empty() && chunks.send(data).await.is_err() {
                    listening = false;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    return from_trailers(&trailers);
                }
            }
        }
    }
    StreamEnd::Complete
}

/// What the trailers say: an error when they declare one.
fn from_trailers(trailers: &HeaderMap) -> StreamEnd {
    let declared = trailers.contains_key(headers::FUNCTION_ERROR_TYPE);
    let body = trailers
        .get(headers::FUNCTION_ERROR_BODY)
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok())
        .map(Bytes::from);
    match (declared, body) {
        (false, None) => StreamEnd::Complete,
        (_, body) => StreamEnd::Failed {
            body: body.unwrap_or_default(),
            error_type: Some(super::declared_error_type(trailers).unwrap_or_else(|| "Function.Unknown".into())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::time::Duration;

    fn trailers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// A request body fed chunk by chunk.
    fn body_of(rx: mpsc::Receiver<Bytes>) -> Body {
        Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
        }))
    }

    #[test]
    fn trailers_carry_the_error() {
        assert_eq!(from_trailers(&HeaderMap::new()), StreamEnd::Complete);
        let doc = r#"{"errorType":"Error","errorMessage":"boom"}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(doc);
        let end = from_trailers(&trailers(&[
            (headers::FUNCTION_ERROR_TYPE, "Function.Boom"),
            (headers::FUNCTION_ERROR_BODY, &b64),
        ]));
        assert_eq!(end, StreamEnd::Failed { body: Bytes::from(doc), error_type: Some("Function.Boom".into()) });
        // Node's client sends the JavaScript error's name, which Lambda does not keep.
        let end = from_trailers(&trailers(&[(headers::FUNCTION_ERROR_TYPE, "TypeError")]));
        assert_eq!(end, StreamEnd::Failed { body: Bytes::new(), error_type: Some("Runtime.Unknown".into()) });
    }

    #[tokio::test]
    async fn chunks_pass_one_by_one_then_the_end() {
        let mut h = HeaderMap::new();
        h.insert(headers::RESPONSE_MODE, HeaderValue::from_static("streaming"));
        assert!(is_streaming(&h));
        let (writer, mut stream) = channel(&h);
        assert_eq!(stream.content_type, DEFAULT_CONTENT_TYPE);
        let (tx, rx) = mpsc::channel(4);
        let pump = tokio::spawn(writer.pump(body_of(rx), Instant::now() + Duration::from_secs(5)));
        tx.send(Bytes::from_static(b"one")).await.unwrap();
        assert_eq!(stream.chunks.recv().await.unwrap(), "one", "before the body ends");
        tx.send(Bytes::from_static(b"two")).await.unwrap();
        drop(tx);
        assert_eq!(stream.chunks.recv().await.unwrap(), "two");
        assert!(stream.chunks.recv().await.is_none());
        assert_eq!(stream.end.await.unwrap(), StreamEnd::Complete);
        assert_eq!(pump.await.unwrap(), StreamEnd::Complete);
    }

    #[tokio::test]
    async fn a_body_past_the_deadline_times_out() {
        let (writer, stream) = channel(&HeaderMap::new());
        let (_tx, rx) = mpsc::channel(1);
        let ended = writer.pump(body_of(rx), Instant::now() + Duration::from_millis(20)).await;
        assert_eq!(ended, StreamEnd::TimedOut);
        assert_eq!(stream.end.await.unwrap(), StreamEnd::TimedOut);
    }
}
