//! Cross-checks on a parsed spec: everything the emitter relies on to produce code
//! that compiles and means what the spec says.

use std::collections::HashMap;

use crate::error::Error;
use crate::model::{Class, ConstantClass, Field, Method, Pos, Spec, Type};
use crate::names;

/// Locals of the generated `decode_fields`: a method field may not take these names.
const DECODE_LOCALS: &[&str] = &["src", "i", "bits", "decoded"];

/// Type names the generated code defines or uses besides method and property structs.
const TYPE_NAMES: &[&str] = &[
    "Method",
    "Bytes",
    "BytesMut",
    "ShortStr",
    "FieldTable",
    "FieldRef",
    "MethodId",
    "MethodInfo",
    "ReplyCode",
    "ErrorSeverity",
    "WireError",
    "Self",
    "Option",
    "Some",
    "None",
    "Ok",
    "Err",
];

/// The most content properties one flags word holds (bit 0 is the continuation flag).
pub const MAX_PROPERTIES: usize = 15;

/// Checks `spec`, returning the first problem found.
pub fn check(spec: &Spec) -> Result<(), Error> {
    Checker { source: &spec.source }.spec(spec)
}

struct Checker<'a> {
    source: &'a str,
}

/// Remembers the first position of each key, to report duplicates.
struct Seen<K>(HashMap<K, Pos>);

impl<K: std::hash::Hash + Eq> Seen<K> {
    fn new() -> Self {
        Seen(HashMap::new())
    }

    /// `Err(first)` when `key` was seen before.
    fn insert(&mut self, key: K, pos: Pos) -> Result<(), Pos> {
        match self.0.get(&key) {
            Some(&first) => Err(first),
            None => {
                self.0.insert(key, pos);
                Ok(())
            }
        }
    }
}

