//! The signed app message FluxOS receives, its hash, and the `zelidauth`
//! session header.
//!
//! Message: `type + version + JSON.stringify(spec) + timestamp`, signed by the
//! owner's ZelID (register) or the registered owner's (update). The node
//! answers with `sha256_hex(message + signature)` (flux.md §4, §5).

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::js::to_canonical_json;
use super::signer::FluxSigner;
use super::spec::AppSpec;

/// Register a new app (`POST /apps/appregister`) or update one (`/apps/appupdate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Register,
    Update,
}

impl MessageKind {
    pub fn type_name(self) -> &'static str {
        match self {
            MessageKind::Register => "fluxappregister",
            MessageKind::Update => "fluxappupdate",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            MessageKind::Register => "/apps/appregister",
            MessageKind::Update => "/apps/appupdate",
        }
    }
}

/// The only message version FluxOS accepts.
pub const MESSAGE_VERSION: u32 = 1;

/// `type + version + JSON.stringify(spec) + timestamp`: what is signed.
pub fn signing_payload(type_name: &str, spec_json: &str, timestamp: u64) -> String {
    format!("{type_name}{MESSAGE_VERSION}{spec_json}{timestamp}")
}

/// The message hash FluxOS returns: SHA-256 hex of the payload and signature.
pub fn message_hash(type_name: &str, spec_json: &str, timestamp: u64, signature: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(signing_payload(type_name, spec_json, timestamp));
    hasher.update(signature);
    hex::encode(hasher.finalize())
}

/// A signed message, ready to send.
#[derive(Debug, Clone)]
pub struct SignedMessage {
    pub kind: MessageKind,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
    pub signature: String,
    /// `JSON.stringify(spec)`, the bytes that were signed.
    pub spec_json: String,
    /// The whole request body.
    pub body: String,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    version: u32,
    #[serde(rename = "appSpecification")]
    app_specification: &'a AppSpec,
    timestamp: u64,
    signature: &'a str,
}

impl SignedMessage {
    pub fn new(kind: MessageKind, spec: &AppSpec, timestamp: u64, signer: &FluxSigner) -> Self {
        let spec_json = spec.canonical_json();
        let signature = signer.sign(&signing_payload(kind.type_name(), &spec_json, timestamp));
        let body = to_canonical_json(&Body {
            kind: kind.type_name(),
            version: MESSAGE_VERSION,
            app_specification: spec,
            timestamp,
            signature: &signature,
        });
        SignedMessage {
            kind,
            timestamp,
            signature,
            spec_json,
            body,
        }
    }

    /// The hash a node must answer with.
    pub fn expected_hash(&self) -> String {
        message_hash(
            self.kind.type_name(),
            &self.spec_json,
            self.timestamp,
            &self.signature,
        )
    }
}

#[derive(Serialize)]
struct ZelidAuth<'a> {
    zelid: &'a str,
    signature: &'a str,
    #[serde(rename = "loginPhrase")]
    login_phrase: &'a str,
}

/// A `zelidauth` header value from a self-issued login phrase:
/// `<ms timestamp><32 hex>` (45 characters), which FluxOS accepts for 16 h
/// without a prior login (`verifyUserSession`). It is a credential: never log it.
pub fn zelidauth(signer: &FluxSigner, now_ms: u64) -> String {
    let phrase = format!("{now_ms}{}", uuid::Uuid::new_v4().simple());
    let signature = signer.sign(&phrase);
    to_canonical_json(&ZelidAuth {
        zelid: signer.address(),
        signature: &signature,
        login_phrase: &phrase,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::flux::signer::verify;

    const KEY: &str = "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn";

    #[test]
    fn golden_hash_matches_fluxos() {
        // flux.md §4: FluxOS's fixture message, signature and returned hash.
        let spec = r#"{"version":2,"name":"FoldingAtHome","description":"Folding @ Home is cool :)","repotag":"yurinnick/folding-at-home:latest","owner":"1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC","ports":[30001],"containerPorts":[7396],"domains":[""],"enviromentParameters":["USER=foldingUser","TEAM=262156","ENABLE_GPU=false","ENABLE_SMP=true"],"commands":["--allow","0/0","--web-allow","0/0"],"containerData":"/config","cpu":0.5,"ram":500,"hdd":5,"tiered":true,"cpubasic":0.5,"cpusuper":1,"cpubamf":2,"rambasic":500,"ramsuper":1000,"rambamf":2000,"hddbasic":5,"hddsuper":5,"hddbamf":5}"#;
        let sig =
            "H7AP+VrFUTrmi+DqG8x0nllBFXB+oD09AkSE/JEpemeOTzMglftjTtPaEY3rMW/FUezEiad0WZNgxiInFrUn6S8=";
        assert_eq!(
            message_hash("fluxappregister", spec, 1592988806887, sig),
            "c509eae87618e0c4c40106d3c515923d7611070bcafad261de9520238617c972"
        );
    }

    #[test]
    fn body_carries_the_signed_bytes() {
        let signer = FluxSigner::from_wif(KEY).unwrap();
        let mut raw = crate::backend::flux::spec::tests_support::minimal_v7();
        raw["owner"] = serde_json::json!(signer.address());
        let spec = AppSpec::format(&raw).unwrap();
        let msg = SignedMessage::new(MessageKind::Register, &spec, 1_753_000_000_000, &signer);
        let want_prefix = format!(
            r#"{{"type":"fluxappregister","version":1,"appSpecification":{},"timestamp":1753000000000,"signature":""#,
            msg.spec_json
        );
        assert!(msg.body.starts_with(&want_prefix), "{}", msg.body);
        let payload = signing_payload("fluxappregister", &msg.spec_json, msg.timestamp);
        assert!(verify(&payload, signer.address(), &msg.signature));
        assert_eq!(msg.expected_hash().len(), 64);
    }

    #[test]
    fn zelidauth_is_a_valid_self_issued_session() {
        let signer = FluxSigner::from_wif(KEY).unwrap();
        let header = zelidauth(&signer, 1_753_000_000_000);
        let v: serde_json::Value = serde_json::from_str(&header).unwrap();
        let phrase = v["loginPhrase"].as_str().unwrap();
        assert_eq!(phrase.len(), 45);
        assert!(phrase.starts_with("1753000000000"));
        assert_eq!(v["zelid"], signer.address());
        assert!(verify(
            phrase,
            signer.address(),
            v["signature"].as_str().unwrap()
        ));
    }
}
