//! Every behaviour test that needs a real `lambdabox serve`, a real Docker
//! Engine or AWS's own clients, in one binary: it links once, shares its
//! fixtures (runtime images, compiled Java and Rust functions) across all
//! tests, and lets the harness spread every test over its threads.
//!
//! Run one module with `cargo test --test it invoke::`, one test with its
//! full path. The decisions behind these behaviours are tested in-process
//! beside the code (`cargo test --lib`).

mod common;

mod asynchronous;
mod auth;
mod background;
mod ci_image;
mod conformance;
mod eventbridge;
mod go;
mod hostile_input;
mod images;
mod init;
mod invoke;
mod isolation;
mod java;
mod k8s;
mod layers;
mod lifecycle;
mod logs;
mod nodejs;
mod parity;
mod pool;

mod prewarm;
mod remote;
mod ruby;
mod runtimes;
mod sam;
mod sandbox;
mod sdk;
mod streaming;
mod subset;
mod urls;
mod versions;
