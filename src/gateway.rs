//! Projects' API routes, served as `sam local start-api` serves them, and
//! the record of what each project (stack) owns.
//!
//! `lambdabox up` sends the controller one [`StackRecord`] per stack: the
//! functions and rules it created (so the next `up` knows what to prune),
//! and its `Api`/`HttpApi` routes with the address to serve them on. The
//! controller keeps each record as a file under `DATA_DIR/stacks/`, binds
//! the address if nothing does yet, and serves the routes until shutdown,
//! and again after a restart: the routes live in the controller, so `up`
//! can return (and a background controller serve them).
//!
//! A request takes the most specific route ([`table`]), becomes a payload
//! 1.0 or 2.0 event ([`event`]) and one synchronous invocation; the result
//! is mapped as function URLs map theirs ([`crate::urls::answer`]). A
//! function error or a result that is no response answers 502
//! `{"message":"Internal server error"}`; no route, 403 `{"message":"Missing
//! Authentication Token"}`, as API Gateway does.

pub mod event;
pub mod table;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, InvokeRequest};
use crate::function::{FunctionRef, MAX_SYNC_PAYLOAD};
pub use table::RouteSpec;

/// What one stack (one template brought up) owns on this controller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StackRecord {
    #[serde(default)]
    pub functions: Vec<String>,
    #[serde(default)]
    pub layers: Vec<String>,
    #[serde(default)]
    pub rules: Vec<String>,
    /// Where its routes are served; `None` when it has none.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0:?} is not a stack name (letters, digits and hyphens, at most 128)")]
    BadName(String),
    #[error("cannot serve API routes on {addr}: {error}")]
    Bind { addr: SocketAddr, error: std::io::Error },
    #[error("cannot keep the stack record: {0}")]
    Io(#[from] std::io::Error),
}

/// Every stack's record, and the listeners serving their routes.
#[derive(Debug)]
pub struct Gateway {
    engine: Arc<Engine>,
    dir: PathBuf,
    stop: CancellationToken,
    state: Mutex<Stacks>,
}

#[derive(Debug, Default)]
struct Stacks {
    stacks: BTreeMap<String, StackRecord>,
    listeners: HashMap<SocketAddr, CancellationToken>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Gateway {
    /// Load the stack records of `data_dir` and serve their routes again;
    /// an address that cannot be bound any more is logged and skipped.
    pub async fn open(engine: Arc<Engine>, data_dir: &std::path::Path, stop: CancellationToken) -> Arc<Gateway> {
        let dir = data_dir.join("stacks");
        let gateway = Arc::new(Gateway { engine, dir, stop, state: Mutex::default() });
        let mut stacks = BTreeMap::new();
        for entry in std::fs::read_dir(&gateway.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { continue };
            match std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<StackRecord>(&b).ok()) {
                Some(record) => {
                    stacks.insert(name, record);
                }
                None => tracing::warn!(path = %path.display(), "skipped an unreadable stack record"),
            }
        }
        for (name, mut record) in stacks {
            if let Err(error) = gateway.bind(&mut record).await {
                tracing::warn!(stack = %name, %error, "the stack's routes are not served");
            }
            gateway.state.lock().expect("gateway poisoned").stacks.insert(name, record);
        }
        gateway
    }

    pub fn stack(&self, name: &str) -> Option<StackRecord> {
        self.state.lock().expect("gateway poisoned").stacks.get(name).cloned()
    }

    /// Keep `record` as stack `name`'s and serve its routes; answers the
    /// record as kept (with the port bound, when it asked for port 0).
    pub async fn put_stack(self: &Arc<Self>, name: &str, mut record: StackRecord) -> Result<StackRecord, GatewayError> {
        if !valid_name(name) {
            return Err(GatewayError::BadName(name.to_owned()));
        }
        self.bind(&mut record).await?;
        crate::private::dir(&self.dir)?;
        let file = self.dir.join(format!("{name}.json"));
        let temp = file.with_extension("json.part");
        std::fs::write(&temp, serde_json::to_vec_pretty(&record).expect("a record serialises"))?;
        std::fs::rename(&temp, &file)?;
        self.state.lock().expect("gateway poisoned").stacks.insert(name.to_owned(), record.clone());
        self.release_unused();
        Ok(record)
    }