impl Checker<'_> {
    fn err(&self, pos: Pos, message: impl Into<String>) -> Error {
        Error::at(self.source, pos, message)
    }

    fn dup(&self, pos: Pos, what: String, first: Pos) -> Error {
        self.err(pos, format!("duplicate {what} (first at line {})", first.line))
    }

    fn spec(&self, spec: &Spec) -> Result<(), Error> {
        self.constants(spec)?;
        let mut class_names = Seen::new();
        let mut class_ids = Seen::new();
        let mut type_names = Seen::new();
        for name in TYPE_NAMES {
            // Positions of built-in names are never reported: line 0 marks them.
            let _ = type_names.insert((*name).to_owned(), Pos::default());
        }
        let mut methods = 0;
        for class in &spec.classes {
            class_names
                .insert(&class.name, class.pos)
                .map_err(|first| self.dup(class.pos, format!("class name `{}`", class.name), first))?;
            class_ids.insert(class.index, class.pos).map_err(|first| {
                self.dup(
                    class.pos,
                    format!("class index {} (`{}`)", class.index, class.name),
                    first,
                )
            })?;
            if !class.properties.is_empty() {
                self.type_name(&mut type_names, names::properties_struct(&class.name), class.pos)?;
            }
            self.class(class, &mut type_names)?;
            methods += class.methods.len();
        }
        if methods == 0 {
            return Err(self.err(Pos { line: 1, col: 1 }, "the spec defines no methods"));
        }
        Ok(())
    }

    fn type_name(&self, seen: &mut Seen<String>, name: String, pos: Pos) -> Result<(), Error> {
        seen.insert(name.clone(), pos).map_err(|first| {
            if first.line == 0 {
                self.err(
                    pos,
                    format!("generated type name `{name}` clashes with a name the generated code uses"),
                )
            } else {
                self.dup(pos, format!("generated type name `{name}`"), first)
            }
        })
    }

    fn constants(&self, spec: &Spec) -> Result<(), Error> {
        let mut names = Seen::new();
        let mut idents = Seen::new();
        let mut codes = Seen::new();
        for ident in ["PROTOCOL_VERSION", "DEFAULT_PORT"] {
            let _ = idents.insert(ident.to_owned(), Pos::default());
        }
        for c in &spec.constants {
            names
                .insert(&c.name, c.pos)
                .map_err(|first| self.dup(c.pos, format!("constant `{}`", c.name), first))?;
            if c.class != ConstantClass::Plain && c.name == "reply-success" {
                return Err(self.err(c.pos, "`reply-success` cannot be an error"));
            }
            let ident = if c.is_reply_code() {
                if c.value > u32::from(u16::MAX) {
                    return Err(self.err(
                        c.pos,
                        format!("reply code `{}` = {} does not fit 16 bits", c.name, c.value),
                    ));
                }
                codes
                    .insert(c.value, c.pos)
                    .map_err(|first| self.dup(c.pos, format!("reply code value {} (`{}`)", c.value, c.name), first))?;
                format!("ReplyCode::{}", names::reply_code(&c.name))
            } else {
                names::screaming(&c.name)
            };
            idents.insert(ident.clone(), c.pos).map_err(|first| {
                if first.line == 0 {
                    self.err(
                        c.pos,
                        format!("constant `{}` clashes with the generated `{ident}`", c.name),
                    )
                } else {
                    self.dup(c.pos, format!("generated constant `{ident}`"), first)
                }
            })?;
        }
        Ok(())
    }

    fn class(&self, class: &Class, type_names: &mut Seen<String>) -> Result<(), Error> {
        if class.properties.len() > MAX_PROPERTIES {
            let extra = &class.properties[MAX_PROPERTIES];
            return Err(self.err(
                extra.pos,
                format!(
                    "class `{}` has more than {MAX_PROPERTIES} content properties",
                    class.name
                ),
            ));
        }
        for p in &class.properties {
            if p.reserved {
                return Err(self.err(p.pos, format!("content property `{}` cannot be reserved", p.name)));
            }
            if p.ty == Type::Bit {
                return Err(self.err(p.pos, format!("content property `{}` cannot be a bit", p.name)));
            }
        }
        self.fields(&class.properties, &[], &format!("class `{}`", class.name))?;

        let mut method_names = Seen::new();
        let mut method_ids = Seen::new();
        for m in &class.methods {
            let full = format!("{}.{}", class.name, m.name);
            method_names
                .insert(&m.name, m.pos)
                .map_err(|first| self.dup(m.pos, format!("method `{full}`"), first))?;
            method_ids.insert(m.index, m.pos).map_err(|first| {
                self.dup(
                    m.pos,
                    format!("method index {} in class `{}` (`{full}`)", m.index, class.name),
                    first,
                )
            })?;
            self.type_name(type_names, names::method_struct(&class.name, &m.name), m.pos)?;
            self.method(class, m, &full)?;
        }
        Ok(())
    }

    fn method(&self, class: &Class, m: &Method, full: &str) -> Result<(), Error> {
        if !m.sent_by_client && !m.sent_by_server {
            return Err(self.err(
                m.pos,
                format!("method `{full}` has no <chassis name=\"client\"> or <chassis name=\"server\">"),
            ));
        }
        if m.content && class.properties.is_empty() {
            return Err(self.err(
                m.pos,
                format!(
                    "method `{full}` carries content but class `{}` has no content properties",
                    class.name
                ),
            ));
        }
        let mut responses = Seen::new();
        for r in &m.responses {
            if !m.synchronous {
                return Err(self.err(
                    r.pos,
                    format!("method `{full}` has a <response> but is not synchronous"),
                ));
            }
            if class.method(&r.name).is_none() {
                return Err(self.err(
                    r.pos,
                    format!(
                        "response `{}` of `{full}` is not a method of class `{}`",
                        r.name, class.name
                    ),
                ));
            }
            responses
                .insert(&r.name, r.pos)
                .map_err(|first| self.dup(r.pos, format!("response `{}`", r.name), first))?;
        }
        self.fields(&m.fields, DECODE_LOCALS, &format!("method `{full}`"))
    }

    /// Unique spec names, unique Rust names, none of `locals`.
    fn fields(&self, fields: &[Field], locals: &[&str], owner: &str) -> Result<(), Error> {
        let mut spec_names = Seen::new();
        let mut idents = Seen::new();
        for f in fields {
            spec_names
                .insert(&f.name, f.pos)
                .map_err(|first| self.dup(f.pos, format!("field `{}` in {owner}", f.name), first))?;
            if f.reserved {
                continue;
            }
            let ident = names::field(&f.name);
            if locals.contains(&ident.as_str()) {
                return Err(self.err(
                    f.pos,
                    format!(
                        "field `{}` in {owner} clashes with a local of the generated decoder",
                        f.name
                    ),
                ));
            }
            idents
                .insert(ident.clone(), f.pos)
                .map_err(|first| self.dup(f.pos, format!("Rust field name `{ident}` in {owner}"), first))?;
        }
        Ok(())
    }
}
