//! The function URL configuration operations (Create, Get, Update, Delete,
//! List) and the lookup the URL listener makes. A URL belongs to a
//! function or to one of its aliases, and goes with it.
//!
//! Lambda words "not found" two ways here, and clients see the difference:
//! the operations that need the function (Create, Update, List) say
//! `Function does not exist`; those about the configuration itself (Get,
//! Delete) say `The resource you requested does not exist.`

use std::sync::Arc;

use super::{Engine, EngineError};
use crate::function::url::{new_url_id, AuthType, UrlConfig, UrlPatch};
use crate::function::FunctionRef;

const NO_FUNCTION: &str = "Function does not exist";
const NO_RESOURCE: &str = "The resource you requested does not exist.";

/// ISO 8601 with microseconds, as Lambda writes a URL's times.
fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl Engine {
    /// The function (and alias) `r` names, or `missing` as a 404.
    fn url_owner(&self, r: &FunctionRef, missing: &str) -> Result<(String, Option<String>), EngineError> {
        self.check_realm(r)?;
        let not_found = || EngineError::NotFound(missing.to_owned());
        let f = self.store.get(&r.name).ok_or_else(not_found)?;
        if let Some(alias) = &r.qualifier {
            self.store.alias(&f.name, alias).ok_or_else(not_found)?;
        }
        Ok((f.name.clone(), r.qualifier.clone()))
    }

    /// The ARN a URL reports: the function's, or its alias's.
    pub fn url_function_arn(&self, url: &UrlConfig) -> String {
        match &url.alias {
            Some(alias) => self.alias_arn(&url.function, alias),
            None => self.function_arn(&url.function),
        }
    }

    /// CreateFunctionUrlConfig. `AuthType` is required (the API checks it).
    pub async fn create_url(&self, r: &FunctionRef, patch: UrlPatch) -> Result<Arc<UrlConfig>, EngineError> {
        let _guard = self.writes.lock().await;
        let (function, alias) = self.url_owner(r, NO_FUNCTION)?;
        if self.store.url_of(&function, alias.as_deref()).is_some() {
            let arn = match &alias {
                Some(a) => self.alias_arn(&function, a),
                None => self.function_arn(&function),
            };
            return Err(EngineError::Conflict(format!(
                "Failed to create function url config for [functionArn = {arn}]. Error message:  FunctionUrlConfig \
                 exists for this Lambda function"
            )));
        }
        let now = now_iso();
        let url = UrlConfig {
            url_id: new_url_id(),
            function,
            alias,
            auth_type: patch.auth_type.unwrap_or(AuthType::AwsIam),
            cors: patch.cors,
            invoke_mode: patch.invoke_mode,
            creation_time: now.clone(),
            last_modified_time: now,
        };
        self.with_store(move |store| store.put_url(url)).await
    }

    /// GetFunctionUrlConfig.
    pub fn get_url(&self, r: &FunctionRef) -> Result<Arc<UrlConfig>, EngineError> {
        let (function, alias) = self.url_owner(r, NO_RESOURCE)?;
        self.store.url_of(&function, alias.as_deref()).ok_or_else(|| EngineError::NotFound(NO_RESOURCE.into()))
    }

    /// UpdateFunctionUrlConfig: what the patch sets replaces what was
    /// (a new `Cors` replaces the old one whole).
    pub async fn update_url(&self, r: &FunctionRef, patch: UrlPatch) -> Result<Arc<UrlConfig>, EngineError> {
        let _guard = self.writes.lock().await;
        let (function, alias) = self.url_owner(r, NO_FUNCTION)?;
        let current =
            self.store.url_of(&function, alias.as_deref()).ok_or_else(|| EngineError::NotFound(NO_RESOURCE.into()))?;
        let url = UrlConfig {
            auth_type: patch.auth_type.unwrap_or(current.auth_type),
            cors: patch.cors.or_else(|| current.cors.clone()),
            invoke_mode: patch.invoke_mode.or(current.invoke_mode),
            last_modified_time: now_iso(),
            ..(*current).clone()
        };
        self.with_store(move |store| store.put_url(url)).await
    }

    /// DeleteFunctionUrlConfig.
    pub async fn delete_url(&self, r: &FunctionRef) -> Result<(), EngineError> {
        let _guard = self.writes.lock().await;
        let (function, alias) = self.url_owner(r, NO_RESOURCE)?;
        match self.with_store(move |store| store.delete_url(&function, alias.as_deref())).await? {
            true => Ok(()),
            false => Err(EngineError::NotFound(NO_RESOURCE.into())),
        }
    }

    /// ListFunctionUrlConfigs: the function's URL first, then its aliases'.
    pub fn list_urls(&self, r: &FunctionRef) -> Result<Vec<Arc<UrlConfig>>, EngineError> {
        let (function, _) = self.url_owner(&r.unqualified(), NO_FUNCTION)?;
        Ok(self.store.urls_of(&function))
    }

    /// The URL with id `url_id`, for the URL listener (memory only).
    pub fn url_by_id(&self, url_id: &str) -> Option<Arc<UrlConfig>> {
        self.store.url(url_id)
    }
}
