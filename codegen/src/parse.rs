//! XML to model: reads elements and attributes, resolves types through `resolve`.
//!
//! Only `<amqp>`, `<constant>`, `<domain>`/`<assert>`, `<class>`, `<method>`,
//! `<chassis>`, `<response>` and `<field>` matter; other elements (`<doc>`, `<rule>`...)
//! and unknown attributes are ignored.

use std::str::FromStr;

use roxmltree::{Document, Node, TextPos};

use crate::error::Error;
use crate::model::{Assert, Class, Constant, ConstantClass, Field, Method, Pos, Response, Spec};
use crate::names;
use crate::resolve::{RawDomain, Types};

/// Parses `xml`, naming it `source` in errors and in the generated header.
pub fn spec(xml: &str, source: &str) -> Result<Spec, Error> {
    let doc = Document::parse(xml).map_err(|e| {
        // roxmltree's messages end in " at line:col"; the error shows that already.
        let message = e.to_string().replace(&format!(" at {}", e.pos()), "");
        Error::at(source, pos(e.pos()), message)
    })?;
    Parser { doc: &doc, source }.root()
}

fn pos(p: TextPos) -> Pos {
    Pos {
        line: p.row,
        col: p.col,
    }
}

struct Parser<'d, 'i> {
    doc: &'d Document<'i>,
    source: &'d str,
}

impl<'d, 'i> Parser<'d, 'i> {
    fn pos(&self, node: Node) -> Pos {
        pos(self.doc.text_pos_at(node.range().start))
    }

    /// Where attribute `attr`'s value is, or the element when it has none.
    fn attr_pos(&self, node: Node, attr: &str) -> Pos {
        match node.attribute_node(attr) {
            Some(a) => pos(self.doc.text_pos_at(a.range_value().start)),
            None => self.pos(node),
        }
    }

    fn err(&self, pos: Pos, message: impl Into<String>) -> Error {
        Error::at(self.source, pos, message)
    }

