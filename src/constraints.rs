//! Every limit lambdabox puts on the members of the Lambda API's requests
//! (function names and qualifiers in paths, query enums and page sizes,
//! CreateFunction, UpdateFunctionConfiguration, UpdateFunctionCode,
//! PublishLayerVersion, the concurrency operations), in one table, and the
//! checker that answers in AWS's words.
//!
//! The source is AWS's API model (botocore
//! `data/lambda/2015-03-31/service-2.json`) and the answers AWS was
//! recorded giving (the parity suite, `tests/parity/`), tightened where
//! Lambda's documented limits are stricter than its model and by
//! lambdabox's own rule that no text holds a NUL: values end up in C
//! strings, process environments and Docker's API, where a NUL cuts or
//! breaks them.
//!
//! AWS answers a broken model constraint with `ValidationException`,
//! listing every one it found. Members AWS checks in the service instead
//! (the 64 characters of a function's own name) answer
//! `InvalidParameterValueException` ([`Answer::InvalidParameter`]), as do
//! lambdabox's own checks of image references and layer ARNs.

pub(crate) mod patterns;

/// Input that breaks one of Lambda's rules. The message is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidParameter(pub String);

pub(crate) fn invalid(message: impl Into<String>) -> InvalidParameter {
    InvalidParameter(message.into())
}

/// Input refused for its values: `ValidationException` for what breaks
/// AWS's API model, `InvalidParameterValueException` for the rest (see
/// this module's table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Validation(String),
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
}

/// Which exception a member's violations are answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `ValidationException`, as AWS answers its model's constraints.
    Validation,
    /// `InvalidParameterValueException`, kept where lambdabox always gave it.
    InvalidParameter,
}

/// A regular expression of the model (or lambdabox's stricter version),
/// as shown in messages, and its matcher.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    pub shown: &'static str,
    pub matches: fn(&str) -> bool,
}

/// Text: characters from `min` to `max`, matching `pattern` when set.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub min: usize,
    pub max: usize,
    pub pattern: Option<Pattern>,
}

/// An integer from `min` to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Number {
    pub min: u32,
    pub max: u32,
}

/// At most `max` strings, each in `one_of` unless it is empty.
/// `nested`: AWS words an item's enum violation inside the list's own
/// constraint (`Member must satisfy constraint: [...]`), as it does for
/// architectures but not for runtimes.
#[derive(Debug, Clone, Copy)]
pub struct List {
    pub max: usize,
    pub one_of: &'static [&'static str],
    pub nested: bool,
}

/// One value of a set (an enum of the model), shown in the set's order.
#[derive(Debug, Clone, Copy)]
pub struct OneOf {
    pub set: &'static [&'static str],
}

/// One request member and its rule (a [`Text`], [`Number`] or [`List`]).
#[derive(Debug, Clone, Copy)]
pub struct Member<R> {
    /// The member's path as AWS's messages spell it (`role`, `ephemeralStorage.size`).
    pub field: &'static str,
    pub rule: R,
    pub answer: Answer,
    /// Values AWS never echoes (environment variables).
    pub sensitive: bool,
}

const fn text(field: &'static str, min: usize, max: usize, pattern: Option<Pattern>, answer: Answer) -> Member<Text> {
    Member { field, rule: Text { min, max, pattern }, answer, sensitive: false }
}

const fn number(field: &'static str, min: u32, max: u32, answer: Answer) -> Member<Number> {
    Member { field, rule: Number { min, max }, answer, sensitive: false }
}

