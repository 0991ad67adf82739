//! Projects described by an AWS SAM / CloudFormation template, as
//! `lambdabox up` deploys them: the template read into functions and layers
//! ([`yaml`], [`intrinsics`], [`globals`], [`template`], [`function`],
//! [`events`]) and their dependencies built the way `sam build
//! --use-container` builds them ([`build`]). Pure of the API: `up` (in the
//! CLI) sends what these produce to a controller.

pub mod build;
pub mod events;
pub mod function;
pub mod globals;
pub mod intrinsics;
pub mod template;
pub mod yaml;

pub use function::{Code, FunctionSpec, LayerRef, LayerSpec};
pub use template::{load, LoadOptions, Project, TemplateError, Warning};
