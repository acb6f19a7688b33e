//! A builder for [`BasicProperties`]: every text property from `&str`, `String` or
//! [`ShortStr`], with one `?` at the end.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::{BasicProperties, FieldTable, FieldValue, ShortStr, ShortStrTooLong};

/// A property value that does not fit its type: a short string over 255 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidProperty {
    /// The property (`"message_id"`, `"headers"`...).
    pub property: &'static str,
    /// Why.
    pub error: ShortStrTooLong,
}

impl fmt::Display for InvalidProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property, self.error)
    }
}

impl std::error::Error for InvalidProperty {}

/// Builds [`BasicProperties`] from plain Rust values: text as `&str`, `String`, `&String`
/// or [`ShortStr`], the expiration as a `Duration`, the timestamp as a `SystemTime`.
/// A text over 255 bytes is reported by [`build`](Self::build), naming the property, as
/// [`InvalidProperty`], which converts into [`warren::Error`](crate::Error), so one `?`
/// covers every setter.
///
/// ```
/// use std::time::Duration;
/// use warren::wire::BasicProperties;
///
/// fn request(order: &str, reply_to: &str) -> Result<BasicProperties, warren::Error> {
///     let props = BasicProperties::builder()
///         .message_id(format!("order-{order}"))
///         .correlation_id(order)
///         .reply_to(reply_to)
///         .content_type("application/json")
///         .persistent()
///         .expiration(Duration::from_secs(30))
///         .header("x-retries", 0u8)
///         .build()?;
///     Ok(props)
/// }
///
/// let props = request("7", "amq.rabbitmq.reply-to")?;
/// assert_eq!(props.message_id.as_deref(), Some("order-7"));
/// assert_eq!(props.expiration.as_deref(), Some("30000"));
/// assert_eq!(props.delivery_mode, Some(2));
/// let err = request(&"x".repeat(300), "r").unwrap_err();
/// assert!(err.to_string().contains("message_id"));
/// # Ok::<(), warren::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "call build() to get the properties"]
pub struct PropertiesBuilder {
    props: BasicProperties,
    error: Option<InvalidProperty>,
}

macro_rules! text_setters {
    ($($(#[$doc:meta])* $name:ident => $field:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name<S>(mut self, value: S) -> Self
            where
                S: TryInto<ShortStr>,
                ShortStrTooLong: From<S::Error>,
            {
                self.props.$field = self.text(stringify!($name), value);
                self
            }
        )*
    };
}

impl PropertiesBuilder {
    /// Converts a text property, remembering the first error.
    fn text<S>(&mut self, property: &'static str, value: S) -> Option<ShortStr>
    where
        S: TryInto<ShortStr>,
        ShortStrTooLong: From<S::Error>,
    {
        match value.try_into() {
            Ok(s) => Some(s),
            Err(e) => {
                self.error.get_or_insert(InvalidProperty {
                    property,
                    error: e.into(),
                });
                None
            }
        }
    }

    text_setters! {
        /// `content-type`: the body's MIME type.
        content_type => content_type;
        /// `content-encoding`: the body's MIME encoding.
        content_encoding => content_encoding;
        /// `correlation-id`: ties a reply to its request.
        correlation_id => correlation_id;
        /// `reply-to`: where to send a reply.
        reply_to => reply_to;
        /// `message-id`: the application's id of the message (consumers deduplicate by it).
        message_id => message_id;
        /// `type`: the application's message type.
        kind => kind;
        /// `user-id`: the publishing user; RabbitMQ refuses a message whose user id is not
        /// the connection's user.
        user_id => user_id;
        /// `app-id`: the publishing application.
        app_id => app_id;
    }

    /// `delivery-mode` 2: the broker writes the message to disk (in a durable queue).
    pub fn persistent(mut self) -> Self {
        self.props.delivery_mode = Some(2);
        self
    }

    /// `delivery-mode` 1: the message is kept in memory only.
    pub fn transient(mut self) -> Self {
        self.props.delivery_mode = Some(1);
        self
    }

    /// `priority` (0 to 9 in a queue with `x-max-priority`).
    pub fn priority(mut self, priority: u8) -> Self {
        self.props.priority = Some(priority);
        self
    }

    /// `expiration`: the message's TTL, sent in whole milliseconds.
    pub fn expiration(mut self, ttl: Duration) -> Self {
        // At most 39 digits: always a short string.
        self.props.expiration = ShortStr::try_from(ttl.as_millis().to_string()).ok();
        self
    }

    /// `timestamp`, in whole seconds since the Unix epoch (0 for a time before it).
    pub fn timestamp(mut self, at: SystemTime) -> Self {
        let secs = at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.props.timestamp = Some(secs);
        self
    }

    /// Replaces the application headers.
    pub fn headers(mut self, headers: FieldTable) -> Self {
        self.props.headers = Some(headers);
        self
    }

    /// Sets one application header (replacing one of that name).
    pub fn header<K, V>(mut self, key: K, value: V) -> Self
    where
        K: TryInto<ShortStr>,
        ShortStrTooLong: From<K::Error>,
        V: Into<FieldValue>,
    {
        if let Some(key) = self.text("headers", key) {
            self.props
                .headers
                .get_or_insert_with(FieldTable::new)
                .insert(key, value);
        }
        self
    }

    /// The properties, or the first property that did not fit.
    pub fn build(self) -> Result<BasicProperties, InvalidProperty> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.props),
        }
    }
}

