//! The hub and sessions against a scripted init on in-memory and unix
//! streams: admission, ordering, flow control, hostile frames, death.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use bytes::Bytes;
use lambdabox_protocol::mux::{CodeRef, Frame, Header, Hello, Kind, Purpose, HEADER_LEN, MAX_DATA, WINDOW};
use tokio::io::{AsyncWriteExt, DuplexStream};

use super::session::{self, read_frame, Parts};
use super::*;
use crate::logs::{LogBook, PlatformLines, Report};
use crate::runtime_api::{ExitReason, Invocation, Outcome};

/// Generous: only a broken implementation waits this long.
const LIMIT: Duration = Duration::from_secs(20);

async fn send<W: AsyncWriteExt + Unpin>(w: &mut W, f: Frame) {
    w.write_all(&f.encode().unwrap()).await.unwrap();
}

async fn recv<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Option<Frame> {
    tokio::time::timeout(LIMIT, read_frame(r)).await.expect("a frame in time").ok().flatten()
}

fn parts() -> Parts {
    Parts {
        mailbox: Arc::new(Mailbox::new()),
        log: Arc::new(ContainerLog::new()),
        peak: Arc::default(),
        code: Arc::default(),
    }
}

/// A session on an in-memory stream; returns init's end.
fn session_with(app: axum::Router, parts: Parts) -> (DuplexStream, tokio::task::JoinHandle<()>) {
    let (init, ours) = tokio::io::duplex(4 * MAX_DATA);
    let task = tokio::spawn(session::run(Box::new(ours), app, parts));
    (init, task)
}

fn invocation(id: &str) -> Invocation {
    Invocation::for_tests(id, Duration::from_secs(30))
}

