//! InvokeWithResponseStream (`POST /2021-11-15/functions/{name}/
//! response-streaming-invocations`): Invoke whose answer is an event
//! stream ([`super::eventstream`]), one `PayloadChunk` per chunk the
//! function writes, sent as it is written, then `InvokeComplete`.
//!
//! A function that does not stream (every runtime but Node's streaming
//! handlers and custom runtimes that stream) is answered the same way: its
//! whole answer as one `PayloadChunk`. A function error, whenever it comes,
//! is told in `InvokeComplete` (`ErrorCode`: the error document's
//! `errorType`; `ErrorDetails`: the document), after whatever was written:
//! the HTTP status is already 200 by then.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use base64::Engine as _;

use super::eventstream::{self, InvokeComplete};
use super::{invocation_headers, ApiResult, InvocationType, InvokeInput};
use crate::engine::{Answer, Engine, InvokeResponse, StreamDone, StreamEvent, StreamedResponse};

/// The content type of a non-streaming function's answer.
const BUFFERED_CONTENT_TYPE: &str = "application/json";

pub(super) async fn invoke(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    use InvocationType::*;
    let input = InvokeInput::read(&name, &q, &headers, body, &[RequestResponse, DryRun]).await?;
    if input.invocation_type == DryRun {
        return input.dry_run(&engine);
    }
    Ok(match engine.invoke_streaming(input.request()).await? {
        Answer::Buffered(out) => buffered(out),
        Answer::Streamed(streamed) => self::streamed(streamed),
    })
}

/// The 200 every answer starts with.
fn answer(body: Body, content_type: &str, executed_version: &str, request_id: &str) -> Response {
    let mut response = Response::new(body);
    let h = response.headers_mut();
    let content_type = HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static(BUFFERED_CONTENT_TYPE));
    h.insert(header::CONTENT_TYPE, content_type);
    invocation_headers(h, executed_version, request_id);
    response
}

/// `InvokeComplete` for how an invocation ended.
fn complete(done: &StreamDone) -> Bytes {
    eventstream::invoke_complete(&InvokeComplete {
        error_code: done.error_type(),
        error_details: done.error.as_ref().map(|doc| String::from_utf8_lossy(doc).into_owned()),
        log_result: done.log_tail.as_ref().map(|tail| base64::engine::general_purpose::STANDARD.encode(tail)),
    })
}

/// A whole answer: one chunk (none if the function failed), then the end.
fn buffered(out: InvokeResponse) -> Response {
    let failed = out.function_error.is_some();
    let done = StreamDone { error: failed.then(|| out.payload.clone()), log_tail: out.log_tail };
    let mut frames = Vec::with_capacity(2);
    if !failed {
        frames.push(eventstream::payload_chunk(&out.payload));
    }
    frames.push(complete(&done));
    let body = Body::from(frames.concat());
    answer(body, BUFFERED_CONTENT_TYPE, &out.executed_version, &out.request_id)
}

/// A streamed answer: each chunk framed as it arrives, then the end.
fn streamed(streamed: StreamedResponse) -> Response {
    let content_type = streamed.content_type.clone();
    let (version, request_id) = (streamed.executed_version.clone(), streamed.request_id.clone());
    let frames = futures_util::stream::unfold(streamed, |mut s| async move {
        let frame = match s.next_event().await? {
            StreamEvent::Chunk(chunk) => eventstream::payload_chunk(&chunk),
            StreamEvent::Done(done) => complete(&done),
        };
        Some((Ok::<_, Infallible>(frame), s))
    });
    answer(Body::from_stream(frames), &content_type, &version, &request_id)
}