impl BasicProperties {
    /// A [`PropertiesBuilder`], starting with no property set.
    pub fn builder() -> PropertiesBuilder {
        PropertiesBuilder::default()
    }

    /// A [`PropertiesBuilder`] starting from these properties (e.g. a request's, for its
    /// reply).
    pub fn to_builder(&self) -> PropertiesBuilder {
        PropertiesBuilder {
            props: self.clone(),
            error: None,
        }
    }
}

impl BasicProperties {
    /// `delivery_mode` 1: the broker may keep the message in memory only.
    pub const TRANSIENT: u8 = 1;
    /// `delivery_mode` 2: on a durable queue the broker writes the message to disk, and it
    /// survives a broker restart.
    pub const PERSISTENT: u8 = 2;

    /// Properties with only `delivery_mode` set to [`PERSISTENT`](Self::PERSISTENT); add
    /// the rest with struct update syntax:
    ///
    /// ```
    /// use warren::wire::BasicProperties;
    ///
    /// let props = BasicProperties { priority: Some(5), ..BasicProperties::persistent() };
    /// assert!(props.is_persistent());
    /// assert_eq!(props.delivery_mode, Some(BasicProperties::PERSISTENT));
    /// assert!(!BasicProperties::default().is_persistent());
    /// ```
    pub fn persistent() -> Self {
        BasicProperties {
            delivery_mode: Some(Self::PERSISTENT),
            ..Default::default()
        }
    }

    /// True when `delivery_mode` is [`PERSISTENT`](Self::PERSISTENT).
    pub fn is_persistent(&self) -> bool {
        self.delivery_mode == Some(Self::PERSISTENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setter_lands_in_its_field() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let correlation = String::from("c");
        let p = BasicProperties::builder()
            .content_type("text/plain")
            .content_encoding(String::from("gzip"))
            .correlation_id(&correlation)
            .reply_to(ShortStr::from_static("r"))
            .message_id("m")
            .kind("t")
            .user_id("guest")
            .app_id("a")
            .priority(5)
            .transient()
            .expiration(Duration::from_millis(1500))
            .timestamp(at)
            .header("x-n", 1u8)
            .header("x-n", 2u8)
            .build()
            .unwrap();
        assert_eq!(p.content_type.as_deref(), Some("text/plain"));
        assert_eq!(p.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(p.correlation_id.as_deref(), Some("c"));
        assert_eq!(p.reply_to.as_deref(), Some("r"));
        assert_eq!(p.message_id.as_deref(), Some("m"));
        assert_eq!(p.kind.as_deref(), Some("t"));
        assert_eq!(p.user_id.as_deref(), Some("guest"));
        assert_eq!(p.app_id.as_deref(), Some("a"));
        assert_eq!(p.priority, Some(5));
        assert_eq!(p.delivery_mode, Some(1));
        assert_eq!(p.expiration.as_deref(), Some("1500"));
        assert_eq!(p.timestamp, Some(1_700_000_000));
        let headers = p.headers.unwrap();
        assert_eq!(headers.len(), 1, "a repeated header replaces the first");
        assert_eq!(headers.get("x-n"), Some(&FieldValue::U8(2)));
    }

    #[test]
    fn the_first_text_too_long_is_reported_with_its_property() {
        let long = "x".repeat(256);
        let err = BasicProperties::builder()
            .message_id("ok")
            .correlation_id(long.as_str())
            .app_id(long.clone())
            .build()
            .unwrap_err();
        assert_eq!(err.property, "correlation_id");
        assert_eq!(err.error.len, 256);
        let err = BasicProperties::builder().header(long, 1).build().unwrap_err();
        assert_eq!(err.property, "headers");
        let e = crate::Error::from(err);
        assert!(
            matches!(e, crate::Error::InvalidArgument(ref t) if t.starts_with("headers: ")),
            "{e}"
        );
    }

    #[test]
    fn to_builder_keeps_what_was_set() {
        let request = BasicProperties::builder()
            .reply_to("q")
            .correlation_id("7")
            .build()
            .unwrap();
        let reply = request.to_builder().reply_to("other").build().unwrap();
        assert_eq!(reply.correlation_id.as_deref(), Some("7"));
        assert_eq!(reply.reply_to.as_deref(), Some("other"));
    }
}
