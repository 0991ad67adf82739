//! RESPONSE_STREAM URLs: the function's bytes go to the HTTP client as
//! the function writes them.
//!
//! A stream of type [`HTTP_INTEGRATION`] (Node's
//! `awslambda.HttpResponseStream.from`) opens with a JSON prelude naming
//! the status, headers and cookies, then 8 NUL bytes; the rest is the body.
//! Any other stream is a 200 of the stream's own content type. The head is
//! sent once the first bytes (or the prelude) are here, so a function that
//! fails before writing anything still answers 502; a failure after that
//! cuts the response short (the chunked body never ends properly), as the
//! status has gone out.
//!
//! A function that does not stream answers with its whole result, raw, as
//! Lambda does behind a RESPONSE_STREAM URL.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::Response;

use super::{answer, UrlError};
use crate::engine::{Answer, StreamDone, StreamEvent, StreamedResponse};

/// The content type of a stream that opens with an HTTP prelude.
pub const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
/// What ends the prelude.
const DELIMITER: [u8; 8] = [0; 8];
/// Largest prelude: headers and cookies, as a buffered answer's would be.
const MAX_PRELUDE: usize = 64 * 1024;

/// The response for a RESPONSE_STREAM URL.
pub async fn response(answer: Answer) -> Result<Response, UrlError> {
    match answer {
        Answer::Buffered(out) if out.function_error.is_some() => {
            Err(UrlError::Function(String::from_utf8_lossy(&out.payload).into_owned()))
        }
        Answer::Buffered(out) => {
            let mut r = Response::new(Body::from(out.payload));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(r)
        }
        Answer::Streamed(s) if s.content_type.eq_ignore_ascii_case(HTTP_INTEGRATION) => with_prelude(s).await,
        Answer::Streamed(s) => plain(s).await,
    }
}

/// A failure before the head went out: 502.
fn failed(done: &StreamDone) -> UrlError {
    let doc = done.error.as_ref().map_or_else(String::new, |d| String::from_utf8_lossy(d).into_owned());
    UrlError::Function(doc)
}

/// A stream without a prelude: 200, its content type, its bytes.
async fn plain(mut s: StreamedResponse) -> Result<Response, UrlError> {
    let first = match s.next_event().await {
        Some(StreamEvent::Chunk(chunk)) => chunk,
        Some(StreamEvent::Done(done)) if done.error.is_some() => return Err(failed(&done)),
        Some(StreamEvent::Done(_)) | None => Bytes::new(),
    };
    let content_type = HeaderValue::from_str(&s.content_type)
        .unwrap_or(HeaderValue::from_static(crate::runtime_api::stream::DEFAULT_CONTENT_TYPE));
    let mut r = Response::new(body(first, s));
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    Ok(r)
}

/// A stream that opens with the HTTP prelude.
async fn with_prelude(mut s: StreamedResponse) -> Result<Response, UrlError> {
    let mut opening: Vec<u8> = Vec::new();
    let split = loop {
        match s.next_event().await {
            Some(StreamEvent::Chunk(chunk)) => opening.extend_from_slice(&chunk),
            Some(StreamEvent::Done(done)) if done.error.is_some() => return Err(failed(&done)),
            _ => return Err(UrlError::Function("the stream ended inside its HTTP prelude".into())),
        }
        if let Some(at) = opening.windows(DELIMITER.len()).position(|w| w == DELIMITER) {
            break at;
        }
        if opening.len() > MAX_PRELUDE {
            return Err(UrlError::Function(format!("the stream's HTTP prelude is over {MAX_PRELUDE} bytes")));
        }
    };
    let (status, headers) = answer::prelude(&opening[..split]).map_err(|e| UrlError::Function(e.to_string()))?;
    let rest = Bytes::from(opening).slice(split + DELIMITER.len()..);
    let mut r = Response::new(body(rest, s));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    if !r.headers().contains_key(header::CONTENT_TYPE) {
        let octets = HeaderValue::from_static(crate::runtime_api::stream::DEFAULT_CONTENT_TYPE);
        r.headers_mut().insert(header::CONTENT_TYPE, octets);
    }
    Ok(r)
}

