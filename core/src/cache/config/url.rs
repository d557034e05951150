//! The provider's own URL options (the client's are [`ClientConfig::apply_url_option`]).

use crate::config::UrlError;
use crate::config::url::{duration, number, parse_value};

use super::ProviderConfig;
use crate::cache::eviction::EvictionClass;

#[cfg(doc)]
use crate::client::ClientConfig;

/// Applies one provider option of a URL.
///
/// # Errors
/// [`UrlError::UnknownOption`] for a name no configuration knows; [`UrlError::OptionValue`]
/// for a value that cannot be read.
pub(super) fn apply_provider_option<Tls>(
    cfg: &mut ProviderConfig<Tls>,
    name: &str,
    value: &str,
) -> Result<(), UrlError> {
    match name {
        "namespace" => value.clone_into(&mut cfg.namespace),
        "index_prefix" => value.clone_into(&mut cfg.index_prefix),
        "default_ttl" => cfg.default_ttl = duration(name, value)?,
        "operation_timeout" => cfg.operation_timeout = duration(name, value)?,
        "atomic_operation_timeout" => cfg.atomic_operation_timeout = duration(name, value)?,
        "bulk_operation_timeout" => cfg.bulk_operation_timeout = duration(name, value)?,
        "flush_timeout" => cfg.flush_timeout = duration(name, value)?,
        "search_timeout" => cfg.search_timeout = duration(name, value)?,
        "max_compute_retries" => cfg.max_compute_retries = number(name, value)?,
        "max_value_size" => cfg.max_value_size = number(name, value)?,
        "send_to_replicas" => cfg.send_to_replicas = parse_value(name, value, str::parse::<bool>)?,
        "refuse_eviction" => {
            cfg.refuse_eviction = value
                .split(',')
                .filter(|c| !c.trim().is_empty())
                .map(|c| parse_value(name, c, |c| EvictionClass::parse(c).ok_or("not an eviction class")))
                .collect::<Result<_, _>>()?;
        }
        _ => return Err(UrlError::UnknownOption { name: name.to_owned() }),
    }
    Ok(())
}
