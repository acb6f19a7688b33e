//! Small `Copy` ids: [`ChannelId`] and [`DeliveryTag`].

/// A channel of one connection: its number and an epoch that changes every time a
/// number is reused, so an id kept from a closed channel never reaches its successor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ChannelId {
    pub(crate) number: u16,
    pub(crate) epoch: u32,
}

impl ChannelId {
    /// The channel number on the wire (1..=channel_max).
    pub fn number(self) -> u16 {
        self.number
    }

    /// The epoch: distinct for every channel opened on a connection.
    pub fn epoch(self) -> u32 {
        self.epoch
    }
}

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.number, self.epoch)
    }
}

/// A delivery to acknowledge: the server's tag plus the channel and the connection
/// generation it came from, so acks for stale deliveries are refused locally.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DeliveryTag {
    pub(crate) generation: u32,
    pub(crate) channel: ChannelId,
    pub(crate) tag: u64,
}

impl DeliveryTag {
    /// The tag as the server numbered it.
    pub fn value(self) -> u64 {
        self.tag
    }

    /// The channel the delivery came on.
    pub fn channel(self) -> ChannelId {
        self.channel
    }

    /// The connection generation the delivery came on.
    pub fn generation(self) -> u32 {
        self.generation
    }
}
