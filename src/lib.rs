//! lambdabox: AWS Lambda on your own Linux box.
//!
//! One controller process keeps a store of functions, builds one container
//! image per runtime, starts containers on demand, hands each event to the
//! bootstrap inside its container over the Lambda Runtime API, and keeps
//! containers warm for the next event. Clients speak the AWS Lambda REST API
//! (the AWS CLI and SDKs work with `--endpoint-url`), or use the `lambdabox` CLI,
//! which is itself a client of that API.
//!
//! # Layout
//!
//! - [`arn`]: the account and region lambdabox answers as, and the ARNs
//!   built from them.
//! - [`constraints`]: every limit AWS's API model (and lambdabox) puts on a
//!   request member, in one table, and the checker that answers in AWS's words.
//! - [`function`]: what a function is: names and ARN forms, runtimes,
//!   configuration and its validation. Pure logic, no I/O.
//! - [`layer`]: what a layer version is: names, ARNs, the five-layer limit.
//! - [`store`]: functions persisted in SQLite and code zips stored by SHA-256,
//!   unpacked once without ever following a link ([`store::unpack`]).
//! - [`images`]: builds the base and per-runtime Docker images, only when
//!   their recipe changed, and lambdabox-init's own image for clusters.
//! - [`backend`]: a small trait over container lifecycles; [`backend::docker`]
//!   implements it with bollard, [`backend::kube`] with bare pods in a
//!   Kubernetes cluster (over the remote transport), and a recording fake
//!   (tests only) lets the pool's and the API's decisions run in-process on
//!   a paused clock.
//! - [`runtime_api`]: the server side of the Lambda Runtime API: each
//!   container's private control channel ([`runtime_api::control`], whose
//!   wire is the `lambdabox-protocol` crate shared with lambdabox-init),
//!   one [`runtime_api::Mailbox`] per container, and streamed responses
//!   passed on chunk by chunk ([`runtime_api::stream`]).
//! - [`remote`]: the remote transport, for containers on hosts that share
//!   nothing with the controller: one connection each dials out, carrying
//!   its Runtime API connections, log, exit and specialization
//!   ([`remote::session`]), content-addressed code it fetches
//!   ([`remote::code`]), and TLS on its TCP listener ([`remote::tls`]).
//! - [`pool`]: warm containers per function, started on demand; init
//!   deadlines, CPU caps, TTLs, LRU eviction, prewarmed generic containers
//!   (a pool that grows after bursts of cold starts and shrinks when idle).
//! - [`logs`]: what functions print, framed by `START`/`END`/`REPORT`, kept
//!   per function on disk; each invocation's tail for `LogType: Tail`.
//! - [`engine`]: the core the API drives: create, update, delete, invoke
//!   (answers whole, or streamed as the function writes them). Knows
//!   nothing of HTTP.
//! - [`queue`]: asynchronous invocations: events committed to SQLite before
//!   their 202, a dispatcher running them through the pool with Lambda's
//!   retries, each function's EventInvokeConfig, the records it sends to
//!   destination functions, and the dead letters events leave.
//! - [`events`]: EventBridge-compatible rules, `rate`/`cron` schedules and
//!   the default event bus: patterns, target inputs, the scheduler; every
//!   delivery is an asynchronous invocation through [`queue`].
//! - [`gateway`]: projects' API routes served as `sam local start-api`
//!   serves them, and the record of what each `lambdabox up` stack owns.
//! - [`api`]: the AWS-compatible REST API over the engine, its error shapes,
//!   and the signature check every request passes; InvokeWithResponseStream's
//!   event-stream framing ([`api::eventstream`]).
//! - [`auth`]: SigV4 signing and verification, and the key pairs behind it.
//! - [`urls`]: function URLs served on their own listener: requests to
//!   payload 2.0 events, results to HTTP answers (streamed for RESPONSE_STREAM
//!   URLs), CORS. Over the engine, like [`api`].
//! - [`project`]: SAM / CloudFormation templates read into functions,
//!   layers, schedules and routes, and dependency builds, for `lambdabox up`.
//! - [`private`]: folders and files only the controller's user may reach.
//! - [`server`]: binds it all together and shuts down cleanly.
//! - [`client`]: the REST API's client (paths, signing), shared by the CLI,
//!   the integration tests and the benchmark.
//! - [`cli`]: the `lambdabox` command line, a client of the REST API.

pub mod api;
pub mod arn;
pub mod auth;
pub mod backend;
pub mod cli;
pub mod client;
pub mod constraints;
pub mod engine;
pub mod events;
pub mod function;
pub mod gateway;
pub mod images;
pub mod layer;
pub mod logs;
pub mod pool;
pub mod private;
pub mod project;
pub mod queue;
pub mod remote;
pub mod runtime_api;
pub mod server;
pub mod store;
pub mod urls;
