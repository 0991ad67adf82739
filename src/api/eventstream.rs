//! AWS event-stream framing (`application/vnd.amazon.eventstream`), the
//! body of InvokeWithResponseStream: a run of self-delimiting messages.
//!
//! Each message is, big-endian: total length (u32), headers length (u32),
//! the CRC32 of those 8 bytes, the headers, the payload, then the CRC32 of
//! everything before it (IEEE CRC32, as zlib's). A header is its name's
//! length (u8), the name, a type byte (7: string), the value's length
//! (u16) and the value. SDKs check both CRCs and drop the stream on a
//! mismatch, so every message is built whole here, then written at once.

use bytes::{BufMut, Bytes, BytesMut};

/// Header value type 7: a UTF-8 string.
const STRING: u8 = 7;
/// Total length, headers length, prelude CRC.
const PRELUDE: usize = 12;
/// The message CRC.
const TRAILER: usize = 4;

/// One message with string `headers` and `payload`. Header names are at
/// most 255 bytes and values at most 65,535: ours are constants.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers.iter().map(|(n, v)| 1 + n.len() + 1 + 2 + v.len()).sum();
    let total = PRELUDE + headers_len + payload.len() + TRAILER;
    let mut buf = BytesMut::with_capacity(total);
    buf.put_u32(u32::try_from(total).expect("a message under 4 GiB"));
    buf.put_u32(u32::try_from(headers_len).expect("headers under 4 GiB"));
    let prelude_crc = crc32fast::hash(&buf[..8]);
    buf.put_u32(prelude_crc);
    for (name, value) in headers {
        buf.put_u8(u8::try_from(name.len()).expect("a header name under 256 bytes"));
        buf.put_slice(name.as_bytes());
        buf.put_u8(STRING);
        buf.put_u16(u16::try_from(value.len()).expect("a header value under 64 KiB"));
        buf.put_slice(value.as_bytes());
    }
    buf.put_slice(payload);
    let message_crc = crc32fast::hash(&buf);
    buf.put_u32(message_crc);
    buf.freeze()
}

/// An event of type `event_type` whose payload is of `content_type`.
fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Bytes {
    message(&[(":event-type", event_type), (":content-type", content_type), (":message-type", "event")], payload)
}

/// `PayloadChunk`: bytes the function wrote, as they are.
pub fn payload_chunk(payload: &[u8]) -> Bytes {
    event("PayloadChunk", "application/octet-stream", payload)
}

/// What `InvokeComplete` reports; absent fields are left out.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeComplete {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
    /// The log tail, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_result: Option<String>,
}

/// `InvokeComplete`: the last message of every stream.
pub fn invoke_complete(done: &InvokeComplete) -> Bytes {
    let json = serde_json::to_vec(done).expect("strings serialize");
    event("InvokeComplete", "application/json", &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read back one message, checking both CRCs: headers and payload.
    fn decode(m: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
        let word = |at: usize| u32::from_be_bytes(m[at..at + 4].try_into().unwrap());
        let (total, headers_len) = (word(0) as usize, word(4) as usize);
        assert_eq!(total, m.len());
        assert_eq!(word(8), crc32fast::hash(&m[..8]), "prelude CRC");
        assert_eq!(word(total - 4), crc32fast::hash(&m[..total - 4]), "message CRC");
        let (mut at, mut headers) = (PRELUDE, Vec::new());
        while at < PRELUDE + headers_len {
            let n = m[at] as usize;
            let name = String::from_utf8(m[at + 1..at + 1 + n].to_vec()).unwrap();
            assert_eq!(m[at + 1 + n], STRING);
            let len = u16::from_be_bytes([m[at + 2 + n], m[at + 3 + n]]) as usize;
            let value = String::from_utf8(m[at + 4 + n..at + 4 + n + len].to_vec()).unwrap();
            headers.push((name, value));
            at += 4 + n + len;
        }
        (headers, m[PRELUDE + headers_len..total - 4].to_vec())
    }

    #[test]
    fn an_empty_message_matches_aws_test_vector() {
        // aws-c-event-stream's "empty_message" encoded vector.
        let expected = [0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff];
        assert_eq!(message(&[], b"").as_ref(), expected);
    }

    #[test]
    fn a_message_matches_an_independent_encoding() {
        // Built with Python's struct and zlib.crc32 from the layout above,
        // and read back by botocore's EventStreamBuffer as
        // `{':message-type': 'event'} b'hi'`.
        let expected: [u8; 40] = [
            0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x16, 0x60, 0x47, 0x0e, 0xfd, 0x0d, 0x3a, 0x6d, 0x65, 0x73, 0x73,
            0x61, 0x67, 0x65, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x05, 0x65, 0x76, 0x65, 0x6e, 0x74, 0x68, 0x69,
            0xcc, 0x2d, 0xdf, 0x13,
        ];
        assert_eq!(message(&[(":message-type", "event")], b"hi").as_ref(), expected);
    }

    #[test]
    fn events_carry_lambdas_headers() {
        let (headers, payload) = decode(&payload_chunk(b"hello"));
        let names: Vec<_> = headers.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(
            names,
            [":event-type=PayloadChunk", ":content-type=application/octet-stream", ":message-type=event"]
        );
        assert_eq!(payload, b"hello");
        let done = InvokeComplete { error_code: Some("Sandbox.Timedout".into()), ..InvokeComplete::default() };
        let (headers, payload) = decode(&invoke_complete(&done));
        assert_eq!(headers[0], (":event-type".into(), "InvokeComplete".into()));
        assert_eq!(headers[1], (":content-type".into(), "application/json".into()));
        assert_eq!(payload, br#"{"ErrorCode":"Sandbox.Timedout"}"#);
        assert_eq!(decode(&invoke_complete(&InvokeComplete::default())).1, b"{}");
    }
}
