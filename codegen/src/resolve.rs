//! Domain resolution: follows `<domain type>` chains down to a primitive, refusing
//! unknown names, duplicates and cycles.
//!
//! A name is looked up as a primitive first, then as a domain, so the spec's
//! self-named domains (`<domain name="octet" type="octet">`) are not cycles.

use std::collections::HashMap;

use crate::error::Error;
use crate::model::{Assert, Domain, Pos, Type};

/// A `<domain>` as read, before its type is resolved.
#[derive(Debug, Clone)]
pub struct RawDomain {
    pub name: String,
    pub type_name: String,
    pub label: Option<String>,
    pub asserts: Vec<Assert>,
    pub pos: Pos,
    pub type_pos: Pos,
}

/// Resolved domains and the lookup of field types.
#[derive(Debug)]
pub struct Types {
    domains: Vec<Domain>,
    by_name: HashMap<String, Type>,
}

impl Types {
    /// Resolves every domain, in declaration order.
    pub fn resolve(source: &str, raw: Vec<RawDomain>) -> Result<Types, Error> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, d) in raw.iter().enumerate() {
            if let Some(&first) = index.get(d.name.as_str()) {
                let p = raw[first].pos;
                return Err(Error::at(
                    source,
                    d.pos,
                    format!("duplicate domain `{}` (first declared at line {})", d.name, p.line),
                ));
            }
            index.insert(&d.name, i);
        }
        let mut resolved = Vec::with_capacity(raw.len());
        for d in &raw {
            let ty = chain(source, &raw, &index, d)?;
            if let Some(prim) = Type::from_name(&d.name) {
                if prim != ty {
                    return Err(Error::at(
                        source,
                        d.type_pos,
                        format!(
                            "domain `{}` shadows the primitive `{prim}` but resolves to `{ty}`",
                            d.name
                        ),
                    ));
                }
            }
            resolved.push(ty);
        }
        let by_name = raw.iter().zip(&resolved).map(|(d, &ty)| (d.name.clone(), ty)).collect();
        let domains = raw
            .into_iter()
            .zip(resolved)
            .map(|(d, ty)| Domain {
                name: d.name,
                ty,
                label: d.label,
                asserts: d.asserts,
                pos: d.pos,
            })
            .collect();
        Ok(Types { domains, by_name })
    }

    /// The primitive for a field's `domain` or `type`: a primitive name or a domain.
    pub fn lookup(&self, name: &str) -> Option<Type> {
        Type::from_name(name).or_else(|| self.by_name.get(name).copied())
    }

    /// The resolved domains, in declaration order.
    pub fn into_domains(self) -> Vec<Domain> {
        self.domains
    }
}

/// Follows `start`'s type chain to a primitive.
fn chain(source: &str, raw: &[RawDomain], index: &HashMap<&str, usize>, start: &RawDomain) -> Result<Type, Error> {
    let mut path = vec![start.name.as_str()];
    let mut current = start;
    loop {
        let next = current.type_name.as_str();
        if let Some(ty) = Type::from_name(next) {
            return Ok(ty);
        }
        let Some(&i) = index.get(next) else {
            return Err(Error::at(
                source,
                current.type_pos,
                format!("domain `{}` has unknown type `{next}`", current.name),
            ));
        };
        if path.contains(&next) {
            path.push(next);
            return Err(Error::at(
                source,
                start.type_pos,
                format!("domain cycle: {}", path.join(" -> ")),
            ));
        }
        path.push(next);
        current = &raw[i];
    }
}