const fn list(field: &'static str, max: usize, one_of: &'static [&'static str]) -> Member<List> {
    Member { field, rule: List { max, one_of, nested: true }, answer: Answer::Validation, sensitive: false }
}

const fn one_of(field: &'static str, set: &'static [&'static str]) -> Member<OneOf> {
    Member { field, rule: OneOf { set }, answer: Answer::Validation, sensitive: false }
}

const fn pattern(shown: &'static str, matches: fn(&str) -> bool) -> Option<Pattern> {
    Some(Pattern { shown, matches })
}

use Answer::{InvalidParameter as Ipv, Validation};

// The table. Numbers are Lambda's documented limits.

/// The function name proper, as CreateFunction takes it: AWS checks its 64
/// characters apart from the parameter's own pattern, and answers with
/// InvalidParameterValueException. The other operations take longer names
/// and answer them as absent.
pub const FUNCTION_NAME: Member<Text> = text("functionName", 1, 64, pattern("[a-zA-Z0-9-_]+", patterns::is_name), Ipv);
/// `FunctionName` of CreateFunction and of the operations that change a
/// function: a name, `NAME:QUALIFIER`, a partial or a full ARN.
pub const FUNCTION_NAME_ARG: Member<Text> = text(
    "functionName",
    1,
    140,
    pattern(
        r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?",
        patterns::is_function_ref,
    ),
    Validation,
);
/// `FunctionName` of the operations that read, invoke or delete
/// (`NamespacedFunctionName`): as [`FUNCTION_NAME_ARG`], longer, with `.`
/// in names, and a full ARN must name its region and account.
pub const NAMESPACED_FUNCTION_NAME: Member<Text> = text(
    "functionName",
    1,
    256,
    pattern(
        r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:|(((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?))(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?",
        patterns::is_namespaced_function_ref,
    ),
    Validation,
);
/// The `Qualifier` query parameter of GetFunction, Invoke, DeleteFunction…
pub const QUALIFIER: Member<Text> =
    text("qualifier", 1, 128, pattern(r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+", patterns::is_qualifier), Validation);
/// The `Qualifier` of the provisioned concurrency operations.
pub const PROVISIONED_QUALIFIER: Member<Text> =
    text("qualifier", 1, 128, pattern("(|[a-zA-Z0-9$_-]+)", patterns::is_alias_or_version), Validation);
/// An alias's `Name`: not all digits, which would name a version.
pub const ALIAS_NAME: Member<Text> =
    text("name", 1, 128, pattern("(?!^[0-9]+$)([a-zA-Z0-9-_]+)", patterns::is_alias_name), Validation);
/// An alias's `FunctionVersion` (and ListAliases' filter).
pub const ALIAS_FUNCTION_VERSION: Member<Text> =
    text("functionVersion", 1, 1024, pattern(r"(\$LATEST(\.PUBLISHED)?|[0-9]+)", patterns::is_version), Validation);
/// `Architectures` of CreateFunction and UpdateFunctionCode: one of two.
pub const ARCHITECTURES: Member<List> = list("architectures", 1, ARCHITECTURE_IDS);
pub const ARCHITECTURE_IDS: &[&str] = &["x86_64", "arm64"];
/// ListLayers' and ListLayerVersions' filters.
pub const COMPATIBLE_RUNTIME: Member<OneOf> = one_of("compatibleRuntime", RUNTIME_IDS);
pub const COMPATIBLE_ARCHITECTURE: Member<OneOf> = one_of("compatibleArchitecture", ARCHITECTURE_IDS);
/// ListFunctions' `FunctionVersion`.
pub const FUNCTION_VERSION: Member<OneOf> = one_of("functionVersion", &["ALL"]);
/// ListFunctions' `MasterRegion`: `ALL` or a region.
pub const MASTER_REGION: Member<Text> = text(
    "masterRegion",
    1,
    50,
    pattern(r"ALL|(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}", patterns::is_master_region),
    Validation,
);
pub const MAX_ITEMS: Member<Number> = number("maxItems", 1, 10_000, Validation);
/// `MaxItems` of the layer lists.
pub const MAX_LAYER_ITEMS: Member<Number> = number("maxItems", 1, 50, Validation);
pub const RESERVED_CONCURRENT_EXECUTIONS: Member<Number> =
    number("reservedConcurrentExecutions", 0, u32::MAX, Validation);
pub const PROVISIONED_CONCURRENT_EXECUTIONS: Member<Number> =
    number("provisionedConcurrentExecutions", 1, u32::MAX, Validation);

/// Every runtime identifier AWS accepts where it names runtimes without
/// creating anything (the layer filters): its model's enum and the older
/// identifiers its service still knows, in the order AWS lists them.
pub const RUNTIME_IDS: &[&str] = &[
    "ruby3.5",
    "ruby2.6",
    "dotnetcore1.0",
    "python3.7",
    "nodejs8.10",
    "nasa",
    "ruby2.7",
    "python2.7-greengrass",
    "dotnetcore2.0",
    "python3.8",
    "java21",
    "dotnet6",
    "dotnetcore2.1",
    "python3.9",
    "java11",
    "nodejs6.10",
    "provided",
    "dotnetcore3.1",
    "dotnet8",
    "java25",
    "java17",
    "nodejs",
    "nodejs4.3",
    "java8.al2",
    "go1.x",
    "dotnet10",
    "nodejs20.x",
    "go1.9",
    "byol",
    "nodejs10.x",
    "provided.al2023",
    "nodejs22.x",
    "python3.10",
    "java8",
    "nodejs12.x",
    "python3.11",
    "nodejs24.x",
    "nodejs8.x",
    "python3.12",
    "nodejs14.x",
    "nodejs8.9",
    "nodejs26.x",
    "python3.13",
    "python3.14",
    "nodejs16.x",
    "python3.15",
    "provided.al2",
    "nodejs4.3-edge",
    "nodejs18.x",
    "ruby3.2",
    "python3.4",
    "ruby3.3",
    "ruby3.4",
    "ruby2.5",
    "python3.6",
    "python2.7",
    "ruby4.0",
    "java8.al2023",
    "java11.al2023",
    "java17.al2023",
];
/// The runtimes AWS lets functions and layer versions be created with
/// (the rest of [`RUNTIME_IDS`] are deprecated there), in AWS's order,
/// followed by any `$extra`.
macro_rules! supported_runtime_ids {
    ($($extra:literal),*) => {
        &[
    "nodejs20.x",
    "python3.14",
    "provided.al2023",
    "python3.12",
    "python3.13",
    "nodejs24.x",
    "nodejs22.x",
    "java25",
    "python3.10",
    "python3.11",
    "java21",
    "ruby3.3",
    "ruby3.4",
    "ruby3.2",
    "python3.8",
    "python3.9",
    "java17",
    "nodejs16.x",
    "dotnet10",
    "dotnet8",
    "java11",
    "dotnet6",
    "nodejs18.x",
    "provided.al2",
    "java8.al2", $($extra),*]
    };
}
pub const SUPPORTED_RUNTIME_IDS: &[&str] = supported_runtime_ids!();
/// What a layer version may name as compatible: AWS's supported runtimes and
/// the deprecated ones lambdabox still runs, whose users publish layers too.
pub const LAYER_RUNTIME_IDS: &[&str] = supported_runtime_ids!("ruby3.1", "provided");
pub const ROLE: Member<Text> = text(
    "role",
    1,
    2048,
    pattern(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+", patterns::is_role_arn),
    Validation,
);
pub const HANDLER: Member<Text> = text("handler", 0, 128, pattern(r"[^\s\p{Cc}]+", patterns::is_handler), Validation);
pub const DESCRIPTION: Member<Text> = text("description", 0, 256, None, Validation);
/// The model's bounds; Lambda's own 10,240 is [`crate::function::MAX_MEMORY_MB`].
pub const MEMORY_SIZE: Member<Number> = number("memorySize", 128, 32_768, Validation);
pub const TIMEOUT: Member<Number> = number("timeout", 1, 900, Validation);
pub const EPHEMERAL_STORAGE: Member<Number> = number("ephemeralStorage.size", 512, 10_240, Validation);
/// lambdabox's own: how long an idle container is kept, up to a day (0: the controller's default).
pub const IDLE_TTL: Member<Number> = number("idleTtlSeconds", 0, 86_400, Validation);
/// Keys of `Environment.Variables`; their values only may not hold NUL.
pub const ENV_KEY: Member<Text> = Member {
    sensitive: true,
    ..text("environment.variables", 1, usize::MAX, pattern("[a-zA-Z]([a-zA-Z0-9_])+", patterns::is_env_key), Validation)
};
pub const LAYERS: Member<List> = Member { answer: Ipv, ..list("layers", 5, &[]) };
pub const LAYER_VERSION_ARN: Member<Text> = text(
    "layers.member",
    1,
    140,
    pattern(
        r"arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+",
        patterns::is_layer_version_arn,
    ),
    Ipv,
);
/// Any image reference Docker accepts (its own name limit is 255, a tag
/// 128, a digest 71).
pub const IMAGE_URI: Member<Text> = text(
    "code.imageUri",
    1,
    512,
    pattern(
        "[host[:port]/]name[:tag][@sha256:digest] (Docker's image reference grammar)",
        patterns::is_image_reference,
    ),
    Ipv,
);
pub const ENTRY_POINT: Member<List> = list("imageConfig.entryPoint", 1500, &[]);
pub const COMMAND: Member<List> = list("imageConfig.command", 1500, &[]);
pub const WORKING_DIRECTORY: Member<Text> =
    text("imageConfig.workingDirectory", 1, 1000, pattern("/.*", patterns::is_absolute_path), Validation);
pub const LICENSE_INFO: Member<Text> = text("licenseInfo", 0, 512, None, Validation);
pub const COMPATIBLE_RUNTIMES: Member<List> =
    Member { rule: List { max: 15, one_of: LAYER_RUNTIME_IDS, nested: false }, ..list("compatibleRuntimes", 15, &[]) };
pub const COMPATIBLE_ARCHITECTURES: Member<List> = list("compatibleArchitectures", 2, ARCHITECTURE_IDS);

/// EventInvokeConfig: retries after a function error, and how old an event may get.
pub const MAXIMUM_RETRY_ATTEMPTS: Member<Number> = number("maximumRetryAttempts", 0, 2, Validation);
pub const MAXIMUM_EVENT_AGE: Member<Number> = number("maximumEventAgeInSeconds", 60, 21_600, Validation);
const DESTINATION_PATTERN: Option<Pattern> = pattern(
    r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)",
    patterns::is_destination_arn,
);
pub const ON_SUCCESS_DESTINATION: Member<Text> =
    text("destinationConfig.onSuccess.destination", 0, 350, DESTINATION_PATTERN, Validation);
pub const ON_FAILURE_DESTINATION: Member<Text> =
    text("destinationConfig.onFailure.destination", 0, 350, DESTINATION_PATTERN, Validation);
/// `MaxItems` of ListFunctionEventInvokeConfigs.
pub const MAX_EVENT_INVOKE_CONFIG_ITEMS: Member<Number> = number("maxItems", 1, 50, Validation);
/// `DeadLetterConfig.TargetArn` of CreateFunction and UpdateFunctionConfiguration.
pub const DEAD_LETTER_TARGET: Member<Text> = text(
    "deadLetterConfig.targetArn",
    0,
    10_000,
    pattern(r"(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()", patterns::is_resource_arn),
    Validation,
);

// Function URLs (CreateFunctionUrlConfig, UpdateFunctionUrlConfig, …).

/// A function URL's `Qualifier`: an alias only (no version, no `$LATEST`).
pub const URL_QUALIFIER: Member<Text> =
    text("qualifier", 1, 128, pattern(r"((?!^\d+$)^[0-9a-zA-Z-_]+$)", patterns::is_alias_name), Validation);
// LoggingConfig (CreateFunction, UpdateFunctionConfiguration).
pub const LOG_FORMAT: Member<OneOf> = one_of("loggingConfig.logFormat", &["JSON", "Text"]);
pub const APPLICATION_LOG_LEVEL: Member<OneOf> =
    one_of("loggingConfig.applicationLogLevel", &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]);
pub const SYSTEM_LOG_LEVEL: Member<OneOf> = one_of("loggingConfig.systemLogLevel", &["DEBUG", "INFO", "WARN"]);
pub const LOG_GROUP: Member<Text> =
    text("loggingConfig.logGroup", 1, 512, pattern(r"[\.\-_/#A-Za-z0-9]+", patterns::is_log_group), Validation);

pub const URL_AUTH_TYPE: Member<OneOf> = one_of("authType", &["NONE", "AWS_IAM"]);
/// In the order AWS lists them in its message (not the model's).
pub const URL_INVOKE_MODE: Member<OneOf> = one_of("invokeMode", &["RESPONSE_STREAM", "BUFFERED"]);
/// ListFunctionUrlConfigs' `MaxItems`.
pub const URL_MAX_ITEMS: Member<Number> = number("maxItems", 1, 50, Validation);
/// ListProvisionedConcurrencyConfigs' `MaxItems`.
pub const MAX_PROVISIONED_ITEMS: Member<Number> = number("maxItems", 1, 50, Validation);
pub const CORS_ALLOW_HEADERS: Member<List> = list("cors.allowHeaders", 100, &[]);
pub const CORS_EXPOSE_HEADERS: Member<List> = list("cors.exposeHeaders", 100, &[]);
pub const CORS_ALLOW_METHODS: Member<List> = list("cors.allowMethods", 6, &[]);
pub const CORS_ALLOW_ORIGINS: Member<List> = list("cors.allowOrigins", 100, &[]);
/// One header name of `AllowHeaders` or `ExposeHeaders`.
pub const CORS_HEADER: Member<Text> = text("cors.allowHeaders.member", 0, 1024, None, Validation);
/// One of `AllowMethods`: `GET`, `*`, …
pub const CORS_METHOD: Member<Text> = text("cors.allowMethods.member", 0, 6, None, Validation);
/// One of `AllowOrigins`: `https://example.com`, `*`, …
pub const CORS_ORIGIN: Member<Text> = text("cors.allowOrigins.member", 1, 253, None, Validation);
pub const CORS_MAX_AGE: Member<Number> = number("cors.maxAge", 0, 86_400, Validation);

// EventBridge (`AWSEvents.*`): its model's members, spelled as its messages spell them.
const RULE_NAME_PATTERN: Option<Pattern> = pattern(r"[\.\-_A-Za-z0-9]+", patterns::is_rule_name);
pub const RULE_NAME: Member<Text> = text("name", 1, 64, RULE_NAME_PATTERN, Validation);
/// PutTargets', RemoveTargets' and ListTargetsByRule's `Rule`.
pub const TARGETS_RULE: Member<Text> = text("rule", 1, 64, RULE_NAME_PATTERN, Validation);
pub const NAME_PREFIX: Member<Text> = text("namePrefix", 1, 64, RULE_NAME_PATTERN, Validation);
pub const SCHEDULE_EXPRESSION: Member<Text> = text("scheduleExpression", 0, 256, None, Validation);
pub const EVENT_PATTERN: Member<Text> = text("eventPattern", 0, 4096, None, Validation);
pub const RULE_DESCRIPTION: Member<Text> = text("description", 0, 512, None, Validation);
pub const RULE_STATE: Member<OneOf> =
    one_of("state", &["ENABLED", "DISABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"]);
pub const EVENTS_ROLE_ARN: Member<Text> = text("roleArn", 1, 1600, None, Validation);
pub const EVENT_BUS_NAME: Member<Text> = text(
    "eventBusName",
    1,
    1600,
    pattern(
        r"(arn:aws[\w-]*:events:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:event-bus\/)?[/\.\-_A-Za-z0-9]+",
        patterns::is_event_bus_ref,
    ),
    Validation,
);
pub const EVENTS_NEXT_TOKEN: Member<Text> = text("nextToken", 1, 2048, None, Validation);
pub const EVENTS_LIMIT: Member<Number> = number("limit", 1, 100, Validation);
/// A target's members: [`Checks::item`] numbers the list item in the path.
pub const TARGET_ID: Member<Text> = text("targets.member.id", 1, 64, RULE_NAME_PATTERN, Validation);
pub const TARGET_ARN: Member<Text> = text("targets.member.arn", 1, 1600, None, Validation);
pub const TARGET_ROLE_ARN: Member<Text> = text("targets.member.roleArn", 1, 1600, None, Validation);
pub const TARGET_INPUT: Member<Text> = text("targets.member.input", 0, 8192, None, Validation);
pub const TARGET_INPUT_PATH: Member<Text> = text("targets.member.inputPath", 0, 256, None, Validation);
pub const INPUT_TEMPLATE: Member<Text> =
    text("targets.member.inputTransformer.inputTemplate", 1, 8192, None, Validation);
pub const INPUT_PATHS_MAP_KEY: Member<Text> = text(
    "targets.member.inputTransformer.inputPathsMap",
    1,
    256,
    pattern(r"[A-Za-z0-9\_\-]+", patterns::is_transformer_key),
    Validation,
);
pub const INPUT_PATHS_MAP_VALUE: Member<Text> =
    text("targets.member.inputTransformer.inputPathsMap", 0, 256, None, Validation);
/// RemoveTargets' `Ids`.
pub const REMOVE_TARGET_ID: Member<Text> = text("ids.member", 1, 64, RULE_NAME_PATTERN, Validation);
/// One PutEvents entry's resource ARN.
pub const EVENT_RESOURCE: Member<Text> = text("entries.member.resources.member", 0, 2048, None, Validation);

/// Longest value echoed in a message: AWS echoes all of it, but a 60 MB
/// description need not come back.
const MAX_ECHO: usize = 256;

impl<R> Member<R> {
    /// `Value 'X' at 'field' failed to satisfy constraint: Member must WHAT`.
    fn violation(&self, value: &str, what: &str) -> String {
        let value = if self.sensitive {
            String::new()
        } else if value.chars().count() > MAX_ECHO {
            format!(" '{}…'", value.chars().take(MAX_ECHO).collect::<String>())
        } else {
            format!(" '{value}'")
        };
        format!("Value{value} at '{}' failed to satisfy constraint: Member must {what}", self.field)
    }
}

impl Member<Text> {
    /// Each constraint `value` breaks.
    fn check(&self, value: &str) -> Vec<String> {
        let Text { min, max, pattern } = self.rule;
        let len = value.chars().count();
        let mut found = Vec::new();
        if len < min {
            found.push(self.violation(value, &format!("have length greater than or equal to {min}")));
        }
        if len > max {
            found.push(self.violation(value, &format!("have length less than or equal to {max}")));
        }
        match pattern {
            Some(p) if !(p.matches)(value) => {
                found.push(self.violation(value, &format!("satisfy regular expression pattern: {}", p.shown)));
            }
            _ if value.contains('\0') => found.push(self.violation(value, "not contain NUL characters")),
            _ => {}
        }
        found
    }
}

impl Member<Number> {
    fn check(&self, value: u32) -> Option<String> {
        let Number { min, max } = self.rule;
        let v = value.to_string();
        (value < min)
            .then(|| self.violation(&v, &format!("have value greater than or equal to {min}")))
            .or_else(|| (value > max).then(|| self.violation(&v, &format!("have value less than or equal to {max}"))))
    }
}

impl Member<OneOf> {
    fn check(&self, value: &str) -> Option<String> {
        let set = self.rule.set;
        (!set.contains(&value)).then(|| self.violation(value, &format!("satisfy enum value set: [{}]", set.join(", "))))
    }
}

impl Member<List> {
    fn check(&self, items: &[String]) -> Vec<String> {
        let List { max, one_of, nested } = self.rule;
        let shown = format!("[{}]", items.join(", "));
        let mut found = Vec::new();
        if items.len() > max {
            found.push(self.violation(&shown, &format!("have length less than or equal to {max}")));
        }
        if !one_of.is_empty() && !items.iter().all(|i| one_of.contains(&i.as_str())) {
            let set = one_of.join(", ");
            found.push(self.violation(
                &shown,
                &if nested {
                    format!(
                        "satisfy constraint: [Member must satisfy enum value set: [{set}], Member must not be null]"
                    )
                } else {
                    format!("satisfy enum value set: [{set}]")
                },
            ));
        }
        if items.iter().any(|i| i.contains('\0')) {
            found.push(self.violation(&shown, "satisfy constraint: [Member must not contain NUL characters]"));
        }
        found
    }
}

/// The violations found in one request, answered together as AWS does.
#[derive(Debug, Default)]
#[must_use = "call finish() to learn the verdict"]
pub struct Checks {
    found: Vec<(Answer, String)>,
}

impl Checks {
    pub fn new() -> Checks {
        Checks::default()
    }

    fn add<R>(&mut self, member: &Member<R>, violations: impl IntoIterator<Item = String>) -> &mut Self {
        self.found.extend(violations.into_iter().map(|v| (member.answer, v)));
        self
    }

    /// Check a text member, when the request has it.
    pub fn text(&mut self, member: &Member<Text>, value: Option<&str>) -> &mut Self {
        let found = value.map(|v| member.check(v)).unwrap_or_default();
        self.add(member, found)
    }

    pub fn number(&mut self, member: &Member<Number>, value: Option<u32>) -> &mut Self {
        let found = value.and_then(|v| member.check(v));
        self.add(member, found)
    }

    pub fn list(&mut self, member: &Member<List>, items: Option<&[String]>) -> &mut Self {
        let found = items.map(|i| member.check(i)).unwrap_or_default();
        self.add(member, found)
    }

    /// Check a value of an enum, when the request has it.
    pub fn one_of(&mut self, member: &Member<OneOf>, value: Option<&str>) -> &mut Self {
        let found = value.and_then(|v| member.check(v));
        self.add(member, found)
    }

    /// Check each of a list's items as `member`.
    pub fn each<'a>(&mut self, member: &Member<Text>, items: impl IntoIterator<Item = &'a String>) -> &mut Self {
        let found: Vec<String> = items.into_iter().flat_map(|i| member.check(i)).collect();
        self.add(member, found)
    }

    /// Check a text member of the `index`th (1-based) item of a list,
    /// whose path AWS spells `list.N.member.field`.
    pub fn item(&mut self, member: &Member<Text>, index: usize, value: Option<&str>) -> &mut Self {
        let plain = format!("at '{}'", member.field);
        let numbered = format!("at '{}'", member.field.replacen(".member", &format!(".{index}.member"), 1));
        let found: Vec<String> = value
            .map(|v| member.check(v))
            .unwrap_or_default()
            .iter()
            .map(|m| m.replacen(&plain, &numbered, 1))
            .collect();
        self.add(member, found)
    }

    /// Map keys, as AWS words their violations (never naming a key).
    pub fn keys<'a>(&mut self, member: &Member<Text>, keys: impl IntoIterator<Item = &'a String>) -> &mut Self {
        let broken = keys.into_iter().any(|k| !member.check(k).is_empty());
        let shown = member.rule.pattern.map_or("", |p| p.shown);
        let found = broken.then(|| {
            format!(
                "Value at '{}' failed to satisfy constraint: Map keys must satisfy constraint: \
                 [Member must satisfy regular expression pattern: {shown}]",
                member.field
            )
        });
        self.add(member, found)
    }

    /// [`Checks::finish`] for checks of [`Answer::InvalidParameter`]
    /// members only (path parameters, layer lists), whose callers know
    /// no other answer.
    pub fn finish_invalid_parameter(&self) -> Result<(), InvalidParameter> {
        match self.finish() {
            Ok(()) => Ok(()),
            Err(Refused::InvalidParameter(e)) => Err(e),
            Err(Refused::Validation(m)) => Err(InvalidParameter(m)),
        }
    }

    /// `Ok` when nothing was found; else `ValidationException` with every
    /// model violation, or, when all that was found is answered the old
    /// way, `InvalidParameterValueException` with those.
    pub fn finish(&self) -> Result<(), Refused> {
        let validation: Vec<&str> =
            self.found.iter().filter(|(a, _)| *a == Answer::Validation).map(|(_, m)| m.as_str()).collect();
        if !validation.is_empty() {
            return Err(Refused::Validation(summary(&validation)));
        }
        let other: Vec<&str> = self.found.iter().map(|(_, m)| m.as_str()).collect();
        if other.is_empty() {
            Ok(())
        } else {
            Err(Refused::InvalidParameter(InvalidParameter(summary(&other))))
        }
    }
}

/// `N validation error(s) detected: A; B`.
fn summary(found: &[&str]) -> String {
    let n = found.len();
    format!("{n} validation error{} detected: {}", if n == 1 { "" } else { "s" }, found.join("; "))
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_runtime_lambdabox_runs_may_be_a_layers() {
        for r in crate::function::RUNTIMES {
            assert!(LAYER_RUNTIME_IDS.contains(&r.id), "{}", r.id);
        }
    }
    use super::*;

    fn verdict(build: impl FnOnce(&mut Checks) -> &mut Checks) -> Result<(), Refused> {
        build(&mut Checks::new()).finish()
    }

    #[test]
    fn messages_are_awss() {
        let one = verdict(|c| c.text(&ROLE, Some("r")));
        assert_eq!(
            one,
            Err(Refused::Validation(
                "1 validation error detected: Value 'r' at 'role' failed to satisfy constraint: Member must satisfy \
                 regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
                    .into()
            ))
        );
        let archs = ["x86_64".to_owned(), "arm64".into(), "sparc".into()];
        let Err(Refused::Validation(two)) =
            verdict(|c| c.text(&LICENSE_INFO, Some(&"x".repeat(513))).list(&COMPATIBLE_ARCHITECTURES, Some(&archs)))
        else {
            panic!("not a validation error")
        };
        assert!(two.starts_with("3 validation errors detected: Value 'xxx"), "{two}");
        assert!(two.contains(
            "…' at 'licenseInfo' failed to satisfy constraint: Member must have length less than or equal to 512; "
        ));
        assert!(two.contains("Value '[x86_64, arm64, sparc]' at 'compatibleArchitectures' failed to satisfy constraint: Member must have length less than or equal to 2; "));
        assert!(two.ends_with("Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]"));
    }

    #[test]
    fn old_answers_are_kept_unless_the_model_is_broken_too() {
        let image = verdict(|c| c.text(&IMAGE_URI, Some("Bad/Ref")));
        assert!(matches!(&image, Err(Refused::InvalidParameter(InvalidParameter(m))) if m.contains("code.imageUri")));
        let both = verdict(|c| c.text(&IMAGE_URI, Some("Bad/Ref")).number(&TIMEOUT, Some(0)));
        assert!(
            matches!(&both, Err(Refused::Validation(m)) if m.starts_with("1 validation error") && m.contains("'timeout'"))
        );
        assert_eq!(verdict(|c| c.number(&MEMORY_SIZE, Some(128)).text(&ROLE, None)), Ok(()));
    }

    #[test]
    fn nul_is_refused_everywhere_and_secrets_are_not_echoed() {
        assert!(verdict(|c| c.text(&DESCRIPTION, Some("a\0b"))).is_err());
        assert!(verdict(|c| c.text(&HANDLER, Some("app.h\0"))).is_err());
        assert!(verdict(|c| c.list(&COMMAND, Some(&["a\0".to_owned()]))).is_err());
        let keys = ["SECRET-NAME".to_owned()];
        let Err(Refused::Validation(m)) = verdict(|c| c.keys(&ENV_KEY, &keys)) else { panic!() };
        assert!(!m.contains("SECRET") && m.contains("Map keys must satisfy constraint"), "{m}");
        assert_eq!(
            verdict(|c| c.text(&DESCRIPTION, Some(&"d".repeat(256))).keys(&ENV_KEY, &["OK".to_owned()])),
            Ok(())
        );
    }
}
