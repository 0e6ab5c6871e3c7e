//! The read-only questions pushfs asks a FluxOS node after a message is
//! accepted: where to pay, what it costs, and how far the message got
//! (temporary, permanent, running). Each answer is FluxOS's `{status, data}`
//! envelope, always HTTP 200 (FluxOS's own API; see `docs/flux.md`).

use serde_json::Value;

use super::response::{self, error_for, Answer};
use crate::backend::DeployError;

/// What `GET /apps/deploymentinformation` says about paying.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentInfo {
    /// Where registration fees go.
    pub address: String,
    /// The smallest payment nodes record (`minPrice` of the newest price fork).
    pub min_price: Option<f64>,
}

/// The node's temporary copy of a message (`/apps/temporarymessages/<hash>`).
#[derive(Debug, Clone, PartialEq)]
pub struct TemporaryMessage {
    pub received_at_ms: Option<u64>,
    pub expire_at_ms: Option<u64>,
    /// The spec the message carries (`appSpecifications`).
    pub spec: Option<Value>,
}

/// The node's permanent copy of a paid message (`/apps/permanentmessages`).
#[derive(Debug, Clone, PartialEq)]
pub struct PermanentMessage {
    /// What the payment carried, in satoshis (1e-8 FLUX).
    pub value_sat: Option<u64>,
    /// The block that holds the payment.
    pub height: Option<u64>,
}

pub struct NodeQueries<'a> {
    pub http: &'a reqwest::Client,
    /// The node's API base URL, without a trailing `/`.
    pub base: &'a str,
}

