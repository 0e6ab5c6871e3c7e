//! ZelID keys and Bitcoin signed messages, as FluxOS checks them.
//!
//! A ZelID is a Bitcoin mainnet P2PKH address; its key is a WIF private key.
//! Signatures follow `bitcoinjs-message` 2.2: double SHA-256 over
//! `"\x18Bitcoin Signed Message:\n" ‖ varint(len) ‖ message`, a recoverable
//! compact secp256k1 signature with header byte `27 + recid (+4 if the key
//! is compressed)`, base64. The curve math is the `secp256k1` crate's.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ripemd::Ripemd160;
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, PublicKey, SecretKey, SECP256K1};
use sha2::{Digest, Sha256};
use thiserror::Error;

const MAGIC: &[u8] = b"\x18Bitcoin Signed Message:\n";
const WIF_VERSION: u8 = 0x80;
const P2PKH_VERSION: u8 = 0x00;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    // Never echo the input: it is a private key.
    #[error("not a valid WIF private key (expected base58check, version 0x80, 32-byte key)")]
    BadWif,
}

/// Signs as one ZelID. Holds the private key; `Debug` shows only the address.
pub struct FluxSigner {
    key: SecretKey,
    compressed: bool,
    address: String,
}

impl fmt::Debug for FluxSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FluxSigner")
            .field("address", &self.address)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl FluxSigner {
    /// Reads a WIF key (`5…` uncompressed, `K…`/`L…` compressed).
    pub fn from_wif(wif: &str) -> Result<FluxSigner, KeyError> {
        let mut bytes = bs58::decode(wif.trim())
            .with_check(Some(WIF_VERSION))
            .into_vec()
            .map_err(|_| KeyError::BadWif)?;
        let compressed = match bytes.len() {
            33 => false,
            34 if bytes[33] == 0x01 => true,
            _ => {
                wipe(&mut bytes);
                return Err(KeyError::BadWif);
            }
        };
        let key = SecretKey::from_slice(&bytes[1..33]).map_err(|_| KeyError::BadWif);
        wipe(&mut bytes);
        let key = key?;
        let public = PublicKey::from_secret_key_global(&key);
        let address = address_of(&public, compressed);
        Ok(FluxSigner {
            key,
            compressed,
            address,
        })
    }

    /// The ZelID: the P2PKH address of this key.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A `bitcoinjs-message` signature of `message`, base64.
    pub fn sign(&self, message: &str) -> String {
        let digest = Message::from_digest(magic_hash(message));
        let sig = SECP256K1.sign_ecdsa_recoverable(&digest, &self.key);
        let (recid, compact) = sig.serialize_compact();
        let mut out = [0u8; 65];
        out[0] = 27 + recid.to_i32() as u8 + if self.compressed { 4 } else { 0 };
        out[1..].copy_from_slice(&compact);
        BASE64.encode(out)
    }
}

/// Best-effort wipe of key bytes we copied out of the WIF.
fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // black_box keeps the optimizer from dropping a write nobody reads.
        *b = std::hint::black_box(0);
    }
}

/// Bitcoin's varint (`varuint-bitcoin`).
fn varint(n: usize, out: &mut Vec<u8>) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&(n as u64).to_le_bytes());
        }
    }
}

/// The digest that is signed: SHA256(SHA256(magic ‖ varint ‖ message)).
pub fn magic_hash(message: &str) -> [u8; 32] {
    let mut data = Vec::with_capacity(MAGIC.len() + 9 + message.len());
    data.extend_from_slice(MAGIC);
    varint(message.len(), &mut data);
    data.extend_from_slice(message.as_bytes());
    Sha256::digest(Sha256::digest(&data)).into()
}

fn hash160(data: &[u8]) -> [u8; 20] {
    Ripemd160::digest(Sha256::digest(data)).into()
}

fn address_of(public: &PublicKey, compressed: bool) -> String {
    let hash = if compressed {
        hash160(&public.serialize())
    } else {
        hash160(&public.serialize_uncompressed())
    };
    let mut payload = Vec::with_capacity(21);
    payload.push(P2PKH_VERSION);
    payload.extend_from_slice(&hash);
    bs58::encode(payload).with_check().into_string()
}

/// The address a signature of `message` recovers to, or `None` when the
/// signature is malformed (FluxOS treats that as "invalid").
pub fn recover_address(message: &str, signature: &str) -> Option<String> {
    let raw = BASE64.decode(signature.trim()).ok()?;
    if raw.len() != 65 {
        return None;
    }
    let flag = raw[0].checked_sub(27)?;
    if flag > 15 {
        return None;
    }
    let recid = RecoveryId::from_i32(i32::from(flag & 3)).ok()?;
    let compressed = flag & 12 != 0;
    let sig = RecoverableSignature::from_compact(&raw[1..], recid).ok()?;
    let digest = Message::from_digest(magic_hash(message));
    let public = SECP256K1.recover_ecdsa(&digest, &sig).ok()?;
    Some(address_of(&public, compressed))
}

