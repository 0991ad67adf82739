//! PublishLayerVersion, GetLayerVersion, ListLayers, ListLayerVersions,
//! DeleteLayerVersion, and turning a function's `Layers` ARNs into what its
//! containers mount at `/opt`.

use std::path::PathBuf;

use super::{now_lambda_format, Engine, EngineError};
use crate::constraints::{self as c, Checks, InvalidParameter};
use crate::function::{Function, Runtime};
use crate::layer::{self, LayerRef, LayerVersion};

/// PublishLayerVersion's input.
#[derive(Debug, Clone, Default)]
pub struct NewLayerVersion {
    /// A name or the layer's ARN.
    pub name: String,
    pub description: Option<String>,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub license_info: Option<String>,
    pub zip: Vec<u8>,
}

impl Engine {
    /// PublishLayerVersion: store the zip and give it the layer's next number.
    pub async fn publish_layer_version(&self, new: NewLayerVersion) -> Result<LayerVersion, EngineError> {
        Checks::new()
            .text(&c::DESCRIPTION, new.description.as_deref())
            .text(&c::LICENSE_INFO, new.license_info.as_deref())
            .list(&c::COMPATIBLE_RUNTIMES, Some(&new.compatible_runtimes))
            .list(&c::COMPATIBLE_ARCHITECTURES, Some(&new.compatible_architectures))
            .finish()?;
        let name = layer::parse_layer_name(&new.name)?;
        let description = new.description.unwrap_or_default();
        for r in &new.compatible_runtimes {
            Runtime::find(r)?;
        }
        let _guard = self.writes.lock().await;
        let code = self.put_code(new.zip).await?;
        let version = LayerVersion {
            name,
            version: 0,
            description,
            compatible_runtimes: new.compatible_runtimes,
            compatible_architectures: new.compatible_architectures,
            license_info: new.license_info,
            code_sha256: code.sha256_hex.clone(),
            code_size: code.size,
            created: now_lambda_format(),
        };
        match self.with_store(move |store| store.publish_layer(version)).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.collect_code(&code.sha256_hex);
                Err(e)
            }
        }
    }

    /// GetLayerVersion.
    pub fn get_layer_version(&self, name: &str, version: u64) -> Result<LayerVersion, EngineError> {
        let name = layer::parse_layer_name(name)?;
        self.store
            .layer_version(&name, version)?
            .ok_or_else(|| EngineError::NotFound("The resource you requested does not exist.".into()))
    }

    /// ListLayerVersions, newest first.
    pub fn list_layer_versions(&self, name: &str) -> Result<Vec<LayerVersion>, EngineError> {
        Ok(self.store.layer_versions(&layer::parse_layer_name(name)?)?)
    }

    /// ListLayers: each layer's newest version.
    pub fn list_layers(&self) -> Result<Vec<LayerVersion>, EngineError> {
        Ok(self.store.latest_layer_versions()?)
    }

    /// DeleteLayerVersion. Functions that use the version keep working; its
    /// zip goes once nothing refers to it. Deleting what is not there is
    /// not an error, as on Lambda.
    pub async fn delete_layer_version(&self, name: &str, version: u64) -> Result<(), EngineError> {
        let name = layer::parse_layer_name(name)?;
        let _guard = self.writes.lock().await;
        if let Some(gone) = self.with_store(move |store| store.delete_layer_version(&name, version)).await? {
            self.collect_code(&gone.code_sha256);
        }
        Ok(())
    }

    /// A function's `Layers` ARNs, each checked to exist, as the function
    /// keeps them. The list's form was checked with the rest of the
    /// configuration ([`crate::function::ConfigPatch::validate`]).
    pub(super) fn resolve_layers(&self, arns: &[String]) -> Result<Vec<LayerRef>, EngineError> {
        arns.iter()
            .map(|arn| {
                let (name, version) = layer::parse_version_arn(arn)?;
                let v = self.store.layer_version(&name, version)?.ok_or_else(|| {
                    EngineError::InvalidParameter(InvalidParameter(format!("Layer version {arn} does not exist.")))
                })?;
                Ok(LayerRef { arn: arn.clone(), code_sha256: v.code_sha256, code_size: v.code_size })
            })
            .collect()
    }

    /// The merged `/opt` of `f`'s layers, built on first use; `None` when it
    /// has none.
    pub(super) async fn opt_dir(&self, f: &Function) -> Result<Option<PathBuf>, EngineError> {
        if f.layers.is_empty() {
            return Ok(None);
        }
        let shas: Vec<String> = f.layers.iter().map(|l| l.code_sha256.clone()).collect();
        let refs: Vec<&str> = shas.iter().map(String::as_str).collect();
        let dir = self.store.code().opt_dir(&refs);
        if dir.is_dir() {
            return Ok(Some(dir));
        }
        let built = self
            .with_store(move |store| {
                let refs: Vec<&str> = shas.iter().map(String::as_str).collect();
                store.code().build_opt_dir(&refs)
            })
            .await?;
        Ok(Some(built))
    }

    /// A function stopped using `layers`: remove their merged `/opt` and
    /// their zips once nothing else uses them.
    pub(super) fn collect_layers(&self, layers: &[LayerRef]) {
        self.collect_opt_dir(layers);
        for l in layers {
            self.collect_code(&l.code_sha256);
        }
    }

    /// Remove the merged `/opt` of `layers` once no function uses that list.
    fn collect_opt_dir(&self, layers: &[LayerRef]) {
        if layers.is_empty() || self.store.every_version().iter().any(|f| f.layers.as_slice() == layers) {
            return;
        }
        let shas: Vec<&str> = layers.iter().map(|l| l.code_sha256.as_str()).collect();
        if let Err(e) = self.store.code().remove_opt_dir(&shas) {
            tracing::warn!(error = %e, "could not remove an unused /opt");
        }
    }
}