impl NodeQueries<'_> {
    async fn data(&self, request: reqwest::RequestBuilder) -> Result<Value, DeployError> {
        let resp = crate::backend::http::send(request).await?;
        let status = resp.status().as_u16();
        let retry_after = crate::backend::retry_after::from_headers(resp.headers());
        let text = crate::backend::http::text(resp).await?;
        match response::parse(status, &text)
            .map_err(|err| err.with_retry_after(retry_after))?
            .0
        {
            Answer::Success(data) => Ok(data),
            Answer::Error { message, code } => Err(error_for(status, message, code)),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, DeployError> {
        self.data(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `GET /apps/deploymentinformation`.
    pub async fn deployment_info(&self) -> Result<DeploymentInfo, DeployError> {
        let data = self.get("/apps/deploymentinformation").await?;
        let address = data
            .get("address")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                DeployError::Protocol(format!(
                    "GET /apps/deploymentinformation has no address: {data}"
                ))
            })?;
        // The fork in force is the newest one; forks are sorted by height.
        let min_price = data
            .get("price")
            .and_then(Value::as_array)
            .and_then(|forks| {
                forks
                    .iter()
                    .filter_map(|f| {
                        Some((f.get("height")?.as_f64()?, f.get("minPrice")?.as_f64()?))
                    })
                    .max_by(|a, b| a.0.total_cmp(&b.0))
            })
            .map(|(_, min)| min);
        Ok(DeploymentInfo {
            address: address.to_string(),
            min_price,
        })
    }

    /// `POST /apps/calculateprice` with the bare, formatted spec (read raw by
    /// the node, so `text/plain` like the register call): the FLUX price.
    pub async fn price(&self, spec_json: &str) -> Result<f64, DeployError> {
        let request = self
            .http
            .post(format!("{}/apps/calculateprice", self.base))
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .body(spec_json.to_string());
        let data = self.data(request).await?;
        data.get("flux").and_then(Value::as_f64).ok_or_else(|| {
            DeployError::Protocol(format!(
                "POST /apps/calculateprice gave no flux price: {data}"
            ))
        })
    }

    /// `GET /apps/temporarymessages/<hash>`: `None` once expired or unknown.
    pub async fn temporary_message(
        &self,
        hash: &str,
    ) -> Result<Option<TemporaryMessage>, DeployError> {
        let data = self.get(&format!("/apps/temporarymessages/{hash}")).await?;
        Ok(first_with_hash(&data, hash).map(|m| TemporaryMessage {
            received_at_ms: m.get("receivedAt").and_then(time_ms),
            expire_at_ms: m.get("expireAt").and_then(time_ms),
            spec: m.get("appSpecifications").cloned(),
        }))
    }

    /// `GET /apps/permanentmessages?hash=<hash>`: the paid message, if the fee was paid.
    pub async fn permanent_message(
        &self,
        hash: &str,
    ) -> Result<Option<PermanentMessage>, DeployError> {
        let data = self
            .get(&format!("/apps/permanentmessages?hash={hash}"))
            .await?;
        Ok(first_with_hash(&data, hash).map(|m| PermanentMessage {
            value_sat: m.get("valueSat").and_then(Value::as_f64).map(|v| v as u64),
            height: m.get("height").and_then(Value::as_u64),
        }))
    }

    /// Whether the fee of message `hash` was paid (it is permanent).
    pub async fn is_permanent(&self, hash: &str) -> Result<bool, DeployError> {
        Ok(self.permanent_message(hash).await?.is_some())
    }

    /// `GET /daemon/getblockcount`: the chain's height as the node sees it.
    pub async fn block_count(&self) -> Result<u64, DeployError> {
        let data = self.get("/daemon/getblockcount").await?;
        data.as_u64().ok_or_else(|| {
            DeployError::Protocol(format!("GET /daemon/getblockcount gave no height: {data}"))
        })
    }

    /// `GET /apps/appspecifications/<name>`: the registered spec, with the
    /// `hash` and `height` of the message that holds it; `None` if the
    /// network has no such app.
    pub async fn app_specification(&self, name: &str) -> Result<Option<Value>, DeployError> {
        let request = self
            .http
            .get(format!("{}/apps/appspecifications/{name}", self.base));
        let resp = crate::backend::http::send(request).await?;
        let status = resp.status().as_u16();
        let retry_after = crate::backend::retry_after::from_headers(resp.headers());
        let text = crate::backend::http::text(resp).await?;
        match response::parse(status, &text)
            .map_err(|err| err.with_retry_after(retry_after))?
            .0
        {
            Answer::Success(Value::Null) => Ok(None),
            Answer::Success(spec @ Value::Object(_)) => Ok(Some(spec)),
            Answer::Success(other) => Err(DeployError::Protocol(format!(
                "GET /apps/appspecifications/{name} returned {other} instead of a spec"
            ))),
            Answer::Error { message, .. } if message.contains("not found") => Ok(None),
            Answer::Error { message, code } => Err(error_for(status, message, code)),
        }
    }

    /// `GET /apps/location/<name>`: how many nodes run the app, any spec.
    pub async fn nodes_running_any(&self, name: &str) -> Result<usize, DeployError> {
        let data = self.get(&format!("/apps/location/{name}")).await?;
        Ok(data.as_array().map(Vec::len).unwrap_or(0))
    }

    /// `GET /apps/location/<name>`: how many nodes run the app with this message's spec.
    pub async fn nodes_running(&self, name: &str, hash: &str) -> Result<usize, DeployError> {
        let data = self.get(&format!("/apps/location/{name}")).await?;
        Ok(data
            .as_array()
            .map(|l| {
                l.iter()
                    .filter(|e| e.get("hash").and_then(Value::as_str) == Some(hash))
                    .count()
            })
            .unwrap_or(0))
    }
}

fn first_with_hash<'v>(data: &'v Value, hash: &str) -> Option<&'v Value> {
    data.as_array()?
        .iter()
        .find(|m| m.get("hash").and_then(Value::as_str) == Some(hash))
}

/// A MongoDB date as the node's JSON shows it (an ISO string), or milliseconds.
fn time_ms(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_f64().map(|ms| ms as u64),
        Value::String(s) => humantime::parse_rfc3339_weak(s)
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_are_iso_strings_or_milliseconds() {
        assert_eq!(
            time_ms(&json!("2026-12-06T14:00:00.250Z")),
            Some(1_796_565_600_250)
        );
        assert_eq!(
            time_ms(&json!(1_796_565_600_250u64)),
            Some(1_796_565_600_250)
        );
        assert_eq!(time_ms(&json!(null)), None);
    }
}
