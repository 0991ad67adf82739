//! Authentication of API requests with AWS Signature Version 4, the scheme
//! every AWS SDK and the AWS CLI sign with, and the key pairs behind it.
//!
//! - [`sigv4`]: canonical request, string to sign, signing key: the one
//!   place SigV4's arithmetic lives, used to sign and to verify.
//! - [`verify`]: checking a request's signature (header or presigned URL)
//!   against the key pairs the controller accepts.
//! - [`sign`]: signing as a client (CLI, tests, benchmark) and presigning
//!   the URLs the controller hands out.
//! - [`credentials`]: key pairs, credentials files, the environment, and the
//!   AWS credential chain the CLI falls back to.
//! - [`keyfile`]: the pair the controller generates at first start.
//!
//! The HTTP side (which requests must be signed, the error answers) is
//! [`crate::api::auth`].

pub mod credentials;
pub mod keyfile;
pub mod sign;
pub mod sigv4;
pub mod verify;

pub use credentials::{KeyPair, KeyRing};
pub use verify::{AuthError, Verifier};
