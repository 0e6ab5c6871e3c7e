//! What the `.pushfs/` files say: each one a view of the app's status.

use super::status::AppStatus;
use crate::backend::{PaymentDue, PaymentStage};
use crate::printable::printable;
use crate::tree::status_files::StatusFile;

/// The file's bytes now. `wait` reads like `state` until it is read for real.
/// Values a server named (id, hash, errors) are shown [`printable`].
pub fn render(file: StatusFile, status: &AppStatus, log: &[String]) -> Vec<u8> {
    let line = |value: Option<&str>| match value {
        Some(v) if !v.is_empty() => format!("{}\n", printable(v)).into_bytes(),
        _ => Vec::new(),
    };
    match file {
        StatusFile::State | StatusFile::Wait => line(Some(status.state.as_str())),
        StatusFile::StatusJson => pretty(&serde_json::to_value(status).unwrap_or_default()),
        StatusFile::Hash => line(status.hash.as_deref()),
        StatusFile::Url => line(status.url.as_deref()),
        StatusFile::Revision => line(status.revision.as_deref()),
        StatusFile::Id => line(status.id.as_deref()),
        StatusFile::Job => match &status.job {
            Some(job) => job.render().into_bytes(),
            None => Vec::new(),
        },
        StatusFile::Error => line(status.error.as_deref()),
        StatusFile::ResponseJson => match &status.response {
            Some(body) => pretty(body),
            None => Vec::new(),
        },
        StatusFile::Log => {
            let mut out = String::new();
            for entry in log {
                out.push_str(&printable(entry));
                out.push('\n');
            }
            out.into_bytes()
        }
        StatusFile::Payment => match &status.payment {
            Some(due) => payment_text(due).into_bytes(),
            None => Vec::new(),
        },
        StatusFile::PaymentPng => payment_png(status),
        // The tree serves the history from the metadata engine.
        StatusFile::Ctl | StatusFile::History => Vec::new(),
    }
}

/// `.pushfs/payment`: a sentence to act on, then one `key: value` per line.
fn payment_text(due: &PaymentDue) -> String {
    let unknown = "unknown (the node could not be asked; pushfs asks again)";
    let price = due
        .price
        .map(|p| format!("{p} {}", due.currency))
        .unwrap_or_else(|| unknown.to_string());
    let address = printable(due.address.as_deref().unwrap_or(unknown));
    let goal = if due.renewal { "renew" } else { "deploy" };
    let what = match due.stage {
        PaymentStage::Unpaid => format!(
            "Not paid yet. To {goal}, send {price} to {address} in one transaction whose message \
             (OP_RETURN memo) is exactly {}, before {}. pushfs never pays.{}",
            due.memo,
            due.deadline,
            match &due.link {
                Some(_) => " From a phone: open the link below, or scan .pushfs/payment.png.",
                None => "",
            }
        ),
        PaymentStage::Paid => "Paid; waiting for the network to run the app.".to_string(),
        PaymentStage::Running if due.renewal => "Paid; the app runs on, renewed.".to_string(),
        PaymentStage::Running => "Paid; the app runs.".to_string(),
        PaymentStage::Expired if due.renewal => {
            "Not paid before the deadline: the renewal expired; the app runs until its old expiry."
                .to_string()
        }
        PaymentStage::Expired => {
            "Not paid before the deadline: the registration expired; deploy again.".to_string()
        }
        PaymentStage::Underpaid => {
            "Paid below the price: the network keeps the message but does not run it; see .pushfs/error."
                .to_string()
        }
    };
    // The link is for paying: once paid (or too late) it only misleads.
    let link = match (&due.link, due.stage) {
        (Some(link), PaymentStage::Unpaid) => format!("link: {}\n", printable(link)),
        _ => String::new(),
    };
    let stage = serde_json::to_value(due.stage)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    format!(
        "{what}\naddress: {address}\nprice: {price}\nmemo: {}\ndeadline: {}\nstage: {stage}\n{link}",
        printable(&due.memo),
        printable(&due.deadline)
    )
}

/// `.pushfs/payment.png`: the QR code of the wallet link while the
/// payment is due; empty before the link is known and once paid.
fn payment_png(status: &AppStatus) -> Vec<u8> {
    let Some(due) = status.payment.as_ref() else {
        return Vec::new();
    };
    match (&due.link, due.stage) {
        (Some(link), PaymentStage::Unpaid) => crate::pay_code::png(link).unwrap_or_else(|err| {
            tracing::warn!(%err, "cannot draw the payment QR code");
            Vec::new()
        }),
        _ => Vec::new(),
    }
}

