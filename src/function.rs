//! What a function is: its name and ARN forms, its runtime, its configuration
//! and the limits Lambda puts on each. Pure logic: everything that checks user
//! input lives here so the API, the engine and the CLI agree on it.

pub mod alias;
pub mod logging;
pub mod url;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::constraints::patterns::split_function_ref;
use crate::constraints::{self, invalid, Checks, InvalidParameter, Member, Refused, Text};

/// Largest synchronous Invoke payload, request and response (6 MB).
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Largest event `InvocationType: Event` accepts: 1 MiB.
pub const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
/// Largest zip accepted by CreateFunction / UpdateFunctionCode (50 MB zipped).
pub const MAX_ZIP_BYTES: usize = 50 * 1024 * 1024;
/// Largest total size of a function's unpacked code (250 MB).
pub const MAX_UNZIPPED_BYTES: u64 = 250 * 1024 * 1024;
/// Most entries a zip may hold. Lambda documents no such limit, but each
/// entry costs the controller an inode and a few system calls however
/// small it is (a 50 MB zip can list 650,000 empty ones). 65,535 is the
/// most a zip without its ZIP64 extension can count: far above real
/// deployment packages (big `node_modules` trees reach tens of thousands
/// of files), and it bounds unpacking to seconds.
pub const MAX_ZIP_ENTRIES: usize = 65_535;
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Lambda's largest MemorySize; its model allows more, and Lambda answers
/// what lies between with InvalidParameterValueException.
pub const MAX_MEMORY_MB: u32 = 10_240;
pub const DEFAULT_TIMEOUT_S: u32 = 3;
pub const DEFAULT_EPHEMERAL_MB: u32 = 512;
/// The only version until versions are published.
pub const LATEST: &str = "$LATEST";
/// Total size of user environment variables, as the JSON object
/// `{"KEY":"VALUE",…}`, 4 KB.
pub const MAX_ENV_BYTES: usize = 4 * 1024;

/// One runtime lambdabox can run: the Lambda identifier, the image that
/// carries it and how its bootstrap is started inside the container.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Runtime {
    /// Lambda's identifier, e.g. `python3.11`.
    pub id: &'static str,
    /// Its image's name (`lambdabox/NAME`); several runtimes may share one.
    pub image: &'static str,
    /// The bootstrap command lambdabox-init starts; empty means Lambda's
    /// search order for `provided` runtimes.
    pub bootstrap: &'static [&'static str],
    /// Variables Lambda sets for this runtime beyond those of every runtime.
    pub env: &'static [(&'static str, &'static str)],
    /// How its image starts the language runtime ahead of need in a
    /// prewarmed container, if it can.
    pub prestart: Option<&'static Prestart>,
}

/// A runtime whose image can start the language runtime and its runtime
/// client before the function is known (a wrapper that then waits for the
/// function's environment), and what such a runtime cannot honour.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Prestart {
    /// The command lambdabox-init starts in a prewarmed container.
    pub command: &'static [&'static str],
    /// The runtime's start depends on MemorySize (Node.js sizes V8's heap
    /// from it when it starts, and V8 takes no new limits later): the size is
    /// passed to the command as one more argument. (Runtimes started ahead
    /// are kept per MemorySize either way; see `pool::prewarm`.)
    pub memory_argument: bool,
    /// Variables read when the interpreter starts or the runtime client
    /// loads, beyond [`READ_AT_START`]: a function whose value of one
    /// differs from the neutral environment's gets a fresh bootstrap.
    /// `NAME*` stands for every name starting with `NAME`.
    pub read_at_start: &'static [&'static str],
}

/// Variables every pre-started runtime has read by the time it waits for
/// its function: the dynamic loader's and the C library's (locale, time
/// zone, allocator), the home folder (Python's user site, Node's global
/// module folders), TLS settings, and the exec wrapper, which replaces the
/// bootstrap itself.
pub const READ_AT_START: &[&str] = &[
    "LD_*",
    "GLIBC_TUNABLES",
    "MALLOC_*",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TZDIR",
    "HOME",
    "OPENSSL_*",
    "SSL_CERT_*",
    "AWS_LAMBDA_EXEC_WRAPPER",
];

