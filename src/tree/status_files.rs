//! The virtual files of `.pushfs/`: their names and modes. What they say
//! is the deploy layer's (`deploy::status_view`), but for `history`, which
//! the tree reads from the metadata engine.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFile {
    State,
    StatusJson,
    Hash,
    History,
    Revision,
    Job,
    Id,
    Error,
    ResponseJson,
    Log,
    Payment,
    /// The QR code of the payment's wallet link, while it is unpaid.
    PaymentPng,
    Url,
    Wait,
    Ctl,
}

impl StatusFile {
    /// In the order `ls` shows them.
    pub const ALL: [StatusFile; 15] = [
        StatusFile::Ctl,
        StatusFile::Error,
        StatusFile::Hash,
        StatusFile::History,
        StatusFile::Id,
        StatusFile::Job,
        StatusFile::Log,
        StatusFile::Payment,
        StatusFile::PaymentPng,
        StatusFile::ResponseJson,
        StatusFile::Revision,
        StatusFile::State,
        StatusFile::StatusJson,
        StatusFile::Url,
        StatusFile::Wait,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StatusFile::State => "state",
            StatusFile::StatusJson => "status.json",
            StatusFile::Hash => "hash",
            StatusFile::History => "history",
            StatusFile::Revision => "revision",
            StatusFile::Job => "job",
            StatusFile::Id => "id",
            StatusFile::Error => "error",
            StatusFile::ResponseJson => "response.json",
            StatusFile::Log => "log",
            StatusFile::Payment => "payment",
            StatusFile::PaymentPng => "payment.png",
            StatusFile::Url => "url",
            StatusFile::Wait => "wait",
            StatusFile::Ctl => "ctl",
        }
    }

    pub fn from_name(name: &str) -> Option<StatusFile> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The least size `stat` reports. `wait` says the current state until
    /// it is read, then the final one, which may be longer: a reader that
    /// trusts the size it stat'ed (Samba, NFS) must still get the whole
    /// word. Reads return the real bytes and end at their end.
    pub fn size_floor(self) -> u64 {
        match self {
            // "awaiting_payment\n", the longest state, with room to spare.
            StatusFile::Wait => 32,
            _ => 0,
        }
    }

    pub fn perm(self) -> u16 {
        match self {
            StatusFile::Ctl => 0o644,
            _ => 0o444,
        }
    }
}
