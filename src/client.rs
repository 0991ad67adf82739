//! A client of lambdabox's REST API, shared by the `lambdabox` CLI, the
//! integration tests and the benchmark. It holds the endpoint, the key pair
//! requests are signed with and the API's paths, so none of its users spells
//! a URL or signs a request on its own, and a change to either lands once.

use reqwest::{Method, RequestBuilder, Response};

use crate::auth::sign::{self, SignError};
use crate::auth::KeyPair;

/// Where the API's operations live.
pub mod paths {
    /// Lambda's function operations (`2015-03-31` is the API version).
    pub const FUNCTIONS: &str = "/2015-03-31/functions";
    /// lambdabox's own operations (logs, containers, code downloads).
    pub const LAMBDABOX: &str = "/lambdabox/v1";
    /// The health check: answered without a signature once the controller serves.
    pub const HEALTH: &str = "/lambdabox/v1/health";

    /// The function URL configuration of `name` (`?Qualifier=ALIAS` for an alias's).
    pub fn url_config(name: &str) -> String {
        format!("/2021-10-31/functions/{name}/url")
    }

    /// Invoke's path for function `name`.
    pub fn invocations(name: &str) -> String {
        format!("{FUNCTIONS}/{name}/invocations")
    }
}

/// A controller's API as one caller sees it. Cheap to clone: the connection
/// pool is shared.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: String,
    key: Option<KeyPair>,
    region: String,
}

impl Client {
    /// Requests go to `endpoint` (`http://127.0.0.1:9000`) over `http`,
    /// whose timeouts and pooling the caller chooses, signed with `key`
    /// (unsigned when `None`, for `serve --insecure-no-auth`).
    pub fn new(http: reqwest::Client, endpoint: &str, key: Option<KeyPair>) -> Client {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        Client { http, endpoint, key, region: sign::DEFAULT_REGION.to_owned() }
    }

    /// Sign for `region` rather than the default; any region verifies.
    pub fn in_region(self, region: &str) -> Client {
        Client { region: region.to_owned(), ..self }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn key(&self) -> Option<&KeyPair> {
        self.key.as_ref()
    }

    /// A request to `path` (e.g. `/2015-03-31/functions`), signed when sent.
    pub fn request(&self, method: Method, path: &str) -> Request {
        let builder = self.http.request(method, format!("{}{path}", self.endpoint));
        Request { builder, key: self.key.clone(), region: self.region.clone() }
    }

    pub fn get(&self, path: &str) -> Request {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Request {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Request {
        self.request(Method::PUT, path)
    }

    pub fn delete(&self, path: &str) -> Request {
        self.request(Method::DELETE, path)
    }

    /// An operation on one function: `rest` is what follows its name
    /// (`""`, `/configuration`, `/code`, …).
    pub fn function(&self, method: Method, name: &str, rest: &str) -> Request {
        self.request(method, &format!("{}/{name}{rest}", paths::FUNCTIONS))
    }

    /// CreateFunction with `body` (the REST API's JSON).
    pub fn create_function(&self, body: &serde_json::Value) -> Request {
        self.post(paths::FUNCTIONS).json(body)
    }

    /// Invoke `name` with `payload` (RequestResponse unless a header says
    /// otherwise).
    pub fn invoke(&self, name: &str, payload: impl Into<reqwest::Body>) -> Request {
        self.post(&paths::invocations(name)).body(payload)
    }

    /// The end of a function's log (`?bytes=N` to say how much).
    pub fn logs(&self, name: &str) -> Request {
        self.get(&format!("{}/functions/{name}/logs", paths::LAMBDABOX))
    }

    /// Every live container (`lambdabox ps`).
    pub fn containers(&self) -> Request {
        self.get(&format!("{}/containers", paths::LAMBDABOX))
    }

    /// Every EventBridge rule with its state and next firing.
    pub fn rules(&self) -> Request {
        self.get(&format!("{}/rules", paths::LAMBDABOX))
    }

    /// Per function: queued asynchronous events and dead letters.
    pub fn event_depths(&self) -> Request {
        self.get(&format!("{}/events", paths::LAMBDABOX))
    }

    /// A function's dead letters.
    pub fn dead_letters(&self, name: &str) -> Request {
        self.get(&format!("{}/functions/{name}/events/failed", paths::LAMBDABOX))
    }

    /// Queue a function's dead letters again (all, or one by `RequestId`).
    pub fn redrive(&self, name: &str) -> Request {
        self.post(&format!("{}/functions/{name}/events/redrive", paths::LAMBDABOX))
    }
}

/// One request, signed with its client's key pair when sent.
#[derive(Debug)]
pub struct Request {
    builder: RequestBuilder,
    key: Option<KeyPair>,
    region: String,
}

impl Request {
    pub fn header(self, name: &str, value: impl AsRef<str>) -> Request {
        Request { builder: self.builder.header(name, value.as_ref()), ..self }
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Request {
        Request { builder: self.builder.body(body), ..self }
    }

    pub fn json(self, body: &serde_json::Value) -> Request {
        Request { builder: self.builder.json(body), ..self }
    }

    pub fn query<T: serde::Serialize + ?Sized>(self, pairs: &T) -> Request {
        Request { builder: self.builder.query(pairs), ..self }
    }

    /// Sign (with the client's pair, if any) and send; whatever the answer.
    pub async fn send(self) -> Result<Response, SignError> {
        sign::send(self.builder, self.key.as_ref(), &self.region).await
    }
}