impl Prestart {
    /// Whether a runtime started with `neutral` can take a function whose
    /// whole environment is `env` (both `NAME=VALUE`, the last of a name
    /// winning): every variable read at start has the same value (or is
    /// absent) in both.
    pub fn honours(&self, neutral: &[String], env: &[String]) -> bool {
        let read_at_start = |name: &str| {
            READ_AT_START.iter().chain(self.read_at_start).any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == *p,
            })
        };
        let pick = |vars: &[String]| -> std::collections::HashMap<String, String> {
            vars.iter()
                .filter_map(|pair| pair.split_once('='))
                .filter(|(name, _)| read_at_start(name))
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        };
        pick(neutral) == pick(env)
    }
}

/// Python: the interpreter reads `PYTHON*` as it starts (awslambdaric's
/// modules that read variables are imported only once the function's are set).
static PYTHON_PRESTART: Prestart =
    Prestart { command: &["/var/runtime/prestart"], memory_argument: false, read_at_start: &["PYTHON*"] };
/// Node.js: `NODE_*` (NODE_OPTIONS, NODE_PATH, NODE_EXTRA_CA_CERTS…) and
/// libuv's `UV_*` as it starts; aws-lambda-ric reads two of its own as it loads.
static NODE_PRESTART: Prestart = Prestart {
    command: &["/var/runtime/prestart"],
    memory_argument: true,
    read_at_start: &["NODE_*", "UV_*", "AWS_LAMBDA_RUNTIME_VERBOSE", "AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA"],
};

/// Ruby: `RUBYOPT` and `RUBY_*` (the VM's and GC's settings) as it starts;
/// `RUBYLIB`, `GEM_PATH` and `GEM_HOME` are honoured after the hand-over
/// (the wrapper sets the load path as Ruby would and has RubyGems read the
/// gem paths again).
static RUBY_PRESTART: Prestart =
    Prestart { command: &["/var/runtime/prestart"], memory_argument: false, read_at_start: &["RUBYOPT", "RUBY_*"] };

/// Java: the JVM reads `JAVA_TOOL_OPTIONS` and `_JAVA_OPTIONS` (`_JAVA_*`
/// also holds its signal settings) and the `java` launcher
/// `JDK_JAVA_OPTIONS` as they start; the bootstrap picks the JVM's flags
/// from MemorySize (the size is the command's argument) and its working
/// folder from `LAMBDA_TASK_ROOT`. The client's classes that read variables
/// as they initialise are first used after the hand-over.
static JAVA_PRESTART: Prestart = Prestart {
    command: &["/var/runtime/prestart"],
    memory_argument: true,
    read_at_start: &["JAVA_TOOL_OPTIONS", "_JAVA_*", "JDK_JAVA_OPTIONS", "LAMBDA_TASK_ROOT"],
};

/// What the managed runtimes' bootstraps leave behind on Lambda: a bash
/// script that `exec`s the runtime, which makes `SHLVL` 0.
const MANAGED: &[(&str, &str)] = &[("SHLVL", "0")];
/// Python's: Lambda's runtime code lives on `/var/runtime`.
const PYTHON: &[(&str, &str)] = &[("SHLVL", "0"), ("PYTHONPATH", "/var/runtime")];

/// Every runtime this build supports.
pub static RUNTIMES: &[Runtime] = &[
    managed("python3.11", PYTHON, Some(&PYTHON_PRESTART)),
    managed("python3.13", PYTHON, Some(&PYTHON_PRESTART)),
    managed("nodejs18.x", MANAGED, Some(&NODE_PRESTART)),
    managed("nodejs20.x", MANAGED, Some(&NODE_PRESTART)),
    managed("ruby3.1", MANAGED, Some(&RUBY_PRESTART)),
    managed("ruby3.3", MANAGED, Some(&RUBY_PRESTART)),
    managed("java17", MANAGED, Some(&JAVA_PRESTART)),
    managed("java21", MANAGED, Some(&JAVA_PRESTART)),
    Runtime { id: "provided.al2023", image: "provided", bootstrap: &[], env: &[], prestart: None },
    Runtime { id: "provided", image: "provided", bootstrap: &[], env: &[], prestart: None },
];

