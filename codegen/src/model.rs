//! The plain model of a spec: what the parser builds, the validator checks and the
//! emitter reads. Every type is already resolved to a primitive.

use std::fmt;

/// A position in the spec file, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

/// A primitive wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// One bit, packed with its neighbours into octets.
    Bit,
    /// Unsigned 8-bit integer.
    Octet,
    /// Unsigned 16-bit integer.
    Short,
    /// Unsigned 32-bit integer.
    Long,
    /// Unsigned 64-bit integer.
    LongLong,
    /// String of at most 255 bytes with an 8-bit length.
    ShortStr,
    /// Byte string with a 32-bit length.
    LongStr,
    /// Seconds since the Unix epoch, as a 64-bit integer.
    Timestamp,
    /// Field table.
    Table,
}

impl Type {
    /// All primitives, in the spec's order.
    pub const ALL: [Type; 9] = [
        Type::Bit,
        Type::Octet,
        Type::Short,
        Type::Long,
        Type::LongLong,
        Type::ShortStr,
        Type::LongStr,
        Type::Timestamp,
        Type::Table,
    ];

    /// The primitive named `name` in the spec.
    pub fn from_name(name: &str) -> Option<Type> {
        Type::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The spec's name of this primitive.
    pub fn name(self) -> &'static str {
        match self {
            Type::Bit => "bit",
            Type::Octet => "octet",
            Type::Short => "short",
            Type::Long => "long",
            Type::LongLong => "longlong",
            Type::ShortStr => "shortstr",
            Type::LongStr => "longstr",
            Type::Timestamp => "timestamp",
            Type::Table => "table",
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The whole protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Where the spec was read from, for the generated header and messages.
    pub source: String,
    /// Protocol major version.
    pub major: u8,
    /// Protocol minor version.
    pub minor: u8,
    /// Protocol revision.
    pub revision: u8,
    /// The IANA port.
    pub port: u16,
    /// Constants and reply codes, in spec order.
    pub constants: Vec<Constant>,
    /// Domains, in spec order, each resolved to its primitive.
    pub domains: Vec<Domain>,
    /// Classes, in spec order.
    pub classes: Vec<Class>,
}

/// What kind of value a constant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstantClass {
    /// A plain number (frame types, sizes, `reply-success`).
    Plain,
    /// A reply code that closes the channel.
    SoftError,
    /// A reply code that closes the connection.
    HardError,
}

/// A `<constant>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    /// Spec name, e.g. `frame-method`.
    pub name: String,
    /// The value.
    pub value: u32,
    /// Plain, soft error or hard error.
    pub class: ConstantClass,
    /// One-line description.
    pub label: Option<String>,
    /// Where it was declared.
    pub pos: Pos,
}

impl Constant {
    /// True for `reply-success` and every error code: these become `ReplyCode`s.
    pub fn is_reply_code(&self) -> bool {
        self.class != ConstantClass::Plain || self.name == "reply-success"
    }
}

/// A `<domain>`: a named alias of a primitive.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    /// Spec name, e.g. `queue-name`.
    pub name: String,
    /// The primitive the alias chain ends at.
    pub ty: Type,
    /// One-line description.
    pub label: Option<String>,
    /// `<assert>` children, kept for documentation only.
    pub asserts: Vec<Assert>,
    /// Where it was declared.
    pub pos: Pos,
}

/// An `<assert check value>` on a domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Assert {
    /// `length`, `notnull`, `regexp`...
    pub check: String,
    /// The argument, if any.
    pub value: Option<String>,
}

/// A `<class>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    /// Spec name, e.g. `basic`.
    pub name: String,
    /// Class id on the wire.
    pub index: u16,
    /// One-line description.
    pub label: Option<String>,
    /// Content properties (class-level `<field>`s), in property-flag order.
    pub properties: Vec<Field>,
    /// Methods, in spec order.
    pub methods: Vec<Method>,
    /// Where it was declared.
    pub pos: Pos,
}

/// A `<method>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    /// Spec name within the class, e.g. `get-ok`.
    pub name: String,
    /// Method id on the wire.
    pub index: u16,
    /// One-line description.
    pub label: Option<String>,
    /// The sender waits for one of `responses`, or this is such a reply.
    pub synchronous: bool,
    /// A content header and body frames follow.
    pub content: bool,
    /// Has `<chassis name="client">`: the server sends it.
    pub sent_by_server: bool,
    /// Has `<chassis name="server">`: the client sends it.
    pub sent_by_client: bool,
    /// Names of the reply methods in the same class.
    pub responses: Vec<Response>,
    /// Arguments, in wire order.
    pub fields: Vec<Field>,
    /// Where it was declared.
    pub pos: Pos,
}

/// A `<response name>` of a method.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Name of a method in the same class.
    pub name: String,
    /// Where it was declared.
    pub pos: Pos,
}

/// A `<field>` of a method, or a content property.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Spec name, e.g. `routing-key`.
    pub name: String,
    /// The domain or type name as written.
    pub domain: String,
    /// The resolved primitive.
    pub ty: Type,
    /// Reserved: on the wire but not in the API; sent as zero or empty.
    pub reserved: bool,
    /// One-line description.
    pub label: Option<String>,
    /// Where it was declared.
    pub pos: Pos,
}

impl Spec {
    /// The class named `name`.
    pub fn class(&self, name: &str) -> Option<&Class> {
        self.classes.iter().find(|c| c.name == name)
    }
}

impl Class {
    /// The method named `name`.
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.iter().find(|m| m.name == name)
    }
}