/// `bitcoinjs-message.verify(message, address, signature)` as FluxOS's
/// `signatureVerifier` calls it for BTC owners: the recovered key's HASH160
/// must equal the address's (its version byte is not compared). An owner
/// longer than 36 characters is a hex public key, turned into its address.
/// `0x…` (Ethereum) owners are not supported and never verify.
pub fn verify(message: &str, owner: &str, signature: &str) -> bool {
    if owner.starts_with("0x") {
        return false;
    }
    let owner_address = if owner.len() > 36 {
        match hex::decode(owner)
            .ok()
            .and_then(|b| PublicKey::from_slice(&b).ok().map(|k| (k, b.len() == 33)))
        {
            Some((key, compressed)) => address_of(&key, compressed),
            None => return false,
        }
    } else {
        owner.to_string()
    };
    let Some(recovered) = recover_address(message, signature) else {
        return false;
    };
    match (decode_address(&owner_address), decode_address(&recovered)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// HASH160 inside a base58check address, ignoring the version byte.
fn decode_address(address: &str) -> Option<Vec<u8>> {
    let bytes = bs58::decode(address).with_check(None).into_vec().ok()?;
    (bytes.len() == 21).then(|| bytes[1..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FluxOS's own fixture (`tests/ZelBack/appsService.js`), see flux.md §4.
    pub(crate) const GOLDEN_OWNER: &str = "1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC";
    pub(crate) const GOLDEN_SPEC: &str = r#"{"version":2,"name":"FoldingAtHome","description":"Folding @ Home is cool :)","repotag":"yurinnick/folding-at-home:latest","owner":"1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC","ports":[30001],"containerPorts":[7396],"domains":[""],"enviromentParameters":["USER=foldingUser","TEAM=262156","ENABLE_GPU=false","ENABLE_SMP=true"],"commands":["--allow","0/0","--web-allow","0/0"],"containerData":"/config","cpu":0.5,"ram":500,"hdd":5,"tiered":true,"cpubasic":0.5,"cpusuper":1,"cpubamf":2,"rambasic":500,"ramsuper":1000,"rambamf":2000,"hddbasic":5,"hddsuper":5,"hddbamf":5}"#;
    pub(crate) const GOLDEN_SIG: &str =
        "H7AP+VrFUTrmi+DqG8x0nllBFXB+oD09AkSE/JEpemeOTzMglftjTtPaEY3rMW/FUezEiad0WZNgxiInFrUn6S8=";

    fn golden_message() -> String {
        format!("fluxappregister1{GOLDEN_SPEC}1592988806887")
    }

    #[test]
    fn golden_vector_verifies_and_recovers_the_owner() {
        let message = golden_message();
        assert_eq!(message.len(), 588);
        assert_eq!(
            recover_address(&message, GOLDEN_SIG).as_deref(),
            Some(GOLDEN_OWNER)
        );
        assert!(verify(&message, GOLDEN_OWNER, GOLDEN_SIG));
        assert!(!verify(&format!("{message} "), GOLDEN_OWNER, GOLDEN_SIG));
        assert!(!verify(
            &message,
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
            GOLDEN_SIG
        ));
    }

    #[test]
    fn varint_forms() {
        let mut v = Vec::new();
        varint(588, &mut v);
        assert_eq!(v, [0xfd, 0x4c, 0x02]);
        v.clear();
        varint(0xfc, &mut v);
        assert_eq!(v, [0xfc]);
        v.clear();
        varint(70_000, &mut v);
        assert_eq!(v, [0xfe, 0x70, 0x11, 0x01, 0x00]);
    }

    #[test]
    fn known_wif_gives_known_address() {
        // Private key 1, the textbook example: compressed and uncompressed forms.
        let compressed =
            FluxSigner::from_wif("KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn").unwrap();
        assert_eq!(compressed.address(), "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH");
        let uncompressed =
            FluxSigner::from_wif("5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf").unwrap();
        assert_eq!(uncompressed.address(), "1EHNa6Q4Jz2uvNExL497mE43ikXhwF6kZm");
    }

    #[test]
    fn our_signatures_recover_to_our_address() {
        let signer =
            FluxSigner::from_wif("KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn").unwrap();
        let long = "é".repeat(40_000); // forces the 0xfe varint form
        for message in ["hello", long.as_str()] {
            let sig = signer.sign(message);
            let raw = BASE64.decode(&sig).unwrap();
            assert_eq!(raw.len(), 65);
            assert!(
                (31..=34).contains(&raw[0]),
                "compressed header, got {}",
                raw[0]
            );
            assert_eq!(
                recover_address(message, &sig).as_deref(),
                Some(signer.address())
            );
            assert!(verify(message, signer.address(), &sig));
        }
        let unc =
            FluxSigner::from_wif("5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf").unwrap();
        let sig = unc.sign("hello");
        assert!((27..=30).contains(&BASE64.decode(&sig).unwrap()[0]));
        assert!(verify("hello", unc.address(), &sig));
        // Same message, same key: deterministic (RFC 6979).
        assert_eq!(signer.sign("x"), signer.sign("x"));
    }

    #[test]
    fn hex_public_key_owner_is_accepted() {
        let signer =
            FluxSigner::from_wif("KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn").unwrap();
        let pubkey = hex::encode(PublicKey::from_secret_key_global(&signer.key).serialize());
        assert!(verify("m", &pubkey, &signer.sign("m")));
    }

    #[test]
    fn bad_keys_and_signatures_are_refused_without_echoing_the_key() {
        let bad = "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWX";
        let err = FluxSigner::from_wif(bad).unwrap_err();
        assert!(!err.to_string().contains(bad));
        assert!(FluxSigner::from_wif("").is_err());
        assert!(recover_address("m", "not base64!").is_none());
        assert!(recover_address("m", &BASE64.encode([0u8; 65])).is_none());
        let signer =
            FluxSigner::from_wif("KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn").unwrap();
        let debug = format!("{signer:?}");
        assert!(debug.contains("redacted") && !debug.contains("KwDi"));
    }
}