/// A managed runtime: its own image, started by `/var/runtime/bootstrap`.
const fn managed(
    id: &'static str,
    env: &'static [(&'static str, &'static str)],
    prestart: Option<&'static Prestart>,
) -> Runtime {
    Runtime { id, image: id, bootstrap: &["/var/runtime/bootstrap"], env, prestart }
}

impl Runtime {
    /// Look a runtime up by its Lambda identifier. One lambdabox does not
    /// run is refused as AWS refuses it: an unknown id with AWS's list, a
    /// deprecated one as deprecated; one AWS runs and lambdabox does not
    /// (yet) with lambdabox's own list.
    pub fn find(id: &str) -> Result<&'static Runtime, InvalidParameter> {
        if let Some(r) = RUNTIMES.iter().find(|r| r.id == id) {
            return Ok(r);
        }
        Err(invalid(if constraints::SUPPORTED_RUNTIME_IDS.contains(&id) {
            let known: Vec<&str> = RUNTIMES.iter().map(|r| r.id).collect();
            format!("The runtime {id} is not supported by this lambdabox; it runs: {}", known.join(", "))
        } else if constraints::RUNTIME_IDS.contains(&id) {
            format!(
                "The runtime parameter of {id} is no longer supported for creating or updating AWS Lambda functions. \
                 We recommend you use a supported runtime while creating or updating functions."
            )
        } else {
            format!(
                "Value {id} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}] or be \
                 a valid ARN",
                constraints::SUPPORTED_RUNTIME_IDS.join(", ")
            )
        }))
    }

    /// `AWS_EXECUTION_ENV` for this runtime; `provided` runtimes have none.
    pub fn execution_env(&self) -> Option<String> {
        (!self.id.starts_with("provided")).then(|| format!("AWS_Lambda_{}", self.id))
    }
}

/// A function name as Lambda accepts it: `[A-Za-z0-9_-]{1,64}`.
pub fn validate_name(name: &str) -> Result<(), InvalidParameter> {
    Checks::new().text(&constraints::FUNCTION_NAME, Some(name)).finish_invalid_parameter()
}

/// `Code.ImageUri`: a Docker image reference and nothing else, since it
/// becomes part of the Docker API's URLs.
pub fn validate_image_uri(uri: &str) -> Result<(), InvalidParameter> {
    Checks::new().text(&constraints::IMAGE_URI, Some(uri)).finish_invalid_parameter()
}

/// What a `FunctionName` parameter names: a function, maybe a qualifier,
/// and the region and account when it came as an ARN (the engine checks
/// those against its own), whichever of Lambda's forms it came in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
}

/// The model's two shapes of a FunctionName parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameForm {
    /// `FunctionName`: CreateFunction and the operations that change a function.
    Plain,
    /// `NamespacedFunctionName`: the operations that read, invoke or delete.
    Namespaced,
}

impl FunctionRef {
    /// A bare name, as lambdabox's own routes and the engine's callers have it.
    pub fn named(name: &str) -> FunctionRef {
        FunctionRef { name: name.to_owned(), ..FunctionRef::default() }
    }

    /// Parse `NAME`, `NAME:QUALIFIER`, `[ACCOUNT:]function:NAME[:QUALIFIER]`,
    /// `REGION:…` or `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`,
    /// refused as AWS refuses what breaks `form`'s pattern or length.
    pub fn parse(input: &str, form: NameForm) -> Result<FunctionRef, Refused> {
        let (member, namespaced) = match form {
            NameForm::Plain => (&constraints::FUNCTION_NAME_ARG, false),
            NameForm::Namespaced => (&constraints::NAMESPACED_FUNCTION_NAME, true),
        };
        Checks::new().text(member, Some(input)).finish()?;
        let parts = split_function_ref(input, namespaced).expect("the pattern was checked");
        Ok(FunctionRef {
            name: parts.name.to_owned(),
            qualifier: parts.qualifier.map(str::to_owned),
            region: parts.region.map(str::to_owned),
            account: parts.account.map(str::to_owned),
        })
    }

