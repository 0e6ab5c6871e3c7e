//! Who may own a Flux app, and when pushfs lets an update change it.
//!
//! FluxOS checks an app message's signature against `owner` in three forms
//! (the fact sheet): a Bitcoin P2PKH address (a ZelID, base58check with
//! version 0x00, starting with `1`), an Ethereum address (`0x` + 40 hex
//! digits), or a hex public key. Anything else can never be signed for, so
//! a typo would make the app unreachable: it is refused before sending.
//!
//! An update whose `owner` differs from the registered one transfers the
//! app for good. pushfs sends it only when `spec.json` asks for it with
//! `"transfer": true` (a key of pushfs's, never sent to FluxOS).

/// The spec key that allows an update to change the owner.
pub const TRANSFER_KEY: &str = "transfer";

/// Checks the form of an owner, naming what is wrong.
pub fn check_owner(owner: &str) -> Result<(), String> {
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
    let valid = if let Some(eth) = owner.strip_prefix("0x") {
        eth.len() == 40 && hex(eth)
    } else if owner.len() > 36 {
        matches!(owner.len(), 66 | 130) && hex(owner)
    } else {
        bs58::decode(owner)
            .with_check(Some(0x00))
            .into_vec()
            .is_ok_and(|bytes| bytes.len() == 21)
    };
    if valid {
        Ok(())
    } else {
        Err(format!(
            "owner {owner:?} in spec.json is not a Flux owner: use a ZelID (a Bitcoin address \
             starting with 1), a 0x… Ethereum address or a hex public key"
        ))
    }
}

/// Refuses an update that would change the registered owner, unless asked.
pub fn check_transfer(
    name: &str,
    registered: &str,
    proposed: &str,
    allowed: bool,
) -> Result<(), String> {
    if registered == proposed || allowed {
        return Ok(());
    }
    Err(format!(
        "this update would transfer Flux App {name} from {registered} to {proposed}, and a \
         transfer cannot be undone: fix owner in spec.json, or add \"{TRANSFER_KEY}\": true to \
         transfer it on purpose"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_flux_can_verify_pass_and_typos_fail() {
        for good in [
            "1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC",
            "0x52908400098527886E0F7030069857D2E4169EE7",
            &"02".repeat(33),
        ] {
            assert_eq!(check_owner(good), Ok(()), "{good}");
        }
        for bad in [
            "1NotARealZelIdAtAll1111111111111",
            "1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uD",
            "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
            "0x1234",
            "",
        ] {
            let err = check_owner(bad).unwrap_err();
            assert!(err.contains("is not a Flux owner"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_transfer_needs_asking() {
        assert!(check_transfer("app", "1a", "1a", false).is_ok());
        assert!(check_transfer("app", "1a", "1b", true).is_ok());
        let err = check_transfer("app", "1a", "1b", false).unwrap_err();
        assert!(err.contains("\"transfer\": true"), "{err}");
    }
}
