//! Hand-written helpers on the generated [`BasicProperties`]: the delivery modes by name.

use super::BasicProperties;

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