    /// Fold in a `Qualifier` parameter (checked as `member`): it must agree
    /// with one the name carries.
    pub fn with_qualifier(mut self, q: Option<&str>, member: &Member<Text>) -> Result<FunctionRef, Refused> {
        let Some(q) = q else { return Ok(self) };
        Checks::new().text(member, Some(q)).finish()?;
        match &self.qualifier {
            Some(existing) if existing != q => Err(Refused::InvalidParameter(invalid(
                "The derived qualifier from the function name does not match the specified qualifier.",
            ))),
            _ => {
                self.qualifier = Some(q.to_owned());
                Ok(self)
            }
        }
    }

    /// The function itself, without a qualifier.
    pub fn unqualified(&self) -> FunctionRef {
        FunctionRef { qualifier: None, ..self.clone() }
    }

    /// `$LATEST` when no qualifier was given: what Invoke runs.
    pub fn or_latest(&self) -> FunctionRef {
        FunctionRef { qualifier: Some(self.qualifier.clone().unwrap_or_else(|| LATEST.to_owned())), ..self.clone() }
    }
}

/// Variables the platform sets; users may not override them.
pub const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// The service's rules for user environment variables, past the model's
/// key pattern ([`constraints::ENV_KEY`]): no NUL in a value (it could
/// not be set in a process environment), none reserved, 4 KB in all.
pub fn environment_rules(vars: &BTreeMap<String, String>) -> Result<(), InvalidParameter> {
    if let Some(key) = vars.iter().find(|(_, v)| v.contains('\0')).map(|(k, _)| k) {
        return Err(invalid(format!(
            "Lambda was unable to configure your environment variables because the value of {key} contains a \
             NUL character, which no process environment can hold"
        )));
    }
    let reserved: Vec<&str> = vars.keys().map(String::as_str).filter(|k| RESERVED_ENV.contains(k)).collect();
    if !reserved.is_empty() {
        return Err(invalid(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have \
             provided contains reserved keys that are currently not supported for modification. Reserved keys used \
             in this request: {}",
            reserved.join(", ")
        )));
    }
    // AWS measures the variables as compact JSON, and shows what it measured.
    let measured = serde_json::to_string(vars).expect("a map of strings serializes");
    if measured.len() > MAX_ENV_BYTES {
        return Err(invalid(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have \
             provided exceeded the 4KB limit. String measured: {measured}"
        )));
    }
    Ok(())
}

/// A function as stored: its configuration and which code it runs.
/// Containers are tagged with [`Function::pool_revision`], which changes on
/// every update of code or configuration, so warm containers of an older
/// revision are never handed a newer invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    pub runtime: String,
    pub handler: String,
    pub role: String,
    pub description: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub ephemeral_storage_mb: u32,
    pub environment: BTreeMap<String, String>,
    /// Hex SHA-256 of the code zip: the key of the code store.
    pub code_sha256: String,
    pub code_size: u64,
    /// `2020-04-10T19:06:32.563+0000`, as Lambda formats it.
    pub last_modified: String,
    /// Lambda's `RevisionId`: new on every change, publishing included.
    pub revision_id: String,
    /// Set when `revision_id` moved without the code or configuration
    /// changing (publishing gives `$LATEST` a new `RevisionId`): the
    /// revision its containers run, so they stay warm. `None`: `revision_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_revision: Option<String>,
    /// PutFunctionConcurrency: at most this many invocations at once.
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// How long an idle container is kept (lambdabox's own setting; the
    /// controller's default when unset).
    #[serde(default)]
    pub idle_ttl_s: Option<u32>,
    /// Unpacked under `/opt` in this order.
    #[serde(default)]
    pub layers: Vec<crate::layer::LayerRef>,
    /// Set for `PackageType: Image` functions: the image is the code and
    /// the runtime; `runtime`, `handler` and `code_sha256` are then empty.
    #[serde(default)]
    pub image: Option<ImageCode>,
    /// `None` for `$LATEST`; the number of a published version, whose
    /// record is a frozen copy of `$LATEST` as it was then.
    #[serde(default)]
    pub version: Option<u32>,
    /// `$LATEST` only: the highest version number ever published. Numbers
    /// are never reused, even once their version is deleted.
    #[serde(default)]
    pub last_version: u32,
    /// `$LATEST` only: the version published since its last change, which
    /// PublishVersion answers again instead of publishing a copy of it.
    #[serde(default)]
    pub published: Option<u32>,
    /// LoggingConfig: Text or JSON, levels, log group.
    #[serde(default)]
    pub logging: logging::LoggingConfig,
}