/// Read frames until stream `id` has carried `until`; Window frames skipped.
async fn read_stream(init: &mut DuplexStream, id: u32, until: &str) -> String {
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains(until) {
        match recv(init).await {
            Some(Frame::Data(s, bytes)) if s == id => got.extend(bytes),
            Some(Frame::Window(..)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    String::from_utf8(got).unwrap()
}

#[tokio::test]
async fn output_printed_before_the_response_arrives_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = parts();
    p.log.adopt("f".into(), Arc::new(LogBook::open(dir.path()).unwrap()), Box::new(|| None));
    let app = crate::runtime_api::router(p.mailbox.clone());
    let (mut init, _task) = session_with(app, p.clone());
    p.log.begin("r1", "$LATEST", PlatformLines::Text);
    let ticket = p.mailbox.deliver(invocation("r1")).unwrap();
    send(&mut init, Frame::Open(1)).await;
    let next = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n".to_vec();
    send(&mut init, Frame::Data(1, next)).await;
    read_stream(&mut init, 1, "\r\n\r\n{}").await;
    send(&mut init, Frame::Log(b"printed before answering\n".to_vec())).await;
    send(&mut init, Frame::Peak(42 << 20)).await;
    let post = b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nok";
    send(&mut init, Frame::Data(1, post.to_vec())).await;
    assert_eq!(ticket.outcome.await.unwrap(), Outcome::Response(Bytes::from_static(b"ok")));
    let report = Report {
        request_id: "r1".into(),
        duration: Duration::from_millis(1),
        memory_mb: 128,
        max_memory_used_mb: None,
        init_duration: None,
        timed_out: None,
        lines: PlatformLines::Text,
    };
    let tail = String::from_utf8(p.log.finish(report, true).unwrap().to_vec()).unwrap();
    assert!(tail.contains("printed before answering\nEND RequestId: r1"), "{tail}");
    assert_eq!(p.peak.load(std::sync::atomic::Ordering::Acquire), 42 << 20);
}

/// A body larger than a few windows, for the flow-control test.
const BIG: usize = 3 * WINDOW as usize + 1000;

#[tokio::test]
async fn streams_interleave_and_never_exceed_the_window() {
    let app = axum::Router::new()
        .route("/big", get(|| async { vec![b'x'; BIG] }))
        .route("/small", get(|| async { "small answer" }));
    let (mut init, _task) = session_with(app, parts());
    send(&mut init, Frame::Open(1)).await;
    send(&mut init, Frame::Open(3)).await;
    send(&mut init, Frame::Data(1, b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n".to_vec())).await;
    send(&mut init, Frame::Data(3, b"GET /small HTTP/1.1\r\nhost: x\r\n\r\n".to_vec())).await;
    // Stream 3 is answered in full while stream 1 waits for credit, and
    // stream 1 never gets more than the credit init gave.
    let (mut granted, mut big, mut small) = (u64::from(WINDOW), 0u64, Vec::new());
    while !String::from_utf8_lossy(&small).contains("small answer") || big < granted {
        match recv(&mut init).await {
            Some(Frame::Data(1, bytes)) => big += bytes.len() as u64,
            Some(Frame::Data(3, bytes)) => small.extend(bytes),
            Some(Frame::Window(..)) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(big <= granted, "{big} bytes sent against {granted} of credit");
    }
    while big < BIG as u64 {
        send(&mut init, Frame::Window(1, WINDOW)).await;
        granted += u64::from(WINDOW);
        while big < granted.min(BIG as u64) {
            match recv(&mut init).await {
                Some(Frame::Data(1, bytes)) => big += bytes.len() as u64,
                Some(Frame::Window(..)) => {}
                other => panic!("unexpected {other:?}"),
            }
            assert!(big <= granted);
        }
    }
}

async fn ends(task: tokio::task::JoinHandle<()>) -> bool {
    tokio::time::timeout(LIMIT, task).await.is_ok()
}

#[tokio::test]
async fn data_past_the_window_ends_the_session() {
    // The handler never reads the body: nothing is passed on, no credit back.
    let app = axum::Router::new().route("/", axum::routing::post(std::future::pending::<&'static str>));
    let (mut init, task) = session_with(app, parts());
    send(&mut init, Frame::Open(1)).await;
    let head = format!("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n", 4 * WINDOW);
    send(&mut init, Frame::Data(1, head.into_bytes())).await;
    tokio::spawn(async move {
        for _ in 0..(4 * WINDOW as usize / MAX_DATA) {
            if init.write_all(&Frame::Data(1, vec![0; MAX_DATA]).encode().unwrap()).await.is_err() {
                return;
            }
        }
        std::future::pending::<()>().await;
    });
    assert!(ends(task).await, "the session ended");
}

#[tokio::test]
async fn oversized_unknown_and_misplaced_frames_end_the_session() {
    let oversized = Header::encode(Kind::Log, 0, MAX_DATA + 1).to_vec();
    let mut unknown = Header::encode(Kind::Log, 0, 0).to_vec();
    unknown[0] = b'?';
    let misplaced = Frame::Fetch("0".repeat(64)).encode().unwrap();
    let credit = Frame::Window(1, 1).encode().unwrap();
    let over_credit = [Frame::Open(1).encode().unwrap(), credit].concat();
    for bytes in [oversized, unknown, misplaced, over_credit] {
        assert!(bytes.len() >= HEADER_LEN);
        let (mut init, task) = session_with(axum::Router::new(), parts());
        init.write_all(&bytes).await.unwrap();
        assert!(ends(task).await, "{:?}", &bytes[..1]);
    }
}

#[test]
fn listen_addresses_parse() {
    assert_eq!("unix:/run/x.sock".parse::<Listen>(), Ok(Listen::Unix("/run/x.sock".into())));
    assert_eq!("10.0.0.1:7000".parse::<Listen>(), Ok(Listen::Tcp("10.0.0.1:7000".parse().unwrap())));
    assert!("unix:relative".parse::<Listen>().is_err() && "nowhere".parse::<Listen>().is_err());
}

#[test]
fn secrets_compare_whole() {
    assert!(same_secret("abcd", "abcd"));
    assert!(!same_secret("abcd", "abce") && !same_secret("abcd", "abc") && !same_secret("", "a"));
}

async fn hub(dir: &std::path::Path) -> Arc<Hub> {
    Hub::bind(&Listen::Unix(dir.join("hub.sock")), None, dir.join("archives"), None).await.unwrap()
}

async fn dial(dir: &std::path::Path, purpose: Purpose, id: &str, token: &str) -> tokio::net::UnixStream {
    let mut s = tokio::net::UnixStream::connect(dir.join("hub.sock")).await.unwrap();
    send(&mut s, Frame::Hello(Hello { purpose, id: id.into(), token: token.into() })).await;
    s
}

#[tokio::test]
async fn only_a_registered_id_with_its_token_gets_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(dir.path()).await;
    let mut reg = hub.register("c1", Vec::new());
    assert_eq!(reg.token.len(), 64);
    assert_ne!(hub.register("c2", Vec::new()).token, reg.token);
    for (id, token) in [("c1", "0".repeat(64)), ("c9", reg.token.clone()), ("c1", String::new())] {
        let mut refused = dial(dir.path(), Purpose::Session, id, &token).await;
        assert_eq!(recv(&mut refused).await, None, "{id} with a wrong token is dropped");
    }
    let _held = dial(dir.path(), Purpose::Session, "c1", &reg.token).await;
    assert!(tokio::time::timeout(LIMIT, reg.session()).await.unwrap().is_some());
    let mut second = dial(dir.path(), Purpose::Session, "c1", &reg.token).await;
    assert_eq!(recv(&mut second).await, None, "a second session is refused");
    let token = reg.token.clone();
    drop(reg);
    let mut after = dial(dir.path(), Purpose::Fetch, "c1", &token).await;
    send(&mut after, Frame::Fetch("0".repeat(64))).await;
    assert_eq!(recv(&mut after).await, None, "an unregistered container fetches nothing");
}

#[tokio::test]
async fn a_dropped_connection_is_the_containers_death() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(dir.path()).await;
    let reg = hub.register("c1", Vec::new());
    let token = reg.token.clone();
    let (mailbox, log) = (Arc::new(Mailbox::new()), Arc::new(ContainerLog::new()));
    let app = crate::runtime_api::router(mailbox.clone());
    tokio::spawn(serve(reg, mailbox.clone(), log, app));
    let ticket = mailbox.deliver(invocation("r1")).unwrap();
    let conn = dial(dir.path(), Purpose::Session, "c1", &token).await;
    drop(conn);
    let outcome = tokio::time::timeout(LIMIT, ticket.outcome).await.unwrap().unwrap();
    assert!(
        matches!(outcome, Outcome::Exited(ExitReason::ConnectionLost) | Outcome::NotTaken(ExitReason::ConnectionLost)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn code_is_served_by_digest_to_containers_given_it() {
    use lambdabox_protocol::archive::{Decoder, Entry, Limits};
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(dir.path()).await;
    let code = dir.path().join("code");
    std::fs::create_dir_all(code.join("pkg")).unwrap();
    std::fs::write(code.join("pkg/app.py"), "print('hi')").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", code.join("escape")).unwrap();
    let digest = hub.code().publish(&code).await.unwrap();
    assert_eq!(hub.code().publish(&code).await.unwrap(), digest, "packed once, same name");
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let other_digest = hub.code().publish(&other).await.unwrap();
    assert_ne!(digest, other_digest);

    let reg = hub.register("c1", vec![CodeRef { dest: "/var/task".into(), digest: digest.clone() }]);
    let mut conn = dial(dir.path(), Purpose::Fetch, "c1", &reg.token).await;
    send(&mut conn, Frame::Fetch(digest.clone())).await;
    let mut archive = Vec::new();
    loop {
        match recv(&mut conn).await {
            Some(Frame::Chunk(b)) => archive.extend(b),
            Some(Frame::End) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut hash = lambdabox_protocol::sha256::Sha256::new();
    hash.update(&archive);
    assert_eq!(hash.finish_hex(), digest, "named by what is served");
    let mut d = Decoder::new(&archive[..], Limits::default()).unwrap();
    assert_eq!(d.next_entry().unwrap(), Entry::Dir { path: "pkg".into(), mode: 0o755 });
    assert!(matches!(d.next_entry().unwrap(), Entry::File { size: 11, .. }));
    assert_eq!(d.next_entry().unwrap(), Entry::End, "the escaping link was left out");

    send(&mut conn, Frame::Fetch(other_digest)).await;
    assert_eq!(recv(&mut conn).await, None, "code the container was not given is refused");
}

/// A TCP hub on loopback speaking TLS with an `auto` certificate.
async fn tls_hub(dir: &std::path::Path) -> Arc<Hub> {
    let source = tls::TlsSource::Auto { dir: dir.join("tls") };
    let listen = Listen::Tcp("127.0.0.1:0".parse().unwrap());
    Hub::bind(&listen, None, dir.join("archives"), Some(&source)).await.unwrap()
}

/// A TLS connection to `hub` trusting the PEM `ca` alone, hello sent.
async fn tls_dial(
    hub: &Hub,
    ca: &str,
    purpose: Purpose,
    id: &str,
    token: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let address = &hub.access().controller;
    let host = ServerName::try_from(lambdabox_protocol::host_of(address).unwrap().to_owned()).unwrap();
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(host, tcp).await?;
    send(&mut s, Frame::Hello(Hello { purpose, id: id.into(), token: token.into() })).await;
    s.flush().await?;
    Ok(s)
}

#[tokio::test]
async fn a_tls_hello_is_admitted_and_code_comes_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let hub = tls_hub(dir.path()).await;
    let ca = hub.access().ca.clone().expect("containers are told what to trust");
    assert!(hub.access().controller.starts_with("127.0.0.1:"), "{:?}", hub.access());
    let mut reg = hub.register("c1", Vec::new());
    let _held = tls_dial(&hub, &ca, Purpose::Session, "c1", &reg.token).await.unwrap();
    assert!(tokio::time::timeout(LIMIT, reg.session()).await.unwrap().is_some());

    let code = dir.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("app.py"), "x".repeat(3 * MAX_DATA)).unwrap();
    let digest = hub.code().publish(&code).await.unwrap();
    let reg = hub.register("c2", vec![CodeRef { dest: "/var/task".into(), digest: digest.clone() }]);
    let mut conn = tls_dial(&hub, &ca, Purpose::Fetch, "c2", &reg.token).await.unwrap();
    send(&mut conn, Frame::Fetch(digest.clone())).await;
    conn.flush().await.unwrap();
    let mut hash = lambdabox_protocol::sha256::Sha256::new();
    loop {
        match recv(&mut conn).await {
            Some(Frame::Chunk(b)) => hash.update(&b),
            Some(Frame::End) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(hash.finish_hex(), digest, "the whole archive, through TLS");
}

#[tokio::test]
async fn a_plaintext_client_to_a_tls_hub_is_dropped() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let hub = tls_hub(dir.path()).await;
    let mut reg = hub.register("c1", Vec::new());
    let mut plain = tokio::net::TcpStream::connect(&hub.access().controller).await.unwrap();
    send(&mut plain, Frame::Hello(Hello { purpose: Purpose::Session, id: "c1".into(), token: reg.token.clone() }))
        .await;
    // At most a TLS alert, then the end.
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(LIMIT, plain.read_to_end(&mut answer)).await.expect("the hub hangs up");
    assert!(answer.len() < 16, "{answer:?}");
    let admitted = tokio::time::timeout(Duration::from_millis(300), reg.session()).await;
    assert!(admitted.is_err(), "a plaintext hello is never admitted");
}

#[tokio::test]
async fn a_client_trusting_another_certificate_fails_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let hub = tls_hub(dir.path()).await;
    let other = tls::ServerTls::load(&tls::TlsSource::Auto { dir: dir.path().join("other") }, "127.0.0.1").unwrap();
    assert_ne!(Some(&other.trust), hub.access().ca.as_ref());
    let reg = hub.register("c1", Vec::new());
    let err = tls_dial(&hub, &other.trust, Purpose::Session, "c1", &reg.token).await.unwrap_err();
    assert!(err.to_string().contains("invalid peer certificate"), "{err}");
}

#[tokio::test]
async fn tls_is_refused_on_a_unix_socket_hub() {
    let dir = tempfile::tempdir().unwrap();
    let source = tls::TlsSource::Auto { dir: dir.path().join("tls") };
    let listen = Listen::Unix(dir.path().join("hub.sock"));
    let err = Hub::bind(&listen, None, dir.path().join("archives"), Some(&source)).await.unwrap_err();
    assert!(matches!(err, RemoteError::TlsOnUnix), "{err}");
}

/// The handshake is inside the hello's time: a client that starts one and
/// stalls is dropped when a silent one would be.
#[tokio::test(start_paused = true)]
async fn a_client_stalling_in_the_handshake_is_dropped_in_hello_time() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let hub = tls_hub(dir.path()).await;
    let mut stalled = tokio::net::TcpStream::connect(&hub.access().controller).await.unwrap();
    // The start of a TLS record (a handshake), and no more.
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(LIMIT, stalled.read_to_end(&mut rest)).await.expect("dropped");
    assert!(started.elapsed() >= HELLO_TIME - Duration::from_millis(100), "{:?}", started.elapsed());
}
