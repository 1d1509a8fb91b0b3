//! The shipped default price catalog (`config/catalog/prices.yaml`, embedded in the
//! binary): what a deployment costs when its config gives no `price`.
//! Looked up by provider kind and model name; the longest catalog name that
//! is a prefix of the model wins ("gpt-4o-mini-2024-07-18" → "gpt-4o-mini").

use crate::schema::Price;
use serde::Deserialize;
use switchyard_types::ProviderKind;

/// The catalog as shipped: its date, its sources, its entries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub as_of: String,
    pub sources: Vec<String>,
    pub models: Vec<CatalogEntry>,
}

/// One model's prices, in USD per million tokens (and per request).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub provider: ProviderKind,
    pub model: String,
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
    #[serde(default)]
    pub per_request: f64,
}

impl CatalogEntry {
    pub fn price(&self) -> Price {
        Price {
            input_per_mtok: self.input,
            output_per_mtok: self.output,
            cached_input_per_mtok: self.cached_input,
            cache_write_per_mtok: self.cache_write,
            per_request: self.per_request,
        }
    }
}

const SHIPPED: &str = include_str!("../../../config/catalog/prices.yaml");

impl Catalog {
    /// The shipped catalog (a test keeps it parseable and exact).
    pub fn builtin() -> &'static Catalog {
        static CATALOG: std::sync::LazyLock<Catalog> = std::sync::LazyLock::new(|| {
            serde_yaml::from_str(SHIPPED).unwrap_or_else(|e| {
                tracing_free_warning(&e.to_string());
                Catalog { as_of: String::new(), sources: Vec::new(), models: Vec::new() }
            })
        });
        &CATALOG
    }

    /// The entry for `model` on a provider of `kind`: the longest catalog
    /// name that is a prefix of `model`.
    pub fn find(&self, kind: ProviderKind, model: &str) -> Option<&CatalogEntry> {
        self.models.iter().filter(|e| e.provider == kind && model.starts_with(&e.model)).max_by_key(|e| e.model.len())
    }
}

/// The config crate logs nothing; a broken shipped catalog is caught by
/// the test below before it can ship, so stderr is enough here.
fn tracing_free_warning(error: &str) {
    eprintln!("switchyard: the shipped price catalog does not parse ({error}); deployments without a price cost 0");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_shipped_catalog_parses_and_every_price_is_exact() {
        let c: Catalog = serde_yaml::from_str(SHIPPED).unwrap();
        assert!(!c.as_of.is_empty() && !c.sources.is_empty() && !c.models.is_empty());
        let mut seen = std::collections::HashSet::new();
        for e in &c.models {
            assert!(seen.insert((e.provider, e.model.clone())), "duplicate {:?} {}", e.provider, e.model);
            e.price().sheet().unwrap_or_else(|m| panic!("{} {}: {m}", e.provider.as_str(), e.model));
        }
    }

    #[test]
    fn the_longest_prefix_wins() {
        let c = Catalog {
            as_of: "t".into(),
            sources: vec![],
            models: vec![
                CatalogEntry {
                    provider: ProviderKind::Openai,
                    model: "gpt-4o".into(),
                    input: 2.5,
                    output: 10.0,
                    cached_input: None,
                    cache_write: None,
                    per_request: 0.0,
                },
                CatalogEntry {
                    provider: ProviderKind::Openai,
                    model: "gpt-4o-mini".into(),
                    input: 0.15,
                    output: 0.6,
                    cached_input: None,
                    cache_write: None,
                    per_request: 0.0,
                },
            ],
        };
        assert_eq!(c.find(ProviderKind::Openai, "gpt-4o-mini-2024-07-18").unwrap().model, "gpt-4o-mini");
        assert_eq!(c.find(ProviderKind::Openai, "gpt-4o-2024-08-06").unwrap().model, "gpt-4o");
        assert!(c.find(ProviderKind::Anthropic, "gpt-4o").is_none());
        assert!(c.find(ProviderKind::Openai, "o3").is_none());
    }
}