    /// Forget stack `name` (its functions are the caller's to delete).
    pub fn delete_stack(&self, name: &str) -> Result<bool, GatewayError> {
        if !valid_name(name) {
            return Err(GatewayError::BadName(name.to_owned()));
        }
        let existed = self.state.lock().expect("gateway poisoned").stacks.remove(name).is_some();
        match std::fs::remove_file(self.dir.join(format!("{name}.json"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        self.release_unused();
        Ok(existed)
    }

    /// Make sure `record.listen` is served, binding it if needed.
    async fn bind(self: &Arc<Self>, record: &mut StackRecord) -> Result<(), GatewayError> {
        let Some(addr) = record.listen else { return Ok(()) };
        if self.state.lock().expect("gateway poisoned").listeners.contains_key(&addr) {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| GatewayError::Bind { addr, error })?;
        let bound = listener.local_addr()?;
        record.listen = Some(bound);
        let token = self.stop.child_token();
        self.state.lock().expect("gateway poisoned").listeners.insert(bound, token.clone());
        let app = Router::new()
            .fallback(serve)
            .layer(DefaultBodyLimit::disable())
            .with_state(Listener { gateway: self.clone(), addr: bound });
        tracing::info!(addr = %bound, "serving API routes");
        tokio::spawn(async move {
            let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, addr = %bound, "the API route listener stopped");
            }
        });
        Ok(())
    }

    /// Stop listeners no stack names any more.
    fn release_unused(&self) {
        let mut state = self.state.lock().expect("gateway poisoned");
        let used: Vec<SocketAddr> = state.stacks.values().filter_map(|r| r.listen).collect();
        state.listeners.retain(|addr, token| {
            let keep = used.contains(addr);
            if !keep {
                tracing::info!(%addr, "no more API routes here: stopped listening");
                token.cancel();
            }
            keep
        });
    }

    /// The routes served on `addr`, every stack's.
    fn routes_on(&self, addr: SocketAddr) -> Vec<RouteSpec> {
        let state = self.state.lock().expect("gateway poisoned");
        state.stacks.values().filter(|r| r.listen == Some(addr)).flat_map(|r| r.routes.iter().cloned()).collect()
    }
}

/// What a route listener's requests need.
#[derive(Debug, Clone)]
struct Listener {
    gateway: Arc<Gateway>,
    addr: SocketAddr,
}

/// `{"message": …}`, as API Gateway words its own answers.
fn message(status: StatusCode, text: &str) -> Response {
    let mut r = (status, serde_json::json!({ "message": text }).to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

async fn serve(State(l): State<Listener>, ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request) -> Response {
    let routes = l.gateway.routes_on(l.addr);
    let (parts, body) = request.into_parts();
    let Some(matched) = table::find(&routes, parts.method.as_str(), parts.uri.path()) else {
        return message(StatusCode::FORBIDDEN, "Missing Authentication Token");
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_SYNC_PAYLOAD).await else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Too Long");
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let event = event::event(&event::Request {
        route: matched.route,
        parameters: &matched.parameters,
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip(),
        port: l.addr.port(),
        host,
        request_id: &request_id,
        now: chrono::Utc::now(),
    });
    let route = matched.route;
    let function = FunctionRef { qualifier: route.qualifier.clone(), ..FunctionRef::named(&route.function) };
    let mut req = InvokeRequest::sync(function, Bytes::from(event.to_string()), None, false);
    req.request_id = Some(request_id);
    let out = match l.gateway.engine.invoke(req).await {
        Ok(out) if out.function_error.is_none() => out,
        Ok(out) => return bad_gateway(route, &String::from_utf8_lossy(&out.payload)),
        Err(e) => return bad_gateway(route, &e.to_string()),
    };
    answer(route, &out.payload).unwrap_or_else(|why| bad_gateway(route, &why))
}

/// The function's result as an HTTP answer: payload 1.0 results must be
/// an object (a missing `statusCode` is 200), with `multiValueHeaders`
/// added to `headers`; 2.0 results follow the function URL rules.
fn answer(route: &RouteSpec, payload: &[u8]) -> Result<Response, String> {
    if route.payload_format_version == "2.0" {
        return crate::urls::answer::response(payload).map_err(|e| e.to_string());
    }
    let mut object = match serde_json::from_slice(payload) {
        Ok(serde_json::Value::Object(o)) => o,
        _ => return Err("a payload 1.0 result must be a JSON object".into()),
    };
    object.entry("statusCode").or_insert(200.into());
    let multi = object.remove("multiValueHeaders");
    let text = serde_json::Value::Object(object).to_string();
    let mut response = crate::urls::answer::response(text.as_bytes()).map_err(|e| e.to_string())?;
    for (name, values) in multi.as_ref().and_then(|m| m.as_object()).into_iter().flatten() {
        let Ok(name) = header::HeaderName::try_from(name.as_str()) else { continue };
        response.headers_mut().remove(&name);
        for v in values.as_array().into_iter().flatten() {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            if let Ok(v) = HeaderValue::from_str(&text) {
                response.headers_mut().append(name.clone(), v);
            }
        }
    }
    Ok(response)
}

fn bad_gateway(route: &RouteSpec, why: &str) -> Response {
    tracing::info!(function = %route.function, route = %route.route_key(), why, "API route answered 502");
    message(StatusCode::BAD_GATEWAY, "Internal server error")
}