impl Function {
    /// The version as Lambda spells it: `$LATEST` or its number.
    pub fn version_label(&self) -> String {
        self.version.map_or_else(|| LATEST.to_owned(), |n| n.to_string())
    }

    /// `CodeSha256` as Lambda reports it: base64 of the zip's digest, or
    /// an image's hex digest.
    pub fn code_digest(&self) -> String {
        match &self.image {
            Some(image) => image.digest_hex().to_owned(),
            None => crate::store::code::sha256_base64(&self.code_sha256),
        }
    }

    /// The revision the pool tags this function's containers with: one
    /// that serves an older one is never handed an invocation of this.
    pub fn pool_revision(&self) -> &str {
        self.run_revision.as_deref().unwrap_or(&self.revision_id)
    }

    /// Which warm pool serves this function: one per version, since a
    /// container runs one version's code and configuration for life.
    pub fn slot(&self) -> String {
        match self.version {
            Some(n) => format!("{}:{n}", self.name),
            None => self.name.clone(),
        }
    }

    /// `Zip` or `Image`, as Lambda names the package type.
    pub fn package_type(&self) -> &'static str {
        if self.image.is_some() {
            "Image"
        } else {
            "Zip"
        }
    }
}

/// A container image function's code: a local image, pinned by id when the
/// function was created or its code updated (as Lambda pins the digest), and
/// what its bootstrap command is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageCode {
    /// `Code.ImageUri` as given.
    pub uri: String,
    /// The image id (`sha256:…`) it resolved to.
    pub id: String,
    /// The image's own ENTRYPOINT, CMD and WORKDIR.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    /// `ImageConfig` overrides.
    pub config: ImageConfig,
}

/// Lambda's `ImageConfig`: overrides of the image's ENTRYPOINT, CMD and WORKDIR.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub working_directory: Option<String>,
}

impl ImageCode {
    /// The bootstrap command: ENTRYPOINT then CMD, each overridden by
    /// `ImageConfig` when set, as Lambda runs an image.
    pub fn command(&self) -> Vec<String> {
        let entry = self.config.entry_point.as_ref().unwrap_or(&self.entrypoint);
        let cmd = self.config.command.as_ref().unwrap_or(&self.cmd);
        entry.iter().chain(cmd.iter()).cloned().collect()
    }

    /// `_HANDLER`: the first word of CMD, which Lambda's base images treat
    /// as the handler.
    pub fn handler(&self) -> String {
        self.config.command.as_ref().unwrap_or(&self.cmd).first().cloned().unwrap_or_default()
    }

    /// The working directory, `ImageConfig` first.
    pub fn working_dir(&self) -> String {
        self.config.working_directory.clone().unwrap_or_else(|| self.working_dir.clone())
    }

    /// The hex digest Lambda reports as an image function's `CodeSha256`.
    pub fn digest_hex(&self) -> &str {
        self.id.strip_prefix("sha256:").unwrap_or(&self.id)
    }
}

impl ImageConfig {
    /// Add its members to `checks`: at most 1,500 entries in EntryPoint
    /// and in Command, an absolute WorkingDirectory of at most 1,000
    /// characters, no NUL anywhere.
    pub fn check<'c>(&self, checks: &'c mut Checks) -> &'c mut Checks {
        checks
            .list(&constraints::ENTRY_POINT, self.entry_point.as_deref())
            .list(&constraints::COMMAND, self.command.as_deref())
            .text(&constraints::WORKING_DIRECTORY, self.working_directory.as_deref())
    }

    pub fn validate(&self) -> Result<(), Refused> {
        self.check(&mut Checks::new()).finish()
    }
}

/// The part of a function's configuration that UpdateFunctionConfiguration
/// may change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ConfigPatch {
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: Option<String>,
    pub description: Option<String>,
    pub memory_mb: Option<u32>,
    pub timeout_s: Option<u32>,
    pub environment: Option<BTreeMap<String, String>>,
    pub ephemeral_storage_mb: Option<u32>,
    /// `Some(0)` clears the function's own TTL (back to the controller's).
    pub idle_ttl_s: Option<u32>,
    /// Layer version ARNs; the engine resolves them against the store.
    pub layers: Option<Vec<String>>,
    /// For image functions; the engine applies it.
    pub image_config: Option<ImageConfig>,
    pub logging: Option<logging::LoggingPatch>,
}