/// `first`, then the rest of the stream as it comes; an error at the end
/// breaks the body off so the client sees an incomplete response.
fn body(first: Bytes, rest: StreamedResponse) -> Body {
    let first = (!first.is_empty()).then_some(Ok(first));
    let rest = futures_util::stream::unfold(rest, |mut s| async move {
        match s.next_event().await? {
            StreamEvent::Chunk(chunk) => Some((Ok(chunk), s)),
            StreamEvent::Done(done) => {
                let why = done.error.map(|doc| String::from_utf8_lossy(&doc).into_owned())?;
                tracing::info!(error = %why, "a streamed function URL response was cut short");
                Some((Err(std::io::Error::other(why)), s))
            }
        }
    });
    Body::from_stream(futures_util::StreamExt::chain(futures_util::stream::iter(first), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use tokio::sync::{mpsc, oneshot};

    /// A stream of `chunks` of type `content_type`, ending with `done`.
    fn streamed(content_type: &str, chunks: &[&'static [u8]], done: StreamDone) -> StreamedResponse {
        let (tx, rx) = mpsc::channel(chunks.len().max(1));
        for chunk in chunks {
            tx.try_send(Bytes::from_static(chunk)).unwrap();
        }
        let (done_tx, done_rx) = oneshot::channel();
        done_tx.send(done).unwrap();
        StreamedResponse::new(content_type.into(), "$LATEST".into(), "id".into(), rx, done_rx)
    }

    async fn read(r: Response) -> (u16, String, Result<Bytes, axum::Error>) {
        let content_type = r.headers().get("content-type").map_or("", |v| v.to_str().unwrap()).to_owned();
        (r.status().as_u16(), content_type, axum::body::to_bytes(r.into_body(), usize::MAX).await)
    }

    #[tokio::test]
    async fn a_prelude_sets_the_head_and_the_rest_is_the_body() {
        let chunks: [&[u8]; 4] =
            [br#"{"statusCode":201,"headers":{"content-type":"text/plain"}}"#, b"\0\0\0", b"\0\0\0\0\0he", b"llo"];
        let r = response(Answer::Streamed(streamed(HTTP_INTEGRATION, &chunks, StreamDone::default()))).await;
        let (status, content_type, body) = read(r.unwrap()).await;
        assert_eq!((status, content_type.as_str(), body.unwrap().as_ref()), (201, "text/plain", &b"hello"[..]));
    }

    #[tokio::test]
    async fn a_plain_stream_is_a_200_of_its_type_and_failures_502_or_cut_it_short() {
        let ok = streamed("text/event-stream", &[b"a", b"b"], StreamDone::default());
        let (status, content_type, body) = read(response(Answer::Streamed(ok)).await.unwrap()).await;
        assert_eq!((status, content_type.as_str(), body.unwrap().as_ref()), (200, "text/event-stream", &b"ab"[..]));

        let failure = StreamDone { error: Some(Bytes::from_static(b"{}")), log_tail: None };
        let early = streamed("text/plain", &[], failure.clone());
        let r = response(Answer::Streamed(early)).await.unwrap_err().into_response();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY, "nothing was written: the head can still say so");
        let late = streamed("text/plain", &[b"partial"], failure);
        let (status, _, body) = read(response(Answer::Streamed(late)).await.unwrap()).await;
        assert!(status == 200 && body.is_err(), "the body is broken off");
    }

    #[tokio::test]
    async fn a_buffered_answer_behind_a_stream_url_is_its_raw_result() {
        let out = crate::engine::InvokeResponse {
            payload: Bytes::from_static(br#"{"statusCode":201,"body":"x"}"#),
            function_error: None,
            executed_version: "$LATEST".into(),
            request_id: "id".into(),
            log_tail: None,
            cost: None,
        };
        let r = response(Answer::Buffered(out.clone())).await.unwrap();
        assert_eq!(r.status(), 200);
        let body = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
        assert_eq!(body, out.payload);
        let failed = crate::engine::InvokeResponse { function_error: Some("Unhandled"), ..out };
        let r = response(Answer::Buffered(failed)).await.unwrap_err().into_response();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    }
}