    fn required(&self, node: Node<'d, 'i>, attr: &str) -> Result<&'d str, Error> {
        node.attribute(attr).ok_or_else(|| {
            self.err(
                self.pos(node),
                format!("<{}> needs a `{attr}` attribute", node.tag_name().name()),
            )
        })
    }

    /// The `name` attribute, checked to make valid identifiers.
    fn name(&self, node: Node<'d, 'i>) -> Result<String, Error> {
        let name = self.required(node, "name")?;
        if !names::is_valid(name) {
            return Err(self.err(
                self.attr_pos(node, "name"),
                format!("name `{name}` must be a lowercase letter followed by lowercase letters, digits and `-`"),
            ));
        }
        Ok(name.to_owned())
    }

    /// A required decimal number attribute of type `T`.
    fn number<T: FromStr>(&self, node: Node<'d, 'i>, attr: &str, range: &str) -> Result<T, Error> {
        let text = self.required(node, attr)?;
        // Accept only plain decimal digits: no signs, no spaces.
        let parsed = if text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse().ok()
        } else {
            None
        };
        parsed.ok_or_else(|| {
            self.err(
                self.attr_pos(node, attr),
                format!("`{attr}` must be a number from {range}, not `{text}`"),
            )
        })
    }

    /// An optional `"0"`/`"1"` attribute; absent is false.
    fn flag(&self, node: Node, attr: &str) -> Result<bool, Error> {
        match node.attribute(attr) {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(other) => Err(self.err(
                self.attr_pos(node, attr),
                format!("`{attr}` must be \"0\" or \"1\", not `{other}`"),
            )),
        }
    }

    fn label(node: Node) -> Option<String> {
        let label = node
            .attribute("label")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        (!label.is_empty()).then_some(label)
    }

    fn root(&self) -> Result<Spec, Error> {
        let root = self.doc.root_element();
        if root.tag_name().name() != "amqp" {
            return Err(self.err(
                self.pos(root),
                format!("the root element must be <amqp>, not <{}>", root.tag_name().name()),
            ));
        }
        let mut spec = Spec {
            source: self.source.to_owned(),
            major: self.number(root, "major", "0 to 255")?,
            minor: self.number(root, "minor", "0 to 255")?,
            revision: self.number(root, "revision", "0 to 255")?,
            port: self.number(root, "port", "0 to 65535")?,
            constants: Vec::new(),
            domains: Vec::new(),
            classes: Vec::new(),
        };
        // Domains may be used before they are declared: read them all first.
        let mut raw_domains = Vec::new();
        for node in root.children().filter(Node::is_element) {
            match node.tag_name().name() {
                "constant" => spec.constants.push(self.constant(node)?),
                "domain" => raw_domains.push(self.domain(node)?),
                _ => {}
            }
        }
        let types = Types::resolve(self.source, raw_domains)?;
        for node in root.children().filter(|n| n.has_tag_name("class")) {
            spec.classes.push(self.class(node, &types)?);
        }
        spec.domains = types.into_domains();
        Ok(spec)
    }

    fn constant(&self, node: Node<'d, 'i>) -> Result<Constant, Error> {
        let class = match node.attribute("class") {
            None => ConstantClass::Plain,
            Some("soft-error") => ConstantClass::SoftError,
            Some("hard-error") => ConstantClass::HardError,
            Some(other) => {
                return Err(self.err(
                    self.attr_pos(node, "class"),
                    format!("constant class must be \"soft-error\" or \"hard-error\", not `{other}`"),
                ));
            }
        };
        Ok(Constant {
            name: self.name(node)?,
            value: self.number(node, "value", "0 to 4294967295")?,
            class,
            label: Self::label(node),
            pos: self.pos(node),
        })
    }

    fn domain(&self, node: Node<'d, 'i>) -> Result<RawDomain, Error> {
        let mut asserts = Vec::new();
        for a in node.children().filter(|n| n.has_tag_name("assert")) {
            asserts.push(Assert {
                check: self.required(a, "check")?.to_owned(),
                value: a.attribute("value").map(str::to_owned),
            });
        }
        Ok(RawDomain {
            name: self.name(node)?,
            type_name: self.required(node, "type")?.to_owned(),
            label: Self::label(node),
            asserts,
            pos: self.pos(node),
            type_pos: self.attr_pos(node, "type"),
        })
    }

    fn class(&self, node: Node<'d, 'i>, types: &Types) -> Result<Class, Error> {
        let mut class = Class {
            name: self.name(node)?,
            index: self.number(node, "index", "0 to 65535")?,
            label: Self::label(node),
            properties: Vec::new(),
            methods: Vec::new(),
            pos: self.pos(node),
        };
        for child in node.children().filter(Node::is_element) {
            match child.tag_name().name() {
                "field" => class.properties.push(self.field(child, types)?),
                "method" => class.methods.push(self.method(child, types)?),
                _ => {}
            }
        }
        Ok(class)
    }

    fn method(&self, node: Node<'d, 'i>, types: &Types) -> Result<Method, Error> {
        let mut method = Method {
            name: self.name(node)?,
            index: self.number(node, "index", "0 to 65535")?,
            label: Self::label(node),
            synchronous: self.flag(node, "synchronous")?,
            content: self.flag(node, "content")?,
            sent_by_server: false,
            sent_by_client: false,
            responses: Vec::new(),
            fields: Vec::new(),
            pos: self.pos(node),
        };
        for child in node.children().filter(Node::is_element) {
            match child.tag_name().name() {
                // The chassis names the peer that implements (receives) the method.
                "chassis" => match self.required(child, "name")? {
                    "client" => method.sent_by_server = true,
                    "server" => method.sent_by_client = true,
                    other => {
                        return Err(self.err(
                            self.attr_pos(child, "name"),
                            format!("chassis must be \"client\" or \"server\", not `{other}`"),
                        ));
                    }
                },
                "response" => method.responses.push(Response {
                    name: self.name(child)?,
                    pos: self.pos(child),
                }),
                "field" => method.fields.push(self.field(child, types)?),
                _ => {}
            }
        }
        Ok(method)
    }

    fn field(&self, node: Node<'d, 'i>, types: &Types) -> Result<Field, Error> {
        let name = self.name(node)?;
        let reserved = self.flag(node, "reserved")?;
        let (attr, domain) = match (node.attribute("domain"), node.attribute("type")) {
            (Some(d), None) => ("domain", d),
            (None, Some(t)) => ("type", t),
            (Some(_), Some(_)) => {
                return Err(self.err(self.pos(node), format!("field `{name}` has both `domain` and `type`")));
            }
            (None, None) => {
                return Err(self.err(
                    self.pos(node),
                    format!("field `{name}` needs a `domain` or `type` attribute"),
                ));
            }
        };
        let at = self.attr_pos(node, attr);
        let ty = types
            .lookup(domain)
            .ok_or_else(|| self.err(at, format!("unknown domain or type `{domain}`")))?;
        // A reserved field has no meaning beyond its wire form: it names that form directly.
        if reserved && (attr != "type" || domain != ty.name()) {
            return Err(self.err(
                at,
                format!("reserved field `{name}` must give its primitive as `type=\"{ty}\"`, not {attr}=\"{domain}\""),
            ));
        }
        Ok(Field {
            name,
            domain: domain.to_owned(),
            ty,
            reserved,
            label: Self::label(node),
            pos: self.pos(node),
        })
    }
}