impl ConfigPatch {
    /// Check every field that is set: the model's constraints first, all
    /// together, then the service's own rules.
    pub fn validate(&self) -> Result<(), Refused> {
        use crate::constraints as c;
        let mut checks = Checks::new();
        checks
            .text(&c::ROLE, self.role.as_deref())
            .text(&c::HANDLER, self.handler.as_deref())
            .text(&c::DESCRIPTION, self.description.as_deref())
            .number(&c::MEMORY_SIZE, self.memory_mb)
            .number(&c::TIMEOUT, self.timeout_s)
            .number(&c::EPHEMERAL_STORAGE, self.ephemeral_storage_mb)
            .number(&c::IDLE_TTL, self.idle_ttl_s)
            .keys(&c::ENV_KEY, self.environment.iter().flat_map(BTreeMap::keys));
        if let Some(config) = &self.image_config {
            config.check(&mut checks);
        }
        if let Some(logging) = &self.logging {
            logging.check(&mut checks);
        }
        checks.finish()?;
        if let Some(mb) = self.memory_mb.filter(|mb| *mb > MAX_MEMORY_MB) {
            return Err(invalid(format!(
                "1 validation error detected: Value '{mb}' at 'memorySize' failed to satisfy constraint: Member must \
                 have value less than or equal to {MAX_MEMORY_MB}"
            ))
            .into());
        }
        if let Some(r) = &self.runtime {
            Runtime::find(r)?;
        }
        if let Some(env) = &self.environment {
            environment_rules(env)?;
        }
        if let Some(layers) = &self.layers {
            crate::layer::validate_layer_list(layers)?;
        }
        Ok(())
    }

