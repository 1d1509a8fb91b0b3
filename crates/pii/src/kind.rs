//! What a detector reports: the kind of data and where it is.

/// The kinds of personal or secret data the detectors know.
///
/// The order is the order of `Ord`; it carries no meaning beyond making
/// `counts()` and metric output stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Email,
    Phone,
    CnId,
    CreditCard,
    ApiKey,
    Password,
}

impl Kind {
    /// Every kind, in `Ord` order.
    pub const ALL: [Kind; 6] = [Kind::Email, Kind::Phone, Kind::CnId, Kind::CreditCard, Kind::ApiKey, Kind::Password];

    /// The kind's name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::CnId => "cn_id",
            Kind::CreditCard => "credit_card",
            Kind::ApiKey => "api_key",
            Kind::Password => "password",
        }
    }

    /// The tag inside the kind's placeholders: `[EMAIL_1]`, `[CARD_2]`.
    pub fn placeholder_tag(self) -> &'static str {
        match self {
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::CnId => "CN_ID",
            Kind::CreditCard => "CARD",
            Kind::ApiKey => "API_KEY",
            Kind::Password => "PASSWORD",
        }
    }

    /// The kind whose `as_str` is `name`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Position in [`Kind::ALL`], for per-kind arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Which kind wins when two detectors report the same span: the one whose
    /// rule is harder to meet by accident (an ID's checksum and birth date
    /// beat a card's Luhn digit, which beats a password's "anything after
    /// `password:`").
    pub(crate) fn specificity(self) -> u8 {
        match self {
            Kind::CnId => 6,
            Kind::CreditCard => 5,
            Kind::ApiKey => 4,
            Kind::Email => 3,
            Kind::Phone => 2,
            Kind::Password => 1,
        }
    }
}

/// One piece of personal or secret data in a text.
///
/// `start..end` is a byte range into the text, always on char boundaries.
/// For `key: value` kinds (passwords, `api_key=…`) it covers the value
/// only, not the label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Finding {
    /// The byte range, for slicing the text.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Never true for a finding from [`detect`](crate::detect); here because
    /// clippy asks for it next to `len`.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}
