//! Published versions and aliases: PublishVersion, ListVersionsByFunction,
//! deleting one version, and the alias operations. A version is a frozen
//! copy of `$LATEST`; an alias names a version (and maybe a second one
//! with a share of the traffic). Neither has containers of its own beyond
//! those of the version it runs ([`Function::slot`]).

use std::sync::Arc;

use super::provisioned::UNPUBLISHED;
use super::{new_revision, now_lambda_format, Engine, EngineError};
use crate::constraints::InvalidParameter;
use crate::function::alias::{validate_alias_name, Alias, AliasPatch};
use crate::function::{Function, FunctionRef, LATEST};

/// PublishVersion's preconditions and the version's description.
#[derive(Debug, Clone, Default)]
pub struct Publish {
    /// `CodeSha256`: publish only if `$LATEST` runs this code.
    pub code_sha256: Option<String>,
    /// `RevisionId`: publish only if `$LATEST` is still this revision.
    pub revision_id: Option<String>,
    /// The version's description; `$LATEST`'s when absent.
    pub description: Option<String>,
}

/// Which version an alias stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// Its primary version: what the Get operations describe.
    Primary,
    /// One drawn by the routing weights: what an invocation runs.
    Draw,
}

/// `RevisionId` preconditions: a stale one is refused with 412.
pub(super) fn check_revision(given: Option<&str>, current: &str) -> Result<(), EngineError> {
    match given {
        Some(given) if given != current => Err(EngineError::PreconditionFailed(
            "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to \
             retrieve the latest Revision Id"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// A qualifier that is a version number rather than an alias name.
fn is_version_number(q: &str) -> bool {
    !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit())
}

/// A uniform draw in [0, 1) for weighted alias routing.
fn draw() -> f64 {
    // 53 random bits fill an f64's mantissa exactly.
    (getrandom::u64().unwrap_or(u64::MAX) >> 11) as f64 / (1u64 << 53) as f64
}

impl Engine {
    /// The function, version or alias a reference names; an alias
    /// resolves to a version as `route` says. A version carries the
    /// function's current reserved concurrency, which is not part of its
    /// snapshot (it bounds every version together).
    pub(super) fn resolve_as(&self, r: &FunctionRef, route: Route) -> Result<Arc<Function>, EngineError> {
        self.check_realm(r)?;
        let latest = self.store.get(&r.name).ok_or_else(|| self.not_found(r))?;
        let version = match r.qualifier.as_deref() {
            None | Some(LATEST) => return Ok(latest),
            Some(q) if is_version_number(q) => q.to_owned(),
            Some(q) => {
                let alias = self.store.alias(&r.name, q).ok_or_else(|| self.not_found(r))?;
                match route {
                    Route::Primary => alias.function_version.clone(),
                    Route::Draw => alias.route(draw()).to_owned(),
                }
            }
        };
        if version == LATEST {
            return Ok(latest);
        }
        let n = version.parse().map_err(|_| self.not_found(r))?;
        let v = self.store.version(&r.name, n).ok_or_else(|| self.not_found(r))?;
        if v.reserved_concurrency == latest.reserved_concurrency {
            return Ok(v);
        }
        Ok(Arc::new(Function { reserved_concurrency: latest.reserved_concurrency, ..(*v).clone() }))
    }

    /// PublishVersion.
    pub async fn publish_version(&self, r: &FunctionRef, p: Publish) -> Result<Arc<Function>, EngineError> {
        let _guard = self.writes.lock().await;
        self.publish_locked(r, p).await
    }

    /// Publish `$LATEST` as a new version, or answer the version already
    /// published from it when it has not changed since. The caller holds
    /// the write lock.
    pub(super) async fn publish_locked(&self, r: &FunctionRef, p: Publish) -> Result<Arc<Function>, EngineError> {
        let latest = self.resolve(&r.unqualified())?;
        check_revision(p.revision_id.as_deref(), &latest.revision_id)?;
        let current = latest.code_digest();
        if let Some(sha) = p.code_sha256.filter(|sha| *sha != current) {
            return Err(InvalidParameter(format!(
                "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({current}). Please try again \
                 with the CodeSHA256 in $LATEST."
            ))
            .into());
        }
        if let Some(existing) = latest.published.and_then(|n| self.store.version(&latest.name, n)) {
            return Ok(existing);
        }
        let n = latest.last_version + 1;
        let version = Function {
            version: Some(n),
            revision_id: new_revision(),
            last_modified: now_lambda_format(),
            description: p.description.unwrap_or_else(|| latest.description.clone()),
            last_version: 0,
            published: None,
            run_revision: None,
            ..(*latest).clone()
        };
        // Publishing gives `$LATEST` a new revision too, as on Lambda; its
        // code and configuration are the same, so its warm containers stay.
        let next = Function {
            last_version: n,
            published: Some(n),
            revision_id: new_revision(),
            run_revision: Some(latest.pool_revision().to_owned()),
            ..(*latest).clone()
        };
        self.with_store(move |store| store.publish(next, version)).await
    }

    /// ListVersionsByFunction: `$LATEST`, then the versions in ascending order.
    pub fn list_versions(&self, r: &FunctionRef) -> Result<Vec<Arc<Function>>, EngineError> {
        let latest = self.resolve(&r.unqualified())?;
        let mut all = vec![latest];
        all.extend(self.store.versions(&r.name));
        Ok(all)
    }

    /// DeleteFunction with a version number: that version, its containers
    /// and (unless something else runs it) its code. Deleting a version
    /// that does not exist succeeds, as on Lambda.
    pub(super) async fn delete_version(&self, r: &FunctionRef, q: &str) -> Result<(), EngineError> {
        let _guard = self.writes.lock().await;
        // A missing function is named without the qualifier, as on Lambda.
        self.resolve(&r.unqualified())?;
        if !is_version_number(q) {
            return Err(InvalidParameter("Deletion of aliases is not currently supported.".into()).into());
        }
        let users: Vec<String> = self
            .store
            .aliases(&r.name)
            .iter()
            .filter(|a| a.function_version == q || a.weights.contains_key(q))
            .map(|a| a.name.clone())
            .collect();
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "Unable to delete version because the following aliases reference it: [{}]",
                users.join(", ")
            )));
        }
        let n: u32 = q.parse().map_err(|_| self.not_found(r))?;
        let name = r.name.clone();
        if let Some(v) = self.with_store(move |store| store.delete_version(&name, n)).await? {
            self.forget_version(&v);
        }
        Ok(())
    }

    /// A version is gone: retire its containers, collect its code.
    pub(super) fn forget_version(&self, v: &Function) {
        self.pool.retire(&v.slot(), None);
        self.collect_code(&v.code_sha256);
        self.collect_layers(&v.layers);
    }

    /// CreateAlias.
    pub async fn create_alias(
        &self,
        r: &FunctionRef,
        name: &str,
        patch: AliasPatch,
    ) -> Result<Arc<Alias>, EngineError> {
        validate_alias_name(name)?;
        patch.validate()?;
        let _guard = self.writes.lock().await;
        // A missing function is named with the version asked for, as on Lambda.
        let target = FunctionRef { qualifier: patch.function_version.clone(), ..r.unqualified() };
        let latest = self.resolve(&target).and_then(|_| self.resolve(&r.unqualified()))?;
        if self.store.alias(&latest.name, name).is_some() {
            return Err(EngineError::Conflict(format!("Alias already exists: {}", self.alias_arn(&latest.name, name))));
        }
        let alias = Alias {
            function: latest.name.clone(),
            name: name.to_owned(),
            function_version: patch.function_version.unwrap_or_else(|| LATEST.to_owned()),
            description: patch.description.unwrap_or_default(),
            weights: patch.weights.unwrap_or_default(),
            revision_id: new_revision(),
        };
        self.store_alias(alias).await
    }

    /// UpdateAlias.
    pub async fn update_alias(
        &self,
        r: &FunctionRef,
        name: &str,
        patch: AliasPatch,
        revision_id: Option<&str>,
    ) -> Result<Arc<Alias>, EngineError> {
        validate_alias_name(name)?;
        patch.validate()?;
        let _guard = self.writes.lock().await;
        let latest = self.resolve(&r.unqualified())?;
        let current = self
            .store
            .alias(&latest.name, name)
            .ok_or_else(|| EngineError::NotFound(format!("Alias not found: {}", self.alias_arn(&latest.name, name))))?;
        check_revision(revision_id, &current.revision_id)?;
        let mut alias = (*current).clone();
        alias.function_version = patch.function_version.unwrap_or(alias.function_version);
        alias.description = patch.description.unwrap_or(alias.description);
        alias.weights = patch.weights.unwrap_or(alias.weights);
        if alias == *current {
            // An update that changes nothing keeps the revision, as on Lambda.
            return Ok(current);
        }
        if alias.function_version == LATEST && self.store.provisioned(&latest.name, name).is_some() {
            return Err(InvalidParameter(UNPUBLISHED.into()).into());
        }
        alias.revision_id = new_revision();
        // Its provisioned concurrency, if any, moves with it.
        let before = self.provisioned_counts(&latest.name);
        let alias = self.store_alias(alias).await?;
        self.reprovision(&latest.name, &before).await;
        Ok(alias)
    }

    /// Check an alias's versions exist and its routing is Lambda's, then store it.
    async fn store_alias(&self, alias: Alias) -> Result<Arc<Alias>, EngineError> {
        AliasPatch::check_routing(&alias)?;
        let named = std::iter::once(&alias.function_version).chain(alias.weights.keys());
        for version in named.filter(|v| *v != LATEST) {
            let found = version.parse().ok().and_then(|n| self.store.version(&alias.function, n));
            if found.is_none() {
                let arn = self.realm.function_arn(&alias.function);
                return Err(EngineError::NotFound(format!("Function not found: {arn}:{version}")));
            }
        }
        self.with_store(move |store| store.put_alias(alias)).await
    }

    /// GetAlias.
    pub fn get_alias(&self, r: &FunctionRef, name: &str) -> Result<Arc<Alias>, EngineError> {
        validate_alias_name(name)?;
        let latest = self.resolve(&r.unqualified())?;
        self.store.alias(&latest.name, name).ok_or_else(|| {
            EngineError::NotFound(format!("Cannot find alias arn: {}", self.alias_arn(&latest.name, name)))
        })
    }

    /// DeleteAlias: succeeds whether or not the alias exists, as on
    /// Lambda. Its provisioned concurrency goes with it.
    pub async fn delete_alias(&self, r: &FunctionRef, name: &str) -> Result<(), EngineError> {
        validate_alias_name(name)?;
        let _guard = self.writes.lock().await;
        let latest = self.resolve(&r.unqualified())?;
        let before = self.provisioned_counts(&latest.name);
        let (function, alias) = (latest.name.clone(), name.to_owned());
        self.with_store(move |store| store.delete_alias(&function, &alias)).await?;
        self.reprovision(&latest.name, &before).await;
        Ok(())
    }

    /// ListAliases, by name; only those that route to `version` when given.
    pub fn list_aliases(&self, r: &FunctionRef, version: Option<&str>) -> Result<Vec<Arc<Alias>>, EngineError> {
        let latest = self.resolve(&r.unqualified())?;
        let all = self.store.aliases(&latest.name);
        Ok(all.into_iter().filter(|a| version.is_none_or(|v| a.function_version == v)).collect())
    }

    /// `arn:…:function:NAME:ALIAS`.
    pub fn alias_arn(&self, function: &str, alias: &str) -> String {
        format!("{}:{alias}", self.realm.function_arn(function))
    }
}