    /// Apply the set fields to `f`, but for `layers` and `image_config`,
    /// which the engine resolves. Fails (changing nothing) only for what
    /// depends on `f` too: log levels without JSON logs.
    pub fn apply(self, f: &mut Function) -> Result<(), Refused> {
        let ConfigPatch {
            runtime,
            handler,
            role,
            description,
            memory_mb,
            timeout_s,
            environment,
            ephemeral_storage_mb,
            idle_ttl_s,
            layers: _,
            image_config: _,
            logging,
        } = self;
        if let Some(patch) = logging {
            f.logging = patch.applied_to(&f.logging)?;
        }
        set(&mut f.runtime, runtime);
        set(&mut f.handler, handler);
        set(&mut f.role, role);
        set(&mut f.description, description);
        set(&mut f.memory_mb, memory_mb);
        set(&mut f.timeout_s, timeout_s);
        set(&mut f.environment, environment);
        set(&mut f.ephemeral_storage_mb, ephemeral_storage_mb);
        if let Some(ttl) = idle_ttl_s {
            f.idle_ttl_s = (ttl > 0).then_some(ttl);
        }
        Ok(())
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

impl fmt::Display for FunctionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.qualifier {
            Some(q) => write!(f, "{}:{q}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_lambda_pattern() {
        assert!(validate_name("hello-world_1").is_ok());
        assert!(validate_name(&"a".repeat(64)).is_ok());
        for bad in ["", "has space", "dots.no", "../x", &"a".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn function_refs_parse_every_form() {
        let parse = |s| FunctionRef::parse(s, NameForm::Namespaced);
        let plain = parse("fn").unwrap();
        assert_eq!((plain.name.as_str(), plain.qualifier), ("fn", None));
        assert_eq!(parse("fn:$LATEST").unwrap().qualifier.as_deref(), Some("$LATEST"));
        assert_eq!(parse("123456789012:function:fn").unwrap().account.as_deref(), Some("123456789012"));
        let arn = parse("arn:aws:lambda:eu-west-1:123456789012:function:fn:live").unwrap();
        assert_eq!((arn.name.as_str(), arn.qualifier.as_deref()), ("fn", Some("live")));
        assert_eq!(arn.region.as_deref(), Some("eu-west-1"));
        let long_name = "a".repeat(65);
        assert_eq!(parse(&long_name).unwrap().name.len(), 65, "a longer name is absent, not malformed");
        for bad in [
            "arn:aws:lambda:eu-west-1:123456789012:layer:fn:1",
            "arn:aws:lambda:eu-west-1:12345:function:fn",
            "arn:aws:s3:eu-west-1:123456789012:function:fn",
            "a:b:c:d",
            "fn:bad qualifier",
            "12345678901x:function:fn",
        ] {
            assert!(matches!(parse(bad), Err(Refused::Validation(_))), "{bad:?} accepted");
        }
        let long = format!("{}:{}", "f", "q".repeat(139));
        assert!(matches!(FunctionRef::parse(&long, NameForm::Plain), Err(Refused::Validation(m)) if m.contains("140")));
        let mismatch = parse("fn:$LATEST").unwrap().with_qualifier(Some("1"), &constraints::QUALIFIER);
        assert!(matches!(mismatch, Err(Refused::InvalidParameter(m)) if m.0.starts_with("The derived qualifier")));
    }

    #[test]
    fn limits_are_lambdas() {
        fn patch(set: impl FnOnce(&mut ConfigPatch)) -> Result<(), Refused> {
            let mut p = ConfigPatch::default();
            set(&mut p);
            p.validate()
        }
        assert!(patch(|p| p.memory_mb = Some(128)).is_ok() && patch(|p| p.memory_mb = Some(10_240)).is_ok());
        assert!(matches!(patch(|p| p.memory_mb = Some(127)), Err(Refused::Validation(_))), "the model's bound");
        assert!(matches!(patch(|p| p.memory_mb = Some(10_241)), Err(Refused::InvalidParameter(_))), "Lambda's limit");
        assert!(patch(|p| p.timeout_s = Some(1)).is_ok() && patch(|p| p.timeout_s = Some(900)).is_ok());
        let timeout = patch(|p| p.timeout_s = Some(0));
        assert!(matches!(&timeout, Err(Refused::Validation(m)) if m.contains("greater than or equal to 1")));
        assert!(patch(|p| p.handler = Some("app.handler".into())).is_ok());
        for bad in ["app handler", "", "app.\0handler"] {
            assert!(patch(|p| p.handler = Some(bad.into())).is_err(), "{bad:?}");
        }
        let role = patch(|p| p.role = Some("r".into()));
        assert!(matches!(&role, Err(Refused::Validation(m)) if m.contains("at 'role'")));
        assert!(patch(|p| p.role = Some("arn:aws:iam::123456789012:role/r".into())).is_ok());
    }

    #[test]
    fn environment_rules_apply() {
        let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let patch = |vars| ConfigPatch { environment: Some(vars), ..Default::default() }.validate();
        assert!(patch(env(&[("GREETING", "hi"), ("a_1", "x")])).is_ok());
        let reserved = patch(env(&[("AWS_REGION", "x")]));
        assert!(matches!(&reserved, Err(Refused::InvalidParameter(InvalidParameter(m))) if m.contains("AWS_REGION")));
        assert!(matches!(patch(env(&[("1BAD", "x")])), Err(Refused::Validation(_))));
        let big = patch(env(&[("BIG", &"x".repeat(4096))]));
        assert!(matches!(&big, Err(Refused::InvalidParameter(InvalidParameter(m))) if m.contains("4KB")));
        let nul = patch(env(&[("SECRET", "a\0b")]));
        assert!(matches!(&nul, Err(Refused::InvalidParameter(InvalidParameter(m))) if !m.contains("a\0b")));
    }

    #[test]
    fn image_uris_are_references() {
        assert!(validate_image_uri("lambdabox/python3.11:latest").is_ok());
        assert!(validate_image_uri("IMG/json?").unwrap_err().0.contains("at 'code.imageUri'"));
    }

    #[test]
    fn runtimes_are_known_by_id() {
        assert_eq!(Runtime::find("python3.11").unwrap().image, "python3.11");
        assert!(Runtime::find("cobol85").unwrap_err().0.contains("python3.11"));
        assert_eq!(Runtime::find("python3.11").unwrap().execution_env().as_deref(), Some("AWS_Lambda_python3.11"));
    }
}