fn pretty(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendKind, DeployState, JobInfo};

    #[test]
    fn files_render_one_line_or_nothing() {
        let mut s = AppStatus::new("app", BackendKind::Cf);
        assert_eq!(render(StatusFile::State, &s, &[]), b"idle\n");
        assert!(render(StatusFile::Hash, &s, &[]).is_empty());
        s.state = DeployState::Deployed;
        s.hash = Some("abc".into());
        s.job = Some(JobInfo::new("j1", "finished"));
        assert_eq!(render(StatusFile::State, &s, &[]), b"deployed\n");
        assert_eq!(render(StatusFile::Hash, &s, &[]), b"abc\n");
        assert_eq!(render(StatusFile::Job, &s, &[]), b"j1 finished\n");
        let json: serde_json::Value =
            serde_json::from_slice(&render(StatusFile::StatusJson, &s, &[])).unwrap();
        assert_eq!(json["state"], "deployed");
        assert_eq!(json["backend"], "cf");
        let log = vec!["a".to_string(), "b".to_string()];
        assert_eq!(render(StatusFile::Log, &s, &log), b"a\nb\n");
    }

    #[test]
    fn payment_is_plain_words_and_json() {
        let mut s = AppStatus::new("app", BackendKind::Flux);
        assert!(render(StatusFile::Payment, &s, &[]).is_empty());
        s.payment = Some(PaymentDue {
            address: Some("t3NryfAQLGeFs9jEoeqsxmBN2QLRaRKFLUX".into()),
            price: Some(1.25),
            currency: "FLUX".into(),
            memo: "ab".repeat(32),
            deadline: "2026-11-29T14:00:00.000Z".into(),
            deadline_ms: 0,
            app_name: "app".into(),
            stage: PaymentStage::Unpaid,
            link: None,
            renewal: false,
        });
        let text = String::from_utf8(render(StatusFile::Payment, &s, &[])).unwrap();
        assert!(
            text.starts_with("Not paid yet. To deploy, send 1.25 FLUX to t3Nry"),
            "{text}"
        );
        assert!(text.contains("\nprice: 1.25 FLUX\n"), "{text}");
        assert!(
            text.contains(&format!("\nmemo: {}\n", "ab".repeat(32))),
            "{text}"
        );
        assert!(text.contains("\nstage: unpaid\n"), "{text}");
        let json: serde_json::Value =
            serde_json::from_slice(&render(StatusFile::StatusJson, &s, &[])).unwrap();
        assert_eq!(json["payment"]["price"], 1.25);
        s.state = DeployState::AwaitingPayment;
        assert_eq!(render(StatusFile::State, &s, &[]), b"awaiting_payment\n");
        let json: serde_json::Value =
            serde_json::from_slice(&render(StatusFile::StatusJson, &s, &[])).unwrap();
        assert_eq!(json["state"], "awaiting_payment");
        assert_eq!(json["payment"]["stage"], "unpaid");
    }

    #[test]
    fn the_pay_link_and_its_qr_code_are_there_only_while_unpaid() {
        let mut s = AppStatus::new("app", BackendKind::Flux);
        assert!(render(StatusFile::PaymentPng, &s, &[]).is_empty());
        let link = "zel:?action=pay&coin=zelcash&address=t3NryfAQLGeFs9jEoeqsxmBN2QLRaRKFLUX&amount=0.63&message=ab";
        s.payment = Some(PaymentDue {
            address: Some("t3NryfAQLGeFs9jEoeqsxmBN2QLRaRKFLUX".into()),
            price: Some(0.63),
            currency: "FLUX".into(),
            memo: "ab".into(),
            deadline: "2026-11-29T14:00:00.000Z".into(),
            deadline_ms: 0,
            app_name: "app".into(),
            stage: PaymentStage::Unpaid,
            link: Some(link.into()),
            renewal: true,
        });
        let text = String::from_utf8(render(StatusFile::Payment, &s, &[])).unwrap();
        assert!(
            text.starts_with("Not paid yet. To renew, send 0.63 FLUX"),
            "{text}"
        );
        assert!(text.contains("scan .pushfs/payment.png"), "{text}");
        assert!(text.ends_with(&format!("\nlink: {link}\n")), "{text}");
        let png = render(StatusFile::PaymentPng, &s, &[]);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        s.payment.as_mut().unwrap().stage = PaymentStage::Running;
        let text = String::from_utf8(render(StatusFile::Payment, &s, &[])).unwrap();
        assert!(!text.contains("link:"), "{text}");
        assert!(render(StatusFile::PaymentPng, &s, &[]).is_empty());
    }

    #[test]
    fn names_round_trip() {
        for f in StatusFile::ALL {
            assert_eq!(StatusFile::from_name(f.name()), Some(f));
        }
        assert_eq!(StatusFile::from_name("nope"), None);
    }
}
