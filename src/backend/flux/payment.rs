//! What the user must pay for an accepted message, to whom and by when:
//! the node's deployment address, the FLUX price of this exact spec, the
//! message hash as the transaction's OP_RETURN memo, and the deadline one
//! hour after the node received the message; and the Zelcore pay link
//! that carries all of it to a phone wallet. pushfs never pays.

use super::queries::NodeQueries;
use crate::backend::{PaymentDue, PaymentStage, Report};

pub const CURRENCY: &str = "FLUX";

/// FluxOS keeps a temporary message this long (`tempMsgTtlS: 3600`).
pub const TEMPORARY_MESSAGE_LIFETIME_MS: u64 = 3_600_000;

/// The payment for message `hash` of app `name`, accepted at `accepted_ms`
/// by our clock. Best effort: what the node cannot tell now stays unknown
/// (and is logged), and [`complete`] asks again while the watch runs.
pub async fn quote(
    node: &NodeQueries<'_>,
    name: &str,
    spec_json: &str,
    hash: &str,
    accepted_ms: u64,
    report: &dyn Report,
) -> PaymentDue {
    let fallback = accepted_ms + TEMPORARY_MESSAGE_LIFETIME_MS;
    let deadline_ms = match node.temporary_message(hash).await {
        Ok(Some(m)) => m
            .expire_at_ms
            .or(m.received_at_ms.map(|r| r + TEMPORARY_MESSAGE_LIFETIME_MS))
            .unwrap_or(fallback),
        Ok(None) => fallback,
        Err(err) => {
            report.log(&format!(
                "flux: cannot read the temporary message ({err}); its deadline is taken as 1 hour from now"
            ));
            fallback
        }
    };
    let mut due = PaymentDue {
        address: None,
        price: None,
        currency: CURRENCY.to_string(),
        memo: hash.to_string(),
        deadline: rfc3339(deadline_ms),
        deadline_ms,
        app_name: name.to_string(),
        stage: PaymentStage::Unpaid,
        link: None,
        renewal: false,
    };
    complete(node, spec_json, &mut due, report).await;
    due
}

/// Fills in the address and price if they are still unknown. Returns
/// whether anything changed.
pub async fn complete(
    node: &NodeQueries<'_>,
    spec_json: &str,
    due: &mut PaymentDue,
    report: &dyn Report,
) -> bool {
    if due.address.is_some() && due.price.is_some() {
        return false;
    }
    let info = match node.deployment_info().await {
        Ok(info) => info,
        Err(err) => {
            report.log(&format!(
                "flux: cannot read the deployment address ({err}); asking again later"
            ));
            return false;
        }
    };
    let price = match node.price(spec_json).await {
        Ok(price) => price,
        Err(err) => {
            report.log(&format!(
                "flux: cannot read the price ({err}); asking again later"
            ));
            due.address = Some(info.address);
            return true;
        }
    };
    due.price = Some(match info.min_price {
        // A free update still needs a payment nodes record: at least minPrice.
        Some(min) if price < min => {
            report.log(&format!(
                "flux: the node prices this update at {price} FLUX, but nodes ignore payments below {min} FLUX; pay {min}"
            ));
            min
        }
        _ => price,
    });
    due.link = Some(zelcore_link(
        &info.address,
        due.price.unwrap_or_default(),
        &due.memo,
    ));
    due.address = Some(info.address);
    true
}

/// The pay link every Flux front end offers (its "Pay with Zelcore"
/// button): a wallet that opens it fills in the address, the amount and the
/// message (the OP_RETURN memo).
pub fn zelcore_link(address: &str, price: f64, memo: &str) -> String {
    format!("zel:?action=pay&coin=zelcash&address={address}&amount={price}&message={memo}")
}

pub fn rfc3339(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
}
